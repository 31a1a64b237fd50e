//! The async runtime the network-facing crates need, checked where they are entered.
//!
//! The Kafka changelog (rdkafka's futures, blocking client calls moved off the executor)
//! and the object-store snapshots (an HTTP client) run on tokio. Called from any other
//! executor, `futures::executor::block_on` say, tokio panics with "there is no reactor
//! running"; their public entry points call [`require_tokio`] first so the caller gets
//! an error that says what to do instead.

use crate::{Error, Result};

/// Fails with [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported), naming
/// `operation` and the fix, unless this runs inside a tokio runtime.
pub fn require_tokio(operation: &str) -> Result<()> {
    match tokio::runtime::Handle::try_current() {
        Ok(_) => Ok(()),
        Err(_) => Err(Error::unsupported(format!(
            "{operation} needs a tokio runtime and was called outside one (from another \
             executor, such as futures::executor::block_on, or a plain thread): call it from \
             within a tokio runtime with its IO and time drivers enabled, e.g. under \
             #[tokio::main] or tokio::runtime::Builder::new_multi_thread().enable_all() \
             .build()?.block_on(...)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_a_runtime_the_error_names_the_operation_and_the_fix() {
        let err =
            futures::executor::block_on(async { require_tokio("creating topic t") }).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Unsupported);
        for part in ["creating topic t", "tokio runtime", "#[tokio::main]"] {
            assert!(err.to_string().contains(part), "{err}");
        }
    }

    #[test]
    fn inside_a_runtime_it_passes() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime
            .block_on(async { require_tokio("anything") })
            .unwrap();
    }
}
