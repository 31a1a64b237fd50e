//! The bandwidth limit: one token bucket shared by every transfer of a store.
//!
//! A transfer takes its bytes before it starts. The bucket holds at most one second of
//! tokens (the burst) and may go into debt: a part larger than the burst waits for the
//! debt to be paid off, so over any stretch longer than a second the store moves at most
//! `rate` bytes per second plus one part.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// A token bucket of `rate` bytes per second, or no limit.
#[derive(Debug)]
pub(crate) struct Throttle {
    rate: Option<u64>,
    state: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    /// Tokens now; negative is debt.
    tokens: f64,
    /// When `tokens` was last brought up to date.
    at: Instant,
}

impl Throttle {
    /// A bucket of `rate` bytes per second (`None`: no limit), full.
    pub(crate) fn new(rate: Option<u64>) -> Self {
        Self {
            rate,
            state: Mutex::new(Bucket {
                tokens: rate.unwrap_or(0) as f64,
                at: Instant::now(),
            }),
        }
    }

    /// Waits until `bytes` may move.
    pub(crate) async fn take(&self, bytes: u64) {
        let Some(wait) = self.reserve(bytes) else {
            return;
        };
        tokio::time::sleep(wait).await;
    }

    /// Takes `bytes` from the bucket; how long to wait before moving them, if at all.
    fn reserve(&self, bytes: u64) -> Option<Duration> {
        let rate = self.rate? as f64;
        // A poisoned lock only means another transfer panicked; the numbers are fine.
        let mut bucket = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        let refill = now.duration_since(bucket.at).as_secs_f64() * rate;
        bucket.tokens = (bucket.tokens + refill).min(rate) - bytes as f64;
        bucket.at = now;
        (bucket.tokens < 0.0).then(|| Duration::from_secs_f64(-bucket.tokens / rate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_limited_bucket_paces_to_its_rate() {
        let throttle = Throttle::new(Some(1_000));
        let start = Instant::now();
        // The first second's worth is the burst; the next 3,000 bytes take 3 s.
        for _ in 0..4 {
            throttle.take(1_000).await;
        }
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_secs(3), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(3_100), "{elapsed:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn no_limit_never_waits() {
        let throttle = Throttle::new(None);
        let start = Instant::now();
        throttle.take(u64::MAX).await;
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
