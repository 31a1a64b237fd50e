//! Stopping work that has no batches of its own to check the cancel flag between: a
//! snapshot download runs as one future, which is dropped once the flag is raised.
//!
//! The flag is a plain `AtomicBool` that wakes nobody, and `state-core` assumes no
//! runtime (so no timer of its own), yet a download may sit asleep for long (a bandwidth
//! limit, a slow object store). A watcher thread, one per cancellable piece of work and
//! only while it runs, looks at the flag every [`CANCEL_CHECK_EVERY`] and wakes the work
//! when it is raised.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::thread::Thread;
use std::time::Duration;

/// How often a raised cancel flag is looked for while a download waits.
pub(crate) const CANCEL_CHECK_EVERY: Duration = Duration::from_millis(100);

/// `work`, or `None` once `cancel` is raised (the work is then dropped unfinished),
/// within about [`CANCEL_CHECK_EVERY`] even while `work` waits.
pub(crate) async fn unless_cancelled<F: Future>(
    work: F,
    cancel: Option<&Arc<AtomicBool>>,
) -> Option<F::Output> {
    let Some(cancel) = cancel else {
        return Some(work.await);
    };
    if cancel.load(Ordering::SeqCst) {
        return None;
    }
    let watcher = Watcher::start(cancel.clone());
    let mut work = std::pin::pin!(work);
    std::future::poll_fn(move |cx: &mut Context<'_>| {
        watcher.register(cx.waker());
        if cancel.load(Ordering::SeqCst) {
            return Poll::Ready(None);
        }
        work.as_mut().poll(cx).map(Some)
    })
    .await
}

/// What the watcher thread and the work share.
struct Shared {
    cancel: Arc<AtomicBool>,
    /// The work's latest waker.
    waker: Mutex<Option<Waker>>,
    /// Raised when the work ends, so the thread ends too.
    done: AtomicBool,
}

/// The watcher thread of one piece of work; stops it when dropped.
struct Watcher {
    shared: Arc<Shared>,
    thread: Option<Thread>,
}

impl Watcher {
    fn start(cancel: Arc<AtomicBool>) -> Self {
        let shared = Arc::new(Shared {
            cancel,
            waker: Mutex::new(None),
            done: AtomicBool::new(false),
        });
        let watched = shared.clone();
        // Without a thread the flag is still seen whenever the work wakes by itself.
        let thread = std::thread::Builder::new()
            .name("restore-cancel".into())
            .spawn(move || watch(&watched))
            .map_err(|err| log::warn!("no thread to watch for a cancelled download: {err}"))
            .ok()
            .map(|handle| handle.thread().clone());
        Self { shared, thread }
    }

    fn register(&self, waker: &Waker) {
        let mut slot = self
            .shared
            .waker
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if !slot.as_ref().is_some_and(|held| held.will_wake(waker)) {
            *slot = Some(waker.clone());
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.shared.done.store(true, Ordering::SeqCst);
        if let Some(thread) = &self.thread {
            thread.unpark();
        }
    }
}

fn watch(shared: &Shared) {
    while !shared.done.load(Ordering::SeqCst) {
        if shared.cancel.load(Ordering::SeqCst) {
            let waker = shared
                .waker
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            if let Some(waker) = waker {
                waker.wake();
            }
            return;
        }
        std::thread::park_timeout(CANCEL_CHECK_EVERY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flag_raised_while_the_work_waits_ends_it() {
        let cancel = Arc::new(AtomicBool::new(false));
        let (waiting, started) = std::sync::mpsc::channel();
        let raiser = {
            let cancel = cancel.clone();
            std::thread::spawn(move || {
                started.recv().unwrap();
                cancel.store(true, Ordering::SeqCst);
            })
        };
        // Says it waits, then never wakes by itself: only the watcher can end it.
        let work = std::future::poll_fn(move |_: &mut Context<'_>| {
            let _ = waiting.send(());
            Poll::<()>::Pending
        });
        let outcome = futures::executor::block_on(unless_cancelled(work, Some(&cancel)));
        raiser.join().unwrap();
        assert_eq!(outcome, None);
    }

    #[test]
    fn work_without_a_flag_or_with_a_lowered_one_finishes() {
        let cancel = Arc::new(AtomicBool::new(false));
        assert_eq!(
            futures::executor::block_on(unless_cancelled(async { 7 }, Some(&cancel))),
            Some(7)
        );
        assert_eq!(
            futures::executor::block_on(unless_cancelled(async { 7 }, None)),
            Some(7)
        );
    }

    #[test]
    fn a_flag_raised_before_the_work_starts_never_polls_it() {
        let cancel = Arc::new(AtomicBool::new(true));
        let polled = AtomicBool::new(false);
        let work = std::future::poll_fn(|_: &mut Context<'_>| {
            polled.store(true, Ordering::SeqCst);
            Poll::Ready(())
        });
        let outcome = futures::executor::block_on(unless_cancelled(work, Some(&cancel)));
        assert_eq!(outcome, None);
        assert!(!polled.load(Ordering::SeqCst));
    }
}
