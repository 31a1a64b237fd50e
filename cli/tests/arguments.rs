//! No panic, no hang, on any argument: names follow Kafka's topic rules and stay inside
//! the state directory, numbers are bounded, every usage error exits 2, a closed stdout
//! ends quietly (141), SIGINT removes the demo's temporary directory (130).

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, args, assert_exit, durable, location, run, run_owned, text, write_store};
use proptest::prelude::*;
use test_support::{assert_unchanged, snapshot, try_eventually};

/// Names that break a rule, with words the error must contain.
const BAD_NAMES: [(&str, &str); 7] = [
    ("../../../outside", "'/'"),
    ("/x/y", "'/'"),
    ("my app/x", "' '"),
    ("", "empty"),
    (".", "\".\""),
    ("..", "\"..\""),
    ("caf\u{e9}", "'\u{e9}'"),
];

#[test]
fn names_that_break_kafkas_topic_rules_are_usage_errors_and_create_nothing() {
    let root = tempfile::tempdir().unwrap();
    let state = root.path().join("a").join("b").join("state");
    std::fs::create_dir_all(&state).unwrap();
    let before = snapshot(root.path());
    for (name, rule) in BAD_NAMES {
        for flag in ["--store", "--application-id"] {
            let (app, store) = if flag == "--store" {
                ("app", name)
            } else {
                (name, "rewards")
            };
            let state = state.to_str().unwrap();
            for command in [
                vec!["inspect", "--partition", "0"],
                vec![
                    "restore",
                    "--partitions",
                    "0",
                    "--bootstrap-servers",
                    "127.0.0.1:1",
                ],
                vec![
                    "verify",
                    "--partition",
                    "0",
                    "--bootstrap-servers",
                    "127.0.0.1:1",
                ],
            ] {
                let output = run_owned(&args(&[
                    &command,
                    &[
                        "--state-dir",
                        state,
                        "--application-id",
                        app,
                        "--store",
                        store,
                    ],
                ]));
                assert_exit(&output, 2);
                let text = text(&output);
                assert!(
                    text.contains(flag) && text.contains(rule),
                    "{command:?} {flag} {name:?}: {text}"
                );
            }
        }
    }
    assert_unchanged(root.path(), &before);
}

#[test]
fn a_changelog_topic_longer_than_249_characters_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let app = "a".repeat(200);
    let store = "s".repeat(40);
    let output = run(&[
        "inspect",
        "--partition",
        "0",
        "--state-dir",
        dir.path().to_str().unwrap(),
        "--application-id",
        &app,
        "--store",
        &store,
    ]);
    assert_exit(&output, 2);
    assert!(text(&output).contains("at most 249"), "{}", text(&output));
    let long = "a".repeat(300);
    let output = run(&[
        "inspect",
        "--partition",
        "0",
        "--state-dir",
        dir.path().to_str().unwrap(),
        "--application-id",
        &long,
        "--store",
        "rewards",
    ]);
    assert_exit(&output, 2);
    assert!(
        text(&output).contains("300 characters"),
        "{}",
        text(&output)
    );
}

