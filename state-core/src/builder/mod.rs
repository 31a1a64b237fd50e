//! The store builder, reading like Kafka Streams' `Stores.keyValueStoreBuilder(...)`.

mod context;
mod typed;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

pub use context::StoreContext;
pub use typed::{ByteStore, TypedEntry, TypedKeyValueStore};

use crate::changelog::{SinkOptions, TopicSpec};
use crate::logging::LoggedStore;
use crate::names::changelog_topic;
use crate::restore::{RecordValidator, RestoreOptions, WipeReason, open_or_rebuild, restore};
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

    /// Keeps changes local only: no changelog, no restore.
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

    /// Opens the store for `context`'s partition (rebuilding damaged local files), and
    /// with logging enabled: ensures the changelog topic, restores the store to the end
    /// of its changelog partition, and wraps it so changes are logged.
    ///
    /// The store name must follow Kafka's topic-name rules, and with the application id
    /// make a changelog topic of at most 249 characters (`InvalidInput` naming the rule,
    /// before anything is opened). What the backend does not recognise as its own store
    /// is refused as `Foreign` and left untouched.
    pub async fn build(&self, context: &StoreContext) -> Result<TypedKeyValueStore<K, V>> {
        let dir = context.store_dir(self.supplier.name())?;
        let (store, rebuilt) = open_or_rebuild(self.supplier.as_ref(), &dir)?;
        self.build_on(store, rebuilt, context).await
    }

    /// [`build`](Self::build) on a store that is already open — a standby being promoted
    /// keeps its open store, so an in-memory standby does not lose what it tailed.
    /// `rebuilt` says why the local state was thrown away when it was opened, if it was.
    pub(crate) async fn build_on(
        &self,
        store: Arc<dyn KeyValueStore>,
        rebuilt: Option<WipeReason>,
        context: &StoreContext,
    ) -> Result<TypedKeyValueStore<K, V>> {
        let name = self.supplier.name();
        let Some(topic_config) = &self.logging else {
            return Ok(TypedKeyValueStore::new(
                ByteStore::Unlogged(store),
                self.keys.clone(),
                self.values.clone(),
                None,
            ));
        };
        let changelog = context.changelog_for(name)?;
        let topic = changelog_topic(&context.application_id, name)?;
        changelog
            .ensure_topic(&TopicSpec::changelog(
                &topic,
                context.num_partitions,
                topic_config,
            ))
            .await?;
        // The sink comes first: under exactly-once, creating it fences a previous owner of
        // the same transactional id and waits for that owner's last transaction to be
        // completed or aborted, so the restore below reads a stable end offset and sees a
        // transaction the previous owner committed just before it died.
        let sink = changelog
            .sink(
                &topic,
                &SinkOptions {
                    guarantee: context.guarantee,
                    transactional_id: Some(format!(
                        "{}-{name}-{}",
                        context.application_id, context.partition
                    )),
                },
            )
            .await?;
        let reader = changelog
            .reader(&topic, context.guarantee.isolation())
            .await?;
        let mut summary = restore(
            store.as_ref(),
            reader.as_ref(),
            context.partition,
            &self.restore_options(context),
            context.listener.as_ref(),
        )
        .await?;
        if summary.wiped.is_none() {
            summary.wiped = rebuilt;
        }
        Ok(TypedKeyValueStore::new(
            ByteStore::Logged(LoggedStore::new(store, sink, context.partition)),
            self.keys.clone(),
            self.values.clone(),
            Some(summary),
        ))
    }

    /// The context's restore options with this store's serdes checking every record.
    pub(crate) fn restore_options(&self, context: &StoreContext) -> RestoreOptions {
        RestoreOptions {
            validator: Some(Arc::new(SerdeValidator {
                keys: self.keys.clone(),
                values: self.values.clone(),
            })),
            ..context.restore_options.clone()
        }
    }
}

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
