//! The snapshot-store suite on a local directory (`object_store`'s LocalFileSystem).

mod suite;

use std::sync::Arc;

use snapshot_object_store::object_store::local::LocalFileSystem;

async fn local() -> Option<suite::Fixture> {
    let root = tempfile::tempdir().unwrap();
    let store = LocalFileSystem::new_with_prefix(root.path()).unwrap();
    Some(suite::Fixture::new(
        Arc::new(store),
        "snapshots".into(),
        Some(root),
    ))
}

stamp_all!(local);
