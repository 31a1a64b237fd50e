//! # changelog-kafka
//!
//! The Kafka changelog of statestore on `rdkafka` (librdkafka): [`KafkaChangelog`]
//! creates compacted changelog topics and hands out [`KafkaSink`]s (one producer for
//! every changelog topic, `enable.idempotence=true`, `acks=all`, transactional under
//! exactly-once with one transaction per commit) and [`KafkaReader`]s (consumers with
//! the restore's `isolation.level`).
//!
//! [`EmbeddedKafka`] runs librdkafka's mock cluster in-process: enough for a demo and for
//! injected request errors, never a replacement for a real broker in tests of
//! correctness (see its module docs for what the mock cannot do).
//!
//! ## Design notes
//! - The sink never awaits a delivery per record (slow): delivery callbacks record the
//!   highest acknowledged offset per partition and the first failure, and `flush`
//!   waits for the producer on the blocking pool.
//! - Restore reads are complete when the cursor's *position* reaches the end offset:
//!   the position is librdkafka's, which moves over transaction markers and aborted
//!   records that are never returned.
//! - Every rdkafka error becomes a [`state_core::Error`] in `error.rs`.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod admin;
mod budget;
mod changelog;
mod config;
mod cursor;
mod deadline;
mod deliveries;
mod error;
mod fetch_queue;
pub mod group;
mod input;
pub mod mock;
mod reader;
mod sink;

pub use budget::restore_consumer_settings;
pub use changelog::KafkaChangelog;
pub use config::{
    DEFAULT_ENQUEUE_TIMEOUT, DEFAULT_FLUSH_TIMEOUT, DEFAULT_METADATA_TIMEOUT, DEFAULT_POLL_TIMEOUT,
    KafkaChangelogConfig,
};
pub use error::{is_kafka_error, is_unreachable};
pub use group::{
    GroupConfig, GroupDirectory, GroupListener, GroupMember, GroupView, InputRecord, StandbyPolicy,
    StatefulConsumer,
};
pub use mock::EmbeddedKafka;
pub use reader::KafkaReader;
pub use sink::{DEFAULT_TRANSACTION_TIMEOUT, KafkaSink};
