//! The backends the suite runs: every one in `statestore::backends()`, the registry the
//! facade and the command line use too, so a backend registered there (and compiled in
//! by its cargo feature) runs the whole suite with nothing added here.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use state_core::{Backend, KeyValueBytesStoreSupplier};

use crate::BackendFactory;

/// A registered backend is a factory: its name, and suppliers with its default
/// configuration.
impl BackendFactory for Backend {
    fn name(&self) -> &'static str {
        Backend::name(self)
    }

    fn supplier(&self, store_name: &str) -> Arc<dyn KeyValueBytesStoreSupplier> {
        Backend::supplier(self, store_name)
    }
}

/// Every backend compiled into this build, in the registry's order of preference.
pub fn backends() -> Vec<Box<dyn BackendFactory>> {
    statestore::backends()
        .iter()
        .map(|backend| Box::new(*backend) as Box<dyn BackendFactory>)
        .collect()
}

/// The backends compiled in whose stores survive a restart (SIGKILL rounds, group
/// scenarios that keep directories).
pub fn durable_backends() -> Vec<Box<dyn BackendFactory>> {
    statestore::backends()
        .iter()
        .filter(|backend| backend.capability().durable)
        .map(|backend| Box::new(*backend) as Box<dyn BackendFactory>)
        .collect()
}

/// The backend called `name`; the error lists the backends there are, or names the
/// cargo feature of one not compiled in.
pub fn backend(name: &str) -> state_core::Result<Box<dyn BackendFactory>> {
    Ok(Box::new(*statestore::backends().get(name)?))
}

/// `factory` alone, as the list [`conformance_suite!`](crate::conformance_suite) takes:
/// `conformance_suite!(mine_x_in_process, conformance_tests::only(my_backend::BACKEND))`.
pub fn only(factory: impl BackendFactory + 'static) -> Vec<Box<dyn BackendFactory>> {
    vec![Box::new(factory)]
}

/// Runs `test` against each of `backends`, one after the other. Every backend runs even
/// when an earlier one fails; then the test fails naming each backend that failed and
/// why, so one test name covers the matrix without hiding which cell broke.
pub fn for_each_backend(backends: &[Box<dyn BackendFactory>], test: impl Fn(&dyn BackendFactory)) {
    assert!(!backends.is_empty(), "no backend to test");
    let failed: Vec<String> = backends
        .iter()
        .filter_map(|backend| {
            let outcome = catch_unwind(AssertUnwindSafe(|| test(backend.as_ref())));
            outcome
                .err()
                .map(|panic| format!("{}: {}", backend.name(), panic_message(panic.as_ref())))
        })
        .collect();
    assert!(
        failed.is_empty(),
        "failed on {} of {} backends:\n{}",
        failed.len(),
        backends.len(),
        failed.join("\n")
    );
}

/// The message of a panic payload (`panic!` with a literal or a format).
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[test]
    fn every_backend_runs_and_each_failure_is_named() {
        let backends = backends();
        let first = backends[0].name();
        let ran = Mutex::new(Vec::new());
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            for_each_backend(&backends, |backend| {
                ran.lock().unwrap().push(backend.name());
                assert_ne!(backend.name(), first, "boom");
            });
        }));
        let expected: Vec<_> = statestore::backends().iter().map(Backend::name).collect();
        assert_eq!(*ran.lock().unwrap(), expected);
        let message = panic_message(outcome.unwrap_err().as_ref());
        assert!(
            message.contains(&format!("failed on 1 of {}", expected.len())),
            "{message}"
        );
        assert!(
            message.contains(&format!("{first}: ")) && message.contains("boom"),
            "{message}"
        );
    }

    #[test]
    fn a_backend_is_found_by_name_and_an_unknown_one_is_not() {
        for expected in backends() {
            assert_eq!(backend(expected.name()).unwrap().name(), expected.name());
        }
        let Err(err) = backend("nope") else {
            panic!("nope is no backend");
        };
        assert!(err.message().contains("unknown backend nope"), "{err}");
        assert!(durable_backends().iter().all(|b| b.supplier("s").durable()));
    }
}
