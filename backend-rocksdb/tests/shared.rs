//! Two stores under one memory budget.

mod common;

use backend_rocksdb::{RocksDbConfig, RocksDbSupplier, SharedRocksDbResources};
use state_core::{ErrorKind, KeyValueBytesStoreSupplier};

#[test]
fn shared_resources_serve_two_stores() {
    let tmp = tempfile::tempdir().unwrap();
    let shared = SharedRocksDbResources::new(32 << 20, 8 << 20).unwrap();
    let supplier = RocksDbSupplier::new("shared").with_config(
        RocksDbConfig::new()
            .with_write_buffer_size(1 << 20)
            .with_shared_resources(shared.clone()),
    );
    let first = supplier.open(&tmp.path().join("p0")).unwrap();
    let second = supplier.open(&tmp.path().join("p1")).unwrap();

    let before = shared.memtable_usage();
    let value = vec![7u8; 1024];
    for i in 0..200u32 {
        first.put(&i.to_be_bytes(), &value).unwrap();
    }
    let after_first = shared.memtable_usage();
    for i in 0..200u32 {
        second.put(&i.to_be_bytes(), &value).unwrap();
    }
    let after_second = shared.memtable_usage();
    // Both stores' memtables are accounted by the one manager handed to the config.
    assert!(after_first > before, "{before} -> {after_first}");
    assert!(
        after_second > after_first,
        "{after_first} -> {after_second}"
    );
    assert!(
        shared.cache_usage() >= after_second,
        "memtables are charged to the cache"
    );
    assert!(shared.cache_usage() <= shared.total_memory() + (4 << 20));

    assert_eq!(first.get(&5u32.to_be_bytes()).unwrap(), Some(value.clone()));
    assert_eq!(second.get(&5u32.to_be_bytes()).unwrap(), Some(value));
    first.close().unwrap();
    second.close().unwrap();
}

#[test]
fn shared_resources_reject_a_bad_budget() {
    assert_eq!(
        SharedRocksDbResources::new(1 << 20, 2 << 20)
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        SharedRocksDbResources::new(0, 0).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
}

#[test]
fn unusable_config_is_invalid_input_naming_the_path() {
    let tmp = tempfile::tempdir().unwrap();
    let supplier = RocksDbSupplier::new("bad")
        .with_config(RocksDbConfig::new().with_max_write_buffer_number(0));
    let Err(err) = supplier.open(tmp.path()) else {
        panic!("opening with max_write_buffer_number 0 succeeded");
    };
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(
        err.to_string().contains(&tmp.path().display().to_string()),
        "{err}"
    );
}
