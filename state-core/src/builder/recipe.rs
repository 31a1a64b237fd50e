//! A store builder without its key and value types: what the store manager keeps of
//! each store it opens for every partition.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{ByteStore, Opened, StoreContext, own_sink_options};
use crate::changelog::TopicSpec;
use crate::logging::LoggedStore;
use crate::names::changelog_topic;
use crate::restore::{RecordValidator, RestoreOptions, RestoreSummary, restore};
use crate::{ChangelogReader, ChangelogSink, KeyValueBytesStoreSupplier, KeyValueStore, Result};

/// Supplier, logging config and record check of one store.
#[derive(Clone)]
pub(crate) struct StoreRecipe {
    supplier: Arc<dyn KeyValueBytesStoreSupplier>,
    logging: Option<BTreeMap<String, String>>,
    validator: Arc<dyn RecordValidator>,
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

    pub(crate) fn supplier(&self) -> &dyn KeyValueBytesStoreSupplier {
        self.supplier.as_ref()
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

    /// [`StoreBuilder::build`](super::StoreBuilder::build) on an opened store: the store
    /// gets a sink of its own.
    pub(crate) async fn build_alone(
        &self,
        store: Arc<dyn KeyValueStore>,
        rebuilt: Option<crate::WipeReason>,
        context: &StoreContext,
    ) -> Result<(ByteStore, Option<RestoreSummary>)> {
        let Some(topic) = self.ensure_topic(context).await? else {
            return Ok((ByteStore::Unlogged(store), None));
        };
        let changelog = context.changelog_for(self.name())?;
        // The sink comes first: under exactly-once, creating it fences a previous owner of
        // the same transactional id and waits for that owner's last transaction to be
        // completed or aborted, so the restore below reads a stable end offset and sees a
        // transaction the previous owner committed just before it died.
        let sink = changelog
            .sink(&own_sink_options(context, self.name()))
            .await?;
        let reader = changelog
            .reader(&topic, context.guarantee.isolation())
            .await?;
        self.restore_logged((store, rebuilt), context, &sink, reader.as_ref(), &topic)
            .await
    }

    /// Restores `opened` from `reader` (its changelog `topic`) and wraps it to log
    /// through `sink`.
    pub(crate) async fn restore_logged(
        &self,
        (store, rebuilt): Opened,
        context: &StoreContext,
        sink: &Arc<dyn ChangelogSink>,
        reader: &dyn ChangelogReader,
        topic: &str,
    ) -> Result<(ByteStore, Option<RestoreSummary>)> {
        let mut summary = restore(
            store.as_ref(),
            reader,
            context.partition,
            &self.restore_options(context),
            context.listener.as_ref(),
        )
        .await?;
        if summary.wiped.is_none() {
            summary.wiped = rebuilt;
        }
        let logged = LoggedStore::new(store, sink.clone(), topic, context.partition);
        Ok((ByteStore::Logged(logged), Some(summary)))
    }
}
