//! Ordered scans over the engine's keys.
//!
//! A real backend turns the engine's iterator into a [`KvIter`] bounded by the
//! [`KeyRange`]: ascending (or descending) unsigned-byte order, an inverted range empty
//! rather than an error, the changelog position never returned as data, and an engine
//! error mid-scan yielded once, mapped by `error.rs`, after which the iterator ends.
//! Bound the engine's own iterator where it can be bounded (RocksDB: iterate bounds), so
//! a prefix scan reads only the prefixed keys.

use state_core::{KeyRange, KvIter, Result};

use crate::error::todo;

/// Entries inside `range`, in key order, or in reverse key order when `reverse`.
pub(crate) fn scan(range: &KeyRange, reverse: bool) -> Result<KvIter<'static>> {
    if range.is_empty() {
        return Ok(Box::new(std::iter::empty()));
    }
    Err(todo(if reverse { "reverse_range" } else { "range" }))
}
