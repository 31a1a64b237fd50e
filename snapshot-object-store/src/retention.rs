//! Retention: removing old manifests, then the files no manifest names — without ever
//! leaving a manifest that names a missing file, even while other writers of the same
//! scope upload and retire snapshots at the same time.
//!
//! # The rules
//!
//! Write `T` for `max_upload`, `G` for `grace` (at least `2T`), and `s` for a pass's
//! start on its clock. One pass of `retain(scope, keep)`:
//!
//! 1. Lists and reads every manifest; a manifest that cannot be fetched stops the pass.
//! 2. Keeps the newest `keep` manifests and the newest readable one. A manifest beyond
//!    them is removed only if a newer *readable* manifest `N` was created at least `G`
//!    ago (`N.created_millis <= s - G`); otherwise it is deferred (counted in
//!    `manifests_deferred`).
//! 3. If a remaining manifest is unreadable (garbage, or a format this version cannot
//!    read), stops: it may name any file.
//! 4. Lists the files. A file no remaining manifest names is *deletable* if a `pending`
//!    record of an earlier pass, stamped at least `G` before `s`, lists it, and its
//!    `last_modified` is at least `G` before `s`.
//! 5. Writes a `deleting` record listing the deletable files, then for each one reads
//!    its `last_modified` again (HEAD) and deletes it if it is still at least `G` old.
//!    It stops deleting at `s + T/4`; what is left waits for a later pass.
//! 6. Writes a `pending` record (stamp `s`) of the unnamed files it did not delete, and
//!    removes the `pending` records it consumed and `deleting` records older than `G`.
//!
//! An upload (see `upload.rs`) starts its deadline at `u`, before it lists anything;
//! builds on the newest readable manifest (the *base*), confirming each file it reuses
//! with a HEAD; sends every other file; then reads the `deleting` records and publishes
//! nothing if one younger than `2T` lists a file it names; and publishes its manifest
//! (`PutMode::Create`) only if less than `T` has passed since `u`.
//!
//! # Why two writers cannot break each other
//!
//! During a rebalance a zombie owner and its successor may both upload and run
//! retention for one scope. Nothing but step 5 deletes a file, and manifests are never
//! overwritten, so the claim is: **no visible manifest ever names a missing file**.
//! Write `ε` for the slack between instances: clock skew plus the time a request takes
//! to land (object_store retries included). The argument needs `ε < T/4` (under four
//! minutes at the default `T` of 15 minutes).
//!
//! Suppose pass `P` (start `s`, listing at `t_l`, record `K` written, HEAD at `t_head`,
//! delete at `t_del`) deletes file `F`, and a manifest `M*` naming `F`, by uploader `U`
//! (start `u`, published at `p* <= u + T + ε`), is visible after `t_del`.
//!
//! **Continuity.** If an uploader saw base `B` at `t0`, no pass removes `B` before the
//! uploader publishes. A pass `Q` removing `B` saw a newer readable `N` created by
//! `s_Q - G`. `N` was not visible at `t0` (the uploader would have chosen it), so
//! `t0 < created(N) + ε <= s_Q - G + ε`, and the uploader published by
//! `t0 + T + 2ε < s_Q - G + T + 3ε <= s_Q - T + 3ε`, which is before `Q` listed
//! (`>= s_Q - ε`) as `4ε < T`. So from `t0` on, `F` is named by `B`, then by the
//! uploader's manifest. Following reuse back to the writer `V` that *sent* `F`, `F` is
//! named without a gap from `V`'s publication on.
//!
//! **`U` sent `F`** (PUT at `t_put`, after `u - ε`, before `t_del`; a PUT after `t_del`
//! recreates `F`).
//! - If `t_put < t_head`: `P`'s HEAD saw `last_modified >= u - ε`, so `u <= s - G + 2ε`
//!   and `p* <= s - G + T + 3ε <= s - T + 3ε`, before `P` listed. `P` saw `M*`, so `F`
//!   was named unless `P` removed `M*`, and `P` removes manifests before files: `M*` is
//!   not visible after `t_del`.
//! - If `t_put > t_head`: `K` was written before `t_head`, so `U`, reading records after
//!   its PUTs, saw `K`, which lists `F`, is removed only by a pass `G` later, and was
//!   younger than `2T`: `U` read it before `p* <= t_put + T + 2ε < s + T/4 + T + 3ε`.
//!   `U` published nothing.
//!
//! **`U` reused `F`** (base `B` at `t0`, HEAD found `F`, so `t_del > t0`). By continuity,
//! if `P` listed after `t0` it saw `B` or `M*` naming `F` (and could remove neither in a
//! way that leaves `M*` visible). So `P` listed before `t0`, when no manifest named `F`:
//! the gap-free naming started after `t_l`, with the writer `V` that sent `F`, whose
//! PUT was after `t_l - T - 2ε`. If that PUT was before `t_head`, `P` saw
//! `last_modified` younger than `G` (`G >= 2T`) and kept `F`; if after, `V` saw `K` as
//! `U` does above and published nothing. Either way `M*` cannot exist.
//!
//! The `pending` records (two passes `G` apart must both find a file unnamed) are not
//! needed by this argument; they are the margin around it: an object store whose
//! listings lag, a clock further off than `ε`, or a manifest restored by hand must stay
//! wrong for a whole `G` before a file goes, and an operator can read in the records
//! what the next pass will delete.
//!
//! What the rules cost: a superseded manifest stays `G` longer than `keep` says; a file
//! leaves at least `G` (and at most `G` plus the time between passes) after its last
//! manifest; an upload re-sending a file that a pass deleted in the last `2T` fails
//! with `Unavailable` and succeeds when retried later; a download running longer than
//! `G` after its manifest was removed may find a file gone (`Corruption`, and the
//! restore falls back to the changelog).

