//! Retention: the newest `keep` stay, superseded manifests go once a newer one is
//! `grace` old, and a file goes only after two passes `grace` apart found it unnamed
//! and it is itself `grace` old.

use std::time::Duration;

use snapshot_object_store::object_store::{ObjectStoreExt, PutPayload};
use state_core::{ErrorKind, SnapshotStore};

use super::{Fixture, G, bytes, scope, sum};

/// Five snapshots, `keep` 2: the three oldest are deferred while the newer ones are
/// young, then removed; the files only they named go two passes `grace` apart later;
/// the kept snapshots stay whole throughout.
pub async fn retention_keeps_the_newest_k(f: Fixture) {
    let store = f.store("writer-a");
    let shared = bytes(100, 1_000);
    for i in 1..=5u64 {
        let checkpoint = f.checkpoint(
            &format!("cp{i}"),
            i as i64 * 10,
            &[
                ("shared.sst", shared.clone()),
                ("own.sst", bytes(i, 500 + i as usize)),
            ],
        );
        store.upload(&scope(), &checkpoint).await.unwrap();
        f.clock.advance(Duration::from_secs(60));
    }
    let early = store.retain(&scope(), 2).await.unwrap();
    assert_eq!((early.manifests_removed, early.manifests_deferred), (0, 3));
    assert_eq!(f.manifest_count(&scope()).await, 5);

    f.clock.advance(G);
    let pass = store.retain(&scope(), 2).await.unwrap();
    assert_eq!(
        (
            pass.manifests_removed,
            pass.manifests_deferred,
            pass.files_removed
        ),
        (3, 0, 0)
    );
    let positions: Vec<i64> = store
        .list(&scope())
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.manifest.unwrap().position)
        .collect();
    assert_eq!(positions, [50, 40]);
    f.assert_complete(&scope(), "after removing manifests")
        .await;
    for i in 1..=3 {
        assert!(
            f.has(&scope(), &sum(&bytes(i, 500 + i as usize))).await,
            "file {i} waits"
        );
    }

    f.clock.advance(G);
    let pass = store.retain(&scope(), 2).await.unwrap();
    assert_eq!(pass.files_removed, 3);
    assert_eq!(pass.bytes_removed, 501 + 502 + 503);
    for i in 1..=3 {
        assert!(
            !f.has(&scope(), &sum(&bytes(i, 500 + i as usize))).await,
            "file {i} gone"
        );
    }
    assert!(f.has(&scope(), &sum(&shared)).await);
    f.assert_complete(&scope(), "after removing files").await;
    let into = f.target("kept");
    let newest = f.newest(&store, &scope()).await;
    store.download(&newest, &into, None).await.unwrap();
}

/// An unnamed file survives a pass `grace` minus a second after the first one saw it,
/// goes at `grace`; a file sent again since is young and stays even then.
pub async fn a_file_goes_only_after_two_passes_a_grace_apart(f: Fixture) {
    let store = f.store("writer-a");
    let orphan = bytes(7, 300);
    let resent = bytes(8, 300);
    // Two orphans: files no manifest names (as a failed upload leaves them).
    for data in [&orphan, &resent] {
        f.sim
            .put(
                &f.object(&scope(), &sum(data)),
                PutPayload::from(data.clone()),
            )
            .await
            .unwrap();
    }
    let checkpoint = f.checkpoint("cp", 10, &[("data", bytes(1, 100))]);
    store.upload(&scope(), &checkpoint).await.unwrap();

    f.clock.advance(G);
    let first = store.retain(&scope(), 1).await.unwrap();
    assert_eq!(first.files_removed, 0, "the first pass only records");
    f.clock.advance(G - Duration::from_secs(1));
    assert_eq!(store.retain(&scope(), 1).await.unwrap().files_removed, 0);
    // Sent again (an upload under way): young again.
    f.sim
        .put(
            &f.object(&scope(), &sum(&resent)),
            PutPayload::from(resent.clone()),
        )
        .await
        .unwrap();
    f.clock.advance(Duration::from_secs(1));
    let pass = store.retain(&scope(), 1).await.unwrap();
    assert_eq!((pass.files_removed, pass.bytes_removed), (1, 300));
    assert!(!f.has(&scope(), &sum(&orphan)).await);
    assert!(f.has(&scope(), &sum(&resent)).await, "a young file stays");
    f.assert_complete(&scope(), "after the passes").await;
}

/// While an unreadable manifest remains, no file is deleted: it may name any.
pub async fn an_unreadable_manifest_stops_file_deletion(f: Fixture) {
    let store = f.store("writer-a");
    let orphan = bytes(7, 300);
    f.sim
        .put(
            &f.object(&scope(), &sum(&orphan)),
            PutPayload::from(orphan.clone()),
        )
        .await
        .unwrap();
    let checkpoint = f.checkpoint("cp", 10, &[("data", bytes(1, 100))]);
    store.upload(&scope(), &checkpoint).await.unwrap();
    let garbage = f
        .manifests(&scope())
        .join("m-00000000000000000099-1700000000000-x.json");
    f.raw
        .put(&garbage, PutPayload::from_static(b"not json"))
        .await
        .unwrap();
    for _ in 0..3 {
        f.clock.advance(G);
        assert_eq!(store.retain(&scope(), 1).await.unwrap().files_removed, 0);
    }
    assert!(f.has(&scope(), &sum(&orphan)).await);
}

/// `keep` 0 would remove the snapshot an upload may be building on.
pub async fn keep_zero_is_refused(f: Fixture) {
    let err = f.store("writer-a").retain(&scope(), 0).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
}
