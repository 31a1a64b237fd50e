//! A value as a key's slot holds it: up to [`INLINE`] bytes inside the slot itself,
//! longer ones in an allocation of their own.
//!
//! Most state-store values are small: a count, a Double, a timestamp, a short record.
//! Held inline, such a value needs no allocation of its own, so a key's cell is one
//! allocation instead of two, a get or an overwrite follows one pointer fewer (a cache
//! miss in a large store), and an 8-byte value stops costing a 32-byte heap chunk. The
//! slot grows from 24 bytes (a `Vec`) to 32, but the cell around it (two counts, a lock
//! and the slot: 56 bytes, 48 before) still takes one 64-byte chunk of glibc's heap, as
//! before (a test pins the slot's size).

/// The longest value held inline: what fits in the slot beside the variant's tag.
pub(crate) const INLINE: usize = 30;

/// A value, inline when it is at most [`INLINE`] bytes long.
#[derive(Debug)]
pub(crate) enum Value {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Vec<u8>),
}

impl Value {
    /// `bytes` as a value, copied inline or into an allocation of their own.
    pub(crate) fn new(bytes: &[u8]) -> Self {
        match u8::try_from(bytes.len()) {
            Ok(len) if bytes.len() <= INLINE => {
                let mut inline = [0u8; INLINE];
                inline[..bytes.len()].copy_from_slice(bytes);
                Self::Inline { len, bytes: inline }
            }
            _ => Self::Heap(bytes.to_vec()),
        }
    }

    /// The value's bytes.
    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            Self::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Self::Heap(bytes) => bytes,
        }
    }

    /// The value's bytes, moved out of their allocation when they have one.
    pub(crate) fn into_vec(self) -> Vec<u8> {
        match self {
            Self::Inline { .. } => self.as_slice().to_vec(),
            Self::Heap(bytes) => bytes,
        }
    }

    /// Replaces the value with `bytes`, reusing its allocation when they fit in it
    /// without wasting more than their own size: restoring a changelog is mostly
    /// overwrites, and skipping the allocation of a new value (and freeing the old one)
    /// made a million-record apply 40% faster (`BENCHMARKS.md`).
    pub(crate) fn overwrite(&mut self, bytes: &[u8]) {
        match self {
            Self::Heap(existing)
                if bytes.len() > INLINE && fits(existing.capacity(), bytes.len()) =>
            {
                existing.clear();
                existing.extend_from_slice(bytes);
            }
            _ => *self = Self::new(bytes),
        }
    }
}

/// Whether a buffer of `capacity` bytes may hold a new value of `len` bytes: it must
/// fit, and not waste more than the value itself (a large value replaced by a small one
/// gets a buffer of its own size).
fn fits(capacity: usize, len: usize) -> bool {
    capacity >= len && capacity <= len.saturating_mul(2).max(64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Slot;

    /// An inline value keeps the slot at 32 bytes, so a cell (two counts, a lock and the
    /// slot) stays within one 64-byte heap chunk.
    #[test]
    fn the_slot_stays_32_bytes() {
        assert_eq!(std::mem::size_of::<Value>(), 32);
        assert_eq!(std::mem::size_of::<Slot>(), 32);
    }

    /// Every length reads back as written, across the inline limit, and an overwrite
    /// of either kind by either kind holds the new bytes only.
    #[test]
    fn values_read_back_as_written_inline_or_not() {
        let lengths = [0, 1, 8, INLINE - 1, INLINE, INLINE + 1, 64, 200];
        let bytes = |len: usize, seed: u8| -> Vec<u8> {
            (0..len).map(|i| seed.wrapping_add(i as u8)).collect()
        };
        for &first in &lengths {
            let mut value = Value::new(&bytes(first, 1));
            assert_eq!(value.as_slice(), bytes(first, 1));
            assert_eq!(matches!(value, Value::Inline { .. }), first <= INLINE);
            assert_eq!(Value::new(&bytes(first, 1)).into_vec(), bytes(first, 1));
            for &next in &lengths {
                value.overwrite(&bytes(next, 7));
                assert_eq!(value.as_slice(), bytes(next, 7), "{first} then {next}");
                assert_eq!(matches!(value, Value::Inline { .. }), next <= INLINE);
            }
        }
    }

    /// An overwrite keeps a heap buffer it fits in, and gives a small value a buffer of
    /// its own size rather than keep a large one.
    #[test]
    fn overwrites_reuse_a_buffer_only_when_it_fits_snugly() {
        let mut value = Value::new(&[1; 100]);
        let Value::Heap(before) = &value else {
            panic!("100 bytes are not inline")
        };
        let before = before.as_ptr();
        value.overwrite(&[2; 90]);
        let Value::Heap(after) = &value else {
            panic!("90 bytes are not inline")
        };
        assert_eq!(after.as_ptr(), before, "90 bytes fit the 100-byte buffer");
        value.overwrite(&[3; 31]);
        value.overwrite(&[4; 1000]);
        let Value::Heap(grown) = &value else {
            panic!("1000 bytes are not inline")
        };
        assert!(grown.capacity() >= 1000);
        assert!(
            !fits(1000, 40),
            "a 40-byte value does not keep a 1000-byte buffer"
        );
    }
}
