//! Kafka's default partitioner for keyed records: `murmur2` of the serialized key,
//! made positive, modulo the partition count — what the Java producer's
//! `BuiltInPartitioner.partitionForKey` and librdkafka's `murmur2_random` partitioner
//! compute. A key's partition here is the partition such a producer wrote it to, so the
//! store partition that holds it.
//!
//! librdkafka's *default* partitioner is `consistent_random` (CRC32), not this one: input
//! produced by a librdkafka client needs `partitioner=murmur2_random` for its keys to land
//! where this says (Kafka Streams has the same requirement of non-Java producers).

use crate::{Error, Partition, Result};

/// Kafka's `Utils.murmur2`: 32-bit MurmurHash2 with Kafka's seed, over `data`.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    // Kafka computes this over Java ints; wrapping u32 arithmetic is the same bits.
    let length = u32::try_from(data.len()).unwrap_or(u32::MAX);
    let mut h = SEED ^ length;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    i32::from_ne_bytes(h.to_ne_bytes())
}

/// The partition Kafka's default partitioner gives a record with key bytes `key` among
/// `partitions` partitions.
///
/// Fails with [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) unless
/// `partitions` is positive.
pub fn partition_for_key(key: &[u8], partitions: i32) -> Result<Partition> {
    if partitions <= 0 {
        return Err(Error::invalid_input(format!(
            "cannot partition a key among {partitions} partitions"
        )));
    }
    // Kafka's `Utils.toPositive`: clear the sign bit (not `abs`, which overflows).
    Ok((murmur2(key) & 0x7fff_ffff) % partitions)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The values Kafka's own `UtilsTest.testMurmur2` checks.
    #[test]
    fn agrees_with_kafkas_murmur2_test_vectors() {
        let cases: [(&str, i32); 6] = [
            ("21", -973_932_308),
            ("foobar", -790_332_482),
            ("a-little-bit-long-string", -985_981_536),
            ("a-little-bit-longer-string", -1_486_304_829),
            (
                "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            ("abc", 479_470_107),
        ];
        for (key, expected) in cases {
            assert_eq!(murmur2(key.as_bytes()), expected, "murmur2({key:?})");
        }
    }

    #[test]
    fn partitions_are_in_range_and_stable() {
        for i in 0..1000 {
            let key = format!("customer-{i}");
            let p = partition_for_key(key.as_bytes(), 6).unwrap();
            assert!((0..6).contains(&p));
            assert_eq!(partition_for_key(key.as_bytes(), 6).unwrap(), p);
        }
        assert_eq!(partition_for_key(b"", 1).unwrap(), 0);
    }

    #[test]
    fn no_partitions_is_an_error() {
        let err = partition_for_key(b"k", 0).unwrap_err();
        assert!(err.to_string().contains("0 partitions"), "{err}");
    }
}
