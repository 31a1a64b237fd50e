//! Backends by name: what a build can open stores with, and the facts about each.
//!
//! Each backend crate exports one [`Backend`] (conventionally `BACKEND`): its
//! [`Capability`](crate::Capability) and a constructor of its suppliers. The `statestore`
//! facade lists the ones compiled in as [`Backends`], one line per backend, and
//! everything that picks a backend by name (the facade's `Stores::key_value_store`, the
//! command line's `--backend`, the conformance suite) looks it up there, so a fact about
//! a backend is stated once, by the backend, and never tested by name elsewhere.
//!
//! The types live here, beside the traits, so backend crates can build their entry
//! without depending on the facade; the list itself lives in the facade, the only crate
//! that depends on every backend.

mod backend;
mod backends;

pub use backend::{Backend, SupplierFn};
pub use backends::Backends;
