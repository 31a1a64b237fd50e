//! The rewards workload of the demo: a deterministic purchase stream keyed by customer.

use std::collections::BTreeMap;

/// Distinct customers in the stream.
pub const CUSTOMERS: usize = 1000;

/// What librdkafka's mock cluster keeps per partition before it drops the oldest data.
pub const MOCK_PARTITION_BYTES: u64 = 5 * 1024 * 1024;
/// What the mock keeps per partition in message sets.
pub const MOCK_MESSAGE_SETS: u64 = 100_000;

/// Per-record bytes on the log besides key and value (record-format v2 varints,
/// generously rounded up), and per record batch (the v2 batch header).
const RECORD_OVERHEAD: u64 = 20;
const BATCH_OVERHEAD: u64 = 70;

/// Purchase `i`: (customer index, amount), as in `statestore/examples/rewards.rs` with
/// more customers so every partition gets work.
pub fn purchase(i: u64) -> (usize, f64) {
    let customer = ((i * 7 + i / 3) % CUSTOMERS as u64) as usize;
    let cents = ((i * 7919) % 10_000) as f64;
    (customer, cents / 100.0)
}

/// The key of customer `c`.
pub fn customer_name(c: usize) -> String {
    format!("customer-{c:04}")
}

/// The input partition of customer `c` (the stream is keyed by customer).
pub fn partition_of(c: usize, partitions: i32) -> usize {
    c % partitions.max(1) as usize
}

/// One reward point per whole currency unit spent.
pub fn points(amount: f64) -> f64 {
    amount.floor()
}

/// Purchases per partition.
pub fn counts(purchases: u64, partitions: i32) -> Vec<u64> {
    let mut counts = vec![0; partitions.max(1) as usize];
    for i in 0..purchases {
        counts[partition_of(purchase(i).0, partitions)] += 1;
    }
    counts
}

/// Totals per customer, computed independently of any store.
pub fn expected_totals(purchases: u64) -> BTreeMap<String, f64> {
    let mut totals = BTreeMap::new();
    for i in 0..purchases {
        let (customer, amount) = purchase(i);
        *totals.entry(customer_name(customer)).or_default() += points(amount);
    }
    totals
}

/// An upper bound of the changelog bytes and record batches of one partition that
/// receives `count` purchases: every purchase writes one record, and up to
/// `commit_every` are written twice (the crashed instance's uncommitted interval).
pub fn changelog_size(count: u64, commit_every: u64) -> (u64, u64) {
    let records = count + commit_every;
    let key_len = customer_name(CUSTOMERS - 1).len() as u64;
    let batches = count / commit_every.max(1) + 3;
    (
        records * (key_len + 8 + RECORD_OVERHEAD) + batches * BATCH_OVERHEAD,
        batches,
    )
}
