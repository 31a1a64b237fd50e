//! Bad input never destroys, invents or hides data: a backend refuses what it did not
//! write (another backend's store, unknown files) and never wipes it, and a read-only
//! open creates nothing and changes not a byte. Stamped for every durable backend.

use std::path::Path;

use state_core::{ErrorKind, KeyValueBytesStoreSupplier, Position, WriteBatch, open_or_rebuild};
use test_support::snapshot;

use crate::harness::{BackendFactory, Fixture, contents};

/// Writes 50 keys at position 49 through `supplier` into `dir` and closes the store.
fn written(supplier: &dyn KeyValueBytesStoreSupplier, dir: &Path) {
    let store = supplier.open(dir).unwrap();
    let mut batch = WriteBatch::new();
    for i in 0..50u32 {
        batch.put(format!("key-{i:02}").into_bytes(), i.to_be_bytes());
    }
    store
        .write_with_position(&batch, &Position::of(0, 49))
        .unwrap();
    store.close().unwrap();
}

/// A read-only open reads what is there, refuses writes, and leaves every file as it was.
pub fn read_only_open_changes_nothing(backend: &dyn BackendFactory) {
    let fixture = Fixture::new(backend, "ownership");
    if !fixture.supplier().durable() {
        return;
    }
    let dir = fixture.store_dir();
    written(fixture.supplier().as_ref(), &dir);
    let before = snapshot(&dir);
    let store = fixture.supplier().open_read_only(&dir).unwrap();
    assert_eq!(store.position().unwrap(), Position::of(0, 49));
    assert_eq!(contents(store.as_ref()).len(), 50);
    let err = store.put(b"k", b"v").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    store.close().unwrap();
    drop(store);
    let changes = snapshot(&dir).changes_since(&before);
    assert!(
        changes.is_empty(),
        "{}: a read-only open changed files under {}: {changes:?}",
        backend.name(),
        dir.display()
    );
}

/// A missing store, or an empty directory, is `NotFound` read-only, and nothing is made.
pub fn read_only_open_of_nothing_is_not_found(backend: &dyn BackendFactory) {
    let fixture = Fixture::new(backend, "ownership");
    if !fixture.supplier().durable() {
        return;
    }
    let dir = fixture.store_dir();
    let err = fixture
        .supplier()
        .open_read_only(&dir)
        .map(|_| ())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(
        !dir.exists(),
        "{}: created {}",
        backend.name(),
        dir.display()
    );
    std::fs::create_dir(&dir).unwrap();
    let err = fixture
        .supplier()
        .open_read_only(&dir)
        .map(|_| ())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(
        snapshot(&dir).is_empty(),
        "{}: wrote into {}",
        backend.name(),
        dir.display()
    );
}

/// A store of every other durable backend, and a directory of unknown files, is
/// `Foreign` to this one — read-write, read-only and through `open_or_rebuild`, which
/// restore uses — naming the path; nothing is changed, and `owns` tells them apart.
pub fn other_backends_stores_are_refused_not_wiped(backend: &dyn BackendFactory) {
    let probe = backend.supplier("ownership");
    if !probe.durable() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let mut foreign = Vec::new();
    for other in crate::backends() {
        let supplier = other.supplier("ownership");
        if other.name() == backend.name() || !supplier.durable() {
            continue;
        }
        let dir = root.path().join(other.name());
        written(supplier.as_ref(), &dir);
        assert!(
            supplier.owns(&dir),
            "{} does not own its own store",
            other.name()
        );
        foreign.push(dir);
    }
    let unknown = root.path().join("unknown");
    std::fs::create_dir(&unknown).unwrap();
    std::fs::write(unknown.join("notes.txt"), b"someone's notes").unwrap();
    foreign.push(unknown);

    for dir in &foreign {
        let before = snapshot(dir);
        let errors = [
            probe.open(dir).map(|_| ()).unwrap_err(),
            probe.open_read_only(dir).map(|_| ()).unwrap_err(),
            open_or_rebuild(probe.as_ref(), dir)
                .map(|_| ())
                .unwrap_err(),
        ];
        for err in errors {
            assert_eq!(err.kind(), ErrorKind::Foreign, "{}: {err}", backend.name());
            assert!(
                err.to_string().contains(&dir.display().to_string()),
                "the error must name {}: {err}",
                dir.display()
            );
        }
        let changes = snapshot(dir).changes_since(&before);
        assert!(
            changes.is_empty(),
            "{} changed {} while refusing it: {changes:?}",
            backend.name(),
            dir.display()
        );
        assert!(
            !probe.owns(dir),
            "{} claims {}",
            backend.name(),
            dir.display()
        );
    }
}
