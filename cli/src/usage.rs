//! Argument checks beyond single flags, and parsers for the flags that name things.
//!
//! Every usage error exits 2 before any work starts, with clap's message format: a value
//! no flag accepts (in the parsers below, which clap calls), and combinations that do not
//! fit ([`check`]). Names are checked with the library's own rules
//! (`state_core::validate_*`), so the CLI and the library can never disagree.

use std::collections::BTreeSet;

use clap::ArgMatches;
use clap::error::ErrorKind;

use crate::backend::Backend;
use crate::serdes::SerdeKind;

/// `--application-id`: Kafka's topic-name rules.
pub fn application_id(value: &str) -> Result<String, String> {
    state_core::validate_application_id(value)
        .map(|()| value.to_owned())
        .map_err(|err| err.message().to_owned())
}

/// `--store`: Kafka's topic-name rules.
pub fn store_name(value: &str) -> Result<String, String> {
    state_core::validate_store_name(value)
        .map(|()| value.to_owned())
        .map_err(|err| err.message().to_owned())
}

/// `--state-dir`: a path, not an empty string, not an existing file.
pub fn state_dir(value: &str) -> Result<std::path::PathBuf, String> {
    if value.is_empty() {
        return Err("the state directory must not be empty".to_owned());
    }
    let path = std::path::PathBuf::from(value);
    // Checked before anything is created (a topic, a directory): a file here failed
    // late before, with "File exists" and no path.
    match std::fs::metadata(&path) {
        Ok(meta) if !meta.is_dir() => Err(format!(
            "{} is a file, not a directory; give a directory (it is created when missing)",
            path.display()
        )),
        _ => Ok(path),
    }
}

/// `--bootstrap-servers`: comma-separated `host[:port]`, each with a host and a port
/// between 1 and 65535. An empty list waited out the whole timeout before.
pub fn bootstrap_servers(value: &str) -> Result<String, String> {
    if value.trim().is_empty() {
        return Err("no bootstrap server given; expected HOST:PORT[,HOST:PORT...]".to_owned());
    }
    for server in value.split(',') {
        let server = server.trim();
        // An optional `PLAINTEXT://`-style prefix, as librdkafka accepts.
        let address = server.rsplit("://").next().unwrap_or(server);
        let (host, port) = match address.rsplit_once(':') {
            // `[::1]:9092`, `host:9092`; a bare IPv6 address has more colons and no port.
            Some((host, port)) if !host.contains(':') || host.ends_with(']') => (host, Some(port)),
            _ => (address, None),
        };
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err(format!(
                "bootstrap server {server:?} has no host; expected HOST:PORT"
            ));
        }
        let Some(port) = port else {
            // librdkafka would quietly take 9092; say which port instead of guessing.
            return Err(format!(
                "bootstrap server {server:?} has no port; expected HOST:PORT (Kafka's usual port is 9092: {host}:9092)"
            ));
        };
        if !port.parse::<u16>().is_ok_and(|port| port > 0) {
            return Err(format!(
                "bootstrap server {server:?} has port {port:?}; expected 1 to 65535"
            ));
        }
    }
    Ok(value.to_owned())
}

/// Checks what single flags cannot: the changelog topic's length, flags that exclude or
/// need each other, keys the key serde cannot encode, a partition given twice.
pub fn check(matches: &ArgMatches) -> Result<(), clap::Error> {
    let Some((name, m)) = matches.subcommand() else {
        return Ok(());
    };
    let problem = match name {
        "demo" => demo(m),
        "restore" => location(m).or_else(|| repeated_partition(m)),
        "inspect" => location(m).or_else(|| on_disk(m)).or_else(|| keys(m)),
        "verify" => location(m).or_else(|| on_disk(m)),
        _ => None,
    };
    let Some((kind, message)) = problem else {
        return Ok(());
    };
    let mut command = crate::cli();
    // Built, so the subcommand's usage line reads `statestore <command> ...`.
    command.build();
    let mut command = command.find_subcommand(name).cloned().unwrap_or(command);
    Err(command.error(kind, message))
}

