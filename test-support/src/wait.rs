//! Waiting for something to happen: poll a condition until it holds or a deadline
//! passes, then fail naming what was awaited and what the last check saw.
//!
//! A test never sleeps a fixed time instead: a sleep long enough on a loaded machine is
//! wasted on an idle one, and one short enough on an idle machine fails on a loaded one.
//! The pause between two checks only keeps a check that asks a broker or a child process
//! from running flat out; it starts at 1 ms and doubles up to 100 ms, so a condition that
//! holds soon is seen soon.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// The first pause between two checks.
const FIRST_PAUSE: Duration = Duration::from_millis(1);

/// The longest pause between two checks.
const LONGEST_PAUSE: Duration = Duration::from_millis(100);

/// What one check of a condition found: that it holds (with a value to return), or that
/// it does not yet (with, when useful, what it saw, for the failure message).
///
/// - `bool`: `true` holds;
/// - `Option<T>`: `Some(value)` holds, returning `value`;
/// - `Result<T, E>`: `Ok(value)` holds, returning `value`; `Err(seen)` does not yet, and
///   the last `seen` is shown if the deadline passes.
pub trait Outcome {
    /// What the wait returns once the condition holds.
    type Output;

    /// `Ok` when the condition holds; else what the check saw, if anything.
    fn into_result(self) -> Result<Self::Output, Option<String>>;
}

impl Outcome for bool {
    type Output = ();

    fn into_result(self) -> Result<(), Option<String>> {
        if self { Ok(()) } else { Err(None) }
    }
}

impl<T> Outcome for Option<T> {
    type Output = T;

    fn into_result(self) -> Result<T, Option<String>> {
        self.ok_or(None)
    }
}

impl<T, E: fmt::Display> Outcome for Result<T, E> {
    type Output = T;

    fn into_result(self) -> Result<T, Option<String>> {
        self.map_err(|seen| Some(seen.to_string()))
    }
}

/// A condition that did not hold before its deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimedOut {
    /// What was awaited.
    pub what: String,
    /// How long it was given.
    pub within: Duration,
    /// How many times it was checked.
    pub checks: u64,
    /// What the last check saw, when it said.
    pub last_seen: Option<String>,
}

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} did not happen within {:?} ({} checks)",
            self.what, self.within, self.checks
        )?;
        match &self.last_seen {
            Some(seen) => write!(f, "; last seen: {seen}"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for TimedOut {}

/// Checks `condition` until it holds and returns its value, failing the test after
/// `within` with a message naming `what` and what the last check saw.
///
/// ```
/// # use std::time::Duration;
/// let ready = std::sync::atomic::AtomicBool::new(true);
/// test_support::eventually(Duration::from_secs(5), "the worker to start", || {
///     ready.load(std::sync::atomic::Ordering::SeqCst)
/// });
/// ```
#[track_caller]
pub fn eventually<O: Outcome>(
    within: Duration,
    what: &str,
    condition: impl FnMut() -> O,
) -> O::Output {
    match try_eventually(within, what, condition) {
        Ok(value) => value,
        Err(timed_out) => panic!("{timed_out}"),
    }
}

/// [`eventually`] that returns the timeout instead of failing, for a caller with
/// something to clean up first (a child process to kill) or its own way to fail (a
/// property test's `prop_assert`).
pub fn try_eventually<O: Outcome>(
    within: Duration,
    what: &str,
    mut condition: impl FnMut() -> O,
) -> Result<O::Output, TimedOut> {
    let mut wait = Wait::new(within);
    loop {
        let last_seen = match condition().into_result() {
            Ok(value) => return Ok(value),
            Err(last_seen) => last_seen,
        };
        match wait.next_pause() {
            Some(pause) => std::thread::sleep(pause),
            None => return Err(wait.timed_out(what, last_seen)),
        }
    }
}

/// [`eventually`] for a condition that is checked asynchronously: `condition` is an
/// async closure (or a closure returning a future), awaited once per check. Between two
/// checks it waits without blocking the executor, on any executor: it needs no runtime.
#[track_caller]
pub fn eventually_async<O: Outcome>(
    within: Duration,
    what: &str,
    mut condition: impl AsyncFnMut() -> O,
) -> impl Future<Output = O::Output> {
    // Taken here, outside the future, so a failure names the test's line.
    let caller = std::panic::Location::caller();
    async move {
        let mut wait = Wait::new(within);
        loop {
            let last_seen = match condition().await.into_result() {
                Ok(value) => return value,
                Err(last_seen) => last_seen,
            };
            match wait.next_pause() {
                Some(pause) => Pause::new(pause).await,
                None => panic!("{} (at {caller})", wait.timed_out(what, last_seen)),
            }
        }
    }
}

/// A deadline and the pauses between checks.
struct Wait {
    within: Duration,
    deadline: Instant,
    next: Duration,
    checks: u64,
}

impl Wait {
    fn new(within: Duration) -> Self {
        let now = Instant::now();
        Self {
            within,
            // A `within` too long to add means no deadline worth the name.
            deadline: now
                .checked_add(within)
                .unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 3600)),
            next: FIRST_PAUSE,
            checks: 0,
        }
    }

    /// The pause before the next check after a failed one, or `None` when the deadline
    /// has passed. The last pause ends at the deadline, so the last check is made there.
    fn next_pause(&mut self) -> Option<Duration> {
        self.checks += 1;
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        let pause = self.next.min(left);
        self.next = (self.next * 2).min(LONGEST_PAUSE);
        Some(pause)
    }

    fn timed_out(&self, what: &str, last_seen: Option<String>) -> TimedOut {
        TimedOut {
            what: what.to_owned(),
            within: self.within,
            checks: self.checks,
            last_seen,
        }
    }
}

