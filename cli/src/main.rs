//! `statestore`: run the rewards demo, pre-warm stores from a changelog, inspect and
//! verify local stores. Argument parsing and dispatch only; each command has a module.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

/// This crate's `println!`: one line to stdout through [`output::out`], which ends the
/// process quietly when stdout is closed instead of panicking like `std`'s. Defined
/// before the modules so it is the `println!` they all use.
macro_rules! println {
    () => {
        $crate::output::out(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::output::out(format_args!($($arg)*))
    };
}

/// This crate's `eprintln!`: one line to stderr through [`output::err`], never a panic.
macro_rules! eprintln {
    ($($arg:tt)*) => {
        $crate::output::err(format_args!($($arg)*))
    };
}

mod backend;
mod committed_view;
mod demo;
mod demo_snapshots;
mod errors;
mod exit;
mod group_instance;
mod inspect;
mod intervals;
mod kafka;
mod new_dirs;
mod output;
mod progress;
mod restore;
mod restore_watch;
mod scale_out;
mod serdes;
mod serve;
mod snapshot;
mod snapshots;
mod stop;
mod usage;
mod verify;
mod workload;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Arg, ArgAction, ArgMatches, Command, value_parser};
use state_core::{DEFAULT_STALL_TIMEOUT, Error, ErrorKind, Result};

use crate::backend::{Backend, Location};
use crate::serdes::{KeyValueSerdes, SerdeKind};

fn main() -> ExitCode {
    // Usage errors exit 2 from inside clap, before any work: single flags in clap's
    // parsers, combinations in `usage::check`.
    let matches = cli().get_matches();
    if let Err(err) = usage::check(&matches) {
        err.exit();
    }
    let outcome = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Error::from)
        .and_then(|runtime| {
            runtime.block_on(async {
                tokio::spawn(exit::on_signal()?);
                dispatch(&matches).await
            })
        });
    let code = match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        // Stopped by a signal: the handler and the command have said what happened.
        Err(err) if err.kind() == ErrorKind::Closed && stop::signalled().is_some() => {
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    };
    // A signal that stopped registered work at a safe point: the work has ended, so the
    // process ends now, with the signal's code.
    if let Some(signal) = stop::signalled() {
        exit::exit(signal);
    }
    code
}

