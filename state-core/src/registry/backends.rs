//! [`Backends`]: the backends of one build, looked up by name.

use std::path::Path;

use super::Backend;
use crate::{Error, Result};

/// The backends a build has, by name: what the `statestore` facade's `backends()`
/// returns, and what `--backend` flags and the conformance suite are built from.
///
/// It also knows the names of backends that exist but are not compiled into this build
/// (their cargo feature is off), so asking for one says how to get it instead of calling
/// the name unknown. Registration order is preference order: tools that need a default
/// take the first backend with the capability they need.
#[derive(Debug, Clone, Copy)]
pub struct Backends {
    built: &'static [Backend],
    not_built: &'static [&'static str],
}

impl Backends {
    /// The backends `built` into this build, in order of preference, and the names of
    /// those `not_built` (their cargo feature is off).
    ///
    /// # Panics
    /// When a name appears twice, or a backend says its commits survive a crash but not
    /// that it is durable (at compile time when used in a `const` or `static`).
    pub const fn new(built: &'static [Backend], not_built: &'static [&'static str]) -> Self {
        let mut b = 0;
        while b < built.len() {
            let facts = built[b].capability();
            if facts.commits_survive_crash && !facts.durable {
                panic!("a backend whose commits survive a crash must be durable");
            }
            b += 1;
        }
        let mut i = 0;
        while i < built.len() + not_built.len() {
            let mut j = i + 1;
            while j < built.len() + not_built.len() {
                if same(name_at(built, not_built, i), name_at(built, not_built, j)) {
                    panic!("a backend is registered twice");
                }
                j += 1;
            }
            i += 1;
        }
        Self { built, not_built }
    }

    /// The backends built in, in order of preference.
    pub fn iter(&self) -> impl Iterator<Item = &'static Backend> + use<> {
        self.built.iter()
    }

    /// Every backend name this build knows, built in or not, sorted: what a `--backend`
    /// flag accepts.
    pub fn names(&self) -> Vec<&'static str> {
        let mut names: Vec<_> = self
            .built
            .iter()
            .map(Backend::name)
            .chain(self.not_built.iter().copied())
            .collect();
        names.sort_unstable();
        names
    }

    /// The backend called `name`.
    ///
    /// # Errors
    /// - [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported) for a backend this
    ///   build does not have (its cargo feature is off), naming the feature.
    /// - [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) for a name no
    ///   backend has, listing the names there are.
    pub fn get(&self, name: &str) -> Result<&'static Backend> {
        if let Some(backend) = self.built.iter().find(|b| b.name() == name) {
            return Ok(backend);
        }
        if self.not_built.contains(&name) {
            return Err(Error::unsupported(format!(
                "the {name} backend is not built into this program: its cargo feature \
                 `{name}` is off (built in: {})",
                self.built_names().join(", ")
            )));
        }
        Err(Error::invalid_input(format!(
            "unknown backend {name}; expected one of {}",
            self.names().join(", ")
        )))
    }

    /// The built-in backend whose store is in `dir` (intact or damaged), if any: what a
    /// tool names when a store is refused as
    /// [`Foreign`](crate::ErrorKind::Foreign). Reads only.
    pub fn owner_of(&self, store_name: &str, dir: &Path) -> Option<&'static Backend> {
        self.iter().find(|backend| backend.owns(store_name, dir))
    }

    fn built_names(&self) -> Vec<&'static str> {
        self.iter().map(Backend::name).collect()
    }
}

const fn name_at(
    built: &'static [Backend],
    not_built: &'static [&'static str],
    i: usize,
) -> &'static str {
    if i < built.len() {
        built[i].name()
    } else {
        not_built[i - built.len()]
    }
}

