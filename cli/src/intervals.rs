//! When each partition's restore ran, to report restore time apart from everything a
//! store's opening does around it (topic checks, fencing a dead producer).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use state_core::Partition;

/// The start and end of each partition's restore.
#[derive(Debug, Default)]
pub struct RestoreIntervals {
    runs: BTreeMap<Partition, (Instant, Option<Instant>)>,
}

impl RestoreIntervals {
    /// `partition`'s restore started now.
    pub fn started(&mut self, partition: Partition) {
        self.runs.insert(partition, (Instant::now(), None));
    }

    /// `partition`'s restore ended now.
    pub fn ended(&mut self, partition: Partition) {
        if let Some((_, end)) = self.runs.get_mut(&partition) {
            *end = Some(Instant::now());
        }
    }

    /// When the first restore started.
    pub fn first_start(&self) -> Option<Instant> {
        self.runs.values().map(|(start, _)| *start).min()
    }

    /// How long at least one restore was running: restores that started at different
    /// times (each after its own producer was fenced) are not charged for the gaps.
    pub fn busy(&self) -> Duration {
        let mut spans: Vec<(Instant, Instant)> = self
            .runs
            .values()
            .filter_map(|&(start, end)| Some((start, end?)))
            .collect();
        spans.sort();
        let mut busy = Duration::ZERO;
        let mut current: Option<(Instant, Instant)> = None;
        for (start, end) in spans {
            current = match current {
                Some((s, e)) if start <= e => Some((s, e.max(end))),
                Some((s, e)) => {
                    busy += e - s;
                    Some((start, end))
                }
                None => Some((start, end)),
            };
        }
        if let Some((s, e)) = current {
            busy += e - s;
        }
        busy
    }

    /// The shortest and longest single restore.
    pub fn shortest_and_longest(&self) -> Option<(Duration, Duration)> {
        let lengths = self
            .runs
            .values()
            .filter_map(|&(start, end)| Some(end? - start));
        lengths.fold(None, |acc, d| match acc {
            None => Some((d, d)),
            Some((lo, hi)) => Some((lo.min(d), hi.max(d))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(base: Instant, ms: u64) -> Instant {
        base + Duration::from_millis(ms)
    }

    fn intervals(spans: &[(u64, u64)]) -> RestoreIntervals {
        let base = Instant::now();
        let mut runs = BTreeMap::new();
        for (p, &(s, e)) in spans.iter().enumerate() {
            runs.insert(p as Partition, (at(base, s), Some(at(base, e))));
        }
        RestoreIntervals { runs }
    }

    #[test]
    fn overlapping_restores_count_once_and_gaps_not_at_all() {
        let runs = intervals(&[(0, 100), (50, 150), (400, 450)]);
        assert_eq!(runs.busy(), Duration::from_millis(200));
        assert_eq!(
            runs.shortest_and_longest(),
            Some((Duration::from_millis(50), Duration::from_millis(100)))
        );
    }

    #[test]
    fn unfinished_restores_are_left_out() {
        let mut runs = intervals(&[(0, 10)]);
        runs.started(7);
        assert_eq!(runs.busy(), Duration::from_millis(10));
        assert_eq!(RestoreIntervals::default().busy(), Duration::ZERO);
    }
}
