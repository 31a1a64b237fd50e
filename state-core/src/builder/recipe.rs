//! A store builder without its key and value types, and the one path every store takes
//! from its directory to serving: [`open`](StoreRecipe::open), then
//! [`catch_up`](StoreRecipe::catch_up) with its changelog, then
//! [`ByteStore::wrap`](super::ByteStore::wrap) for logging. The builder, the store manager's assignments
//! and its standbys all go through it, so a new way of bringing a store up to date has
//! one place to go.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};

use super::{Opened, StoreContext};
use crate::changelog::TopicSpec;
use crate::lock::LockedStore;
use crate::names::changelog_topic;
use crate::restore::{
    RecordValidator, RestoreListener, RestoreOptions, RestoreSummary, StoreHome, open_or_rebuild,
};
use crate::{ChangelogReader, KeyValueBytesStoreSupplier, KeyValueStore, PartitionLock, Result};

/// Supplier, logging config and record check of one store.
#[derive(Clone)]
pub(crate) struct StoreRecipe {
    supplier: Arc<dyn KeyValueBytesStoreSupplier>,
    logging: Option<BTreeMap<String, String>>,
    validator: Arc<dyn RecordValidator>,
}

/// Where [`StoreRecipe::catch_up`] reads and whom it tells.
pub(crate) struct CatchUp<'a> {
    /// The store's changelog.
    pub(crate) reader: &'a dyn ChangelogReader,
    /// The restore options, with this store's record check
    /// ([`StoreRecipe::restore_options`]).
    pub(crate) options: &'a RestoreOptions,
    /// Hears the restore's progress.
    pub(crate) listener: &'a dyn RestoreListener,
    /// Whether the store may be replaced by a snapshot (when the options name a snapshot
    /// store): only where the caller holds the store's one handle, since replacing it
    /// closes it.
    pub(crate) from_snapshots: bool,
}

impl StoreRecipe {
    pub(crate) fn new(
        supplier: Arc<dyn KeyValueBytesStoreSupplier>,
        logging: Option<BTreeMap<String, String>>,
        validator: Arc<dyn RecordValidator>,
    ) -> Self {
        Self {
            supplier,
            logging,
            validator,
        }
    }

    pub(crate) fn name(&self) -> &str {
        self.supplier.name()
    }

    pub(crate) fn logging_enabled(&self) -> bool {
        self.logging.is_some()
    }

    /// The context's restore options with this store's record check.
    pub(crate) fn restore_options(&self, context: &StoreContext) -> RestoreOptions {
        RestoreOptions {
            validator: Some(self.validator.clone()),
            ..context.restore_options.clone()
        }
    }

    /// Creates the changelog topic if it is missing; returns its name (`None` without
    /// logging).
    pub(crate) async fn ensure_topic(&self, context: &StoreContext) -> Result<Option<String>> {
        let Some(config) = &self.logging else {
            return Ok(None);
        };
        let topic = changelog_topic(&context.application_id, self.name())?;
        context
            .changelog_for(self.name())?
            .ensure_topic(&TopicSpec::changelog(
                &topic,
                context.num_partitions,
                config,
            ))
            .await?;
        Ok(Some(topic))
    }

    /// Opens the store of `context`'s partition in its directory, rebuilding damaged
    /// local files ([`open_or_rebuild`]). A durable store takes its partition's writer
    /// lock first and holds it until it is closed ([`PartitionLock`]); another process
    /// holding it is `Unavailable`, naming that process, and nothing is opened.
    pub(crate) fn open(&self, context: &StoreContext) -> Result<Opened> {
        let dir = context.store_dir(self.name())?;
        let Some(lock) = self.lock(context)? else {
            return open_or_rebuild(self.supplier.as_ref(), &dir);
        };
        let (store, wiped) = open_or_rebuild(self.supplier.as_ref(), &dir)?;
        Ok((LockedStore::wrap(store, lock), wiped))
    }

    /// The writer lock of `context`'s partition, for a durable store (a memory store has
    /// no files to guard).
    fn lock(&self, context: &StoreContext) -> Result<Option<PartitionLock>> {
        if !self.supplier.durable() {
            return Ok(None);
        }
        PartitionLock::acquire(&context.partition_dir()).map(Some)
    }

    /// `store`, holding `lock` when it is not `before`: a snapshot replaced the store
    /// the lock came in with.
    fn relocked(
        store: Arc<dyn KeyValueStore>,
        before: &Weak<dyn KeyValueStore>,
        lock: Option<PartitionLock>,
    ) -> Arc<dyn KeyValueStore> {
        match lock {
            Some(lock) if !Arc::downgrade(&store).ptr_eq(before) => LockedStore::wrap(store, lock),
            _ => store,
        }
    }

    /// Replaces `store` (its only handle) by its newest usable snapshot when the context's
    /// restore options name a snapshot store and the snapshot is ahead of it: a standby
    /// starts there and tails the rest.
    pub(crate) async fn start_from_snapshot(
        &self,
        store: Arc<dyn KeyValueStore>,
        context: &StoreContext,
        reader: &dyn ChangelogReader,
    ) -> Result<Arc<dyn KeyValueStore>> {
        let dir = context.store_dir(self.name())?;
        let home = StoreHome {
            application: context.application_id(),
            supplier: self.supplier.as_ref(),
            dir: &dir,
        };
        let options = self.restore_options(context);
        // Held across the replacement: closing the old store lets its guard go before
        // the snapshot's files take its place.
        let lock = self.lock(context)?;
        let before = Arc::downgrade(&store);
        let (store, _) = crate::restore::start_from_snapshot(
            store,
            home,
            reader,
            context.partition,
            &options,
            &crate::restore::NoopRestoreListener,
        )
        .await?;
        Ok(Self::relocked(store, &before, lock))
    }

    /// Brings an opened store up to the end of its changelog partition as captured now,
    /// through the one restore path ([`catch_up`](crate::restore::catch_up)).
    pub(crate) async fn catch_up(
        &self,
        opened: Opened,
        context: &StoreContext,
        catch_up: CatchUp<'_>,
    ) -> Result<(Arc<dyn KeyValueStore>, RestoreSummary)> {
        let dir = context.store_dir(self.name())?;
        let home = catch_up.from_snapshots.then_some(StoreHome {
            application: context.application_id(),
            supplier: self.supplier.as_ref(),
            dir: &dir,
        });
        // Held across a snapshot replacing the store (see `start_from_snapshot`); without
        // one the store stays the one that holds its lock.
        let lock = match catch_up.from_snapshots {
            true => self.lock(context)?,
            false => None,
        };
        // Weak: a second strong handle would keep a snapshot from replacing the store.
        let before = Arc::downgrade(&opened.0);
        let (store, summary) = crate::restore::catch_up(
            opened,
            home,
            catch_up.reader,
            context.partition,
            catch_up.options,
            catch_up.listener,
        )
        .await?;
        Ok((Self::relocked(store, &before, lock), summary))
    }
}
