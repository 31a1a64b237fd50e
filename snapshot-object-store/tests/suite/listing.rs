//! Listing: newest first, and a manifest that cannot be read is shown with its error,
//! never skipped; a manifest of another store is listed but refused by `check_belongs`.

use std::time::Duration;

use snapshot_object_store::object_store::path::Path;
use snapshot_object_store::object_store::{ObjectStoreExt, PutPayload};
use state_core::{ErrorKind, SnapshotScope, SnapshotStore};

use super::{Fixture, bytes, scope};

/// Three snapshots come back highest position first, whatever the upload order.
pub async fn snapshots_are_listed_newest_first(f: Fixture) {
    let store = f.store("writer-a");
    for (name, offset) in [("b", 200), ("a", 100), ("c", 300)] {
        let checkpoint = f.checkpoint(name, offset, &[("data", bytes(offset as u64, 100))]);
        store.upload(&scope(), &checkpoint).await.unwrap();
        f.clock.advance(Duration::from_secs(1));
    }
    let positions: Vec<i64> = store
        .list(&scope())
        .await
        .unwrap()
        .into_iter()
        .map(|listed| listed.manifest.unwrap().position)
        .collect();
    assert_eq!(positions, [300, 200, 100]);
}

/// Garbage under a manifest name, a manifest whose name disagrees with it, and an
/// object named like no manifest are each listed with an error.
pub async fn an_unreadable_manifest_is_listed_with_its_error(f: Fixture) {
    let store = f.store("writer-a");
    let checkpoint = f.checkpoint("cp", 50, &[("data", bytes(1, 100))]);
    store.upload(&scope(), &checkpoint).await.unwrap();
    let good = f.newest(&store, &scope()).await;
    let dir = f.manifests(&scope());
    let garbage = dir
        .clone()
        .join("m-00000000000000000090-1700000000000-x.json");
    f.raw
        .put(&garbage, PutPayload::from_static(b"{\"format\":"))
        .await
        .unwrap();
    // A readable manifest under a name saying another position.
    let lying = dir
        .clone()
        .join("m-00000000000000000070-1700000000000-y.json");
    f.raw
        .put(&lying, PutPayload::from(good.to_json()))
        .await
        .unwrap();
    let stranger = dir.join("notes.txt");
    f.raw
        .put(&stranger, PutPayload::from_static(b"hello"))
        .await
        .unwrap();

    let listed = store.list(&scope()).await.unwrap();
    let ids: Vec<&str> = listed.iter().map(|l| l.id.as_str()).collect();
    assert_eq!(listed.len(), 4, "{ids:?}");
    assert_eq!(
        listed[0].id,
        garbage.to_string(),
        "sorted by the position in its name"
    );
    for (listed, why) in [
        (&listed[0], "not readable"),
        (&listed[1], "position 50"),
        (&listed[3], "not named like"),
    ] {
        let err = listed.manifest.as_ref().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corruption, "{err}");
        assert!(err.to_string().contains(why), "{why}: {err}");
        assert!(
            err.to_string().contains(&listed.id),
            "names the object: {err}"
        );
    }
    assert_eq!(listed[2].manifest.as_ref().unwrap(), &good);

    // The newest readable one is still what an upload builds on.
    let next = f.checkpoint("next", 60, &[("data", bytes(1, 100))]);
    assert_eq!(store.upload(&scope(), &next).await.unwrap().files_reused, 1);
}

/// Another store's manifest copied among ours is listed (it is readable) and
/// `check_belongs` refuses it as `Foreign`.
pub async fn a_foreign_manifest_is_listed_and_refused_by_check_belongs(f: Fixture) {
    let store = f.store("writer-a");
    let other = SnapshotScope::new("shop", "visits", 3);
    let mut checkpoint = f.checkpoint("cp", 80, &[("data", bytes(1, 100))]);
    checkpoint.position = state_core::Position::of(other.partition, 80);
    store.upload(&other, &checkpoint).await.unwrap();
    let foreign = f.newest(&store, &other).await;
    let name = format!(
        "m-{:020}-{:013}-intruder.json",
        foreign.position, foreign.created_millis
    );
    let copied = f.manifests(&scope()).join(name.as_str());
    f.raw
        .put(&copied, PutPayload::from(foreign.to_json()))
        .await
        .unwrap();

    let listed = store.list(&scope()).await.unwrap();
    assert_eq!(listed.len(), 1);
    let manifest = listed[0].manifest.as_ref().unwrap();
    let err = manifest.check_belongs(&scope(), "test", 1).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Foreign, "{err}");
    assert!(err.to_string().contains("visits"), "{err}");
    let _: &Path = &copied;
}
