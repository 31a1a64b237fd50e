//! `inspect` and `verify` are read-only: they create nothing, change not a byte (every
//! file compared before and after), work on a read-only directory, run side by side,
//! say when a writer holds the store, and name the real cause of what they refuse.

mod common;

use std::process::{Command, Stdio};

use common::{
    BIN, args, assert_exit, chmod_tree, durable_backends, location, other_backend_pairs, run_owned,
    run_unprivileged, store_dir, supplier, text, write_store,
};
use test_support::{assert_unchanged, snapshot};

fn inspect(dir: &std::path::Path, app: &str, backend: &str, extra: &[&str]) -> Vec<String> {
    let mut out = args(&[&["inspect", "--partition", "0"], extra]);
    out.extend(location(dir, app, backend));
    out
}

#[test]
fn inspect_changes_not_a_byte_and_counts_entries_exactly() {
    for backend in durable_backends() {
        let dir = tempfile::tempdir().unwrap();
        let entries = write_store(backend, dir.path(), "app", 0, 500);
        let before = snapshot(dir.path());
        let output = run_owned(&inspect(
            dir.path(),
            "app",
            backend,
            &[
                "--get",
                "customer-0002",
                "--range",
                "customer-0010",
                "customer-0013",
            ],
        ));
        assert_exit(&output, 0);
        let text = text(&output);
        assert!(
            text.contains(&format!("entries: {entries}\n")),
            "{backend}: {text}"
        );
        assert!(text.contains("get customer-0002: 2.5"), "{backend}: {text}");
        assert!(
            text.contains("range customer-0010..=customer-0013: 3 entries"),
            "{text}"
        );
        assert!(text.contains("applied up to offset 1000"), "{text}");
        assert_unchanged(dir.path(), &before);
    }
}

#[test]
fn inspect_works_on_a_read_only_directory_as_another_user() {
    for backend in durable_backends() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let entries = write_store(backend, &state, "app", 0, 100);
        chmod_tree(&state, 0o555, 0o444);
        let before = snapshot(&state);
        let output = run_unprivileged(dir.path(), &inspect(&state, "app", backend, &[]));
        chmod_tree(&state, 0o755, 0o644);
        assert_exit(&output, 0);
        assert!(
            text(&output).contains(&format!("entries: {entries}")),
            "{backend}: {}",
            text(&output)
        );
        assert_unchanged(&state, &before);
    }
}

