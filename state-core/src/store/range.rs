//! Key ranges over raw key bytes.

use std::ops::Bound;

/// A range of raw keys, compared as unsigned bytes (lexicographically), with
/// inclusive, exclusive or unbounded ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRange {
    /// The lower end.
    pub start: Bound<Vec<u8>>,
    /// The upper end.
    pub end: Bound<Vec<u8>>,
}

impl KeyRange {
    /// Every key.
    pub fn all() -> Self {
        Self {
            start: Bound::Unbounded,
            end: Bound::Unbounded,
        }
    }

    /// `from <= key <= to`, the range Kafka Streams' `range(from, to)` reads.
    pub fn inclusive(from: impl Into<Vec<u8>>, to: impl Into<Vec<u8>>) -> Self {
        Self {
            start: Bound::Included(from.into()),
            end: Bound::Included(to.into()),
        }
    }

    /// `from <= key < to`.
    pub fn half_open(from: impl Into<Vec<u8>>, to: impl Into<Vec<u8>>) -> Self {
        Self {
            start: Bound::Included(from.into()),
            end: Bound::Excluded(to.into()),
        }
    }

    /// Any pair of bounds.
    pub fn new(start: Bound<Vec<u8>>, end: Bound<Vec<u8>>) -> Self {
        Self { start, end }
    }

    /// Every key that starts with `prefix`: `prefix <= key < successor(prefix)`, where the
    /// successor is the shortest key greater than every key with the prefix (unbounded when
    /// the prefix is empty or all `0xFF`).
    pub fn prefix(prefix: &[u8]) -> Self {
        Self {
            start: Bound::Included(prefix.to_vec()),
            end: prefix_successor(prefix).map_or(Bound::Unbounded, Bound::Excluded),
        }
    }

    /// Whether `key` lies inside the range.
    pub fn contains(&self, key: &[u8]) -> bool {
        let above_start = match &self.start {
            Bound::Included(start) => key >= start.as_slice(),
            Bound::Excluded(start) => key > start.as_slice(),
            Bound::Unbounded => true,
        };
        above_start && self.below_end(key)
    }

    /// Whether `key` is not past the upper end.
    pub fn below_end(&self, key: &[u8]) -> bool {
        match &self.end {
            Bound::Included(end) => key <= end.as_slice(),
            Bound::Excluded(end) => key < end.as_slice(),
            Bound::Unbounded => true,
        }
    }

    /// Whether `key` is not before the lower end.
    pub fn above_start(&self, key: &[u8]) -> bool {
        match &self.start {
            Bound::Included(start) => key >= start.as_slice(),
            Bound::Excluded(start) => key > start.as_slice(),
            Bound::Unbounded => true,
        }
    }

    /// Whether no key can lie inside the range (for example `from > to`). Kafka Streams
    /// returns an empty iterator for such ranges, and so does every statestore backend.
    pub fn is_empty(&self) -> bool {
        match (&self.start, &self.end) {
            (Bound::Included(s), Bound::Included(e)) => s > e,
            (Bound::Included(s), Bound::Excluded(e))
            | (Bound::Excluded(s), Bound::Included(e))
            | (Bound::Excluded(s), Bound::Excluded(e)) => s >= e,
            _ => false,
        }
    }

    /// The bounds as borrowed slices, the shape `BTreeMap::range` and most engines take.
    pub fn as_slices(&self) -> (Bound<&[u8]>, Bound<&[u8]>) {
        (as_slice(&self.start), as_slice(&self.end))
    }
}

fn as_slice(bound: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match bound {
        Bound::Included(key) => Bound::Included(key.as_slice()),
        Bound::Excluded(key) => Bound::Excluded(key.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// The shortest key greater than every key that starts with `prefix`, or `None` when no
/// such key exists (empty prefix, or all bytes `0xFF`).
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let last = prefix.iter().rposition(|&b| b != 0xFF)?;
    let mut successor = prefix[..=last].to_vec();
    successor[last] += 1;
    Some(successor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_successor_skips_trailing_ff() {
        assert_eq!(prefix_successor(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_successor(&[1, 0xFF, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_successor(&[0xFF]), None);
        assert_eq!(prefix_successor(&[]), None);
    }

    #[test]
    fn prefix_range_contains_exactly_the_prefixed_keys() {
        let range = KeyRange::prefix(&[7, 0xFF]);
        assert!(range.contains(&[7, 0xFF]));
        assert!(range.contains(&[7, 0xFF, 0, 1]));
        assert!(range.contains(&[7, 0xFF, 0xFF, 0xFF]));
        assert!(!range.contains(&[8]));
        assert!(!range.contains(&[7, 0xFE, 0xFF]));
    }

    #[test]
    fn inverted_ranges_are_empty() {
        assert!(KeyRange::inclusive(b"b".to_vec(), b"a".to_vec()).is_empty());
        assert!(KeyRange::half_open(b"a".to_vec(), b"a".to_vec()).is_empty());
        assert!(!KeyRange::inclusive(b"a".to_vec(), b"a".to_vec()).is_empty());
        assert!(!KeyRange::all().is_empty());
    }
}
