//! The rewards store from the README: customer -> reward points (String -> f64), logged to
//! a changelog. Instance A processes a stream of purchases and crashes mid-stream with
//! uncommitted work; instance B starts elsewhere (a new directory), restores the store from
//! the changelog, reprocesses from the last committed input position, and the totals are
//! checked against an independent computation.
//!
//! Run: `cargo run -p statestore --example rewards`

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use statestore::prelude::*;

const CUSTOMERS: [&str; 5] = ["alice", "bob", "carol", "dave", "erin"];
const PURCHASES: usize = 10_000;
const COMMIT_EVERY: usize = 500;
const CRASH_AT: usize = 6_789;

/// A deterministic purchase stream: (customer, amount in cents).
fn purchase(i: usize) -> (String, f64) {
    let customer = CUSTOMERS[(i * 7 + i / 3) % CUSTOMERS.len()];
    let cents = ((i * 7919) % 10_000) as f64;
    (customer.to_owned(), cents / 100.0)
}

/// One reward point per whole currency unit spent.
fn points(amount: f64) -> f64 {
    amount.floor()
}

fn builder() -> StoreBuilder<String, f64> {
    Stores::key_value_store_builder(
        Stores::in_memory_key_value_store("rewards"),
        Serdes::string(),
        Serdes::f64(),
    )
    .with_logging_enabled(HashMap::from([("min.insync.replicas".into(), "2".into())]))
}

/// Processes purchases `from..to`, committing every `COMMIT_EVERY`; returns the input
/// position covered by the last successful commit.
async fn process(
    store: &mut TypedKeyValueStore<String, f64>,
    from: usize,
    to: usize,
) -> Result<usize> {
    let mut committed = from;
    for i in from..to {
        let (customer, amount) = purchase(i);
        let total = store.get(&customer)?.unwrap_or(0.0) + points(amount);
        store.put(&customer, &total)?;
        if (i + 1) % COMMIT_EVERY == 0 {
            store.commit().await?;
            committed = i + 1;
        }
    }
    Ok(committed)
}

async fn run() -> Result<bool> {
    let changelog = Arc::new(InMemoryChangelog::new());
    let guarantee = ProcessingGuarantee::ExactlyOnce;

    // Instance A on its own state directory.
    let dir_a = tempfile::tempdir()?;
    let context_a = StoreContext::new("shop", 0, 1, dir_a.path())?
        .with_changelog(changelog.clone())
        .with_guarantee(guarantee);
    let mut store_a = builder().build(&context_a).await?;
    let committed = process(&mut store_a, 0, CRASH_AT).await?;
    println!(
        "instance A processed {CRASH_AT} purchases, committed {committed}, then crashed with {} uncommitted",
        CRASH_AT - committed
    );
    drop(store_a); // the crash: no commit, no close

    // Instance B somewhere else: nothing local, everything comes from the changelog.
    let dir_b = tempfile::tempdir()?;
    let context_b = StoreContext::new("shop", 0, 1, dir_b.path())?
        .with_changelog(changelog.clone())
        .with_guarantee(guarantee);
    let mut store_b = builder().build(&context_b).await?;
    if let Some(summary) = store_b.restore_summary() {
        println!(
            "instance B restored {} changelog records (offsets {}..{}) in {:?}",
            summary.restored, summary.from, summary.end, summary.elapsed
        );
    }
    process(&mut store_b, committed, PURCHASES).await?;
    store_b.commit().await?;
    println!("instance B processed purchases {committed}..{PURCHASES} and committed");

    let mut expected: BTreeMap<String, f64> = BTreeMap::new();
    for i in 0..PURCHASES {
        let (customer, amount) = purchase(i);
        *expected.entry(customer).or_default() += points(amount);
    }
    let actual: BTreeMap<String, f64> = store_b.all()?.collect::<Result<_>>()?;
    for (customer, total) in &actual {
        println!("  {customer:>6}: {total:>10.0} points");
    }
    Ok(actual == expected)
}

fn main() -> std::process::ExitCode {
    match futures::executor::block_on(run()) {
        Ok(true) => {
            println!(
                "check passed: totals equal an independent computation over all {PURCHASES} purchases"
            );
            std::process::ExitCode::SUCCESS
        }
        Ok(false) => {
            eprintln!("check FAILED: totals differ from the independent computation");
            std::process::ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("error: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
