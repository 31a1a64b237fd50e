//! `statestore snapshot`, `restore --snapshots`, `inspect --snapshots` and
//! `demo --snapshots` on a real broker: a store relocated from a snapshot replays only the
//! tail written after it and verifies against the changelog (and, in the demo, equals a
//! full replay beside it); a damaged snapshot falls back to a full replay and says so; a
//! bad or unreachable snapshot store is a clear error.

mod common;

use common::{append_records, args, assert_exit, durable, location, run, run_owned, text};
use test_support::{single_broker, unique_name};

fn restore(servers: &str, dir: &std::path::Path, app: &str, backend: &str, url: &str) -> String {
    let mut command = args(&[&[
        "restore",
        "--bootstrap-servers",
        servers,
        "--timeout",
        "30",
        "--partitions",
        "0",
        "--json",
        "--snapshots",
        url,
    ]]);
    command.extend(location(dir, app, backend));
    let output = run_owned(&command);
    assert_exit(&output, 0);
    text(&output)
}

fn json_field<'a>(text: &'a str, field: &str) -> &'a str {
    let at = text
        .find(&format!("\"{field}\":"))
        .unwrap_or_else(|| panic!("no {field} in {text}"));
    let rest = &text[at + field.len() + 3..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    &rest[..end]
}

#[test]
fn on_a_real_broker_a_store_relocates_from_its_snapshot_and_the_tail() {
    let Some(servers) = single_broker() else {
        return;
    };
    let snapshotting = statestore::backends()
        .iter()
        .filter(|b| b.capability().durable && b.capability().snapshots)
        .map(|b| b.name());
    for backend in snapshotting {
        let app = unique_name("cli-snapshots");
        let objects = tempfile::tempdir().unwrap();
        let url = format!("file://{}", objects.path().display());
        append_records(&servers, &app, 1, 0..300);
        let source = tempfile::tempdir().unwrap();
        // No snapshot yet: a full replay, and the reason on stderr.
        let first = restore(&servers, source.path(), &app, backend, &url);
        assert!(first.contains("no snapshot"), "{backend}: {first}");
        assert_eq!(json_field(&first, "records"), "300", "{first}");

        let mut snapshot = args(&[&["snapshot", "--partitions", "0", "--snapshots", &url]]);
        snapshot.extend(location(source.path(), &app, backend));
        let output = run_owned(&snapshot);
        assert_exit(&output, 0);
        assert!(
            text(&output).contains("at offset 299"),
            "{backend}: {}",
            text(&output)
        );

        append_records(&servers, &app, 1, 300..340);
        let target = tempfile::tempdir().unwrap();
        let relocated = restore(&servers, target.path(), &app, backend, &url);
        assert_eq!(
            json_field(&relocated, "records"),
            "40",
            "{backend}: {relocated}"
        );
        assert_eq!(json_field(&relocated, "position"), "299", "{relocated}");
        assert_ne!(
            json_field(&relocated, "bytes_downloaded"),
            "0",
            "{relocated}"
        );

        let mut verify = args(&[&[
            "verify",
            "--bootstrap-servers",
            &servers,
            "--partition",
            "0",
        ]]);
        verify.extend(location(target.path(), &app, backend));
        let output = run_owned(&verify);
        assert_exit(&output, 0);

        let mut inspect = args(&[&["inspect", "--partition", "0", "--snapshots", &url]]);
        inspect.extend(location(target.path(), &app, backend));
        let output = run_owned(&inspect);
        assert_exit(&output, 0);
        let listed = text(&output);
        assert!(
            listed.contains("partition 0 in file://") && listed.contains(": 1\n"),
            "{listed}"
        );
        assert!(listed.contains("offset 299"), "{listed}");

        // Every stored file flipped: the download fails its checksum and a second
        // relocation replays everything, saying why.
        for file in files_under(objects.path()) {
            if file.parent().and_then(|p| p.file_name()) == Some("files".as_ref()) {
                let mut bytes = std::fs::read(&file).unwrap();
                if let Some(first) = bytes.first_mut() {
                    *first ^= 0xff;
                    std::fs::write(&file, bytes).unwrap();
                }
            }
        }
        let fallback = tempfile::tempdir().unwrap();
        let replayed = restore(&servers, fallback.path(), &app, backend, &url);
        assert_eq!(
            json_field(&replayed, "records"),
            "340",
            "{backend}: {replayed}"
        );
        assert!(replayed.contains("\"snapshot\":null"), "{replayed}");
        assert!(replayed.contains("failed"), "{replayed}");
    }
}

fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            found.push(path);
        }
    }
    found
}

/// The two figures of the demo's comparison row `label`: from snapshots, full replay.
fn compared(output: &str, label: &str) -> (String, String) {
    let line = output
        .lines()
        .find(|line| line.trim_start().starts_with(label))
        .unwrap_or_else(|| panic!("no row {label:?} in {output}"));
    let figures: Vec<&str> = line[line.find(label).unwrap() + label.len()..]
        .split("  ")
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .collect();
    match figures.as_slice() {
        [left, right] => ((*left).to_owned(), (*right).to_owned()),
        [left] => ((*left).to_owned(), String::new()),
        _ => panic!("row {label:?}: {line:?}"),
    }
}

fn number(figure: &str) -> u64 {
    figure
        .parse()
        .unwrap_or_else(|err| panic!("{figure:?}: {err}"))
}

#[test]
fn on_a_real_broker_the_demo_relocates_from_snapshots_beside_a_full_replay() {
    let Some(servers) = single_broker() else {
        return;
    };
    let backend = durable();
    let objects = tempfile::tempdir().unwrap();
    let url = format!("file://{}", objects.path().display());
    // 2 partitions of 10,000 purchases, a commit every 500: A is killed after about
    // 13 commits per partition, its last snapshot taken at the 10th.
    let output = run(&[
        "demo",
        "--bootstrap-servers",
        &servers,
        "--backend",
        backend,
        "--partitions",
        "2",
        "--purchases",
        "20000",
        "--commit-every",
        "500",
        "--timeout",
        "30",
        "--snapshots",
        &url,
    ]);
    let out = text(&output);
    assert_exit(&output, 0);
    assert!(out.contains("instance A took 4 snapshots"), "{out}");
    assert_eq!(compared(&out, "partitions from a snapshot").0, "2", "{out}");
    let (tail, full) = compared(&out, "changelog records replayed");
    let (tail, full) = (number(&tail), number(&full));
    assert!(
        0 < tail && tail < full,
        "the snapshot path replays a tail, fewer records than the full replay: {out}"
    );
    let (downloaded, replay_downloaded) = compared(&out, "bytes downloaded");
    assert!(number(&downloaded) > 0, "{out}");
    assert_eq!(replay_downloaded, "0", "{out}");
    assert_eq!(compared(&out, "contents equal").0, "yes", "{out}");
    assert!(out.contains("verified: the totals"), "{out}");
}

#[test]
fn the_demo_refuses_a_bad_or_unreachable_snapshot_store() {
    let output = run(&["demo", "--purchases", "1000", "--snapshots", "nope://x"]);
    assert_exit(&output, 1);
    assert!(
        text(&output).contains("snapshot store URL"),
        "{}",
        text(&output)
    );

    // Nothing listens on port 9: refused at once, and after two retries an error that
    // names the store rather than a wait of object_store's default three minutes.
    let output = std::process::Command::new(common::BIN)
        .args([
            "demo",
            "--purchases",
            "1000",
            "--timeout",
            "5",
            "--snapshots",
            "s3://no-bucket/demo",
        ])
        .env("AWS_ENDPOINT", "http://127.0.0.1:9")
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_ACCESS_KEY_ID", "nobody")
        .env("AWS_SECRET_ACCESS_KEY", "nothing")
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap();
    assert_exit(&output, 1);
    assert!(
        text(&output).contains("reaching the snapshot store s3://no-bucket"),
        "{}",
        text(&output)
    );
}
