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

/// The customer sequence of [`purchase`] repeats every this many purchases:
/// `7i + i/3` grows by 10500 + 500 = 11000, a multiple of [`CUSTOMERS`], per period.
const PERIOD: u64 = 1500;

/// Purchases per partition, from one period and the remainder: a size check must not
/// walk a billion purchases before it can refuse them (`--purchases 1000000000` took 35 s).
pub fn counts(purchases: u64, partitions: i32) -> Vec<u64> {
    let mut period = vec![0u64; partitions.max(1) as usize];
    let mut rest = period.clone();
    for i in 0..PERIOD {
        let p = partition_of(purchase(i).0, partitions);
        period[p] += 1;
        if i < purchases % PERIOD {
            rest[p] += 1;
        }
    }
    let full = purchases / PERIOD;
    period
        .iter()
        .zip(&rest)
        .map(|(per, rest)| per.saturating_mul(full).saturating_add(*rest))
        .collect()
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

/// Purchases per customer, computed independently of any store.
pub fn expected_visits(purchases: u64) -> BTreeMap<String, i64> {
    let mut visits = BTreeMap::new();
    for i in 0..purchases {
        *visits.entry(customer_name(purchase(i).0)).or_default() += 1;
    }
    visits
}

/// An upper bound of the changelog bytes and record batches of one partition that
/// receives `count` purchases: every purchase writes one record, and up to
/// `commit_every` are written twice (the crashed instance's uncommitted interval).
pub fn changelog_size(count: u64, commit_every: u64) -> (u64, u64) {
    // Saturating: the answer only has to be compared with the mock's limits.
    let records = count.saturating_add(commit_every);
    let key_len = customer_name(CUSTOMERS - 1).len() as u64;
    let batches = (count / commit_every.max(1)).saturating_add(3);
    (
        records
            .saturating_mul(key_len + 8 + RECORD_OVERHEAD)
            .saturating_add(batches.saturating_mul(BATCH_OVERHEAD)),
        batches,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_from_the_period_equal_counting_every_purchase() {
        for purchases in [0, 1, 1499, 1500, 1501, 4321, 20_000] {
            for partitions in [1, 3, 4, 7] {
                let mut slow = vec![0; partitions as usize];
                for i in 0..purchases {
                    slow[partition_of(purchase(i).0, partitions)] += 1;
                }
                assert_eq!(
                    counts(purchases, partitions),
                    slow,
                    "{purchases}/{partitions}"
                );
            }
        }
    }

    #[test]
    fn sizes_of_absurd_arguments_saturate() {
        assert_eq!(changelog_size(u64::MAX, u64::MAX).0, u64::MAX);
        assert_eq!(counts(u64::MAX, 1), vec![u64::MAX]);
    }
}
