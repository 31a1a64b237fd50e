//! The rewards workload of the scale-out tests: input records `customer -> cents`
//! (UTF-8 key, 8-byte big-endian value) add to the customer's total.
//!
//! At-least-once replays input after a crash, so each total carries the input offset of
//! the last purchase it counts and a replayed purchase is skipped: the idempotent-consumer
//! pattern. Since the changelog holds a prefix of the store's operations, a restored
//! store's totals and offsets always agree, and the final totals are exact.

use std::borrow::Borrow;
use std::collections::BTreeMap;

use state_core::{ByteStore, Error, Offset, Partition, Result, Serde, TypedKeyValueStore};

/// A customer's total and the input offset of the last purchase in it (JSON in query
/// answers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Reward {
    /// Sum of the purchases, in cents.
    pub total: i64,
    /// Input offset of the last purchase counted.
    pub last_offset: Offset,
}

/// 16 bytes: total then last offset, both big-endian.
#[derive(Debug, Clone, Copy, Default)]
pub struct RewardSerde;

impl Serde<Reward> for RewardSerde {
    fn name(&self) -> &str {
        "Reward"
    }

    fn serialize(&self, value: &Reward) -> Result<Vec<u8>> {
        let mut bytes = value.total.to_be_bytes().to_vec();
        bytes.extend_from_slice(&value.last_offset.to_be_bytes());
        Ok(bytes)
    }

    fn deserialize(&self, bytes: &[u8]) -> Result<Reward> {
        let (Some(total), Some(last)) = (bytes.get(..8), bytes.get(8..16)) else {
            return Err(Error::invalid_input(format!(
                "a Reward is 16 bytes, got {}",
                bytes.len()
            )));
        };
        let word = |b: &[u8]| i64::from_be_bytes(b.try_into().unwrap_or([0; 8]));
        Ok(Reward {
            total: word(total),
            last_offset: word(last),
        })
    }
}

/// Adds the purchase at `offset` to its customer's total unless the total already
/// counts it (at-least-once: replayed input is skipped).
pub fn apply<S: Borrow<ByteStore>>(
    store: &TypedKeyValueStore<String, Reward, S>,
    offset: Offset,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) -> Result<()> {
    update(store, offset, key, value, true)
}

/// Adds the purchase at `offset` to its customer's total, counted or not: exactly-once
/// must never replay it, and a total counting a purchase twice shows it did.
pub fn add<S: Borrow<ByteStore>>(
    store: &TypedKeyValueStore<String, Reward, S>,
    offset: Offset,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) -> Result<()> {
    update(store, offset, key, value, false)
}

fn update<S: Borrow<ByteStore>>(
    store: &TypedKeyValueStore<String, Reward, S>,
    offset: Offset,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    skip_counted: bool,
) -> Result<()> {
    let (customer, cents) = decode(offset, key, value)?;
    let current = store.get(&customer)?.unwrap_or(Reward {
        total: 0,
        last_offset: -1,
    });
    if skip_counted && offset <= current.last_offset {
        return Ok(());
    }
    store.put(
        &customer,
        &Reward {
            total: current.total + cents,
            last_offset: offset,
        },
    )
}

fn decode(offset: Offset, key: Option<&[u8]>, value: Option<&[u8]>) -> Result<(String, i64)> {
    let customer = String::from_utf8(key.unwrap_or_default().to_vec())
        .map_err(|_| Error::invalid_input(format!("input offset {offset}: key is not UTF-8")))?;
    let cents = value
        .and_then(|v| <[u8; 8]>::try_from(v).ok())
        .map(i64::from_be_bytes)
        .ok_or_else(|| {
            Error::invalid_input(format!("input offset {offset}: value is not 8 bytes"))
        })?;
    Ok((customer, cents))
}

/// The partition of `customer` number `c` of a workload over `partitions` partitions.
pub fn partition_of(c: u32, partitions: i32) -> Partition {
    i32::try_from(c).unwrap_or(0) % partitions
}

/// The name of customer `c`.
pub fn customer(c: u32) -> String {
    format!("customer-{c:04}")
}

/// The purchase amount of the `n`th purchase of a wave, in cents.
pub fn amount(wave: u32, n: u32) -> i64 {
    // In u64: a million customers would overflow u32.
    let cents = (u64::from(wave) * 7919 + u64::from(n) * 104_729) % 10_000 + 1;
    i64::try_from(cents).unwrap_or(1)
}

/// Totals per customer.
pub type Totals = BTreeMap<String, i64>;
