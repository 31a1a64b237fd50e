//! A standby replica: a local copy of a partition this instance does not own, kept warm
//! by tailing the partition's changelog, like Kafka Streams' standby tasks.

use std::sync::Arc;

use crate::builder::{CatchUp, StoreRecipe};
use crate::restore::{NoopRestoreListener, RestoreTarget, apply_chunk};
use crate::{
    ChangelogReader, KeyValueStore, Offset, Partition, RestoreCursor, Result, StoreContext,
};

/// How far one store's standby of one partition is behind its changelog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandbyLag {
    /// The changelog partition.
    pub partition: Partition,
    /// The store name.
    pub store: String,
    /// The next changelog offset the standby will apply.
    pub next_offset: Offset,
    /// The changelog's end offset when asked.
    pub end_offset: Offset,
    /// `end_offset - next_offset`: the records (at most; markers and compaction leave
    /// gaps) a promotion would still have to restore.
    pub lag: u64,
    /// Records the standby applied since it was created.
    pub applied: u64,
}

/// The local store of a standby and its open changelog cursor.
pub(crate) struct Standby {
    store: Arc<dyn KeyValueStore>,
    partition: Partition,
    cursor: Option<Box<dyn RestoreCursor>>,
    applied: u64,
}

impl Standby {
    /// A standby of `partition` over an open `store`; the first [`poll`](Self::poll)
    /// catches it up.
    pub(crate) fn new(partition: Partition, store: Arc<dyn KeyValueStore>) -> Self {
        Self {
            store,
            partition,
            cursor: None,
            applied: 0,
        }
    }

    /// Records applied since the standby was created.
    pub(crate) fn applied(&self) -> u64 {
        self.applied
    }

    /// The next changelog offset the store will apply.
    pub(crate) fn next_offset(&self, partition: Partition) -> Result<Offset> {
        Ok(self.store.position()?.next_offset(partition))
    }

    /// The local store, for queries.
    pub(crate) fn store(&self) -> &Arc<dyn KeyValueStore> {
        &self.store
    }

    /// Gives the store up (for promotion or closing); the cursor is dropped.
    pub(crate) fn into_store(self) -> Arc<dyn KeyValueStore> {
        // No longer a standby here: it lags nothing.
        crate::metrics::standby_lag(self.store.name(), self.partition, 0);
        self.store
    }

    /// Applies what the changelog has beyond the store's position: the first call
    /// catches the store up through the one restore path (so a position outside the log
    /// wipes and restarts, as for an active store) and opens a cursor; later calls read
    /// one batch from the cursor, waiting at most the reader's poll timeout. An error
    /// drops the cursor, so the next call starts over from the store's position with the
    /// same checks.
    pub(crate) async fn poll(
        &mut self,
        recipe: &StoreRecipe,
        context: &StoreContext,
        reader: &dyn ChangelogReader,
    ) -> Result<u64> {
        let outcome = self.poll_inner(recipe, context, reader).await;
        if outcome.is_err() {
            self.cursor = None;
        }
        let applied = outcome?;
        self.applied += applied;
        Ok(applied)
    }

    async fn poll_inner(
        &mut self,
        recipe: &StoreRecipe,
        context: &StoreContext,
        reader: &dyn ChangelogReader,
    ) -> Result<u64> {
        let partition = context.partition();
        let options = recipe.restore_options(context);
        let Some(cursor) = self.cursor.as_mut() else {
            // Standbys report no restore progress: they are not what a partition waits for.
            let catch_up = CatchUp {
                reader,
                options: &options,
                listener: &NoopRestoreListener,
                from_snapshots: false,
            };
            let (store, summary) = recipe
                .catch_up((self.store.clone(), None), context, catch_up)
                .await?;
            self.store = store;
            let from = self.next_offset(partition)?;
            let read_ahead = options.read_ahead(self.store.as_ref());
            self.cursor = Some(reader.open_with(partition, from, read_ahead).await?);
            return Ok(summary.restored);
        };
        let before = cursor.position();
        let chunk = cursor
            .next_chunk(options.batch_records(self.store.as_ref()))
            .await?;
        let reached = cursor.position();
        if chunk.is_empty() && reached <= before {
            return Ok(0);
        }
        let target = RestoreTarget {
            topic: reader.topic(),
            store: self.store.name(),
            partition,
        };
        let applied = apply_chunk(self.store.as_ref(), &chunk, reached, target, &options)?;
        cursor.recycle(chunk);
        crate::metrics::standby_applied(self.store.as_ref(), partition, applied);
        Ok(applied)
    }
}
