//! Upload, list and download: what goes in comes out byte for byte, and only what is
//! new is sent.

use state_core::{ErrorKind, SnapshotScope, SnapshotStore};

use super::{Fixture, PART, bytes, scope};

/// A checkpoint with an empty file, small files in a subdirectory and a file of three
/// parts comes back identical, through a multipart upload and ranged reads.
pub async fn round_trip_is_byte_identical(f: Fixture) {
    let big = (2 * PART + 12_345) as usize;
    let checkpoint = f.checkpoint(
        "one",
        41,
        &[
            ("CURRENT", bytes(1, 16)),
            ("empty", Vec::new()),
            ("sst/000007.sst", bytes(2, 100_000)),
            ("sst/000009.sst", bytes(3, big)),
        ],
    );
    let store = f.store("writer-a");
    let uploaded = store.upload(&scope(), &checkpoint).await.unwrap();
    assert_eq!(uploaded.position, 41);
    assert_eq!(uploaded.files_uploaded, 4);
    assert_eq!(uploaded.bytes_uploaded, checkpoint.total_bytes());
    assert_eq!(uploaded.files_reused, 0);

    let listed = store.list(&scope()).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, uploaded.id);
    let manifest = listed[0].manifest.as_ref().unwrap();
    manifest.check_belongs(&scope(), "test", 1).unwrap();
    assert_eq!(manifest.position, 41);
    assert_eq!(manifest.files.len(), 4);
    assert!(
        manifest.writer.starts_with("writer-a-"),
        "{}",
        manifest.writer
    );

    let into = f.target("one");
    let downloaded = store.download(manifest, &into, None).await.unwrap();
    assert_eq!(downloaded.files_downloaded, 4);
    assert_eq!(downloaded.bytes_downloaded, checkpoint.total_bytes());
    assert_eq!(
        test_support::snapshot(&into),
        test_support::snapshot(&checkpoint.dir)
    );
}

/// A second checkpoint sharing files with the first sends only what is new or changed.
pub async fn a_second_upload_sends_only_new_files(f: Fixture) {
    let store = f.store("writer-a");
    let (a, b, c) = (bytes(1, 5_000), bytes(2, (PART + 1) as usize), bytes(3, 70));
    let first = f.checkpoint(
        "first",
        10,
        &[("a.sst", a.clone()), ("b.sst", b.clone()), ("OPTIONS", c)],
    );
    store.upload(&scope(), &first).await.unwrap();
    let d = bytes(4, 9_000);
    let second = f.checkpoint(
        "second",
        20,
        &[
            ("a.sst", a.clone()),
            ("b.sst", b.clone()),
            ("d.sst", d.clone()),
            ("OPTIONS", bytes(5, 71)),
        ],
    );
    let uploaded = store.upload(&scope(), &second).await.unwrap();
    assert_eq!(
        (uploaded.files_uploaded, uploaded.bytes_uploaded),
        (2, 9_000 + 71)
    );
    assert_eq!(
        (uploaded.files_reused, uploaded.bytes_reused),
        (2, (a.len() + b.len()) as u64)
    );

    let manifest = f.newest(&store, &scope()).await;
    assert_eq!(manifest.position, 20);
    let into = f.target("second");
    store.download(&manifest, &into, None).await.unwrap();
    assert_eq!(
        test_support::snapshot(&into),
        test_support::snapshot(&second.dir)
    );
}

/// A local file with the same path, size and checksum is copied, not downloaded; one
/// of the same size but other bytes is downloaded.
pub async fn a_download_copies_matching_local_files(f: Fixture) {
    let store = f.store("writer-a");
    let checkpoint = f.checkpoint(
        "cp",
        5,
        &[
            ("same", bytes(1, 3_000)),
            ("changed", bytes(2, 4_000)),
            ("new", bytes(3, 10)),
        ],
    );
    store.upload(&scope(), &checkpoint).await.unwrap();
    let local = f.work.path().join("local-store");
    std::fs::create_dir_all(&local).unwrap();
    std::fs::write(local.join("same"), bytes(1, 3_000)).unwrap();
    std::fs::write(local.join("changed"), bytes(9, 4_000)).unwrap();

    let manifest = f.newest(&store, &scope()).await;
    let into = f.target("cp");
    let summary = store
        .download(&manifest, &into, Some(&local))
        .await
        .unwrap();
    assert_eq!((summary.files_reused, summary.bytes_reused), (1, 3_000));
    assert_eq!(
        (summary.files_downloaded, summary.bytes_downloaded),
        (2, 4_010)
    );
    assert_eq!(
        test_support::snapshot(&into),
        test_support::snapshot(&checkpoint.dir)
    );
}

/// The target must be new: a download never writes into an existing directory.
pub async fn a_download_into_an_existing_directory_is_refused(f: Fixture) {
    let store = f.store("writer-a");
    let checkpoint = f.checkpoint("cp", 5, &[("a", bytes(1, 10))]);
    store.upload(&scope(), &checkpoint).await.unwrap();
    let manifest = f.newest(&store, &scope()).await;
    let into = f.target("exists");
    std::fs::create_dir_all(&into).unwrap();
    let err = store.download(&manifest, &into, None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(
        std::fs::read_dir(&into).unwrap().next().is_none(),
        "nothing written"
    );
}

/// Application and store names that would leave the prefix are refused before any
/// request.
pub async fn names_cannot_climb_out_of_the_prefix(f: Fixture) {
    let store = f.store("writer-a");
    let checkpoint = f.checkpoint("cp", 5, &[("a", bytes(1, 10))]);
    for bad in [
        SnapshotScope::new("..", "rewards", 3),
        SnapshotScope::new("shop", "../../etc", 3),
        SnapshotScope::new("shop/x", "rewards", 3),
        SnapshotScope::new("shop", "rewards", -1),
    ] {
        let mut checkpoint = checkpoint.clone();
        checkpoint.position = state_core::Position::of(bad.partition, 5);
        let err = store.upload(&bad, &checkpoint).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad}: {err}");
        assert_eq!(
            store.list(&bad).await.unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            store.retain(&bad, 1).await.unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    }
}
