//! Standbys: opening and closing them as placement decides, tailing their changelogs,
//! and reporting their lag.

use std::collections::BTreeSet;

use futures::future::join_all;
use tracing::Instrument;

use super::StoreManager;
use super::commit::close_all;
use super::lifecycle::Event;
use super::standby::{Standby, StandbyLag};
use super::state::{PartitionState, Slot};
use std::sync::Arc;

use crate::{Error, KeyValueStore, Partition, Result, StoreContext};

impl StoreManager {
    /// Keeps a standby of exactly the partitions of `wanted` that are not owned here:
    /// opens one for each that has none (a kept directory is reused; the next
    /// [`update_standbys`](Self::update_standbys) catches it up) and closes, keeping the
    /// directories, every standby not in `wanted`. Every partition is handled; the first
    /// error is returned. Standbys need logging on every store (`InvalidInput`
    /// otherwise, before anything is opened).
    pub async fn set_standbys(&self, wanted: &BTreeSet<Partition>) -> Result<()> {
        let mut first_error = None;
        for partition in self.partitions_in(PartitionState::Standby) {
            if wanted.contains(&partition) {
                continue;
            }
            let mut slot = self.table.cell(partition).lock_owned().await;
            if self.table.state(partition) != Some(PartitionState::Standby) {
                continue;
            }
            let _close = tracing::info_span!("standby_close", partition).entered();
            if let Slot::Standby(standbys) = std::mem::replace(&mut *slot, Slot::Empty) {
                let stores = standbys.into_iter().map(Standby::into_store).collect();
                if let Err(err) = close_all(stores) {
                    first_error.get_or_insert(err);
                }
            }
            if let Err(err) = self
                .table
                .transition(partition, Event::StandbyClosed, Some(&slot))
            {
                first_error.get_or_insert(err);
            }
        }
        if !wanted.is_empty()
            && let Some(unlogged) = self.stores.iter().find(|s| !s.recipe.logging_enabled())
        {
            return Err(Error::invalid_input(format!(
                "store {} has logging disabled: a standby needs a changelog to tail",
                unlogged.recipe.name()
            )));
        }
        for &partition in wanted {
            let span = tracing::info_span!("standby_open", partition);
            if let Err(err) = self.open_standby(partition).instrument(span).await {
                first_error.get_or_insert(
                    err.context(format!("opening the standby of partition {partition}")),
                );
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    async fn open_standby(&self, partition: Partition) -> Result<()> {
        let mut slot = self.table.cell(partition).lock_owned().await;
        let free = matches!(
            self.table.state(partition),
            None | Some(PartitionState::Closed | PartitionState::Lost)
        );
        if !free || !matches!(*slot, Slot::Empty) {
            return Ok(());
        }
        let context = self.context.for_partition(partition);
        let opened = match self.open_stores(&context, Vec::new()) {
            Ok(opened) => opened,
            Err((err, opened)) => {
                close_all(opened)?;
                return Err(err);
            }
        };
        let mut standbys = Vec::with_capacity(opened.len());
        let mut opened = opened.into_iter();
        for registered in &self.stores {
            let Some((store, _)) = opened.next() else {
                break;
            };
            match self.standby_start(registered, &context, store).await {
                Ok(store) => standbys.push(Standby::new(partition, store)),
                Err(err) => {
                    let rest = standbys.into_iter().map(Standby::into_store);
                    close_all(rest.chain(opened.map(|(store, _)| store)).collect())?;
                    return Err(err);
                }
            }
        }
        *slot = Slot::Standby(standbys);
        self.table
            .transition(partition, Event::StandbyOpened, Some(&slot))?;
        Ok(())
    }

    /// A standby's store as it starts: its newest usable snapshot when snapshots are
    /// configured and ahead of it, so the standby tails only what came after.
    async fn standby_start(
        &self,
        registered: &super::Registered,
        context: &StoreContext,
        store: Arc<dyn KeyValueStore>,
    ) -> Result<Arc<dyn KeyValueStore>> {
        if context.restore_options().snapshots.is_none() {
            return Ok(store);
        }
        let Some(topic) = registered.topic(context).await? else {
            return Ok(store);
        };
        let reader = registered.reader(context, topic).await?;
        registered
            .recipe
            .start_from_snapshot(store, context, reader.as_ref())
            .await
    }

    /// Applies to every idle standby one batch of what its changelogs hold beyond it (the
    /// first call per standby catches it up fully), waiting at most the changelog
    /// reader's poll timeout. Returns the records applied; a standby that fails is logged
    /// and retried from its position on the next call.
    pub async fn update_standbys(&self) -> Result<u64> {
        let standbys = self.table.cells_in(&[PartitionState::Standby]);
        if standbys.is_empty() {
            return Ok(0);
        }
        let round = tracing::info_span!(
            "standby_update",
            standbys = standbys.len(),
            records = tracing::field::Empty
        );
        let applied = join_all(standbys.into_iter().map(|(partition, cell)| async move {
            // A standby being promoted or closed is skipped, not waited for.
            let Ok(mut slot) = cell.try_lock_owned() else {
                return Ok(0);
            };
            let Slot::Standby(standbys) = &mut *slot else {
                return Ok(0);
            };
            let context = self.context.for_partition(partition);
            let mut applied = 0;
            for (registered, standby) in self.stores.iter().zip(standbys.iter_mut()) {
                let Some(topic) = registered.topic(&context).await? else {
                    continue;
                };
                let reader = registered.reader(&context, topic).await?;
                match standby
                    .poll(&registered.recipe, &context, reader.as_ref())
                    .await
                {
                    Ok(records) => applied += records,
                    Err(err) => log::warn!(
                        "standby of store {} partition {partition} failed to update, retrying \
                         from its position: {err}",
                        registered.recipe.name()
                    ),
                }
            }
            Ok::<u64, Error>(applied)
        }))
        .instrument(round.clone())
        .await;
        let applied = applied.into_iter().sum::<Result<u64>>()?;
        round.record("records", applied);
        Ok(applied)
    }

    /// How far each store's standby lags its changelog now, by partition then store; also
    /// refreshes the standby lag gauge.
    pub async fn standby_lags(&self) -> Result<Vec<StandbyLag>> {
        let mut lags = Vec::new();
        for (partition, cell) in self.table.cells_in(&[PartitionState::Standby]) {
            // Held while the end offsets are asked, so no update moves a standby between
            // its position and its end; the standbys themselves are read before any await
            // (they are not `Sync`: a reference to one would make this future not `Send`,
            // and a consumer group's standby updater spawns it).
            let slot = cell.lock().await;
            let positions = match &*slot {
                Slot::Standby(standbys) => standbys
                    .iter()
                    .map(|standby| Ok((standby.next_offset(partition)?, standby.applied())))
                    .collect::<Result<Vec<_>>>()?,
                _ => continue,
            };
            let context = self.context.for_partition(partition);
            for (registered, (next_offset, applied)) in self.stores.iter().zip(positions) {
                let Some(topic) = registered.topic(&context).await? else {
                    continue;
                };
                let reader = registered.reader(&context, topic).await?;
                let end_offset = reader.offsets(partition).await?.end;
                let lag = u64::try_from(end_offset - next_offset).unwrap_or(0);
                crate::metrics::standby_lag(registered.recipe.name(), partition, lag);
                lags.push(StandbyLag {
                    partition,
                    store: registered.recipe.name().to_owned(),
                    next_offset,
                    end_offset,
                    lag,
                    applied,
                });
            }
            drop(slot);
        }
        Ok(lags)
    }

    /// Whether any partition has a standby here.
    pub fn has_standbys(&self) -> bool {
        !self.partitions_in(PartitionState::Standby).is_empty()
    }

    /// Partitions with a standby here, ascending.
    pub fn standbys(&self) -> BTreeSet<Partition> {
        self.partitions_in(PartitionState::Standby)
            .into_iter()
            .collect()
    }
}
