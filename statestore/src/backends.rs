//! The backends compiled into this build: the one list every choice of a backend by name
//! reads ([`Stores::key_value_store`](crate::Stores::key_value_store), the command line's
//! `--backend`, the conformance suite).
//!
//! Adding a backend is one line in [`register!`] below (and its cargo feature, named
//! after the backend, in this crate's `Cargo.toml`). The order of the lines is the order
//! of preference: tools needing a default take the first backend with the capability
//! they need, so RocksDB (Kafka Streams' default) comes first.

use state_core::Backends;

/// Builds [`BACKENDS`] from `"name" => crate` lines: each crate exports its
/// [`Backend`](state_core::Backend) as `BACKEND`, and `name` is both the backend's name
/// and the cargo feature that compiles it in. Backends whose feature is off are still
/// known by name, so asking for one says which feature brings it.
macro_rules! register {
    ($($name:literal => $krate:ident),* $(,)?) => {
        static BACKENDS: Backends = Backends::new(
            &[$(#[cfg(feature = $name)] $krate::BACKEND,)*],
            &[$(#[cfg(not(feature = $name))] $name,)*],
        );

        /// Every name registered, built in or not, in registration order.
        #[cfg(test)]
        const REGISTERED: &[&str] = &[$($name),*];

        /// Each backend built in, with the name (and cargo feature) it is registered under.
        #[cfg(test)]
        const BUILT_UNDER: &[(&str, state_core::Backend)] =
            &[$(#[cfg(feature = $name)] ($name, $krate::BACKEND),)*];
    };
}

register! {
    "rocksdb" => backend_rocksdb,
    "redb" => backend_redb,
    "memory" => backend_memory,
}

/// The backends compiled into this build (by cargo feature), in order of preference,
/// looked up by name with [`Backends::get`].
///
/// ```
/// let backends = statestore::backends();
/// let memory = backends.get("memory")?;
/// assert!(!memory.capability().durable);
/// assert!(backends.names().contains(&"rocksdb")); // known even when not built in
/// # Ok::<(), statestore::Error>(())
/// ```
pub fn backends() -> &'static Backends {
    &BACKENDS
}

#[cfg(test)]
mod tests {
    use state_core::{ErrorKind, WriteBatch};

    use super::*;

    #[test]
    fn every_registered_name_is_known_once() {
        let mut registered = REGISTERED.to_vec();
        registered.sort_unstable();
        assert_eq!(backends().names(), registered);
    }

    /// The name a line of `register!` gives (the cargo feature) is the name the crate's
    /// `Capability` states, so `--backend <feature>` finds the backend that feature built.
    #[test]
    fn every_backend_is_registered_under_the_name_its_capability_states() {
        for (registered, backend) in BUILT_UNDER {
            assert_eq!(backend.name(), *registered);
            assert_eq!(backend.capability().backend, *registered);
        }
        let built: Vec<_> = backends().iter().map(|backend| backend.name()).collect();
        let expected: Vec<_> = BUILT_UNDER.iter().map(|(name, _)| *name).collect();
        assert_eq!(built, expected, "built in, in registration order");
    }

    #[test]
    fn every_built_in_backend_is_found_under_its_own_name() {
        for backend in backends().iter() {
            assert_eq!(backends().get(backend.name()).unwrap(), backend);
        }
        assert!(backends().iter().count() >= usize::from(cfg!(feature = "memory")));
    }

    /// The facts a backend registers are the ones its supplier and its opened stores
    /// report, so they can be trusted without opening a store.
    #[test]
    fn every_capability_matches_what_an_opened_store_reports() {
        for backend in backends().iter() {
            let dir = tempfile::tempdir().unwrap();
            let supplier = backend.supplier("facts");
            assert_eq!(supplier.name(), "facts");
            assert_eq!(supplier.capability(), backend.capability(), "{backend}");
            assert_eq!(supplier.backend(), backend.name());
            let store = supplier.open(&dir.path().join("store")).unwrap();
            assert_eq!(store.capability(), backend.capability(), "{backend}");
            assert_eq!(store.name(), "facts");
            let mut batch = WriteBatch::new();
            for i in 0..10u8 {
                batch.put([i], [i]);
            }
            store.write(&batch).unwrap();
            if backend.capability().exact_count {
                assert_eq!(store.approximate_num_entries().unwrap(), 10, "{backend}");
            }
            store.close().unwrap();
            drop(store);
            if backend.capability().durable {
                assert!(supplier.owns(&dir.path().join("store")), "{backend}");
                let reopened = supplier.open(&dir.path().join("store")).unwrap();
                assert_eq!(reopened.get(&[3]).unwrap(), Some(vec![3]), "{backend}");
                reopened.close().unwrap();
            }
        }
    }

    #[test]
    fn an_unknown_name_lists_every_backend() {
        let unknown = "no-such-backend";
        assert!(!REGISTERED.contains(&unknown));
        let err = backends().get(unknown).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        let mut every = REGISTERED.to_vec();
        every.sort_unstable();
        let expected = format!(
            "unknown backend {unknown}; expected one of {}",
            every.join(", ")
        );
        assert!(err.message().ends_with(&expected), "{err}");
    }

    #[test]
    fn a_backend_whose_feature_is_off_names_the_feature() {
        let off = REGISTERED
            .iter()
            .filter(|name| BUILT_UNDER.iter().all(|(built, _)| built != *name));
        for name in off {
            let err = backends().get(name).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Unsupported);
            assert!(
                err.message().contains(&format!("cargo feature `{name}`")),
                "{err}"
            );
        }
    }
}
