//! Merging uncommitted writes over the store's committed entries for scans.

use std::cmp::Ordering;
use std::iter::Peekable;

use crate::{KeyValue, KvIter, Result};

/// One uncommitted entry: `None` is a pending delete that hides the committed value.
pub(crate) type PendingEntry = (Vec<u8>, Option<Vec<u8>>);

/// Yields the union of `pending` (already in scan order) and `committed`, in scan order;
/// for a key present in both, the pending entry wins, and pending deletes are dropped.
pub(crate) struct MergeIter<'a> {
    pending: Peekable<std::vec::IntoIter<PendingEntry>>,
    committed: Peekable<KvIter<'a>>,
    descending: bool,
    failed: bool,
}

impl<'a> MergeIter<'a> {
    pub(crate) fn new(pending: Vec<PendingEntry>, committed: KvIter<'a>, descending: bool) -> Self {
        Self {
            pending: pending.into_iter().peekable(),
            committed: committed.peekable(),
            descending,
            failed: false,
        }
    }
}

impl Iterator for MergeIter<'_> {
    type Item = Result<KeyValue>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.failed {
                return None;
            }
            let take_pending = match (self.pending.peek(), self.committed.peek()) {
                (None, None) => return None,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some(_), Some(Err(_))) => false,
                (Some((pending_key, _)), Some(Ok((committed_key, _)))) => {
                    match scan_order(pending_key, committed_key, self.descending) {
                        Ordering::Less => true,
                        Ordering::Greater => false,
                        Ordering::Equal => {
                            // The pending write shadows the committed value.
                            self.committed.next();
                            true
                        }
                    }
                }
            };
            if take_pending {
                let (key, value) = self.pending.next()?;
                match value {
                    Some(value) => return Some(Ok((key, value))),
                    None => continue,
                }
            }
            let item = self.committed.next()?;
            if item.is_err() {
                self.failed = true;
            }
            return Some(item);
        }
    }
}

/// Which key comes first in scan order.
fn scan_order(a: &[u8], b: &[u8], descending: bool) -> Ordering {
    let ascending = a.cmp(b);
    if descending {
        ascending.reverse()
    } else {
        ascending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn committed(entries: &[(&[u8], &[u8])]) -> KvIter<'static> {
        let owned: Vec<_> = entries
            .iter()
            .map(|(k, v)| Ok((k.to_vec(), v.to_vec())))
            .collect();
        Box::new(owned.into_iter())
    }

    fn keys(iter: MergeIter<'_>) -> Vec<(Vec<u8>, Vec<u8>)> {
        iter.map(|r| r.unwrap()).collect()
    }

    #[test]
    fn pending_shadows_and_deletes_hide() {
        let pending = vec![
            (b"a".to_vec(), Some(b"new".to_vec())),
            (b"b".to_vec(), None),
            (b"d".to_vec(), Some(b"4".to_vec())),
        ];
        let merged = keys(MergeIter::new(
            pending,
            committed(&[(b"a", b"old"), (b"b", b"2"), (b"c", b"3")]),
            false,
        ));
        assert_eq!(
            merged,
            vec![
                (b"a".to_vec(), b"new".to_vec()),
                (b"c".to_vec(), b"3".to_vec()),
                (b"d".to_vec(), b"4".to_vec())
            ]
        );
    }

    #[test]
    fn descending_merge_keeps_descending_order() {
        let pending = vec![(b"c".to_vec(), Some(b"x".to_vec())), (b"a".to_vec(), None)];
        let merged = keys(MergeIter::new(
            pending,
            committed(&[(b"b", b"2"), (b"a", b"1")]),
            true,
        ));
        assert_eq!(
            merged,
            vec![
                (b"c".to_vec(), b"x".to_vec()),
                (b"b".to_vec(), b"2".to_vec())
            ]
        );
    }
}
