//! One commit for every store that logs through one sink.
//!
//! Exactly-once needs the records of every store and the input offsets they were
//! computed from to become durable together: one sink commit (one Kafka transaction),
//! then each store writes its interval with its new position. So a commit is three
//! steps over all stores at once — resend what a failed commit left out, commit the
//! sink with the input offsets, apply each store — and a failure at any step leaves
//! every store able to retry: a store never holds what the changelog lacks, and the
//! changelog never lacks what a store will later claim as its position.

use std::sync::Arc;

use super::{CommitSummary, LoggedStore};
use crate::{ChangelogSink, Error, Result, SinkCommit, SourceOffsets};

/// What a [`commit_together`] whose sink side succeeded did.
#[derive(Debug)]
pub struct JointCommit {
    /// The sink's commit: acknowledged offsets and the input offsets' fate.
    pub sink: SinkCommit,
    /// Each store's write, in the order given. A store whose write failed is behind the
    /// changelog, which holds its records; it keeps them buffered and writes them at the
    /// next commit (or restore brings it forward after a crash).
    pub stores: Vec<Result<CommitSummary>>,
}

/// Commits `stores`, all logging through `sink`, together with the input offsets
/// `source`: appends again what an earlier failed commit left out, commits the sink
/// once (one transaction under exactly-once), then writes each store's interval with
/// its position.
///
/// `Err` means the sink commit did not happen: no store was written, the input offsets
/// were not committed (exactly-once: nothing of the interval is visible), and every
/// store keeps its interval to append again what the changelog lacks at the next
/// commit. A store not logging through `sink` is an
/// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) error before anything
/// happens.
pub async fn commit_together(
    sink: &dyn ChangelogSink,
    stores: &mut [&mut LoggedStore],
    source: &SourceOffsets,
) -> Result<JointCommit> {
    for store in stores.iter() {
        if !same_sink(store.sink(), sink) {
            return Err(Error::invalid_input(format!(
                "store {} (changelog {} partition {}) logs through another sink than the one \
                 committing",
                store.inner().name(),
                store.topic(),
                store.partition()
            )));
        }
    }
    let resent = stores.iter_mut().try_for_each(|store| store.resend());
    let committed = match resent {
        Ok(()) => sink.commit(source).await,
        Err(err) => {
            // Part of a resend may sit in the sink's interval: end it, so the next commit
            // starts from what the changelog acknowledged.
            if let Err(abort) = sink.abort().await {
                log::warn!("ending the interval after a failed resend also failed: {abort}");
            }
            Err(err)
        }
    };
    let committed = match committed {
        Ok(committed) => committed,
        Err(err) => {
            for store in stores.iter_mut() {
                store.rebase();
            }
            return Err(err.context(describe("commit", stores)));
        }
    };
    let results = stores
        .iter_mut()
        .map(|store| store.apply(&committed.positions))
        .collect();
    Ok(JointCommit {
        sink: committed,
        stores: results,
    })
}

/// Ends the interval of `stores` without committing it ([`ChangelogSink::abort`]), for
/// partitions given up without a commit: each store drops nothing it buffered but notes
/// what the changelog kept, so a later commit appends the rest again.
pub(crate) async fn abort_together(
    sink: &dyn ChangelogSink,
    stores: &mut [&mut LoggedStore],
) -> Result<()> {
    let aborted = sink.abort().await;
    for store in stores.iter_mut() {
        store.rebase();
    }
    aborted
}

fn same_sink(a: &Arc<dyn ChangelogSink>, b: &dyn ChangelogSink) -> bool {
    std::ptr::addr_eq(Arc::as_ptr(a), b as *const dyn ChangelogSink)
}

/// Names the stores of a commit for an error message: all of them up to three.
fn describe(what: &str, stores: &[&mut LoggedStore]) -> String {
    const NAMED: usize = 3;
    let names: Vec<String> = stores
        .iter()
        .take(NAMED)
        .map(|s| {
            format!(
                "{} ({} partition {})",
                s.inner().name(),
                s.topic(),
                s.partition()
            )
        })
        .collect();
    let more = match stores.len().saturating_sub(NAMED) {
        0 => String::new(),
        n => format!(" and {n} more"),
    };
    match (stores.len(), names.as_slice()) {
        (0, _) => format!("{what} of the changelog sink"),
        (1, [one]) => format!("{what} of store {one}"),
        (count, _) => format!("{what} of {count} stores: {}{more}", names.join(", ")),
    }
}
