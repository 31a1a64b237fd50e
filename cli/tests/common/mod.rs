//! Helpers shared by the CLI test files: running the binary and stores made through the
//! library (snapshots, the broker and unique names are `test_support`'s).
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use statestore::{
    KeyValueBytesStoreSupplier, Position, Serde, Serdes, StoreContext, Stores, WriteBatch,
};

pub const BIN: &str = env!("CARGO_BIN_EXE_statestore");

/// The store name every test uses.
pub const STORE: &str = "rewards";

pub fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

/// Stdout and stderr together.
pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Asserts the exit code and that nothing panicked.
pub fn assert_exit(output: &Output, code: i32) {
    let text = text(output);
    assert_eq!(output.status.code(), Some(code), "{text}");
    assert!(!text.contains("panicked"), "{text}");
}

/// `--state-dir DIR --application-id APP --store rewards --backend BACKEND`.
pub fn location(dir: &Path, app: &str, backend: &str) -> Vec<String> {
    [
        "--state-dir",
        dir.to_str().unwrap(),
        "--application-id",
        app,
        "--store",
        STORE,
        "--backend",
        backend,
    ]
    .map(str::to_owned)
    .to_vec()
}

pub fn args(parts: &[&[&str]]) -> Vec<String> {
    parts
        .iter()
        .flat_map(|p| p.iter().map(|s| (*s).to_owned()))
        .collect()
}

pub fn run_owned(args: &[String]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

/// A supplier of `backend` for the store [`STORE`].
pub fn supplier(backend: &str) -> Arc<dyn KeyValueBytesStoreSupplier> {
    match Stores::key_value_store(backend, STORE) {
        Ok(supplier) => supplier,
        Err(err) => panic!("{err}"),
    }
}

/// The durable backends this build has, in statestore's order of preference.
pub fn durable_backends() -> Vec<&'static str> {
    statestore::backends()
        .iter()
        .filter(|backend| backend.capability().durable)
        .map(|backend| backend.name())
        .collect()
}

/// The durable backend `--backend` defaults to.
pub fn durable() -> &'static str {
    durable_backends()[0]
}

/// Every (written, asked) pair of two different durable backends.
pub fn other_backend_pairs() -> Vec<(&'static str, &'static str)> {
    let durable = durable_backends();
    let mut pairs = Vec::new();
    for written in &durable {
        for asked in &durable {
            if written != asked {
                pairs.push((*written, *asked));
            }
        }
    }
    pairs
}

/// Where the CLI looks for partition `partition` of application `app`.
pub fn store_dir(state_dir: &Path, app: &str, partition: i32) -> PathBuf {
    StoreContext::new(app, partition, 1, state_dir)
        .unwrap()
        .store_dir(STORE)
        .unwrap()
}

/// A closed store written through the library: `customer-NNNN -> N` for `keys`, with
/// every other key then overwritten and every fifth deleted (so RocksDB's estimate of the
/// number of keys is wrong), at position `keys * 2`. Returns the number of entries left.
pub fn write_store(backend: &str, state_dir: &Path, app: &str, partition: i32, keys: u32) -> u64 {
    let store = supplier(backend)
        .open(&store_dir(state_dir, app, partition))
        .unwrap();
    let key = |i: u32| {
        Serdes::string()
            .serialize(&format!("customer-{i:04}"))
            .unwrap()
    };
    let value = |v: f64| Serdes::f64().serialize(&v).unwrap();
    let mut batch = WriteBatch::new();
    for i in 0..keys {
        batch.put(key(i), value(f64::from(i)));
    }
    store.write(&batch).unwrap();
    store.flush().unwrap();
    let mut batch = WriteBatch::new();
    for i in (0..keys).step_by(2) {
        batch.put(key(i), value(f64::from(i) + 0.5));
    }
    for i in (0..keys).step_by(5) {
        batch.delete(key(i));
    }
    store
        .write_with_position(&batch, &Position::of(partition, i64::from(keys) * 2))
        .unwrap();
    store.close().unwrap();
    u64::from(keys - keys.div_ceil(5))
}

/// Whether this process runs as root, which ignores file permissions.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .any(|line| line.starts_with("Uid:") && line.split_whitespace().nth(1) == Some("0"))
    })
}

/// Runs the binary without root's power over permissions: as `nobody` (via `setpriv`)
/// when this test runs as root, else as the current user. The binary is linked into
/// `scratch` (made traversable), since root's build directory may not be; so are the
/// shared libraries on `LD_LIBRARY_PATH` (a linked RocksDB lives under root's home).
pub fn run_unprivileged(scratch: &Path, args: &[String]) -> Output {
    if !is_root() {
        return run_owned(args);
    }
    std::fs::set_permissions(scratch, std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = scratch.join("statestore");
    link_or_copy(Path::new(BIN), &bin);
    let libs = scratch.join("lib");
    std::fs::create_dir_all(&libs).unwrap();
    std::fs::set_permissions(&libs, std::fs::Permissions::from_mode(0o755)).unwrap();
    for dir in std::env::var_os("LD_LIBRARY_PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
    {
        for entry in std::fs::read_dir(&dir).into_iter().flatten() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                link_or_copy(&entry.path(), &libs.join(entry.file_name()));
            }
        }
    }
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(&bin)
        .args(args)
        .env("LD_LIBRARY_PATH", &libs)
        .output()
        .unwrap_or_else(|err| panic!("running as nobody needs setpriv (util-linux): {err}"))
}

/// Makes `to` a hard link of `from`, or a copy where a link cannot be made.
fn link_or_copy(from: &Path, to: &Path) {
    if !to.exists() && std::fs::hard_link(from, to).is_err() {
        std::fs::copy(from, to).unwrap();
    }
}

/// Sets mode `dirs` on `path` and every directory under it, `files` on every file.
pub fn chmod_tree(path: &Path, dirs: u32, files: u32) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            chmod_tree(&entry.unwrap().path(), dirs, files);
        }
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(dirs)).unwrap();
    } else {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(files)).unwrap();
    }
}

/// Creates `<app>-rewards-changelog` with `partitions` partitions if it is missing and
/// appends `customer-NNNN -> N.0` for every `N` of `keys` to partition 0, committed.
pub fn append_records(servers: &str, app: &str, partitions: i32, keys: std::ops::Range<u32>) {
    use statestore::{Changelog, ChangelogRecord, SinkOptions, TopicSpec, changelog_topic_name};
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let changelog = changelog_kafka::KafkaChangelog::new(
            changelog_kafka::KafkaChangelogConfig::new(servers)
                .with_client_id("statestore-cli-tests"),
        )
        .unwrap();
        let topic = changelog_topic_name(app, STORE);
        changelog
            .ensure_topic(&TopicSpec::changelog(
                &topic,
                partitions,
                &std::collections::BTreeMap::new(),
            ))
            .await
            .unwrap();
        let sink = changelog.sink(&SinkOptions::default()).await.unwrap();
        for i in keys {
            let key = Serdes::string()
                .serialize(&format!("customer-{i:04}"))
                .unwrap();
            let value = Serdes::f64().serialize(&f64::from(i)).unwrap();
            sink.append(&topic, 0, &ChangelogRecord::put(key, value, 0))
                .unwrap();
        }
        sink.commit(&state_core::SourceOffsets::none())
            .await
            .unwrap();
    });
}