/// A future that is ready after a given time, woken by a thread of its own: the async
/// wait's pause, without a runtime's timer.
struct Pause {
    length: Duration,
    shared: Arc<Mutex<PauseState>>,
    started: bool,
}

#[derive(Default)]
struct PauseState {
    over: bool,
    waker: Option<Waker>,
}

impl Pause {
    fn new(length: Duration) -> Self {
        Self {
            length,
            shared: Arc::default(),
            started: false,
        }
    }
}

impl Future for Pause {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        {
            let mut state = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
            if state.over {
                return Poll::Ready(());
            }
            state.waker = Some(cx.waker().clone());
        }
        if !self.started {
            self.started = true;
            let (shared, length) = (Arc::clone(&self.shared), self.length);
            std::thread::Builder::new()
                .name("test-support-pause".to_owned())
                .spawn(move || {
                    std::thread::sleep(length);
                    let mut state = shared.lock().unwrap_or_else(PoisonError::into_inner);
                    state.over = true;
                    if let Some(waker) = state.waker.take() {
                        waker.wake();
                    }
                })
                .unwrap_or_else(|err| panic!("starting the pause thread: {err}"));
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    /// Runs `future` on this thread, parking between polls: the tests need no runtime
    /// either.
    fn block_on<F: Future>(future: F) -> F::Output {
        struct Unpark(std::thread::Thread);
        impl std::task::Wake for Unpark {
            fn wake(self: Arc<Self>) {
                self.0.unpark();
            }
        }
        let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        let mut future = std::pin::pin!(future);
        loop {
            if let Poll::Ready(value) = future.as_mut().poll(&mut cx) {
                return value;
            }
            std::thread::park();
        }
    }

    #[test]
    fn returns_the_value_once_the_condition_holds() {
        let mut checks = 0;
        let value = eventually(Duration::from_secs(5), "three checks", || {
            checks += 1;
            (checks == 3).then_some(checks * 10)
        });
        assert_eq!((value, checks), (30, 3));
    }

    #[test]
    fn a_timeout_names_what_and_the_last_thing_seen() {
        let mut seen = 0;
        let err = try_eventually(Duration::from_millis(50), "the lag to reach 0", || {
            seen += 1;
            Err::<(), _>(format!("lag {seen}"))
        })
        .unwrap_err();
        assert_eq!(err.what, "the lag to reach 0");
        assert_eq!(err.checks, seen);
        assert!(err.checks >= 2, "{err}");
        assert_eq!(err.last_seen, Some(format!("lag {seen}")));
        let text = err.to_string();
        assert!(
            text.starts_with("the lag to reach 0 did not happen within 50ms (")
                && text.ends_with(&format!("; last seen: lag {seen}")),
            "{text}"
        );
    }

    #[test]
    #[should_panic(expected = "the flag did not happen within 10ms")]
    fn eventually_fails_the_test_after_the_deadline() {
        eventually(Duration::from_millis(10), "the flag", || false);
    }

    #[test]
    fn the_last_check_is_made_at_the_deadline() {
        let started = Instant::now();
        let within = Duration::from_millis(30);
        let mut last = started;
        let _ = try_eventually(within, "never", || {
            last = Instant::now();
            false
        });
        assert!(last >= started + within, "{:?}", last - started);
    }

    #[test]
    fn the_async_wait_checks_again_after_each_pause() {
        let checks = AtomicU32::new(0);
        let value = block_on(eventually_async(
            Duration::from_secs(5),
            "the fifth check",
            async || {
                let n = checks.fetch_add(1, Ordering::SeqCst) + 1;
                if n == 5 { Ok(n) } else { Err(n) }
            },
        ));
        assert_eq!(value, 5);
    }

    #[test]
    fn the_async_condition_may_borrow_state_mutably() {
        let mut seen = Vec::new();
        block_on(eventually_async(
            Duration::from_secs(5),
            "three entries",
            async || {
                seen.push(seen.len());
                seen.len() == 3
            },
        ));
        assert_eq!(seen, [0, 1, 2]);
    }

    #[test]
    #[should_panic(expected = "the async flag did not happen within 10ms")]
    fn the_async_wait_fails_after_the_deadline() {
        block_on(eventually_async(
            Duration::from_millis(10),
            "the async flag",
            async || false,
        ));
    }
}