#[test]
fn numbers_out_of_range_are_usage_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().to_str().unwrap();
    let huge = u64::MAX.to_string();
    let location = [
        "--state-dir",
        state,
        "--application-id",
        "a",
        "--store",
        "s",
    ];
    let cases: Vec<Vec<&str>> = vec![
        vec!["demo", "--timeout", &huge],
        vec!["demo", "--timeout", "0"],
        vec!["demo", "--commit-every", &huge],
        vec!["demo", "--purchases", &huge],
        vec!["demo", "--purchases", "-1"],
        vec!["demo", "--partitions", "0"],
        vec!["demo", "--partitions", "100000"],
        vec!["demo", "--instances", "17"],
        vec![
            "verify",
            "--partition",
            "0",
            "--bootstrap-servers",
            "h:1",
            "--timeout",
            &huge,
        ],
        vec!["inspect", "--partition", "-1"],
        vec!["inspect", "--partition", "0", "--backend", "memory"],
        vec!["inspect", "--partition", "2147483648"],
        vec![
            "restore",
            "--bootstrap-servers",
            "h:1",
            "--partitions",
            "0",
            "--parallel",
            "0",
        ],
        vec![
            "restore",
            "--bootstrap-servers",
            "h:1",
            "--partitions",
            "0",
            "--timeout",
            &huge,
        ],
        vec![
            "restore",
            "--bootstrap-servers",
            "h:1",
            "--partitions",
            "0,0",
        ],
        vec![
            "restore",
            "--bootstrap-servers",
            "h:1",
            "--partitions",
            "0,,1",
        ],
    ];
    for case in cases {
        let mut full = case.clone();
        if case[0] != "demo" {
            full.extend(location);
        }
        let started = Instant::now();
        let output = run(&full);
        assert_exit(&output, 2);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{case:?} took {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn bad_bootstrap_servers_are_usage_errors_at_once() {
    let dir = tempfile::tempdir().unwrap();
    for servers in [
        "",
        " ",
        "host:0",
        "host:99999",
        ":9092",
        "localhost",
        "a:9092,b",
    ] {
        let mut full = vec![
            "restore",
            "--bootstrap-servers",
            servers,
            "--partitions",
            "0",
        ];
        let location = location(dir.path(), "app", durable());
        full.extend(location.iter().map(String::as_str));
        let started = Instant::now();
        let output = run(&full);
        assert_exit(&output, 2);
        assert!(
            text(&output).contains("--bootstrap-servers"),
            "{}",
            text(&output)
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    let output = run(&["demo", "--bootstrap-servers", ""]);
    assert_exit(&output, 2);
    // Without a port librdkafka would quietly take 9092: the error says so instead.
    let mut full = vec![
        "restore",
        "--bootstrap-servers",
        "localhost",
        "--partitions",
        "0",
    ];
    let location = location(dir.path(), "app", durable());
    full.extend(location.iter().map(String::as_str));
    let output = run(&full);
    assert_exit(&output, 2);
    assert!(
        text(&output).contains("localhost:9092"),
        "{}",
        text(&output)
    );
}

#[test]
fn a_state_dir_that_is_a_file_is_a_usage_error_naming_it_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let before = snapshot(dir.path());
    let file = file.to_str().unwrap();
    for command in [
        vec![
            "restore",
            "--partitions",
            "0",
            "--bootstrap-servers",
            "127.0.0.1:1",
        ],
        vec!["inspect", "--partition", "0"],
    ] {
        let mut full = command.clone();
        full.extend([
            "--state-dir",
            file,
            "--store",
            "rewards",
            "--application-id",
            "app",
        ]);
        let started = Instant::now();
        let output = run(&full);
        assert_exit(&output, 2);
        assert!(text(&output).contains(file), "{}", text(&output));
        assert!(
            text(&output).contains("not a directory"),
            "{}",
            text(&output)
        );
        // A usage error: no broker was asked (127.0.0.1:1 would take the whole timeout).
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    let output = run(&[
        "demo",
        "--state-dir",
        file,
        "--bootstrap-servers",
        "127.0.0.1:1",
    ]);
    assert_exit(&output, 2);
    assert_unchanged(dir.path(), &before);
}

#[test]
fn a_group_demo_with_more_instances_than_partitions_is_refused() {
    let started = Instant::now();
    let output = run(&[
        "demo",
        "--instances",
        "3",
        "--partitions",
        "1",
        "--bootstrap-servers",
        "127.0.0.1:1",
    ]);
    assert_exit(&output, 2);
    assert!(
        text(&output).contains("--instances 3 needs at least 3 partitions"),
        "{}",
        text(&output)
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn usage_errors_of_the_group_demo_exit_2() {
    for case in [
        vec!["demo", "--instances", "2"],
        vec![
            "demo",
            "--instances",
            "2",
            "--bootstrap-servers",
            "h:1",
            "--commit-every",
            "5",
        ],
        vec![
            "demo",
            "--instances",
            "3",
            "--bootstrap-servers",
            "h:1",
            "--relocate-to",
            "redb",
        ],
        vec![
            "demo",
            "--instances",
            "2",
            "--bootstrap-servers",
            "h:1",
            "--snapshots",
            "file:///tmp/x",
        ],
    ] {
        let output = run(&case);
        assert_exit(&output, 2);
        assert!(
            text(&output).contains("Usage: statestore demo"),
            "{}",
            text(&output)
        );
    }
}

#[test]
fn a_key_the_key_serde_cannot_encode_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    write_store(durable(), dir.path(), "app", 0, 10);
    let mut full = args(&[&[
        "inspect",
        "--partition",
        "0",
        "--key-serde",
        "i64",
        "--get",
        "not-a-number",
    ]]);
    full.extend(location(dir.path(), "app", durable()));
    let output = run_owned(&full);
    assert_exit(&output, 2);
    assert!(text(&output).contains("not-a-number"), "{}", text(&output));
}

#[test]
fn a_huge_demo_is_refused_before_any_work() {
    let started = Instant::now();
    let output = run(&["demo", "--purchases", "1000000000"]);
    assert_exit(&output, 1);
    assert!(text(&output).contains("5 MiB"), "{}", text(&output));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refusing took {:?}",
        started.elapsed()
    );
}

/// Runs `args` with stdout a pipe whose reading end is already closed, and `TMPDIR`
/// set to `tmp`.
fn with_closed_stdout(args: &[String], tmp: &std::path::Path) -> std::process::Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    Command::new(BIN)
        .args(args)
        .env("TMPDIR", tmp)
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

#[test]
fn a_closed_stdout_ends_quietly_with_the_sigpipe_status() {
    let dir = tempfile::tempdir().unwrap();
    write_store(durable(), dir.path(), "app", 0, 10);
    let mut inspect = args(&[&["inspect", "--partition", "0"]]);
    inspect.extend(location(dir.path(), "app", durable()));
    let tmp = tempfile::tempdir().unwrap();
    let demo = args(&[&["demo", "--purchases", "20000", "--partitions", "2"]]);
    for command in [inspect, demo] {
        let output = with_closed_stdout(&command, tmp.path());
        assert_eq!(
            output.status.code(),
            Some(141),
            "{command:?}: {}",
            text(&output)
        );
        assert!(output.stderr.is_empty(), "{command:?}: {}", text(&output));
    }
    // The demo's temporary directory went with it.
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[test]
fn sigint_during_the_demo_removes_its_temporary_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["demo", "--purchases", "200000", "--partitions", "4"])
        .env("TMPDIR", tmp.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once instance A has stores on disk (whichever backend is the default,
    // stores are the only files the demo writes there).
    let has_stores = || walk(tmp.path()).iter().any(|p| p.is_file());
    if let Err(timed_out) = try_eventually(
        Duration::from_secs(60),
        "the demo writing a store",
        has_stores,
    ) {
        let _ = child.kill();
        panic!("{timed_out}");
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exited = try_eventually(
        Duration::from_secs(30),
        "the demo stopping after SIGINT",
        || child.try_wait().unwrap(),
    );
    let status = match exited {
        Ok(status) => status,
        Err(timed_out) => {
            let _ = child.kill();
            panic!("{timed_out}");
        }
    };
    assert_eq!(status.code(), Some(130));
    assert_eq!(walk(tmp.path()), Vec::<std::path::PathBuf>::new());
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            out.push(path.clone());
            if path.is_dir() {
                out.extend(walk(&path));
            }
        }
    }
    out
}

/// Mostly values the parser accepts, so the commands get past it and compute.
fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (1u64..300).prop_map(|v| v.to_string()),
        2 => (1u64..=1_000_000_000).prop_map(|v| v.to_string()),
        1 => any::<u64>().prop_map(|v| v.to_string()),
        1 => any::<i64>().prop_map(|v| v.to_string()),
        1 => Just(u64::MAX.to_string()),
        1 => "[0-9,-]{0,12}",
    ]
}

const DEMO_NUMBERS: [&str; 5] = [
    "--instances",
    "--partitions",
    "--purchases",
    "--commit-every",
    "--timeout",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// The built binary with random values for every numeric flag of the commands that
    /// end before reaching a broker: any exit code but a panic's, within a bound.
    #[test]
    fn the_binary_never_panics_on_numeric_flags(
        flag in 0..DEMO_NUMBERS.len(),
        value in number(),
        partition in number(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        // A file where the state directory should be: the demo stops at its first store.
        let not_a_dir = dir.path().join("file");
        std::fs::write(&not_a_dir, b"x").unwrap();
        let mut demo_args = vec!["demo".to_owned(), "--state-dir".to_owned(),
            not_a_dir.to_str().unwrap().to_owned()];
        demo_args.extend([DEMO_NUMBERS[flag].to_owned(), value]);
        let mut inspect_args = args(&[&["inspect", "--partition", &partition]]);
        inspect_args.extend(location(dir.path(), "app", durable()));
        for command in [demo_args, inspect_args] {
            let started = Instant::now();
            let output = Command::new(BIN)
                .args(&command)
                .env("TMPDIR", dir.path())
                .output()
                .unwrap();
            let text = text(&output);
            prop_assert!(matches!(output.status.code(), Some(0..=2)), "{:?}: {}", command, text);
            prop_assert!(!text.contains("panicked"), "{:?}: {}", command, text);
            prop_assert!(started.elapsed() < Duration::from_secs(30), "{:?}", command);
        }
    }
}
