//! Stopping at a safe point on SIGINT or SIGTERM.
//!
//! Most commands end at once on a signal ([`exit::exit`](crate::exit::exit) removes the
//! demo's temporary directory first). A restore must not: ended mid-batch it loses what its
//! backend had not made durable yet (a redb restore interrupted at 0.9 s kept nothing of
//! 1.5 million records). Work that can stop at a safe point registers with [`stoppable`];
//! while some is registered a signal only raises [`cancel_flag`], which the restore driver
//! checks before each batch; the work then makes what it applied durable, closes its
//! stores, and the process exits with the signal's code (checked by `main` through
//! [`signalled`]). A second signal ends the process at once.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError};

/// Who is stopping: registered work, and the signal received.
#[derive(Debug)]
struct State {
    /// Work registered through [`stoppable`] and not finished.
    stoppable: usize,
    /// The exit code of the first signal received.
    signal: Option<i32>,
}

static STATE: Mutex<State> = Mutex::new(State {
    stoppable: 0,
    signal: None,
});

static CANCEL: LazyLock<Arc<AtomicBool>> = LazyLock::new(|| Arc::new(AtomicBool::new(false)));

fn state() -> MutexGuard<'static, State> {
    // Every change is a single assignment: a panic cannot leave the state torn.
    STATE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The flag a signal raises; give it to [`RestoreOptions::cancel`](state_core::RestoreOptions::cancel).
pub fn cancel_flag() -> Arc<AtomicBool> {
    CANCEL.clone()
}

/// Registered work; the registration ends when it is dropped.
#[derive(Debug)]
pub struct Stoppable(());

impl Drop for Stoppable {
    fn drop(&mut self) {
        let mut state = state();
        state.stoppable = state.stoppable.saturating_sub(1);
    }
}

/// Registers work that stops by itself once [`cancel_flag`] is raised, so a signal waits
/// for it instead of ending the process. `None` when a signal already came: the caller
/// should not start.
pub fn stoppable() -> Option<Stoppable> {
    let mut state = state();
    if state.signal.is_some() {
        return None;
    }
    state.stoppable += 1;
    Some(Stoppable(()))
}

/// What a signal does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnSignal {
    /// Nothing is registered, or this is the second signal: end the process now.
    ExitNow,
    /// Registered work was asked to stop; the process ends when it has.
    Stopping,
}

/// Records a signal ending the process with `code` and raises [`cancel_flag`].
pub fn signal(code: i32) -> OnSignal {
    let mut state = state();
    let first = state.signal.is_none();
    if first {
        state.signal = Some(code);
    }
    CANCEL.store(true, std::sync::atomic::Ordering::SeqCst);
    if first && state.stoppable > 0 {
        OnSignal::Stopping
    } else {
        OnSignal::ExitNow
    }
}

/// The exit code of the signal received, if one was.
pub fn signalled() -> Option<i32> {
    state().signal
}
