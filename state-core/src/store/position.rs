//! The changelog position a store has applied.

use std::collections::BTreeMap;

/// A changelog partition number (Kafka's `int32` partition).
pub type Partition = i32;

/// A changelog offset (Kafka's `int64` offset).
pub type Offset = i64;

/// For each changelog partition, the offset of the last changelog record whose effect
/// the store holds.
///
/// A durable store writes its position atomically with the data it describes (see
/// [`KeyValueStore::write_with_position`](crate::KeyValueStore::write_with_position)), so
/// after any crash the two agree, and restore resumes at `applied + 1`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Position {
    applied: BTreeMap<Partition, Offset>,
}

impl Position {
    /// No offset applied on any partition (a fresh or wiped store).
    pub fn empty() -> Self {
        Self::default()
    }

    /// A position with one partition.
    pub fn of(partition: Partition, applied: Offset) -> Self {
        let mut position = Self::default();
        position.set(partition, applied);
        position
    }

    /// The last applied offset of `partition`, or `None` if nothing was applied.
    pub fn applied(&self, partition: Partition) -> Option<Offset> {
        self.applied.get(&partition).copied()
    }

    /// The first offset of `partition` restore still has to read.
    pub fn next_offset(&self, partition: Partition) -> Offset {
        self.applied(partition).map_or(0, |offset| offset + 1)
    }

    /// Records `applied` as the last applied offset of `partition`.
    pub fn set(&mut self, partition: Partition, applied: Offset) {
        self.applied.insert(partition, applied);
    }

    /// Raises each partition of `other` to at least its offset in `other`.
    pub fn merge(&mut self, other: &Position) {
        for (&partition, &offset) in &other.applied {
            let entry = self.applied.entry(partition).or_insert(offset);
            *entry = (*entry).max(offset);
        }
    }

    /// Whether no partition has an applied offset.
    pub fn is_empty(&self) -> bool {
        self.applied.is_empty()
    }

    /// `(partition, last applied offset)` pairs in partition order.
    pub fn iter(&self) -> impl Iterator<Item = (Partition, Offset)> + '_ {
        self.applied.iter().map(|(&p, &o)| (p, o))
    }

    /// Encodes the position for a backend to store next to its data: a version byte,
    /// then `(partition: i32 BE, offset: i64 BE)` per partition.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + 12 * self.applied.len());
        out.push(POSITION_FORMAT_V1);
        for (&partition, &offset) in &self.applied {
            out.extend_from_slice(&partition.to_be_bytes());
            out.extend_from_slice(&offset.to_be_bytes());
        }
        out
    }

    /// Decodes what [`Position::encode`] wrote; `what` names the source (a path) for the
    /// error message when the bytes are damaged.
    pub fn decode(bytes: &[u8], what: &str) -> crate::Result<Self> {
        let corrupt = |why: &str| {
            crate::Error::corruption(format!("changelog position in {what} is damaged: {why}"))
        };
        let (&version, body) = bytes.split_first().ok_or_else(|| corrupt("empty"))?;
        if version != POSITION_FORMAT_V1 {
            return Err(corrupt(&format!("unknown format version {version}")));
        }
        if body.len() % 12 != 0 {
            return Err(corrupt(&format!(
                "length {} is not a multiple of 12",
                body.len()
            )));
        }
        let mut position = Position::default();
        for entry in body.chunks_exact(12) {
            let (partition, offset) = entry.split_at(4);
            let partition =
                i32::from_be_bytes(partition.try_into().map_err(|_| corrupt("partition"))?);
            let offset = i64::from_be_bytes(offset.try_into().map_err(|_| corrupt("offset"))?);
            if offset < 0 {
                return Err(corrupt(&format!(
                    "negative offset {offset} for partition {partition}"
                )));
            }
            position.set(partition, offset);
        }
        Ok(position)
    }
}

const POSITION_FORMAT_V1: u8 = 1;

impl FromIterator<(Partition, Offset)> for Position {
    fn from_iter<I: IntoIterator<Item = (Partition, Offset)>>(iter: I) -> Self {
        Self {
            applied: iter.into_iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_round_trips() {
        let position: Position = [(0, 5), (3, 1 << 40)].into_iter().collect();
        assert_eq!(
            Position::decode(&position.encode(), "test").unwrap(),
            position
        );
        assert_eq!(
            Position::decode(&Position::empty().encode(), "t").unwrap(),
            Position::empty()
        );
    }

    #[test]
    fn decode_rejects_damaged_bytes_naming_the_source() {
        let err = Position::decode(&[1, 0, 0], "/data/store").unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Corruption);
        assert!(err.to_string().contains("/data/store"), "{err}");
        assert!(Position::decode(&[], "x").is_err());
        assert!(Position::decode(&[9], "x").is_err());
    }

    #[test]
    fn merge_keeps_the_highest_offset() {
        let mut a = Position::of(0, 10);
        a.merge(&[(0, 4), (1, 2)].into_iter().collect());
        assert_eq!(a.applied(0), Some(10));
        assert_eq!(a.applied(1), Some(2));
        assert_eq!(a.next_offset(1), 3);
        assert_eq!(a.next_offset(7), 0);
    }
}
