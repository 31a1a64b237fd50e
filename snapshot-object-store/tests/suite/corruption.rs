//! A damaged snapshot never downloads: a flipped byte, a truncated or a deleted object
//! is `Corruption` naming the file and its object.

use snapshot_object_store::object_store::{ObjectStoreExt, PutPayload};
use state_core::{ErrorKind, SnapshotManifest, SnapshotStore};

use super::{Fixture, PART, bytes, scope};

/// Uploads a checkpoint with a small and a ranged file; its manifest.
async fn uploaded(f: &Fixture) -> SnapshotManifest {
    let store = f.store("writer-a");
    let checkpoint = f.checkpoint(
        "cp",
        7,
        &[
            ("small.sst", bytes(1, 4_000)),
            ("big.sst", bytes(2, (PART + PART / 2) as usize)),
        ],
    );
    store.upload(&scope(), &checkpoint).await.unwrap();
    f.newest(&store, &scope()).await
}

/// Downloads `manifest`, expecting `Corruption` naming `path` and its object.
async fn assert_corrupt(f: &Fixture, manifest: &SnapshotManifest, path: &str, what: &str) {
    let store = f.store("reader");
    let file = manifest
        .files
        .iter()
        .find(|file| file.path == path)
        .unwrap();
    let object = f.object(&scope(), &file.checksum);
    let err = store
        .download(manifest, &f.target(what), None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corruption, "{what}: {err}");
    let message = err.to_string();
    assert!(message.contains(path), "{what}: names the file: {message}");
    assert!(
        message.contains(object.as_ref()),
        "{what}: names the object: {message}"
    );
}

/// One byte flipped in the middle of an object.
pub async fn a_flipped_byte_is_corruption_naming_the_file(f: Fixture) {
    let manifest = uploaded(&f).await;
    for path in ["small.sst", "big.sst"] {
        let file = manifest
            .files
            .iter()
            .find(|file| file.path == path)
            .unwrap();
        let object = f.object(&scope(), &file.checksum);
        let original = f.raw.get(&object).await.unwrap().bytes().await.unwrap();
        let mut data = original.to_vec();
        let middle = data.len() / 2;
        data[middle] ^= 0x01;
        f.raw.put(&object, PutPayload::from(data)).await.unwrap();
        assert_corrupt(&f, &manifest, path, &format!("flipped-{path}")).await;
        f.raw
            .put(&object, PutPayload::from(original))
            .await
            .unwrap();
    }
}

/// An object cut to half its length.
pub async fn a_truncated_object_is_corruption_naming_the_file(f: Fixture) {
    let manifest = uploaded(&f).await;
    for path in ["small.sst", "big.sst"] {
        let file = manifest
            .files
            .iter()
            .find(|file| file.path == path)
            .unwrap();
        let object = f.object(&scope(), &file.checksum);
        let data = f.raw.get(&object).await.unwrap().bytes().await.unwrap();
        f.raw
            .put(&object, PutPayload::from(data.slice(..data.len() / 2)))
            .await
            .unwrap();
        assert_corrupt(&f, &manifest, path, &format!("truncated-{path}")).await;
        f.raw.put(&object, PutPayload::from(data)).await.unwrap();
    }
}

/// An object that is gone.
pub async fn a_deleted_object_is_corruption_naming_the_file(f: Fixture) {
    let manifest = uploaded(&f).await;
    for path in ["small.sst", "big.sst"] {
        let file = manifest
            .files
            .iter()
            .find(|file| file.path == path)
            .unwrap();
        let object = f.object(&scope(), &file.checksum);
        let data = f.raw.get(&object).await.unwrap().bytes().await.unwrap();
        f.raw.delete(&object).await.unwrap();
        assert_corrupt(&f, &manifest, path, &format!("deleted-{path}")).await;
        f.raw.put(&object, PutPayload::from(data)).await.unwrap();
    }
}
