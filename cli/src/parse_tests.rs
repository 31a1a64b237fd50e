//! The argument parser under random numbers: every numeric flag, alone and together.

use clap::ArgMatches;
use proptest::prelude::*;

use super::*;

#[test]
fn the_command_line_is_well_formed() {
    super::cli().debug_assert();
}

#[test]
fn the_stall_timeout_defaults_to_the_librarys() {
    assert_eq!(
        STALL_TIMEOUT_DEFAULT.parse::<u64>().unwrap(),
        DEFAULT_STALL_TIMEOUT.as_secs()
    );
}

/// Every numeric flag, with its command.
const NUMERIC: [(&str, &str); 13] = [
    ("demo", "--instances"),
    ("demo", "--partitions"),
    ("demo", "--purchases"),
    ("demo", "--commit-every"),
    ("demo", "--timeout"),
    ("restore", "--partitions"),
    ("restore", "--parallel"),
    ("restore", "--batch-size"),
    ("restore", "--timeout"),
    ("restore", "--stall-timeout"),
    ("inspect", "--partition"),
    ("verify", "--partition"),
    ("verify", "--timeout"),
];

/// A command line of `command` that parses, without `skip`.
fn base(command: &str, skip: &str) -> Vec<String> {
    let mut args = vec!["statestore".to_owned(), command.to_owned()];
    let location = [
        ("--state-dir", "/state"),
        ("--application-id", "app"),
        ("--store", "rewards"),
    ];
    let needs: &[(&str, &str)] = match command {
        "restore" => &[("--bootstrap-servers", "h:1"), ("--partitions", "0")],
        "inspect" => &[("--partition", "0")],
        "verify" => &[("--bootstrap-servers", "h:1"), ("--partition", "0")],
        _ => &[],
    };
    let location: &[(&str, &str)] = if command == "demo" { &[] } else { &location };
    for (flag, value) in location.iter().chain(needs) {
        if *flag != skip {
            args.extend([(*flag).to_owned(), (*value).to_owned()]);
        }
    }
    args
}

fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<u64>().prop_map(|v| v.to_string()),
        any::<i64>().prop_map(|v| v.to_string()),
        (0u64..2000).prop_map(|v| v.to_string()),
        Just(u64::MAX.to_string()),
        Just(i64::MIN.to_string()),
        Just(format!("{}0", u64::MAX)),
        "[0-9,.e+-]{0,24}",
        any::<String>(),
    ]
}

/// Everything the commands compute from their numbers before any I/O; every timeout
/// must fit in a deadline (`Instant + u64::MAX s` panicked).
fn derive(matches: &ArgMatches) -> Result<(), TestCaseError> {
    let Some((command, m)) = matches.subcommand() else {
        return Ok(());
    };
    if command != "inspect" {
        let timeout = timeout(m);
        prop_assert!(std::time::Instant::now().checked_add(timeout).is_some());
    }
    match command {
        "demo" => {
            let _ = instances(m);
            let partitions = m.get_one::<i32>("partitions").copied().unwrap_or(4);
            let purchases = m.get_one::<u64>("purchases").copied().unwrap_or(200_000);
            let commit_every = m.get_one::<u64>("commit-every").copied().unwrap_or(1000);
            for count in workload::counts(purchases, partitions) {
                let _ = workload::changelog_size(count, commit_every);
            }
            let _ = demo::crash_point(purchases, commit_every);
        }
        "inspect" | "verify" => {
            let _ = partition(m);
            let _ = location(m).and_then(|l| l.store_dir(partition(m)));
        }
        _ => {
            let _ = location(m);
        }
    }
    Ok(())
}

/// Parses, checks and derives; a refused command line must be a usage error (2).
fn drive(args: &[String]) -> Result<(), TestCaseError> {
    match cli().try_get_matches_from(args) {
        Ok(matches) => match usage::check(&matches) {
            Ok(()) => derive(&matches)?,
            Err(err) => prop_assert_eq!(err.exit_code(), 2, "{}", err),
        },
        Err(err) => prop_assert_eq!(err.exit_code(), 2, "{:?}: {}", args, err),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn every_numeric_flag_parses_or_is_a_usage_error_never_a_panic(
        which in 0..NUMERIC.len(),
        value in number(),
    ) {
        let (command, flag) = NUMERIC[which];
        let mut args = base(command, flag);
        args.extend([flag.to_owned(), value]);
        drive(&args)?;
    }

    #[test]
    fn all_demo_numbers_at_once_never_panic(
        values in proptest::collection::vec(number(), 5),
    ) {
        let mut args = base("demo", "");
        for ((_, flag), value) in NUMERIC[..5].iter().zip(values) {
            args.extend([(*flag).to_owned(), value]);
        }
        drive(&args)?;
    }
}
