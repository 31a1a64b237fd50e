#![doc = include_str!("../docs.md")]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod config;
mod error;
mod lock;
mod open;
mod probe;
mod scan;
mod store;
mod supplier;

pub use config::{RocksDbCompression, RocksDbConfig, SharedRocksDbResources};
pub use store::RocksDbStore;
pub use supplier::RocksDbSupplier;
