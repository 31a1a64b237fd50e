//! `restore` never destroys or invents data, and errors name the real cause: another
//! backend's store is refused untouched, a failed restore that applied nothing leaves no
//! store (nor its directories) behind, a partition the topic lacks is reported at once, a
//! restore with nothing to do writes nothing, a disk error is not blamed on Kafka. (A
//! failed restore that applied something keeps it: `restore_faults.rs`.)

mod common;

use std::time::{Duration, Instant};

use common::{
    args, assert_exit, durable, durable_backends, location, other_backend_pairs, run_owned,
    store_dir, text, write_store,
};
use test_support::{assert_unchanged, single_broker, snapshot, unique_name};

/// Creates `<app>-rewards-changelog` with `partitions` partitions and writes
/// `customer-NNNN -> N.0` for `keys` keys into partition 0.
fn topic_with_records(servers: &str, app: &str, partitions: i32, keys: u32) {
    common::append_records(servers, app, partitions, 0..keys);
}

fn restore(
    servers: &str,
    dir: &std::path::Path,
    app: &str,
    backend: &str,
    extra: &[&str],
) -> Vec<String> {
    let mut out = args(&[
        &["restore", "--bootstrap-servers", servers, "--timeout", "30"],
        extra,
    ]);
    out.extend(location(dir, app, backend));
    out
}

#[test]
fn on_a_real_broker_restore_refuses_what_is_not_its_backends_store() {
    let Some(servers) = single_broker() else {
        return;
    };
    let app = unique_name("cli-foreign");
    topic_with_records(&servers, &app, 1, 20);
    for (written, asked) in other_backend_pairs() {
        let dir = tempfile::tempdir().unwrap();
        write_store(written, dir.path(), &app, 0, 10);
        let before = snapshot(dir.path());
        let output = run_owned(&restore(
            &servers,
            dir.path(),
            &app,
            asked,
            &["--partitions", "0"],
        ));
        assert_exit(&output, 1);
        let text = text(&output);
        assert!(
            text.contains("not this backend's store")
                && text.contains(&format!("use --backend {written}"))
                && text.contains(&store_dir(dir.path(), &app, 0).display().to_string())
                && !text.contains("wiped"),
            "{asked} over {written}: {text}"
        );
        assert_unchanged(dir.path(), &before);
    }
    // Files nobody recognises.
    let dir = tempfile::tempdir().unwrap();
    let unknown = store_dir(dir.path(), &app, 0);
    std::fs::create_dir_all(&unknown).unwrap();
    std::fs::write(unknown.join("notes.txt"), b"someone's notes").unwrap();
    let before = snapshot(dir.path());
    for backend in durable_backends() {
        let output = run_owned(&restore(
            &servers,
            dir.path(),
            &app,
            backend,
            &["--partitions", "0"],
        ));
        assert_exit(&output, 1);
        assert!(text(&output).contains("notes.txt"), "{}", text(&output));
        assert_unchanged(dir.path(), &before);
    }
}

#[test]
fn on_a_real_broker_a_failed_restore_leaves_no_store_and_a_good_one_is_read_untouched() {
    let Some(servers) = single_broker() else {
        return;
    };
    let app = unique_name("cli-failed-restore");
    topic_with_records(&servers, &app, 1, 50);
    for backend in durable_backends() {
        let dir = tempfile::tempdir().unwrap();
        // String keys restored as i64 keys: the first record does not fit.
        let output = run_owned(&restore(
            &servers,
            dir.path(),
            &app,
            backend,
            &["--partitions", "0", "--key-serde", "i64"],
        ));
        assert_exit(&output, 1);
        assert!(text(&output).contains("i64"), "{}", text(&output));
        assert!(
            !store_dir(dir.path(), &app, 0).exists(),
            "{backend}: a failed restore left a store behind"
        );
        assert!(
            !dir.path().join(&app).exists(),
            "{backend}: a failed restore left empty <app>/<partition>/ directories behind"
        );
        assert!(
            text(&output).contains("removed the empty store this run created"),
            "{}",
            text(&output)
        );
        let mut inspect = args(&[&["inspect", "--partition", "0"]]);
        inspect.extend(location(dir.path(), &app, backend));
        let output = run_owned(&inspect);
        assert_exit(&output, 1);
        assert!(text(&output).contains("not found"), "{}", text(&output));

        // The right serdes restore it; inspect and verify then change not a byte.
        let output = run_owned(&restore(
            &servers,
            dir.path(),
            &app,
            backend,
            &["--partitions", "0"],
        ));
        assert_exit(&output, 0);
        let before = snapshot(dir.path());
        let output = run_owned(&inspect);
        assert_exit(&output, 0);
        assert!(text(&output).contains("entries: 50"), "{}", text(&output));
        let mut verify = args(&[&[
            "verify",
            "--partition",
            "0",
            "--bootstrap-servers",
            &servers,
        ]]);
        verify.extend(location(dir.path(), &app, backend));
        let output = run_owned(&verify);
        assert_exit(&output, 0);
        assert!(text(&output).contains("verified"), "{}", text(&output));
        // A restore with nothing to do says so and rewrites nothing.
        let output = run_owned(&restore(
            &servers,
            dir.path(),
            &app,
            backend,
            &["--partitions", "0"],
        ));
        assert_exit(&output, 0);
        assert!(
            text(&output).contains("restored 0 records"),
            "{}",
            text(&output)
        );
        assert_unchanged(dir.path(), &before);
    }
}

#[test]
fn on_a_real_broker_a_partition_the_topic_lacks_is_reported_at_once() {
    let Some(servers) = single_broker() else {
        return;
    };
    let app = unique_name("cli-missing-partition");
    topic_with_records(&servers, &app, 4, 1);
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let output = run_owned(&restore(
        &servers,
        dir.path(),
        &app,
        durable(),
        &["--partitions", "1,7"],
    ));
    assert_exit(&output, 1);
    let text = text(&output);
    assert!(
        text.contains("4 partition(s)") && text.contains("partition 7 does not exist"),
        "{text}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?} with a 30 s timeout",
        started.elapsed()
    );
    assert!(!store_dir(dir.path(), &app, 7).exists());
}

#[test]
fn a_disk_error_in_the_demo_is_not_blamed_on_kafka() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-directory");
    std::fs::write(&file, b"x").unwrap();
    // Below a file: the usage check refuses a file itself, this fails when created.
    let state_dir = file.join("state");
    let output = common::run(&[
        "demo",
        "--purchases",
        "2000",
        "--state-dir",
        state_dir.to_str().unwrap(),
    ]);
    assert_exit(&output, 1);
    let text = text(&output);
    let error = text
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_default();
    assert!(
        error.contains("Not a directory") && error.contains(file.to_str().unwrap()),
        "{text}"
    );
    assert!(
        !error.contains("Kafka"),
        "a disk error labelled as Kafka's: {error}"
    );
}