/// `a == b` for `const` contexts.
const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use super::*;
    use crate::{
        Capability, ErrorKind, KeyValueBytesStoreSupplier, KeyValueStore, Result as CoreResult,
    };

    struct Fake(String, Capability);

    impl KeyValueBytesStoreSupplier for Fake {
        fn name(&self) -> &str {
            &self.0
        }
        fn capability(&self) -> Capability {
            self.1
        }
        fn open(&self, dir: &Path) -> CoreResult<Arc<dyn KeyValueStore>> {
            Err(Error::unsupported(format!("fake {}", dir.display())))
        }
        fn owns(&self, dir: &Path) -> bool {
            dir.ends_with(self.1.backend)
        }
        fn destroy(&self, _: &Path) -> CoreResult<()> {
            Ok(())
        }
    }

    const VOLATILE: Capability = Capability::new("volatile").exact_count(true);
    const DISK: Capability = Capability::new("disk").durable(true);
    const REGISTRY: Backends = Backends::new(
        &[
            Backend::new(DISK, |name| Arc::new(Fake(name.to_owned(), DISK))),
            Backend::new(VOLATILE, |name| Arc::new(Fake(name.to_owned(), VOLATILE))),
        ],
        &["absent"],
    );

    #[test]
    fn get_finds_a_built_backend_by_name() {
        let backend = REGISTRY.get("volatile").unwrap();
        assert_eq!(backend.name(), "volatile");
        assert_eq!(backend.capability(), VOLATILE);
        let supplier = backend.supplier("rewards");
        assert_eq!(supplier.name(), "rewards");
        assert_eq!(supplier.capability(), VOLATILE);
        assert_eq!(supplier.backend(), "volatile");
        assert!(!supplier.durable());
    }

    #[test]
    fn an_unknown_name_is_invalid_input_listing_every_name() {
        let err = REGISTRY.get("rocks").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(
            err.message()
                .contains("unknown backend rocks; expected one of absent, disk, volatile"),
            "{err}"
        );
    }

    #[test]
    fn a_backend_not_built_in_says_which_feature_brings_it() {
        let err = REGISTRY.get("absent").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported);
        assert!(err.message().contains("cargo feature `absent`"), "{err}");
        assert!(err.message().contains("built in: disk, volatile"), "{err}");
    }

    #[test]
    fn iteration_keeps_the_order_of_preference() {
        let names: Vec<_> = REGISTRY.iter().map(Backend::name).collect();
        assert_eq!(names, ["disk", "volatile"]);
        let durable = REGISTRY.iter().find(|b| b.capability().durable);
        assert_eq!(durable.map(Backend::name), Some("disk"));
    }

    #[test]
    fn the_owner_of_a_directory_is_found() {
        let owner = REGISTRY.owner_of("s", Path::new("/tmp/disk"));
        assert_eq!(owner.map(Backend::name), Some("disk"));
        assert!(REGISTRY.owner_of("s", Path::new("/tmp/other")).is_none());
    }

    #[test]
    #[should_panic(expected = "registered twice")]
    fn a_name_registered_twice_is_refused() {
        let twice: &'static [&'static str] = Box::leak(Box::new(["disk"]));
        let built: &'static [Backend] = Box::leak(Box::new([Backend::new(DISK, |name| {
            Arc::new(Fake(name.to_owned(), DISK))
        })]));
        Backends::new(built, twice);
    }

    #[test]
    #[should_panic(expected = "must be durable")]
    fn commits_that_survive_a_crash_without_durability_are_refused() {
        const CONTRADICTION: Capability = Capability::new("odd").commits_survive_crash(true);
        let built: &'static [Backend] =
            Box::leak(Box::new([Backend::new(CONTRADICTION, |name| {
                Arc::new(Fake(name.to_owned(), CONTRADICTION))
            })]));
        Backends::new(built, &[]);
    }

    #[test]
    fn equal_backends_have_equal_facts() {
        let a = REGISTRY.get("disk").unwrap();
        assert_eq!(
            *a,
            Backend::new(DISK, |name| Arc::new(Fake(name.into(), DISK)))
        );
        assert_ne!(a, REGISTRY.get("volatile").unwrap());
        assert_eq!(a.to_string(), "disk");
    }
}
