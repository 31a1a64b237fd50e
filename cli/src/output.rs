//! Every line this program prints goes through here, so a closed stdout ends it quietly.
//!
//! `std`'s `println!` panics when stdout is gone (`statestore demo | head -1` printed
//! "failed printing to stdout: Broken pipe" and exited 101). `main.rs` defines this
//! crate's own `println!` and `eprintln!` on top of [`out`] and [`err`], so the commands
//! keep their ordinary-looking prints: a broken pipe ends the process with the status a
//! shell reports for SIGPIPE ([`BROKEN_PIPE`](crate::exit::BROKEN_PIPE)), any other
//! failure to write stdout is reported on stderr, and a failure to write stderr is
//! ignored (there is nowhere left to say it).

use std::fmt;
use std::io::{self, Write};

use crate::exit;

/// Prints one line to stdout; ends the process if stdout cannot take it.
pub fn out(line: fmt::Arguments<'_>) {
    let mut stdout = io::stdout().lock();
    // Stdout is line-buffered, so the newline flushes and a closed pipe shows up here.
    if let Err(error) = stdout
        .write_fmt(line)
        .and_then(|()| stdout.write_all(b"\n"))
    {
        drop(stdout);
        if error.kind() == io::ErrorKind::BrokenPipe {
            exit::exit(exit::BROKEN_PIPE);
        }
        err(format_args!("error: writing to stdout failed: {error}"));
        exit::exit(exit::FAILURE);
    }
}

/// Prints one line to stderr, ignoring failure.
pub fn err(line: fmt::Arguments<'_>) {
    let mut stderr = io::stderr().lock();
    let _ = stderr
        .write_fmt(line)
        .and_then(|()| stderr.write_all(b"\n"));
}
