//! What an [`ObjectSnapshotStore`](crate::ObjectSnapshotStore) is told: who writes, how
//! fast and how wide it may transfer, and the times its retention argument rests on.

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::Duration;

use state_core::{Error, Result};

use crate::clock::{Clock, SystemClock};

/// The smallest part size: S3 refuses a multipart upload whose parts (but the last) are
/// smaller than 5 MiB.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;

/// How a snapshot store transfers and retires snapshots.
///
/// `max_upload` and `grace` are the two times the retention argument rests on (see the
/// crate documentation): an upload that took longer than `max_upload` publishes
/// nothing, and a file unnamed by every manifest is deleted only after two retention
/// passes at least `grace` apart, which must be at least twice `max_upload`.
#[derive(Clone)]
pub struct SnapshotStoreConfig {
    /// Who writes, e.g. the instance id: `[A-Za-z0-9._-]`, 1 to 64 characters. A random
    /// part is added per store, so two instances given the same name still never name
    /// a manifest alike.
    pub writer: String,
    /// Requests in flight at once (whole objects, multipart parts, ranged reads).
    pub max_concurrent_transfers: usize,
    /// Bytes per second over all uploads and downloads of this store, or no limit.
    pub max_bytes_per_second: Option<u64>,
    /// The longest an upload may take from its first listing to publishing its
    /// manifest; a slower upload fails with `Timeout` and publishes nothing.
    pub max_upload: Duration,
    /// How long a file stays after a retention pass first finds it unnamed, and how old
    /// (by its `last_modified`) a file must be before it is deleted. At least twice
    /// `max_upload`.
    pub grace: Duration,
    /// Files larger than this are uploaded in parts of this size and downloaded in
    /// ranges of this size, in parallel. At least 5 MiB (S3's smallest part).
    pub part_size: u64,
    /// The wall clock; a [`ManualClock`](crate::ManualClock) in tests.
    pub clock: Arc<dyn Clock>,
}

impl SnapshotStoreConfig {
    /// The defaults for `writer`: 8 transfers, no bandwidth limit, uploads within 15
    /// minutes, a grace of one hour, 8 MiB parts, the system clock.
    pub fn new(writer: impl Into<String>) -> Self {
        Self {
            writer: writer.into(),
            max_concurrent_transfers: 8,
            max_bytes_per_second: None,
            max_upload: Duration::from_secs(15 * 60),
            grace: Duration::from_secs(60 * 60),
            part_size: 8 * 1024 * 1024,
            clock: Arc::new(SystemClock),
        }
    }

    /// Sets [`max_concurrent_transfers`](Self::max_concurrent_transfers).
    pub fn with_max_concurrent_transfers(mut self, transfers: usize) -> Self {
        self.max_concurrent_transfers = transfers;
        self
    }

    /// Sets [`max_bytes_per_second`](Self::max_bytes_per_second).
    pub fn with_max_bytes_per_second(mut self, bytes: Option<u64>) -> Self {
        self.max_bytes_per_second = bytes;
        self
    }

    /// Sets [`max_upload`](Self::max_upload).
    pub fn with_max_upload(mut self, max_upload: Duration) -> Self {
        self.max_upload = max_upload;
        self
    }

    /// Sets [`grace`](Self::grace).
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Sets [`part_size`](Self::part_size).
    pub fn with_part_size(mut self, part_size: u64) -> Self {
        self.part_size = part_size;
        self
    }

    /// Sets the [`clock`](Self::clock).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Refuses, as `InvalidInput` saying which rule, a configuration the retention
    /// argument or the object store cannot work with.
    pub fn validate(&self) -> Result<()> {
        let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if self.writer.is_empty() || self.writer.len() > 64 || !self.writer.chars().all(legal) {
            return Err(Error::invalid_input(format!(
                "snapshot writer {:?} must be 1 to 64 of the characters a-z A-Z 0-9 . _ -",
                self.writer
            )));
        }
        if self.max_concurrent_transfers == 0 {
            return Err(Error::invalid_input(
                "max_concurrent_transfers is 0: no transfer could ever start",
            ));
        }
        if self.max_bytes_per_second == Some(0) {
            return Err(Error::invalid_input(
                "max_bytes_per_second is 0: no byte could ever move; use None for no limit",
            ));
        }
        if self.max_upload.is_zero() {
            return Err(Error::invalid_input(
                "max_upload is 0: every upload would time out",
            ));
        }
        if self.grace < self.max_upload * 2 {
            return Err(Error::invalid_input(format!(
                "grace {:?} is less than twice max_upload {:?}: retention could delete a file \
                 an upload still under way is about to name",
                self.grace, self.max_upload
            )));
        }
        if self.part_size < MIN_PART_SIZE {
            return Err(Error::invalid_input(format!(
                "part_size {} is below {MIN_PART_SIZE} bytes, S3's smallest multipart part",
                self.part_size
            )));
        }
        Ok(())
    }

    /// The writer id this configuration gives a store: `writer` and 8 random hex digits.
    pub(crate) fn writer_id(&self) -> String {
        // RandomState is seeded from the OS's randomness once per process and moved on
        // for every instance: enough for a name no other store picks.
        let random = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        format!("{}-{:08x}", self.writer, random as u32)
    }
}

impl Default for SnapshotStoreConfig {
    /// [`SnapshotStoreConfig::new`] for the writer `statestore`.
    fn default() -> Self {
        Self::new("statestore")
    }
}

impl fmt::Debug for SnapshotStoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SnapshotStoreConfig")
            .field("writer", &self.writer)
            .field("max_concurrent_transfers", &self.max_concurrent_transfers)
            .field("max_bytes_per_second", &self.max_bytes_per_second)
            .field("max_upload", &self.max_upload)
            .field("grace", &self.grace)
            .field("part_size", &self.part_size)
            .field("clock", &self.clock)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid() {
        SnapshotStoreConfig::default().validate().unwrap();
    }

    #[test]
    fn each_rule_is_named() {
        let base = SnapshotStoreConfig::new("instance-1");
        let cases = [
            (
                base.clone().with_grace(Duration::from_secs(60)),
                "twice max_upload",
            ),
            (base.clone().with_part_size(1024), "part_size"),
            (
                base.clone().with_max_concurrent_transfers(0),
                "max_concurrent_transfers",
            ),
            (
                base.clone().with_max_bytes_per_second(Some(0)),
                "max_bytes_per_second",
            ),
            (base.clone().with_max_upload(Duration::ZERO), "max_upload"),
            (SnapshotStoreConfig::new("a/b"), "writer"),
            (SnapshotStoreConfig::new(""), "writer"),
        ];
        for (config, rule) in cases {
            let err = config.validate().unwrap_err();
            assert_eq!(err.kind(), state_core::ErrorKind::InvalidInput);
            assert!(err.to_string().contains(rule), "{rule}: {err}");
        }
    }

    #[test]
    fn writer_ids_differ_per_store() {
        let config = SnapshotStoreConfig::new("instance-1");
        let (a, b) = (config.writer_id(), config.writer_id());
        assert_ne!(a, b);
        assert!(a.starts_with("instance-1-"), "{a}");
    }
}