use std::collections::{BTreeMap, BTreeSet};

use futures::TryStreamExt;
use object_store::{ObjectMeta, ObjectStoreExt};
use state_core::snapshot::RetentionSummary;
use state_core::{Error, ErrorKind, Result, SnapshotScope};

use crate::ObjectSnapshotStore;
use crate::error::map_error;
use crate::layout::{RecordKind, ScopeKeys, checksum_hex, direct_child, file_name};
use crate::listing::Outcome;
use crate::upload::millis;

impl ObjectSnapshotStore {
    pub(crate) async fn retention_pass(
        &self,
        scope: &SnapshotScope,
        keep: usize,
    ) -> Result<RetentionSummary> {
        if keep == 0 {
            return Err(Error::invalid_input(format!(
                "retaining snapshots of {scope}: keep is 0; the newest snapshot is always kept"
            )));
        }
        let start = self.config.clock.now_millis();
        let grace = millis(self.config.grace);
        let keys = self.keys(scope)?;
        let mut summary = RetentionSummary::default();

        // 1-2: manifests.
        let listed = self.list_manifests(scope, &keys).await?;
        let mut remaining = Vec::new();
        let mut newest_readable_seen = false;
        // The oldest creation time among the readable manifests newer than the current.
        let mut oldest_newer_readable: Option<u64> = None;
        for (rank, entry) in listed.into_iter().enumerate() {
            let Some(key) = entry.key.clone() else {
                // Not a manifest name: listed by `list`, neither removed nor counted.
                continue;
            };
            if let Outcome::Unfetched(err) = entry.outcome {
                return Err(err.context(format!("retaining snapshots of {scope}")));
            }
            let readable = entry.readable().is_some();
            let kept = rank < keep || (readable && !newest_readable_seen);
            let superseded =
                oldest_newer_readable.is_some_and(|created| created.saturating_add(grace) <= start);
            if readable {
                newest_readable_seen = true;
                oldest_newer_readable = Some(
                    oldest_newer_readable.map_or(key.created_millis, |c| c.min(key.created_millis)),
                );
            }
            if kept {
                remaining.push(entry);
            } else if superseded {
                self.delete_object(&entry.location).await?;
                summary.manifests_removed += 1;
            } else {
                summary.manifests_deferred += 1;
                remaining.push(entry);
            }
        }

        // 3: an unreadable manifest may name any file.
        if let Some(unreadable) = remaining.iter().find(|entry| entry.readable().is_none()) {
            log::warn!(
                "retaining snapshots of {scope}: no file is deleted while the unreadable \
                 manifest {} remains",
                self.url(&unreadable.location)
            );
            return Ok(summary);
        }
        let mut named = BTreeSet::new();
        for entry in &remaining {
            for file in entry
                .readable()
                .map(|m| m.files.as_slice())
                .unwrap_or_default()
            {
                named.insert(checksum_hex(&file.checksum, "a listed manifest")?.to_owned());
            }
        }

        // 4: unnamed files, and which of them a matured pending record lists.
        let unnamed = self.unnamed_files(&keys, &named).await?;
        let records = self.list_records(&keys).await?;
        let mut matured = BTreeSet::new();
        let mut consumed = Vec::new();
        let mut stale_markers = Vec::new();
        for (record, location) in records {
            let aged = record.millis.saturating_add(grace) <= start;
            match record.kind {
                RecordKind::Pending if aged => {
                    match self.read_record(&location).await {
                        Ok(Some(body)) => matured.extend(body.files),
                        Ok(None) => continue,
                        // Unreadable: its files wait for the record this pass writes.
                        Err(err) if err.kind() == ErrorKind::Corruption => {
                            log::warn!("retaining snapshots of {scope}: {err}");
                        }
                        Err(err) => return Err(err),
                    }
                    consumed.push(location);
                }
                RecordKind::Deleting if aged => stale_markers.push(location),
                _ => {}
            }
        }
        let old_enough =
            |meta: &ObjectMeta| last_modified_millis(meta).saturating_add(grace) <= start;
        let deletable: BTreeMap<&String, &ObjectMeta> = unnamed
            .iter()
            .filter(|(hex, meta)| matured.contains(*hex) && old_enough(meta))
            .collect();

        // 5: announce, look again, delete.
        let mut deleted = BTreeSet::new();
        if !deletable.is_empty() {
            let names = deletable.keys().map(|hex| (*hex).clone()).collect();
            self.write_record(&keys, RecordKind::Deleting, start, names)
                .await?;
            let stop_at = start.saturating_add(millis(self.config.max_upload) / 4);
            for (hex, meta) in deletable {
                if self.config.clock.now_millis() > stop_at {
                    log::info!(
                        "retaining snapshots of {scope}: deletion window over, the rest waits \
                         for a later pass"
                    );
                    break;
                }
                let again = match self.store.head(&meta.location).await {
                    Ok(again) => again,
                    Err(object_store::Error::NotFound { .. }) => continue,
                    Err(err) => {
                        return Err(map_error(
                            err,
                            format!("checking {}", self.url(&meta.location)),
                        ));
                    }
                };
                if !old_enough(&again) {
                    continue;
                }
                self.delete_object(&meta.location).await?;
                deleted.insert(hex.clone());
                summary.files_removed += 1;
                summary.bytes_removed += again.size;
            }
        }

        // 6: what is still unnamed waits `grace` from now; consumed records go.
        let still: BTreeSet<String> = unnamed
            .into_keys()
            .filter(|hex| !deleted.contains(hex))
            .collect();
        if !still.is_empty() {
            self.write_record(&keys, RecordKind::Pending, start, still)
                .await?;
        }
        for location in consumed.iter().chain(&stale_markers) {
            self.delete_object(location).await?;
        }
        Ok(summary)
    }

    /// The file objects of `keys` whose names are not in `named`, by hex.
    async fn unnamed_files(
        &self,
        keys: &ScopeKeys,
        named: &BTreeSet<String>,
    ) -> Result<BTreeMap<String, ObjectMeta>> {
        let dir = keys.files();
        let metas: Vec<ObjectMeta> = self
            .store
            .list(Some(&dir))
            .try_collect()
            .await
            .map_err(|err| map_error(err, format!("listing {}", self.url(&dir))))?;
        Ok(metas
            .into_iter()
            .filter(|meta| direct_child(&dir, &meta.location))
            .filter_map(|meta| {
                let hex = file_name(&meta.location);
                // Only names this crate writes: 64 lowercase hex digits.
                let ours = checksum_hex(&format!("blake3:{hex}"), "").is_ok();
                (ours && !named.contains(&hex)).then_some((hex, meta))
            })
            .collect())
    }
}

/// An object's `last_modified` in milliseconds since the epoch (0 before it).
fn last_modified_millis(meta: &ObjectMeta) -> u64 {
    u64::try_from(meta.last_modified.timestamp_millis()).unwrap_or(0)
}
