//! Ordered scans that stream from a redb read transaction.

use std::path::Path;
use std::sync::Arc;

use redb::ReadOnlyTable;
use state_core::{KeyRange, KeyValue, Result};

use crate::error::map_redb_error;

/// The range type redb returns from a [`ReadOnlyTable`]: it keeps the read transaction's
/// snapshot alive by reference count, so the scan owns it and borrows nothing.
type RedbRange = redb::Range<'static, &'static [u8], &'static [u8]>;

/// Streams the entries of one range of the data table from one read snapshot.
///
/// Holding the snapshot keeps a consistent view for the whole scan, and also keeps redb
/// from reusing the pages later commits replace until the scan is dropped (so a scan held
/// for a long time makes the file grow, like a RocksDB snapshot does).
pub(crate) struct Scan {
    range: Option<RedbRange>,
    reverse: bool,
    path: Arc<Path>,
}

impl Scan {
    /// Starts a scan of `range` over `table`, descending when `reverse`.
    pub(crate) fn new(
        table: &ReadOnlyTable<&'static [u8], &'static [u8]>,
        range: &KeyRange,
        reverse: bool,
        path: Arc<Path>,
    ) -> Result<Self> {
        // Checked here rather than left to redb so an inverted range can never reach an
        // engine that panics or errors on `start > end`.
        if range.is_empty() {
            return Ok(Self {
                range: None,
                reverse,
                path,
            });
        }
        let redb_range = table
            .range::<&[u8]>(range.as_slices())
            .map_err(|err| map_redb_error(&path, "start range scan", err))?;
        Ok(Self {
            range: Some(redb_range),
            reverse,
            path,
        })
    }
}

impl Iterator for Scan {
    type Item = Result<KeyValue>;

    fn next(&mut self) -> Option<Self::Item> {
        let range = self.range.as_mut()?;
        let entry = if self.reverse {
            range.next_back()
        } else {
            range.next()
        };
        match entry {
            Some(Ok((key, value))) => Some(Ok((key.value().to_vec(), value.value().to_vec()))),
            Some(Err(err)) => {
                // An engine error ends the scan; the trait promises nothing after it.
                self.range = None;
                Some(Err(map_redb_error(&self.path, "read range scan", err)))
            }
            None => {
                // Releases the snapshot as soon as the scan is exhausted.
                self.range = None;
                None
            }
        }
    }
}