#[test]
fn six_inspects_of_one_store_run_at_once() {
    for backend in durable_backends() {
        let dir = tempfile::tempdir().unwrap();
        write_store(backend, dir.path(), "app", 0, 2000);
        let before = snapshot(dir.path());
        let children: Vec<_> = (0..6)
            .map(|_| {
                Command::new(BIN)
                    .args(inspect(dir.path(), "app", backend, &[]))
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            let output = child.wait_with_output().unwrap();
            assert_exit(&output, 0);
        }
        assert_unchanged(dir.path(), &before);
    }
}

#[test]
fn inspect_says_when_a_writer_holds_the_store() {
    for backend in durable_backends() {
        let dir = tempfile::tempdir().unwrap();
        write_store(backend, dir.path(), "app", 0, 10);
        let writer = supplier(backend)
            .open(&store_dir(dir.path(), "app", 0))
            .unwrap();
        let output = run_owned(&inspect(dir.path(), "app", backend, &[]));
        assert_exit(&output, 1);
        let text = text(&output);
        assert!(text.contains("open for writing"), "{backend}: {text}");
        let names_writer = statestore::backends()
            .get(backend)
            .unwrap()
            .capability()
            .names_writer;
        // The writer is this test process, named by the lock probe of a backend that
        // says it has one.
        assert_eq!(
            text.contains(&format!("process {}", std::process::id())),
            names_writer,
            "{backend}: {text}"
        );
        writer.close().unwrap();
    }
}

/// A partition whose writer lock another process holds (a restore between creating the
/// store and opening it, say) is reported naming that process and the lock file, and
/// neither an inspect nor a verify creates a lock file of its own or changes a byte.
#[test]
fn inspect_and_verify_name_the_partitions_writer_and_create_no_lock_file() {
    use std::io::Write;
    for backend in durable_backends() {
        let dir = tempfile::tempdir().unwrap();
        write_store(backend, dir.path(), "app", 0, 10);
        let partition_dir = store_dir(dir.path(), "app", 0).parent().unwrap().to_owned();
        let lock_file = partition_dir.join(statestore::LOCK_FILE_NAME);
        let before = snapshot(dir.path());
        // Free: read as usual, and no lock file is made.
        assert_exit(&run_owned(&inspect(dir.path(), "app", backend, &[])), 0);
        assert_unchanged(dir.path(), &before);
        // Held, through a handle of its own as another process would hold it.
        let holder = std::fs::File::create(&lock_file).unwrap();
        holder.try_lock().unwrap();
        (&holder)
            .write_all(b"statestore partition lock\npid: 4000000000\ncommand: statestore restore\n")
            .unwrap();
        let held = snapshot(dir.path());
        let mut verify = args(&[&[
            "verify",
            "--partition",
            "0",
            "--bootstrap-servers",
            "127.0.0.1:1",
            "--timeout",
            "1",
        ]]);
        verify.extend(location(dir.path(), "app", backend));
        for command in [inspect(dir.path(), "app", backend, &[]), verify] {
            let output = run_owned(&command);
            assert_exit(&output, 1);
            let text = text(&output);
            for part in [
                "in use by another writer: process 4000000000 (statestore restore)",
                &lock_file.display().to_string(),
            ] {
                assert!(text.contains(part), "{backend} {}: {text}", command[0]);
            }
        }
        assert_unchanged(dir.path(), &held);
    }
}

#[test]
fn a_missing_store_is_not_found_and_nothing_is_created() {
    for backend in durable_backends() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        // No state directory at all.
        let output = run_owned(&inspect(&state, "app", backend, &[]));
        assert_exit(&output, 1);
        assert!(
            text(&output).contains("does not exist"),
            "{}",
            text(&output)
        );
        assert!(!state.exists());

        // A state directory without the store, then an empty store directory.
        std::fs::create_dir(&state).unwrap();
        for _ in 0..2 {
            let before = snapshot(&state);
            let output = run_owned(&inspect(&state, "app", backend, &[]));
            assert_exit(&output, 1);
            let text = text(&output);
            assert!(
                text.starts_with("error: not found: no") && text.contains("partition 0"),
                "{backend}: {text}"
            );
            assert_unchanged(&state, &before);
            std::fs::create_dir_all(store_dir(&state, "app", 0)).unwrap();
        }
    }
}

#[test]
fn an_empty_file_where_the_database_should_be_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_dir(dir.path(), "app", 0);
    std::fs::create_dir_all(&store).unwrap();
    std::fs::write(store.join("store.redb"), b"").unwrap();
    let before = snapshot(dir.path());
    let output = run_owned(&inspect(dir.path(), "app", "redb", &[]));
    assert_exit(&output, 1);
    let text = text(&output);
    assert!(
        text.contains("not this backend's store") && text.contains("an empty file"),
        "{text}"
    );
    assert_unchanged(dir.path(), &before);
}

#[test]
fn a_store_of_another_backend_is_refused_naming_the_right_backend() {
    for (written, asked) in other_backend_pairs() {
        let dir = tempfile::tempdir().unwrap();
        write_store(written, dir.path(), "app", 0, 10);
        let before = snapshot(dir.path());
        let output = run_owned(&inspect(dir.path(), "app", asked, &[]));
        assert_exit(&output, 1);
        let text = text(&output);
        assert!(
            text.contains("not this backend's store")
                && text.contains(&format!("use --backend {written}"))
                && text.contains(&store_dir(dir.path(), "app", 0).display().to_string()),
            "{asked} on {written}: {text}"
        );
        assert_unchanged(dir.path(), &before);
    }
}

#[test]
fn a_directory_that_cannot_be_read_is_permission_denied_not_missing() {
    for backend in durable_backends() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        write_store(backend, &state, "app", 0, 10);
        chmod_tree(&state, 0o755, 0o644);
        let partition = store_dir(&state, "app", 0).parent().unwrap().to_path_buf();
        std::fs::set_permissions(
            &partition,
            std::os::unix::fs::PermissionsExt::from_mode(0o000),
        )
        .unwrap();
        let output = run_unprivileged(dir.path(), &inspect(&state, "app", backend, &[]));
        std::fs::set_permissions(
            &partition,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        assert_exit(&output, 1);
        let text = text(&output);
        assert!(
            text.contains("Permission denied") && !text.contains("not found"),
            "{backend}: {text}"
        );
    }
}
