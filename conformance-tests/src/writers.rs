//! One writer per store partition: creators of one new store at once leave one valid
//! store and nothing else, and a partition another process writes (its lock held) is
//! refused by the builder with an error naming that process, before anything is created.
//! Stamped for every durable backend; across processes, the CLI's `concurrent_writers`
//! test runs the same races with real `statestore` processes.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Barrier};

use state_core::changelog::in_memory::InMemoryChangelog;
use state_core::serde::Serdes;
use state_core::{ErrorKind, LOCK_FILE_NAME, Position, StoreBuilder, StoreContext};

use crate::harness::{BackendFactory, Fixture, block_on};

/// Three threads open one new store at once, 20 times: each opens it or finds it open
/// (`Unavailable`), one at least opens it, and the directory then holds one valid empty
/// store and no temporary file of a creation.
pub fn concurrent_creators_leave_one_valid_store(backend: &dyn BackendFactory) {
    for round in 0..20 {
        let fixture = Fixture::new(backend, "writers");
        if !fixture.supplier().durable() {
            return;
        }
        let dir = fixture.store_dir();
        let creators = 3;
        let start = Barrier::new(creators);
        let outcomes: Vec<_> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..creators)
                .map(|_| {
                    scope.spawn(|| {
                        start.wait();
                        let store = fixture.supplier().open(&dir)?;
                        store.close()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for outcome in &outcomes {
            if let Err(err) = outcome {
                assert_eq!(err.kind(), ErrorKind::Unavailable, "round {round}: {err}");
            }
        }
        assert!(
            outcomes.iter().any(Result::is_ok),
            "round {round}: {outcomes:?}"
        );
        let store = fixture
            .supplier()
            .open_read_only(&dir)
            .unwrap_or_else(|err| panic!("round {round}: no valid store left: {err}"));
        assert_eq!(store.position().unwrap(), Position::empty());
        drop(store);
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            !names.iter().any(|name| name.contains(".creating")),
            "round {round}: {names:?}"
        );
    }
}

/// The builder takes the partition's lock before it opens anything: held by another
/// process, `build` fails `Unavailable` naming it and the lock file, and creates no
/// store. Free, two stores of the partition open side by side in this process, the lock
/// file names this process while they are open and is gone once both are closed.
pub fn a_partition_another_process_writes_is_refused(backend: &dyn BackendFactory) {
    if !backend.supplier("probe").durable() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let changelog = Arc::new(InMemoryChangelog::new());
    let context = StoreContext::new("shop", 0, 1, root.path())
        .unwrap()
        .with_changelog(changelog);
    let builder = |name: &str| {
        StoreBuilder::new(backend.supplier(name), Serdes::string(), Serdes::i64())
            .with_logging_enabled(HashMap::new())
    };
    let lock_file = context.partition_dir().join(LOCK_FILE_NAME);
    std::fs::create_dir_all(context.partition_dir()).unwrap();
    // Another process's lock: a handle of its own, as a second process would have.
    let other = std::fs::File::create(&lock_file).unwrap();
    other.try_lock().unwrap();
    (&other)
        .write_all(b"statestore partition lock\npid: 4000000000\ncommand: statestore restore\n")
        .unwrap();
    let err = match block_on(builder("rewards").build(&context)) {
        Ok(_) => panic!(
            "{} built a store in a partition another process holds",
            backend.name()
        ),
        Err(err) => err,
    };
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    let text = err.to_string();
    for part in [
        "process 4000000000 (statestore restore)",
        &lock_file.display().to_string(),
    ] {
        assert!(text.contains(part), "{text} should name {part}");
    }
    assert!(
        !context.store_dir("rewards").unwrap().exists(),
        "a refused build created the store"
    );
    drop(other);

    let mut rewards = block_on(builder("rewards").build(&context)).unwrap();
    let mut visits = block_on(builder("visits").build(&context)).unwrap();
    let record = std::fs::read_to_string(&lock_file).unwrap();
    assert!(
        record.contains(&format!("pid: {}\n", std::process::id())),
        "{record}"
    );
    for store in [&mut rewards, &mut visits] {
        store.put(&"customer".to_owned(), &1).unwrap();
        block_on(store.commit()).unwrap();
    }
    rewards.close().unwrap();
    assert!(lock_file.exists(), "visits is still open");
    visits.close().unwrap();
    assert!(
        !lock_file.exists(),
        "the last store closed lets the lock go"
    );
}
