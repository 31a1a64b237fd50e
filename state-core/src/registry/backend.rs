//! [`Backend`]: one backend's registration.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use crate::{Capability, KeyValueBytesStoreSupplier};

/// Makes a supplier of stores called `store_name`, with the backend's default
/// configuration.
pub type SupplierFn = fn(store_name: &str) -> Arc<dyn KeyValueBytesStoreSupplier>;

/// One backend as a build knows it: its name and [`Capability`], and how to make its
/// suppliers. Each backend crate exports one as a `const`, so the facts are known without
/// opening (or even naming) a store:
///
/// ```
/// use std::sync::Arc;
/// # use std::path::Path;
/// # use state_core::{KeyValueBytesStoreSupplier, KeyValueStore, Result};
/// use state_core::{Backend, Capability};
///
/// /// The one statement of this backend's facts: its stores and its supplier report it.
/// const CAPABILITY: Capability = Capability::new("mine").durable(true).ordered_index(true);
///
/// /// This backend in the registry.
/// pub const BACKEND: Backend = Backend::new(CAPABILITY, |name| Arc::new(MySupplier::new(name)));
/// # struct MySupplier(String);
/// # impl MySupplier { fn new(name: &str) -> Self { Self(name.to_owned()) } }
/// # impl KeyValueBytesStoreSupplier for MySupplier {
/// #     fn name(&self) -> &str { &self.0 }
/// #     fn capability(&self) -> Capability { CAPABILITY }
/// #     fn open(&self, _: &Path) -> Result<Arc<dyn KeyValueStore>> { unimplemented!() }
/// #     fn destroy(&self, _: &Path) -> Result<()> { Ok(()) }
/// # }
///
/// assert_eq!(BACKEND.name(), "mine");
/// assert_eq!(BACKEND.supplier("rewards").name(), "rewards");
/// ```
#[derive(Clone, Copy)]
pub struct Backend {
    capability: Capability,
    supplier: SupplierFn,
}

impl Backend {
    /// A backend with the facts `capability` whose suppliers come from `supplier`. Its
    /// name is [`Capability::backend`].
    pub const fn new(capability: Capability, supplier: SupplierFn) -> Self {
        Self {
            capability,
            supplier,
        }
    }

    /// The backend's name ([`Capability::backend`]): what `--backend` and
    /// [`Backends::get`](crate::Backends::get) take.
    pub const fn name(&self) -> &'static str {
        self.capability.backend
    }

    /// What the backend's stores can do, without opening one.
    pub const fn capability(&self) -> Capability {
        self.capability
    }

    /// A supplier of stores called `store_name`, with the backend's default
    /// configuration.
    pub fn supplier(&self, store_name: &str) -> Arc<dyn KeyValueBytesStoreSupplier> {
        (self.supplier)(store_name)
    }

    /// Whether `dir` holds a store of this backend, intact or damaged
    /// ([`KeyValueBytesStoreSupplier::owns`]). Reads only.
    pub fn owns(&self, store_name: &str, dir: &Path) -> bool {
        self.supplier(store_name).owns(dir)
    }
}

impl PartialEq for Backend {
    /// Backends are equal when their facts are; the constructor is not compared
    /// (function addresses are not stable across codegen units).
    fn eq(&self, other: &Self) -> bool {
        self.capability == other.capability
    }
}

impl Eq for Backend {}

impl fmt::Debug for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backend")
            .field("capability", &self.capability)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
