//! # backend-template
//!
//! The skeleton of a statestore backend, in the file set every backend keeps: `lib.rs`
//! (exports and the registration), [`config`](TemplateConfig) (`config.rs`), the store
//! (`store.rs`), its scans (`scan.rs`), the one error-mapping function (`error.rs`) and
//! the supplier (`supplier.rs`). Every method returns
//! [`ErrorKind::Unsupported`](state_core::ErrorKind::Unsupported) naming itself: this is
//! a skeleton, not a store, and it is not registered. Copy this crate to start a new
//! backend; `README.md` has the steps and every place a backend appears, and
//! `state-core/src/store/mod.rs` the contract each method must meet.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod config;
mod error;
mod scan;
mod store;
mod supplier;

pub use config::TemplateConfig;
pub use store::TemplateStore;
pub use supplier::TemplateSupplier;

/// What the backend can do; its stores, its supplier and [`BACKEND`] report it. Say what
/// the engine really offers: the conformance suite, restore and the command line read
/// these flags, and nothing else tells them.
const CAPABILITY: state_core::Capability = state_core::Capability::new("template")
    .durable(false)
    .commits_survive_crash(false)
    .names_writer(false)
    .ordered_index(false)
    .exact_count(false);

/// The backend in the registry: `statestore/src/backends.rs` lists it with one line,
/// `"template" => backend_template,`, behind the cargo feature of the same name.
pub const BACKEND: state_core::Backend = state_core::Backend::new(CAPABILITY, |name| {
    std::sync::Arc::new(TemplateSupplier::new(name))
});
