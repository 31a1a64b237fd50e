//! Runs the built `statestore` binary: demo on every backend (embedded broker), the
//! relocation, and restore / inspect / verify / errors on a real broker.

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_statestore");

/// The backends this binary has, in statestore's order of preference.
fn built() -> Vec<&'static str> {
    statestore::backends().iter().map(|b| b.name()).collect()
}

/// The persistent backend `--backend` defaults to (RocksDB is an opt-in feature).
fn durable() -> &'static str {
    statestore::backends()
        .iter()
        .find(|b| b.capability().durable)
        .map(|b| b.name())
        .unwrap()
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn assert_verified(output: &Output) {
    let text = text(output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(text.contains("verified: the totals"), "{text}");
}

fn small_demo(extra: &[&str]) -> Output {
    let mut args = vec!["demo", "--purchases", "20000", "--partitions", "2"];
    args.extend_from_slice(extra);
    run(&args)
}

#[test]
fn demo_on_the_embedded_broker_verifies_with_every_backend() {
    std::thread::scope(|scope| {
        let demos: Vec<_> = built()
            .into_iter()
            .map(|backend| {
                (
                    backend,
                    scope.spawn(move || small_demo(&["--backend", backend])),
                )
            })
            .collect();
        for (backend, demo) in demos {
            let output = demo.join().unwrap();
            assert!(
                text(&output).contains(&format!("({backend})")),
                "{}",
                text(&output)
            );
            assert_verified(&output);
        }
    });
}

#[test]
fn demo_relocates_from_the_default_backend_to_another() {
    let from = durable();
    let to = built().into_iter().find(|b| *b != from).unwrap();
    let output = small_demo(&["--backend", from, "--relocate-to", to]);
    assert_verified(&output);
    assert!(
        text(&output).contains(&format!("instance B ({to})")),
        "{}",
        text(&output)
    );
}

#[test]
fn asking_for_a_backend_not_built_in_names_the_feature() {
    let built = built();
    for name in statestore::backends().names() {
        if built.contains(&name) {
            continue;
        }
        let output = small_demo(&["--backend", name]);
        let text = text(&output);
        assert_eq!(output.status.code(), Some(1), "{text}");
        assert!(
            text.contains(&format!("built without the {name} backend")),
            "{text}"
        );
        assert!(text.contains(&format!("--features {name}")), "{text}");
    }
}

#[test]
fn demo_refuses_a_size_the_mock_would_drop() {
    let output = run(&["demo", "--purchases", "2000000", "--partitions", "1"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output).contains("5 MiB"), "{}", text(&output));
}

#[test]
fn every_command_has_help() {
    for command in ["demo", "restore", "inspect", "verify"] {
        let output = run(&[command, "--help"]);
        assert_eq!(output.status.code(), Some(0), "{command}");
        assert!(text(&output).contains("Usage: statestore"), "{command}");
    }
    assert_eq!(run(&["inspect"]).status.code(), Some(2));
}

#[test]
fn inspect_of_a_missing_state_dir_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let output = run(&[
        "inspect",
        "--state-dir",
        missing.to_str().unwrap(),
        "--application-id",
        "app",
        "--store",
        "rewards",
        "--partition",
        "0",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let text = text(&output);
    assert!(
        text.starts_with("error: ") && text.contains("does not exist"),
        "{text}"
    );
}

#[test]
fn an_unreachable_broker_is_named_after_a_bounded_wait() {
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let output = run(&[
        "restore",
        "--bootstrap-servers",
        "127.0.0.1:1",
        "--timeout",
        "2",
        "--application-id",
        "app",
        "--store",
        "rewards",
        "--state-dir",
        dir.path().to_str().unwrap(),
        "--partitions",
        "0",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let text = text(&output);
    assert!(
        text.contains("cannot reach") && text.contains("127.0.0.1:1"),
        "{text}"
    );
    assert!(started.elapsed().as_secs() < 30);
}

fn location<'a>(dir: &'a Path, app: &'a str) -> Vec<&'a str> {
    vec![
        "--state-dir",
        dir.to_str().unwrap(),
        "--application-id",
        app,
        "--store",
        "rewards",
        "--backend",
        durable(),
    ]
}

#[test]
fn on_a_real_broker_demo_restore_verify_and_inspect_work() {
    let Some(servers) = test_support::single_broker() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let demo_dir = dir.path().join("demo");
    let output = small_demo(&[
        "--bootstrap-servers",
        &servers,
        "--state-dir",
        demo_dir.to_str().unwrap(),
    ]);
    assert_verified(&output);
    let app = std::fs::read_dir(&demo_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let app = app.file_name().into_string().unwrap();

    let restored = dir.path().join("restored");
    let restore = |expect: &str| {
        let mut args = vec![
            "restore",
            "--bootstrap-servers",
            &servers,
            "--partitions",
            "0,1",
            "--exactly-once",
        ];
        args.extend(location(&restored, &app));
        let output = run(&args);
        let text = text(&output);
        assert_eq!(output.status.code(), Some(0), "{text}");
        assert!(text.contains(expect), "{text}");
    };
    restore("restored 20000 records in total");
    restore("restored 0 records in total");

    let mut args = vec![
        "verify",
        "--bootstrap-servers",
        &servers,
        "--partition",
        "1",
        "--exactly-once",
    ];
    args.extend(location(&restored, &app));
    let output = run(&args);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(text(&output).contains("verified"), "{}", text(&output));

    let mut args = vec!["inspect", "--partition", "1", "--get", "customer-0001"];
    args.extend(location(&restored, &app));
    let output = run(&args);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(
        text(&output).contains("get customer-0001: 621"),
        "{}",
        text(&output)
    );
}

#[test]
fn on_a_real_broker_an_unknown_topic_is_a_clear_error() {
    let Some(servers) = test_support::single_broker() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let app = test_support::unique_name("statestore-cli-missing");
    let mut args = vec![
        "restore",
        "--bootstrap-servers",
        &servers,
        "--partitions",
        "0",
    ];
    args.extend(location(dir.path(), &app));
    let output = run(&args);
    assert_eq!(output.status.code(), Some(1));
    let text = text(&output);
    assert!(
        text.contains("does not exist") && text.contains(&app),
        "{text}"
    );
}

#[test]
fn on_a_real_broker_a_group_of_three_scales_out_and_verifies() {
    let Some(servers) = test_support::single_broker() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let output = run(&[
        "demo",
        "--instances",
        "3",
        "--partitions",
        "4",
        "--purchases",
        "8000",
        "--backend",
        durable(),
        "--bootstrap-servers",
        &servers,
        "--state-dir",
        dir.path().to_str().unwrap(),
    ]);
    let text = text(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(text.contains("verified: the points and visits"), "{text}");
    for step in [
        "exactly-once",
        "through one transactional producer",
        "instance 2 joined",
        "instance 3 joined",
        "instance 1 restarted with its group.instance.id",
        // A static member's restart: its partitions come back, nobody else is called back.
        "rebalance callbacks on the other instances during the restart: 0",
        "reopened by instance 1, kept directory",
        "instance 2 left cleanly",
    ] {
        assert!(text.contains(step), "{text}");
    }
    assert!(text.contains("-> instance 3, cold"), "{text}");
    assert!(started.elapsed().as_secs() < 60, "{text}");
}

#[test]
fn a_group_demo_without_a_cluster_is_a_usage_error() {
    let output = run(&["demo", "--instances", "2"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output).contains("--instances needs --bootstrap-servers"),
        "{}",
        text(&output)
    );
}

#[cfg(feature = "query")]
#[test]
fn on_a_real_broker_the_group_demo_serves_queries_through_every_instance() {
    let Some(servers) = test_support::single_broker() else {
        return;
    };
    let output = run(&[
        "demo",
        "--instances",
        "3",
        "--partitions",
        "4",
        "--purchases",
        "4000",
        "--serve",
        "--bootstrap-servers",
        &servers,
    ]);
    let text = text(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(
        text.contains("serves queries: curl http://127.0.0.1:"),
        "{text}"
    );
    // After every step each instance answers for the customer, whoever owns it, and all
    // of them give the same total: the owner's.
    let answers: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("customer-0007 through instance"))
        .collect();
    assert!(answers.len() >= 9, "{text}");
    for answer in &answers {
        assert!(answer.contains(" points (partition "), "{answer}\n{text}");
    }
    let last: Vec<&str> = answers[answers.len() - 2..]
        .iter()
        .map(|l| l.split(": ").nth(1).unwrap())
        .collect();
    assert_eq!(last[0], last[1], "{text}");
}

#[test]
fn serve_without_a_group_is_refused() {
    let output = run(&["demo", "--serve"]);
    assert_ne!(output.status.code(), Some(0));
    assert!(
        text(&output).contains("--serve needs --instances"),
        "{}",
        text(&output)
    );
}