/// A usage problem: clap's kind for it, and what to say.
type Problem = Option<(ErrorKind, String)>;

fn demo(m: &ArgMatches) -> Problem {
    let instances = m.get_one::<u64>("instances").copied().unwrap_or(1);
    if instances <= 1 {
        return None;
    }
    if m.contains_id("relocate-to")
        || m.contains_id("snapshots")
        || m.value_source("commit-every") == Some(clap::parser::ValueSource::CommandLine)
    {
        return Some((
            ErrorKind::ArgumentConflict,
            "--relocate-to, --commit-every and --snapshots apply to the single-instance demo, \
             not to --instances"
                .to_owned(),
        ));
    }
    let partitions = m.get_one::<i32>("partitions").copied().unwrap_or(6);
    if i64::from(partitions) < i64::try_from(instances).unwrap_or(i64::MAX) {
        // An instance that owns nothing would join, restart and leave without moving a
        // partition, and each step would report a settled group it never waited for.
        return Some((
            ErrorKind::ValueValidation,
            format!(
                "--instances {instances} needs at least {instances} partitions (--partitions \
                 {partitions}): with more instances than partitions some own none, and the \
                 joins, the static restart and the leave would move nothing on them"
            ),
        ));
    }
    if !m.contains_id("bootstrap-servers") {
        return Some((
            ErrorKind::MissingRequiredArgument,
            "--instances needs --bootstrap-servers (a real Kafka cluster): librdkafka's \
             embedded mock cluster does not run consumer-group rebalances faithfully"
                .to_owned(),
        ));
    }
    None
}

fn location(m: &ArgMatches) -> Problem {
    let app = m.get_one::<String>("application-id")?;
    let store = m.get_one::<String>("store")?;
    state_core::changelog_topic(app, store)
        .err()
        .map(|err| (ErrorKind::ValueValidation, err.message().to_owned()))
}

/// `inspect` and `verify` read a store on disk, which a non-durable backend never has.
fn on_disk(m: &ArgMatches) -> Problem {
    let backend = Backend::parse(m.get_one::<String>("backend")?).ok()?;
    (!backend.capability().durable).then(|| {
        (
            ErrorKind::ArgumentConflict,
            format!(
                "the {} backend keeps nothing on disk to read; use --backend {}",
                backend.name(),
                Backend::on_disk_alternatives()
            ),
        )
    })
}

fn repeated_partition(m: &ArgMatches) -> Problem {
    let mut seen = BTreeSet::new();
    m.get_many::<i32>("partitions")?
        .find(|p| !seen.insert(**p))
        .map(|p| {
            (
                ErrorKind::ArgumentConflict,
                format!("partition {p} is given twice in --partitions"),
            )
        })
}

fn keys(m: &ArgMatches) -> Problem {
    let serde = SerdeKind::parse(m.get_one::<String>("key-serde")?).ok()?;
    let get = m.get_one::<String>("get").into_iter();
    let range = m.get_many::<String>("range").into_iter().flatten();
    get.chain(range).find_map(|key| {
        serde.encode(key).err().map(|err| {
            (
                ErrorKind::ValueValidation,
                format!("key {key:?}: {}", err.message()),
            )
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_servers_need_a_host_and_a_valid_port() {
        for good in [
            "127.0.0.1:9092",
            "a:1,b:65535",
            "[::1]:9092",
            "PLAINTEXT://h:9092",
        ] {
            assert!(bootstrap_servers(good).is_ok(), "{good}");
        }
        for bad in [
            "", " ", "a:0", "a:70000", ":9092", "a:x", "a:9092,", "a b:1", "broker", "::1",
        ] {
            assert!(bootstrap_servers(bad).is_err(), "{bad:?}");
        }
    }
}
