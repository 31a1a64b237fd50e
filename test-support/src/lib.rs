//! # test-support
//!
//! What the workspace's tests share, written once so the copies cannot drift:
//!
//! - [`snapshot`] and [`assert_unchanged`]: every file under a directory with its bytes,
//!   for "a read-only operation changes not a byte" checks;
//! - [`single_broker`] and [`cluster`]: the real Kafka brokers of `scripts/kafka.sh`, with
//!   the rule that a test without a broker is skipped with a printed reason, except under
//!   `CI=true`, where it fails (CI never skips a Kafka test);
//! - [`s3()`]: the real S3-compatible server of `scripts/s3.sh` (SeaweedFS), under the
//!   same rule;
//! - [`unique_name`]: topic, group and application names no other test, process or run
//!   uses;
//! - [`eventually`], [`try_eventually`] and [`eventually_async`]: wait on a condition with
//!   a deadline, failing with what was awaited and what was last seen — never a fixed
//!   sleep standing in for the condition.
//!
//! It depends on std alone: it pulls in no engine, no Kafka client and no async runtime
//! (the async wait runs on any executor).
//!
//! Its functions fail the calling test by panicking with a message, as assertions do.

mod kafka;
mod names;
mod s3;
mod snapshot;
mod wait;

pub use kafka::{cluster, single_broker};
pub use names::unique_name;
pub use s3::{S3, s3};
pub use snapshot::{Snapshot, assert_unchanged, snapshot};
pub use wait::{Outcome, TimedOut, eventually, eventually_async, try_eventually};
