//! Names no other test uses: tests share one broker (topics, consumer groups,
//! transactional ids) and run in parallel, in several processes, run after run.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// `prefix-<process id>-<nanoseconds since the epoch>-<counter>`: unique within a process
/// (the counter), across processes running at once (the process id) and across runs
/// (the clock). Valid as a Kafka topic, group or transactional id when `prefix` is.
pub fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos());
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_one_process_differ_and_keep_their_prefix() {
        let names: std::collections::BTreeSet<String> =
            (0..1000).map(|_| unique_name("topic")).collect();
        assert_eq!(names.len(), 1000);
        let pid = format!("topic-{}-", std::process::id());
        assert!(names.iter().all(|name| name.starts_with(&pid)), "{names:?}");
    }
}
