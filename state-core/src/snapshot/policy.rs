//! When a store partition is snapshotted, and how many snapshots are kept.

use std::time::Duration;

/// When the store manager takes a snapshot of a partition's stores: after a commit once
/// enough records or time have passed since the last one, on a clean revoke and on
/// close. Taking one holds the commit path only for the local checkpoint; the upload
/// runs in the background.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotPolicy {
    /// A snapshot once this many changelog records were committed since the last one.
    pub every_records: Option<u64>,
    /// A snapshot once this long has passed since the last one (with something new
    /// committed).
    pub every: Option<Duration>,
    /// A snapshot when a partition is revoked cleanly (its new owner restores only the
    /// tail written after it).
    pub on_revoke: bool,
    /// A snapshot of every partition when the manager closes.
    pub on_close: bool,
    /// Snapshots kept per store partition; older ones are removed after each upload.
    pub keep: usize,
}

impl Default for SnapshotPolicy {
    /// Every million records or ten minutes, on revoke and close, keeping three.
    fn default() -> Self {
        Self {
            every_records: Some(1_000_000),
            every: Some(Duration::from_secs(600)),
            on_revoke: true,
            on_close: true,
            keep: 3,
        }
    }
}

impl SnapshotPolicy {
    /// Whether a partition that committed `records` changelog records over `elapsed`
    /// since its last snapshot is due for another.
    pub fn due(&self, records: u64, elapsed: Duration) -> bool {
        records > 0
            && (self.every_records.is_some_and(|n| records >= n)
                || self.every.is_some_and(|every| elapsed >= every))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_new_is_never_due() {
        let policy = SnapshotPolicy::default();
        assert!(!policy.due(0, Duration::from_secs(86_400)));
    }

    #[test]
    fn records_or_time_make_it_due() {
        let policy = SnapshotPolicy {
            every_records: Some(10),
            every: Some(Duration::from_secs(5)),
            ..SnapshotPolicy::default()
        };
        assert!(!policy.due(9, Duration::from_secs(4)));
        assert!(policy.due(10, Duration::ZERO));
        assert!(policy.due(1, Duration::from_secs(5)));
    }
}
