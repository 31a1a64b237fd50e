//! The backend's tuning: what a user may set, with the engine's defaults.
//!
//! A real backend puts its engine options here (cache sizes, durability of commits, file
//! names), each with a `with_...` setter and the reason for its default, and validates
//! them in one place so a bad value is an `InvalidInput` naming the setting. An option
//! that changes a fact of the backend's `Capability` (redb's commit durability, RocksDB's
//! write-ahead log) derives the capability its supplier and stores report here, from
//! `CAPABILITY`, so the registration keeps stating the default configuration's facts.

use state_core::Result;

/// Options of every store a [`TemplateSupplier`](crate::TemplateSupplier) opens.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TemplateConfig {}

impl TemplateConfig {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks the options before a store is opened with them.
    pub fn validate(&self) -> Result<()> {
        Ok(())
    }
}
