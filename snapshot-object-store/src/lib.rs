#![doc = include_str!("../README.md")]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod clock;
mod config;
mod download;
mod error;
mod hash;
mod layout;
mod listing;
mod records;
pub mod retention;
mod store;
mod throttle;
mod upload;
mod url;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{MIN_PART_SIZE, SnapshotStoreConfig};
pub use store::ObjectSnapshotStore;
pub use url::UrlOptions;

/// The `object_store` crate this one is built on, for building a store by hand.
pub use object_store;
