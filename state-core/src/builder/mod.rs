//! The store builder, reading like Kafka Streams' `Stores.keyValueStoreBuilder(...)`.

mod byte_store;
mod context;
mod recipe;
mod typed;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

pub use byte_store::ByteStore;
pub use context::StoreContext;
pub(crate) use recipe::{CatchUp, StoreRecipe};
pub use typed::{TypedEntry, TypedKeyValueStore};

use crate::changelog::SinkOptions;
use crate::restore::{RecordValidator, WipeReason};
use crate::serde::Serde;
use crate::{KeyValueBytesStoreSupplier, KeyValueStore, Result};

/// Builds a typed key-value store from a backend supplier and two serdes.
///
/// Logging is enabled by default with no extra topic config, as in Kafka Streams.
pub struct StoreBuilder<K, V> {
    supplier: Arc<dyn KeyValueBytesStoreSupplier>,
    keys: Arc<dyn Serde<K>>,
    values: Arc<dyn Serde<V>>,
    logging: Option<BTreeMap<String, String>>,
}

impl<K: 'static, V: 'static> StoreBuilder<K, V> {
    /// A builder for `supplier`'s store with `keys` and `values` serdes.
    pub fn new(
        supplier: impl KeyValueBytesStoreSupplier + 'static,
        keys: impl Serde<K> + 'static,
        values: impl Serde<V> + 'static,
    ) -> Self {
        Self {
            supplier: Arc::new(supplier),
            keys: Arc::new(keys),
            values: Arc::new(values),
            logging: Some(BTreeMap::new()),
        }
    }

    /// Logs every change to the changelog topic `<application.id>-<store>-changelog`,
    /// created with `cleanup.policy=compact` and `config` (which wins, e.g.
    /// `min.insync.replicas=2`).
    pub fn with_logging_enabled(mut self, config: HashMap<String, String>) -> Self {
        self.logging = Some(config.into_iter().collect());
        self
    }

    /// Keeps changes local only: no changelog, no restore. Writes wait in memory until
    /// `commit` (or `close`) applies them to the store as one batch and flushes it, as
    /// with logging: a `put` costs no transaction of the backend's own, and what a
    /// durable backend holds after a crash is what the last commit made durable.
    pub fn with_logging_disabled(mut self) -> Self {
        self.logging = None;
        self
    }

    /// Whether logging is enabled.
    pub fn logging_enabled(&self) -> bool {
        self.logging.is_some()
    }

    /// The topic config logging will use, if enabled.
    pub fn logging_config(&self) -> Option<&BTreeMap<String, String>> {
        self.logging.as_ref()
    }

    /// The store name.
    pub fn name(&self) -> &str {
        self.supplier.name()
    }

    /// The backend supplier.
    pub fn supplier(&self) -> &Arc<dyn KeyValueBytesStoreSupplier> {
        &self.supplier
    }

    /// The key serde.
    pub fn key_serde(&self) -> &Arc<dyn Serde<K>> {
        &self.keys
    }

    /// The value serde.
    pub fn value_serde(&self) -> &Arc<dyn Serde<V>> {
        &self.values
    }

    /// Opens the store for `context`'s partition (rebuilding damaged local files), and
    /// with logging enabled: ensures the changelog topic, restores the store to the end
    /// of its changelog partition, and wraps it so changes are logged through a sink of
    /// its own (transactional id `<application.id>-<store>-<partition>` under
    /// exactly-once), which [`TypedKeyValueStore::commit`] commits. Stores of a consumer
    /// group's partitions are built by the [`StoreManager`](crate::StoreManager)
    /// instead, which logs them all through one sink.
    ///
    /// The store name must follow Kafka's topic-name rules, and with the application id
    /// make a changelog topic of at most 249 characters (`InvalidInput` naming the rule,
    /// before anything is opened). What the backend does not recognise as its own store
    /// is refused as `Foreign` and left untouched.
    pub async fn build(&self, context: &StoreContext) -> Result<TypedKeyValueStore<K, V>> {
        let recipe = self.recipe();
        let opened = recipe.open(context)?;
        let typed = |store, summary| {
            TypedKeyValueStore::new(store, self.keys.clone(), self.values.clone(), summary)
        };
        let Some(topic) = recipe.ensure_topic(context).await? else {
            return Ok(typed(
                ByteStore::wrap(opened.0, None, context.partition),
                None,
            ));
        };
        let changelog = context.changelog_for(self.name())?;
        // The sink comes first: under exactly-once, creating it fences a previous owner of
        // the same transactional id and waits for that owner's last transaction to be
        // completed or aborted, so the restore below reads a stable end offset and sees a
        // transaction the previous owner committed just before it died.
        let sink = changelog
            .sink(&own_sink_options(context, self.name()))
            .await?;
        let reader = changelog.reader(&topic, crate::RESTORE_ISOLATION).await?;
        let options = recipe.restore_options(context);
        let catch_up = CatchUp {
            reader: reader.as_ref(),
            options: &options,
            listener: context.listener.as_ref(),
            from_snapshots: true,
        };
        let (store, summary) = recipe.catch_up(opened, context, catch_up).await?;
        let store = ByteStore::wrap(store, Some((&sink, &topic)), context.partition);
        Ok(typed(store, Some(summary)))
    }

    /// The builder without its types, for the store manager.
    pub(crate) fn recipe(&self) -> StoreRecipe {
        StoreRecipe::new(
            self.supplier.clone(),
            self.logging.clone(),
            Arc::new(SerdeValidator {
                keys: self.keys.clone(),
                values: self.values.clone(),
            }),
        )
    }
}

/// The sink options of a store built alone for `context`'s partition.
pub(crate) fn own_sink_options(context: &StoreContext, store_name: &str) -> SinkOptions {
    SinkOptions::new(
        context.guarantee,
        format!(
            "{}-{store_name}-{}",
            context.application_id, context.partition
        ),
    )
}

/// A store just opened, and why its local state was thrown away when it was, if it was.
pub(crate) type Opened = (Arc<dyn KeyValueStore>, Option<WipeReason>);

/// Rejects changelog records the store's serdes cannot decode.
struct SerdeValidator<K, V> {
    keys: Arc<dyn Serde<K>>,
    values: Arc<dyn Serde<V>>,
}

impl<K, V> RecordValidator for SerdeValidator<K, V> {
    fn validate(&self, key: &[u8], value: Option<&[u8]>) -> Result<()> {
        self.keys.check(key)?;
        if let Some(value) = value {
            self.values.check(value)?;
        }
        Ok(())
    }
}
