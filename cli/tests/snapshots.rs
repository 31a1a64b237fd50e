//! `statestore snapshot`, `restore --snapshots` and `inspect --snapshots` on a real
//! broker: a store relocated from a snapshot replays only the tail written after it and
//! verifies against the changelog; a damaged snapshot falls back to a full replay and
//! says so.

mod common;

use common::{append_records, args, assert_exit, location, run_owned, text};
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
