#![doc = include_str!("docs.md")]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod commit;
mod config;
mod error;
mod layout;
mod open;
mod overlay;
mod probe;
mod scan;
mod store;
mod supplier;

pub use config::{CommitDurability, DEFAULT_FILE_NAME, RedbConfig};
pub use store::RedbStore;
pub use supplier::RedbSupplier;
