//! Deadlines from configured timeouts, without overflow.
//!
//! `Instant + Duration` panics when the sum does not fit (a timeout of `u64::MAX`
//! seconds from a command line did exactly that), so every deadline is made here.

use std::time::{Duration, Instant};

/// A year: far enough to mean "no deadline" for any timeout that does not fit.
const FAR: Duration = Duration::from_secs(365 * 24 * 3600);

/// `timeout` from now, or a year from now when the sum does not fit in an `Instant`.
pub(crate) fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .or_else(|| now.checked_add(FAR))
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_too_large_for_an_instant_is_far_away_not_a_panic() {
        assert!(deadline_after(Duration::MAX) > Instant::now() + Duration::from_secs(3600));
        let soon = deadline_after(Duration::from_millis(10));
        assert!(soon <= Instant::now() + Duration::from_millis(10));
    }
}