async fn dispatch(matches: &ArgMatches) -> Result<bool> {
    match matches.subcommand() {
        Some(("demo", m)) if instances(m) > 1 => {
            scale_out::run(&scale_out::ScaleOutOptions {
                backend: backend(m, "backend")?,
                bootstrap_servers: m.get_one::<String>("bootstrap-servers").cloned(),
                instances: instances(m),
                partitions: *m.get_one::<i32>("partitions").unwrap_or(&6),
                purchases: *m.get_one::<u64>("purchases").unwrap_or(&60_000),
                state_dir: m.get_one::<PathBuf>("state-dir").cloned(),
                timeout: timeout(m),
                serve: m.get_flag("serve"),
            })
            .await
        }
        Some(("demo", m)) if m.get_flag("serve") => Err(Error::invalid_input(
            "--serve needs --instances N (above 1): it serves the scale-out's instances",
        )),
        Some(("demo", m)) => {
            demo::run(&demo::DemoOptions {
                backend: backend(m, "backend")?,
                relocate_to: m
                    .get_one::<String>("relocate-to")
                    .map(|b| Backend::parse(b))
                    .transpose()?,
                bootstrap_servers: m.get_one::<String>("bootstrap-servers").cloned(),
                partitions: *m.get_one::<i32>("partitions").unwrap_or(&4),
                purchases: *m.get_one::<u64>("purchases").unwrap_or(&200_000),
                commit_every: *m.get_one::<u64>("commit-every").unwrap_or(&1000),
                state_dir: m.get_one::<PathBuf>("state-dir").cloned(),
                timeout: timeout(m),
                snapshots: m.get_one::<String>("snapshots").cloned(),
            })
            .await
        }
        Some(("restore", m)) => {
            restore::run(&restore::RestoreCommand {
                location: location(m)?,
                bootstrap_servers: servers(m)?,
                partitions: m
                    .get_many::<i32>("partitions")
                    .map(|p| p.copied().collect())
                    .unwrap_or_default(),
                serdes: serdes(m)?,
                read_uncommitted: m.get_flag("read-uncommitted"),
                timeout: timeout(m),
                stall_timeout: stall_timeout(m),
                parallel: m
                    .get_one::<u64>("parallel")
                    .map_or(4, |&n| usize::try_from(n).unwrap_or(4)),
                batch_size: m
                    .get_one::<u64>("batch-size")
                    .and_then(|&n| usize::try_from(n).ok()),
                json: m.get_flag("json"),
                snapshots: m.get_one::<String>("snapshots").cloned(),
            })
            .await
        }
        Some(("snapshot", m)) => {
            snapshot::run(&snapshot::SnapshotCommand {
                location: location(m)?,
                partitions: m
                    .get_many::<i32>("partitions")
                    .map(|p| p.copied().collect())
                    .unwrap_or_default(),
                snapshots: m
                    .get_one::<String>("snapshots")
                    .cloned()
                    .unwrap_or_default(),
                keep: m
                    .get_one::<u64>("keep")
                    .map_or(3, |&n| usize::try_from(n).unwrap_or(3)),
                json: m.get_flag("json"),
            })
            .await
        }
        Some(("inspect", m)) => {
            inspect::run(&inspect::InspectCommand {
                location: location(m)?,
                partition: partition(m),
                get: m.get_one::<String>("get").cloned(),
                range: m
                    .get_many::<String>("range")
                    .map(|r| r.cloned().collect::<Vec<_>>())
                    .and_then(|r| Some((r.first()?.clone(), r.get(1)?.clone()))),
                serdes: serdes(m)?,
                snapshots: m.get_one::<String>("snapshots").cloned(),
            })
            .await
        }
        Some(("verify", m)) => {
            verify::run(&verify::VerifyCommand {
                location: location(m)?,
                partition: partition(m),
                bootstrap_servers: servers(m)?,
                serdes: serdes(m)?,
                read_uncommitted: m.get_flag("read-uncommitted"),
                timeout: timeout(m),
                stall_timeout: stall_timeout(m),
            })
            .await
        }
        _ => Err(Error::invalid_input(
            "no command given; see statestore --help",
        )),
    }
}

/// The largest `--timeout`: a day. Deadlines are computed from it.
const MAX_TIMEOUT_SECS: u64 = 24 * 3600;
/// The largest `--purchases` and `--commit-every`: far beyond a demo's size, and small
/// enough that no sum or product of them overflows.
const MAX_COUNT: u64 = 1_000_000_000;

