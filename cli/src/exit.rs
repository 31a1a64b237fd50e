//! How the process ends: exit codes, and temporary directories removed however it ends.
//!
//! The demo keeps its state in a temporary directory (17 MB at the default size) that
//! `TempDir`'s drop removes, but a process ended by a signal or by `std::process::exit`
//! runs no destructors. Every temporary directory is therefore registered here, and
//! [`exit`] — the one way this program ends early — removes what is registered first.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock};

use state_core::Result;

/// An error the command reports (`error: ...`), or a check that failed.
pub const FAILURE: i32 = 1;
/// Interrupted by SIGINT, as a shell reports a process killed by SIGINT (128 + 2).
pub const INTERRUPTED: i32 = 130;
/// Ended by SIGTERM, as a shell reports a process killed by SIGTERM (128 + 15).
pub const TERMINATED: i32 = 143;
/// Stdout was closed early (`statestore demo | head -1`), as a shell reports a process
/// killed by SIGPIPE: Rust ignores SIGPIPE, so the write fails and we exit with this.
pub const BROKEN_PIPE: i32 = 141;

static TEMP_DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Shared while a store opens (opening creates its directories); [`exit`] takes it for
/// good before removing the temporary directories. Without it an open running on another
/// thread recreated a store's directory path after the removal, and the interrupted demo
/// left its temporary directory behind.
static OPENING: RwLock<()> = RwLock::new(());

/// Runs `open`, which may create directories, unless the process is ending: then it
/// waits for the end.
pub fn while_opening<T>(open: impl FnOnce() -> T) -> T {
    let _open = OPENING.read().unwrap_or_else(PoisonError::into_inner);
    open()
}

fn temp_dirs() -> MutexGuard<'static, Vec<PathBuf>> {
    // Pushes and removals are single statements: a panic cannot leave the list torn.
    TEMP_DIRS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A temporary directory removed when dropped, and by [`exit`] if the process ends
/// before that.
pub struct TempDir {
    dir: tempfile::TempDir,
}

/// Creates a registered temporary directory.
pub fn temp_dir() -> Result<TempDir> {
    let dir = tempfile::Builder::new().prefix("statestore-").tempdir()?;
    temp_dirs().push(dir.path().to_owned());
    Ok(TempDir { dir })
}

impl TempDir {
    /// Where it is.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        temp_dirs().retain(|dir| dir != self.dir.path());
        // `tempfile::TempDir`'s own drop removes the directory after this.
    }
}

/// Waits for store opens under way to finish and stops new ones, removes the registered
/// temporary directories, then ends the process with `code`. Never called from inside
/// [`while_opening`].
pub fn exit(code: i32) -> ! {
    let _no_more_opens = OPENING.write().unwrap_or_else(PoisonError::into_inner);
    for dir in temp_dirs().drain(..) {
        // Engine threads may still be writing files into it; a few attempts win the race.
        for _ in 0..5 {
            match std::fs::remove_dir_all(&dir) {
                Err(err) if err.kind() != std::io::ErrorKind::NotFound => continue,
                _ => break,
            }
        }
    }
    std::process::exit(code)
}

/// Starts listening for SIGINT and SIGTERM (at once, inside the runtime, so no signal
/// slips through before the listener runs) and returns the wait. A signal ends the process
/// through [`exit`] with 130 (SIGINT) or 143 (SIGTERM), unless work registered with
/// [`stop::stoppable`](crate::stop::stoppable) is running: then that work is asked to stop
/// at a safe point, `main` exits with the signal's code when it has, and only a second
/// signal ends the process at once.
#[cfg(unix)]
pub fn on_signal() -> Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        loop {
            let code = tokio::select! {
                _ = interrupt.recv() => INTERRUPTED,
                _ = terminate.recv() => TERMINATED,
            };
            stop_or_exit(code);
        }
    })
}

/// Starts listening for Ctrl-C and returns the wait (see the Unix version).
#[cfg(not(unix))]
pub fn on_signal() -> Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        loop {
            if tokio::signal::ctrl_c().await.is_err() {
                return;
            }
            stop_or_exit(INTERRUPTED);
        }
    })
}

/// Asks registered work to stop, or ends the process with `code`.
fn stop_or_exit(code: i32) {
    match crate::stop::signal(code) {
        crate::stop::OnSignal::Stopping => crate::output::err(format_args!(
            "interrupted: stopping after the current batch and making what was restored durable (signal again to exit at once)"
        )),
        crate::stop::OnSignal::ExitNow => {
            crate::output::err(format_args!("interrupted"));
            exit(code)
        }
    }
}
