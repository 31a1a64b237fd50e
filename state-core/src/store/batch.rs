//! An ordered batch of writes applied atomically.

/// One write in a [`WriteBatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    /// Set `key` to `value`.
    Put {
        /// The raw key.
        key: Vec<u8>,
        /// The raw value.
        value: Vec<u8>,
    },
    /// Remove `key` (a no-op when it is absent).
    Delete {
        /// The raw key.
        key: Vec<u8>,
    },
}

impl WriteOp {
    /// The key this operation touches.
    pub fn key(&self) -> &[u8] {
        match self {
            WriteOp::Put { key, .. } | WriteOp::Delete { key } => key,
        }
    }

    /// The value written, or `None` for a delete.
    pub fn value(&self) -> Option<&[u8]> {
        match self {
            WriteOp::Put { value, .. } => Some(value),
            WriteOp::Delete { .. } => None,
        }
    }
}

/// Puts and deletes applied in order, all or nothing.
///
/// When the same key appears twice, the later operation wins, exactly as if the
/// operations had been applied one by one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteBatch {
    ops: Vec<WriteOp>,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty batch with room for `capacity` operations.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            ops: Vec::with_capacity(capacity),
        }
    }

    /// Appends a put.
    pub fn put(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> &mut Self {
        self.ops.push(WriteOp::Put {
            key: key.into(),
            value: value.into(),
        });
        self
    }

    /// Appends a delete.
    pub fn delete(&mut self, key: impl Into<Vec<u8>>) -> &mut Self {
        self.ops.push(WriteOp::Delete { key: key.into() });
        self
    }

    /// Appends an operation.
    pub fn push(&mut self, op: WriteOp) -> &mut Self {
        self.ops.push(op);
        self
    }

    /// The operations in the order they apply.
    pub fn ops(&self) -> &[WriteOp] {
        &self.ops
    }

    /// Consumes the batch, yielding its operations in order.
    pub fn into_ops(self) -> Vec<WriteOp> {
        self.ops
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether the batch holds no operation.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

impl FromIterator<WriteOp> for WriteBatch {
    fn from_iter<I: IntoIterator<Item = WriteOp>>(iter: I) -> Self {
        Self {
            ops: iter.into_iter().collect(),
        }
    }
}