fn cli() -> Command {
    Command::new("statestore")
        .about("Fault-tolerant, relocatable local state stores: demo, restore, inspect, verify")
        .version(env!("CARGO_PKG_VERSION"))
        .subcommand_required(true)
        .arg_required_else_help(true)
        .subcommand(
            Command::new("demo")
                .about("Run the rewards workload, kill it mid-stream, relocate and restore it, and verify the totals")
                .long_about(
                    "Runs the rewards workload (customer -> reward points, String -> f64) over N partitions \
                     with exactly-once changelog logging. Instance A processes a deterministic purchase stream, \
                     committing every --commit-every purchases per partition, and is killed mid-stream. Instance B \
                     starts in a new state directory (with --relocate-to's backend), restores every partition from \
                     the changelog, continues from the last committed input positions and finishes. The totals are \
                     checked against an independent computation; the exit code is 1 if they differ.\n\n\
                     With --snapshots URL instance A also snapshots each partition every 5 commits into URL, \
                     instance B starts each partition from its newest snapshot and replays only the changelog \
                     after it, and a full replay of the same changelog into another new directory runs beside \
                     it: the two relocations' figures (records replayed, bytes downloaded, time per stage) are \
                     printed side by side, and their contents must be equal (exit code 1 otherwise).\n\n\
                     Without --bootstrap-servers the changelog lives on librdkafka's embedded MOCK cluster, which \
                     drops a partition's data past 5 MiB; sizes that would exceed it are refused.\n\n\
                     With --instances N > 1 it runs a scale-out instead: N instances of one consumer group \
                     (cooperative-sticky, at-least-once) join one by one while purchases arrive in N+2 waves; \
                     each step prints who owns which partitions and how each moved partition was restored \
                     (cold, or only the tail from a kept directory). Then instance 1, a static member \
                     (group.instance.id), restarts and gets its partitions back without a rebalance, \
                     replaying only their tails. Then instance 2 leaves cleanly and the \
                     remaining instances' stores are verified against an independent computation. It needs a \
                     real cluster (--bootstrap-servers): the mock cluster's group rebalances are not faithful.",
                )
                .arg(default_backend(backend_arg("backend", "Backend of instance A")))
                .arg(backend_arg("relocate-to", "Backend of instance B [default: same as --backend]"))
                .arg(Arg::new("bootstrap-servers").long("bootstrap-servers").value_name("HOST:PORT")
                    .value_parser(usage::bootstrap_servers)
                    .help("A real Kafka cluster [default: the embedded mock cluster]"))
                .arg(Arg::new("instances").long("instances").value_name("N").default_value("1")
                    .value_parser(value_parser!(u64).range(1..=16))
                    .help("Above 1: instances of one consumer group join one by one while partitions and their state move between them; then instance 1 (a static member) restarts and instance 2 leaves. Needs --bootstrap-servers"))
                .arg(Arg::new("partitions").long("partitions").value_name("N")
                    .value_parser(value_parser!(i32).range(1..=256))
                    .help("Input and changelog partitions [default: 4; 6 with --instances]"))
                .arg(Arg::new("purchases").long("purchases").value_name("N")
                    .value_parser(value_parser!(u64).range(1..=MAX_COUNT))
                    .help("Purchases in the stream [default: 200000; 60000 with --instances]"))
                .arg(Arg::new("commit-every").long("commit-every").value_name("N").default_value("1000")
                    .value_parser(value_parser!(u64).range(1..=MAX_COUNT)).help("Purchases per partition between commits"))
                .arg(Arg::new("state-dir").long("state-dir").value_name("DIR").value_parser(usage::state_dir)
                    .help("Keep both instances' state under DIR [default: a temporary directory, removed at exit]"))
                .arg(Arg::new("serve").long("serve").action(ArgAction::SetTrue)
                    .help("With --instances: every instance serves queries over HTTP on 127.0.0.1 (GET /stores/rewards/keys/CUSTOMER, forwarded to the owner; /metrics, /ready), and each step reads a customer's total through every instance. Needs the binary's `query` feature"))
                .arg(snapshots_arg("Instance A snapshots each partition into URL (s3://bucket/prefix, file:///path) every 5 commits; instance B relocates from the snapshots plus the changelog tail, shown side by side with a full replay of the same changelog, and both must end equal"))
                .arg(timeout_arg()),
        )
        .subcommand(
            isolation_args(location_args(Command::new("restore")
                .about("Pre-warm local stores from their changelog topic <application-id>-<store>-changelog")
                .long_about(
                    "Restores the given partitions of a store from its changelog topic \
                     <application-id>-<store>-changelog into --state-dir, with a progress bar. Running it again \
                     replays only the records added since. Works on changelogs written by Kafka Streams \
                     (plain String/Double/Long bytes). Never creates topics: a missing topic is an error.",
                ))
                .arg(servers_arg())
                .arg(Arg::new("partitions").long("partitions").value_name("P,P,...").required(true)
                    .value_delimiter(',').value_parser(value_parser!(i32).range(0..))
                    .help("Changelog partitions to restore, comma-separated"))
                .arg(Arg::new("parallel").long("parallel").value_name("N").default_value("4")
                    .value_parser(value_parser!(u64).range(1..=64))
                    .help("Partitions restored at the same time"))
                .arg(Arg::new("batch-size").long("batch-size").value_name("RECORDS")
                    .value_parser(value_parser!(u64).range(1..=10_000_000))
                    .help("Records applied to the store per batch (one write with its position) [default: the backend's]"))
                .arg(Arg::new("json").long("json").action(ArgAction::SetTrue)
                    .help("Print one JSON object (records, milliseconds, per partition) instead of text"))
                .arg(snapshots_arg("Start each store from its newest usable snapshot in URL when it is ahead of the local copy, replaying only the changelog after it")))
                .arg(timeout_arg())
                .arg(stall_timeout_arg()),
        )
        .subcommand(
            location_args(Command::new("snapshot")
                .about("Upload local stores as snapshots, so a new owner downloads them and replays only the changelog after")
                .long_about(
                    "Checkpoints each partition's local store and uploads it to --snapshots (s3://bucket/prefix, \
                     file:///path; credentials, region and endpoint from AWS_*): only files the store does not \
                     hold yet are sent. Then keeps the newest --keep snapshots of each partition.",
                ))
                .arg(Arg::new("partitions").long("partitions").value_name("P,P,...").required(true)
                    .value_delimiter(',').value_parser(value_parser!(i32).range(0..))
                    .help("Partitions to snapshot, comma-separated"))
                .arg(snapshots_arg("Where snapshots go").required(true))
                .arg(Arg::new("keep").long("keep").value_name("N").default_value("3")
                    .value_parser(value_parser!(u64).range(1..=1000))
                    .help("Snapshots kept per partition"))
                .arg(Arg::new("json").long("json").action(ArgAction::SetTrue)
                    .help("Print one JSON object instead of text")),
        )
        .subcommand(
            location_args(Command::new("inspect")
                .about("Show a local store: position, approximate count, first and last keys, lookups"))
                .arg(partition_arg())
                .arg(Arg::new("get").long("get").value_name("KEY").help("Print the value of KEY"))
                .arg(Arg::new("range").long("range").num_args(2).value_names(["FROM", "TO"])
                    .help("List entries with FROM <= key <= TO (in serialized-key order)"))
                .arg(snapshots_arg("List the partition's snapshots in URL too")),
        )
        .subcommand(
            isolation_args(location_args(Command::new("verify")
                .about("Compare a local store with a replay of its changelog partition; exit 1 on divergence or when there is nothing to compare"))
                .arg(partition_arg())
                .arg(servers_arg()))
                .arg(timeout_arg())
                .arg(stall_timeout_arg()),
        )
}

