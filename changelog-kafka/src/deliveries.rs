//! The producer context of a [`KafkaSink`](crate::KafkaSink): what the delivery callbacks
//! learned — acknowledged offsets per topic partition, and the first failure.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryResult, ProducerContext};
use state_core::{ChangelogPositions, Error, Partition};

use crate::deadline::deadline_after;
use crate::error::{At, kafka_error};

/// What the delivery callbacks learned.
pub(crate) struct Deliveries {
    /// Highest acknowledged offset per topic partition.
    pub(crate) acked: ChangelogPositions,
    /// Highest acknowledged offset per topic partition such that no record appended
    /// before it failed: what the sink reports as acknowledged, so a resend after a failed
    /// commit never skips a record missing from the log.
    pub(crate) prefix: ChangelogPositions,
    /// Per topic partition, the append sequence numbers whose acknowledgements must not
    /// move `prefix`: from the first failed record up to the commit that reported it
    /// (unbounded while unreported).
    gaps: BTreeMap<(String, Partition), (usize, usize)>,
    /// The first failed delivery since the last commit.
    pub(crate) failure: Option<Error>,
    /// Delivery reports received (acknowledged or failed), for a flush to wait on.
    pub(crate) settled: usize,
    /// The smallest `settled` count a waiting flush needs (`usize::MAX`: none waits).
    /// Reports before it wake no one: a flush of 10,000 records used to be woken 10,000
    /// times, each a context switch on the cores the broker also runs on.
    wake_at: usize,
}

impl Default for Deliveries {
    fn default() -> Self {
        Self {
            acked: ChangelogPositions::default(),
            prefix: ChangelogPositions::default(),
            gaps: BTreeMap::new(),
            failure: None,
            settled: 0,
            wake_at: usize::MAX,
        }
    }
}

impl Deliveries {
    /// Ends every open gap at `next_seq`: records appended from now on are resends.
    pub(crate) fn close_gaps(&mut self, next_seq: usize) {
        for gap in self.gaps.values_mut() {
            gap.1 = gap.1.min(next_seq);
        }
    }

    /// Goes back to an earlier acknowledged state (after an aborted transaction).
    pub(crate) fn reset_to(&mut self, acked: ChangelogPositions) {
        self.prefix = acked.clone();
        self.acked = acked;
        self.gaps.clear();
        self.failure = None;
    }
}

/// The producer context: records acknowledgements and the first failure.
pub(crate) struct DeliveryContext {
    /// Sequence number of the next appended record, passed as the delivery opaque.
    pub(crate) next_seq: AtomicUsize,
    /// Records librdkafka accepted into its queue; each gets exactly one delivery report.
    pub(crate) enqueued: AtomicUsize,
    deliveries: Mutex<Deliveries>,
    /// Signalled on every delivery report.
    pub(crate) settled: Condvar,
}

impl DeliveryContext {
    pub(crate) fn new() -> Self {
        Self {
            next_seq: AtomicUsize::new(0),
            enqueued: AtomicUsize::new(0),
            deliveries: Mutex::default(),
            settled: Condvar::new(),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Deliveries> {
        // A panic elsewhere must not hide acknowledgements; the data stays consistent
        // because every update is a single assignment.
        self.deliveries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts one delivery report, waking the flushes waiting once it reaches their target.
    fn count_settled(&self) -> MutexGuard<'_, Deliveries> {
        let mut deliveries = self.lock();
        deliveries.settled += 1;
        if deliveries.settled >= deliveries.wake_at {
            deliveries.wake_at = usize::MAX;
            self.settled.notify_all();
        }
        deliveries
    }

    /// Waits until every record enqueued so far has its delivery report; false when
    /// `timeout` passed first.
    pub(crate) fn wait_settled(&self, timeout: Duration) -> bool {
        let target = self.enqueued.load(Ordering::SeqCst);
        let deadline = deadline_after(timeout);
        let mut deliveries = self.lock();
        while deliveries.settled < target {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            // Every waiter names its target again after each wake-up, which resets it.
            deliveries.wake_at = deliveries.wake_at.min(target);
            deliveries = self
                .settled
                .wait_timeout(deliveries, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }
}

impl ClientContext for DeliveryContext {
    fn error(&self, error: KafkaError, reason: &str) {
        log::warn!("kafka changelog producer: {error}: {reason}");
    }
}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, seq: Self::DeliveryOpaque) {
        let mut deliveries = self.count_settled();
        match result {
            Ok(message) => {
                let (topic, partition, offset) =
                    (message.topic(), message.partition(), message.offset());
                deliveries.acked.raise(topic, partition, offset);
                let in_gap = !deliveries.gaps.is_empty()
                    && deliveries
                        .gaps
                        .get(&(topic.to_owned(), partition))
                        .is_some_and(|&(from, until)| (from..until).contains(&seq));
                if !in_gap {
                    deliveries.prefix.raise(topic, partition, offset);
                }
            }
            Err((err, message)) => {
                let gap = deliveries
                    .gaps
                    .entry((message.topic().to_owned(), message.partition()))
                    .or_insert((seq, usize::MAX));
                if gap.1 != usize::MAX && seq >= gap.1 {
                    // A failure after an already reported gap opens a new one.
                    *gap = (seq, usize::MAX);
                }
                gap.0 = gap.0.min(seq);
                if deliveries.failure.is_none() {
                    let key_len = message.key().map_or(0, <[u8]>::len);
                    let error = kafka_error(
                        &format!("delivering a record (key of {key_len} bytes)"),
                        At::partition(message.topic(), message.partition()),
                        err.clone(),
                    );
                    deliveries.failure = Some(error);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::Arc;

    const PATIENCE: Duration = Duration::from_secs(20);

    #[test]
    fn a_flush_with_nothing_enqueued_returns_at_once() {
        assert!(DeliveryContext::new().wait_settled(Duration::ZERO));
    }

    #[test]
    fn a_flush_short_of_its_reports_times_out() {
        let context = DeliveryContext::new();
        context.enqueued.store(2, Ordering::SeqCst);
        drop(context.count_settled());
        assert!(!context.wait_settled(Duration::from_millis(20)));
    }

    /// Two flushes wait for different counts; reports wake only at a target, and every
    /// waiter still returns once its own count is reached.
    #[test]
    fn waiting_flushes_are_woken_at_their_targets() {
        let context = Arc::new(DeliveryContext::new());
        let waiter = |context: &Arc<DeliveryContext>| {
            let context = context.clone();
            std::thread::spawn(move || context.wait_settled(PATIENCE))
        };
        context.enqueued.store(3, Ordering::SeqCst);
        let first = waiter(&context);
        context.enqueued.store(1000, Ordering::SeqCst);
        let second = waiter(&context);
        for _ in 0..1000 {
            drop(context.count_settled());
        }
        assert!(first.join().unwrap(), "the first flush timed out");
        assert!(second.join().unwrap(), "the second flush timed out");
        assert_eq!(context.lock().settled, 1000);
    }
}
