//! Bounded iterators over the data column family.

use std::ops::Bound;
use std::path::Path;

use rocksdb::{DBWithThreadMode, IteratorMode, ReadOptions, SingleThreaded};
use state_core::{KeyRange, KvIter};

use crate::error::map_rocksdb_error;

/// The database type every store uses (spelled out so a feature elsewhere in the build
/// cannot switch the thread mode under us).
pub(crate) type Db = DBWithThreadMode<SingleThreaded>;

/// Entries of the default column family inside `range`, ascending or descending.
///
/// The bounds go to RocksDB as iterate bounds, so the engine stops at them instead of
/// reading past the range (a prefix scan touches only the prefixed keys).
pub(crate) fn scan<'a>(db: &'a Db, range: &KeyRange, reverse: bool, path: &'a Path) -> KvIter<'a> {
    if range.is_empty() {
        return Box::new(std::iter::empty());
    }
    let mode = if reverse {
        IteratorMode::End
    } else {
        IteratorMode::Start
    };
    let iter = db.iterator_opt(mode, read_options(range));
    // The RocksDB iterator is fused and ends after its first error, as KvIter requires.
    Box::new(iter.map(move |item| {
        item.map(|(key, value)| (key.into_vec(), value.into_vec()))
            .map_err(|err| map_rocksdb_error(err, path).context("scanning"))
    }))
}

fn read_options(range: &KeyRange) -> ReadOptions {
    let mut options = ReadOptions::default();
    match &range.start {
        Bound::Included(start) => options.set_iterate_lower_bound(start.clone()),
        Bound::Excluded(start) => options.set_iterate_lower_bound(successor(start)),
        Bound::Unbounded => {}
    }
    match &range.end {
        Bound::Included(end) => options.set_iterate_upper_bound(successor(end)),
        Bound::Excluded(end) => options.set_iterate_upper_bound(end.clone()),
        Bound::Unbounded => {}
    }
    options
}

/// The smallest key greater than `key`: `key ++ [0x00]`. RocksDB's lower bound is
/// inclusive and its upper bound exclusive, so this turns the other two bound kinds into
/// those.
fn successor(key: &[u8]) -> Vec<u8> {
    let mut next = Vec::with_capacity(key.len() + 1);
    next.extend_from_slice(key);
    next.push(0);
    next
}

/// The greatest key of the default column family, or `None` when it holds no entry.
pub(crate) fn last_key(db: &Db, path: &Path) -> state_core::Result<Option<Vec<u8>>> {
    match db.iterator(IteratorMode::End).next() {
        None => Ok(None),
        Some(Ok((key, _))) => Ok(Some(key.into_vec())),
        Some(Err(err)) => Err(map_rocksdb_error(err, path).context("finding the last key")),
    }
}