/// `--state-dir --backend --store --application-id --key-serde --value-serde`.
fn location_args(command: Command) -> Command {
    command
        .arg(
            Arg::new("state-dir")
                .long("state-dir")
                .value_name("DIR")
                .required(true)
                .value_parser(usage::state_dir)
                .help("The root state directory"),
        )
        .arg(default_backend(backend_arg(
            "backend",
            "The store's backend",
        )))
        .arg(
            Arg::new("store")
                .long("store")
                .value_name("NAME")
                .required(true)
                .value_parser(usage::store_name)
                .help("The store name ([a-zA-Z0-9._-], as in Kafka topic names)"),
        )
        .arg(
            Arg::new("application-id")
                .long("application-id")
                .value_name("ID")
                .required(true)
                .value_parser(usage::application_id)
                .help("The application id (prefix of the changelog topic; [a-zA-Z0-9._-])"),
        )
        .arg(serde_arg("key-serde", "string", "Serde of keys"))
        .arg(serde_arg("value-serde", "f64", "Serde of values"))
}

fn backend_arg(name: &'static str, help: &'static str) -> Arg {
    Arg::new(name)
        .long(name)
        .value_name("BACKEND")
        .value_parser(Backend::names())
        .help(help)
}

/// `--backend` defaults to the first durable backend built in.
fn default_backend(arg: Arg) -> Arg {
    match Backend::preferred() {
        Some(backend) => arg.default_value(backend.name()),
        None => arg.required(true),
    }
}

fn serde_arg(name: &'static str, default: &'static str, help: &'static str) -> Arg {
    Arg::new(name)
        .long(name)
        .value_name("SERDE")
        .value_parser(serdes::NAMES)
        .default_value(default)
        .help(help)
}

fn servers_arg() -> Arg {
    Arg::new("bootstrap-servers")
        .long("bootstrap-servers")
        .value_name("HOST:PORT")
        .required(true)
        .value_parser(usage::bootstrap_servers)
        .help("Kafka bootstrap servers, comma-separated")
}

