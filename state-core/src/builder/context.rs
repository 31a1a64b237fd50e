//! Where and how a store is built: application, partition, state directory, changelog.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::changelog::{Changelog, ProcessingGuarantee};
use crate::names::{changelog_topic, validate_application_id};
use crate::restore::{NoopRestoreListener, RestoreListener, RestoreOptions};
use crate::{Error, Partition, Result};

/// The runtime facts a [`StoreBuilder`](super::StoreBuilder) needs, like Kafka Streams'
/// `StateStoreContext`: which application and partition the store serves, where local
/// state lives, and which changelog logs it.
#[derive(Clone)]
pub struct StoreContext {
    pub(crate) application_id: String,
    pub(crate) partition: Partition,
    pub(crate) num_partitions: i32,
    pub(crate) state_dir: PathBuf,
    pub(crate) guarantee: ProcessingGuarantee,
    pub(crate) changelog: Option<Arc<dyn Changelog>>,
    pub(crate) listener: Arc<dyn RestoreListener>,
    pub(crate) restore_options: RestoreOptions,
}

impl StoreContext {
    /// A context for `partition` (of `num_partitions`) of application `application_id`,
    /// keeping local state under `state_dir`, at-least-once, with no changelog yet.
    ///
    /// The application id must follow Kafka's topic-name rules (see
    /// [`validate_application_id`](crate::validate_application_id)); otherwise this is
    /// an [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) error naming the
    /// rule, so the id can never make an invalid topic or a path outside `state_dir`.
    pub fn new(
        application_id: impl Into<String>,
        partition: Partition,
        num_partitions: i32,
        state_dir: impl Into<PathBuf>,
    ) -> Result<Self> {
        let application_id = application_id.into();
        validate_application_id(&application_id)?;
        Ok(Self {
            application_id,
            partition,
            num_partitions,
            state_dir: state_dir.into(),
            guarantee: ProcessingGuarantee::AtLeastOnce,
            changelog: None,
            listener: Arc::new(NoopRestoreListener),
            restore_options: RestoreOptions::default(),
        })
    }

    /// The changelog service logged stores write to and restore from.
    pub fn with_changelog(mut self, changelog: Arc<dyn Changelog>) -> Self {
        self.changelog = Some(changelog);
        self
    }

    /// At-least-once or exactly-once.
    pub fn with_guarantee(mut self, guarantee: ProcessingGuarantee) -> Self {
        self.guarantee = guarantee;
        self
    }

    /// Receives restore progress.
    pub fn with_restore_listener(mut self, listener: Arc<dyn RestoreListener>) -> Self {
        self.listener = listener;
        self
    }

    /// Restore batch size and stall timeout.
    pub fn with_restore_options(mut self, options: RestoreOptions) -> Self {
        self.restore_options = options;
        self
    }

    /// Restores stores from the snapshots in `snapshots` when they are ahead of the local
    /// copy, replaying only the changelog after them
    /// ([`RestoreOptions::snapshots`]).
    pub fn with_snapshots(mut self, snapshots: Arc<dyn crate::SnapshotStore>) -> Self {
        self.restore_options.snapshots = Some(snapshots);
        self
    }

    /// The application id (prefix of changelog topic names).
    pub fn application_id(&self) -> &str {
        &self.application_id
    }

    /// The partition this store serves.
    pub fn partition(&self) -> Partition {
        self.partition
    }

    /// The processing guarantee.
    pub fn guarantee(&self) -> ProcessingGuarantee {
        self.guarantee
    }

    /// The local directory of `store_name` for this partition:
    /// `<state_dir>/<application_id>/<partition>/<store_name>`, always inside the state
    /// directory.
    ///
    /// The store name must follow Kafka's topic-name rules and, with the application id,
    /// make a changelog topic within Kafka's length limit (see
    /// [`changelog_topic`](crate::changelog_topic)); otherwise this is an
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) error naming the rule.
    pub fn store_dir(&self, store_name: &str) -> Result<PathBuf> {
        changelog_topic(&self.application_id, store_name)?;
        Ok(self.partition_dir().join(store_name))
    }

    /// The local directory of this partition's stores,
    /// `<state_dir>/<application_id>/<partition>`: where its writer lock lives
    /// ([`PartitionLock`](crate::PartitionLock)).
    pub fn partition_dir(&self) -> PathBuf {
        self.state_dir
            .join(&self.application_id)
            .join(self.partition.to_string())
    }

    /// This context for another partition of the same application.
    pub fn for_partition(&self, partition: Partition) -> Self {
        Self {
            partition,
            ..self.clone()
        }
    }

    /// The number of partitions of the input (and so of every changelog topic).
    pub fn num_partitions(&self) -> i32 {
        self.num_partitions
    }

    /// The restore listener.
    pub fn restore_listener(&self) -> &Arc<dyn RestoreListener> {
        &self.listener
    }

    /// The restore options.
    pub fn restore_options(&self) -> &RestoreOptions {
        &self.restore_options
    }

    /// The changelog that logs `store_name`; an error naming the store when there is none.
    pub fn changelog_for(&self, store_name: &str) -> Result<&Arc<dyn Changelog>> {
        self.changelog.as_ref().ok_or_else(|| {
            Error::invalid_input(format!(
                "store {store_name} has logging enabled but the StoreContext has no changelog; \
                 call StoreContext::with_changelog or with_logging_disabled()"
            ))
        })
    }

    /// The root state directory.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }
}
