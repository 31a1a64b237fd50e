//! Real crashes around snapshots: a child process (`snapshot_child`) writes through the
//! logging layer and uploads, downloads or retires snapshots, and dies by SIGKILL at an
//! exact step of the snapshot protocol (its object store kills it: see
//! [`crash_store`]) or at a random moment (the parent kills it). After each kill the
//! parent checks:
//!
//! - the snapshot store: every listed manifest is whole and every file it names exists
//!   with its size ([`check::listing_is_whole`]);
//! - which snapshot is the newest, against the child's journal: a crash before a
//!   manifest leaves the previous snapshot newest (or none), a crash after it leaves the
//!   new one, never journaled;
//! - the guarantee: a fresh store restored from that snapshot plus the changelog's tail
//!   equals a replay of the whole changelog, which is the model's state (the changelog
//!   is a prefix of the workload covering every journaled commit).

pub mod check;
pub mod child;
pub mod crash_store;
mod download;
pub mod journal;
#[cfg(feature = "kafka")]
mod kafka_rounds;
mod rounds;
mod runner;

pub use download::download_killed_midway;
#[cfg(feature = "kafka")]
pub use kafka_rounds::{kafka_download_killed_midway, kafka_upload_killed};
pub use rounds::{Kill, retention_killed_midway, upload_killed};