fn partition_arg() -> Arg {
    Arg::new("partition")
        .long("partition")
        .value_name("P")
        .required(true)
        .value_parser(value_parser!(i32).range(0..))
        .help("The partition")
}

fn snapshots_arg(help: &'static str) -> Arg {
    Arg::new("snapshots")
        .long("snapshots")
        .value_name("URL")
        .value_parser(clap::builder::NonEmptyStringValueParser::new())
        .help(help)
}

/// `--read-uncommitted`, and `--exactly-once`, which asked for read-committed before that
/// became the default: still accepted, so scripts that pass it keep working.
fn isolation_args(command: Command) -> Command {
    command
        .arg(
            Arg::new("read-uncommitted")
                .long("read-uncommitted")
                .action(ArgAction::SetTrue)
                .conflicts_with("exactly-once")
                .help(
                    "Read records of aborted and open transactions too (default: committed records \
                     only, which on a log written without transactions is every record)",
                ),
        )
        .arg(
            Arg::new("exactly-once")
                .long("exactly-once")
                .action(ArgAction::SetTrue)
                .hide(true)
                .help("Read committed records only: the default now"),
        )
}

fn timeout_arg() -> Arg {
    Arg::new("timeout")
        .long("timeout")
        .value_name("SECS")
        .default_value("10")
        .value_parser(value_parser!(u64).range(1..=MAX_TIMEOUT_SECS))
        .help("Kafka metadata timeout in seconds (at most a day)")
}

/// `--stall-timeout`'s default: the library's [`DEFAULT_STALL_TIMEOUT`], 300 s
/// (`parse_tests` checks they agree).
const STALL_TIMEOUT_DEFAULT: &str = "300";

fn stall_timeout_arg() -> Arg {
    Arg::new("stall-timeout")
        .long("stall-timeout")
        .value_name("SECS")
        .default_value(STALL_TIMEOUT_DEFAULT)
        .value_parser(value_parser!(u64).range(1..=MAX_TIMEOUT_SECS))
        .help("Give up when a partition yields no records for SECS seconds (an unreachable broker, a partition without a leader); the wait is reported after 2 s. A restore keeps what it restored for the next run to resume (at most a day)")
}

fn backend(m: &ArgMatches, name: &str) -> Result<Backend> {
    match m.get_one::<String>(name) {
        Some(name) => Backend::parse(name),
        None => Backend::preferred()
            .ok_or_else(|| Error::invalid_input(format!("--{name} is required"))),
    }
}

fn location(m: &ArgMatches) -> Result<Location> {
    let text = |name: &str| m.get_one::<String>(name).cloned().unwrap_or_default();
    Ok(Location {
        state_dir: m
            .get_one::<PathBuf>("state-dir")
            .cloned()
            .unwrap_or_default(),
        backend: backend(m, "backend")?,
        store: text("store"),
        application_id: text("application-id"),
    })
}

fn serdes(m: &ArgMatches) -> Result<KeyValueSerdes> {
    let kind = |name: &str, default: &str| {
        SerdeKind::parse(m.get_one::<String>(name).map_or(default, String::as_str))
    };
    Ok(KeyValueSerdes {
        key: kind("key-serde", "string")?,
        value: kind("value-serde", "f64")?,
    })
}

fn servers(m: &ArgMatches) -> Result<String> {
    m.get_one::<String>("bootstrap-servers")
        .cloned()
        .ok_or_else(|| Error::invalid_input("--bootstrap-servers is required"))
}

fn partition(m: &ArgMatches) -> i32 {
    m.get_one::<i32>("partition").copied().unwrap_or(0)
}

fn instances(m: &ArgMatches) -> usize {
    m.get_one::<u64>("instances")
        .map_or(1, |&n| usize::try_from(n).unwrap_or(1))
}

fn timeout(m: &ArgMatches) -> Duration {
    Duration::from_secs(m.get_one::<u64>("timeout").copied().unwrap_or(10))
}

fn stall_timeout(m: &ArgMatches) -> Duration {
    Duration::from_secs(
        m.get_one::<u64>("stall-timeout")
            .copied()
            .unwrap_or(DEFAULT_STALL_TIMEOUT.as_secs()),
    )
}

#[cfg(test)]
mod parse_tests;
