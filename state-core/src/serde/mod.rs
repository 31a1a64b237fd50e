//! Serdes that turn typed keys and values into bytes, byte-compatible with Kafka's.
//!
//! The built-ins write exactly what Kafka's Java serdes write (`StringSerializer` UTF-8,
//! `DoubleSerializer`/`LongSerializer` 8 bytes big-endian, `IntegerSerializer` 4 bytes
//! big-endian, `ByteArraySerializer` as is), so a changelog written by a Kafka Streams
//! application restores here and the other way round.

mod builtin;

use std::sync::Arc;

pub use builtin::{BytesSerde, F64Serde, I32Serde, I64Serde, StringSerde};

use crate::Result;

/// Converts `T` to and from bytes.
///
/// `deserialize` must reject bytes that do not encode a `T` with an
/// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) error naming the serde; it
/// never panics.
pub trait Serde<T>: Send + Sync {
    /// The serde's name for error messages (Kafka's class name where there is one).
    fn name(&self) -> &str;

    /// Encodes `value`.
    fn serialize(&self, value: &T) -> Result<Vec<u8>>;

    /// Decodes `bytes`.
    fn deserialize(&self, bytes: &[u8]) -> Result<T>;

    /// Whether `bytes` decode, with the error [`deserialize`](Self::deserialize) would
    /// give. Restore checks every changelog record with it, so a serde that can tell
    /// without building a `T` (and allocating) should say so here.
    fn check(&self, bytes: &[u8]) -> Result<()> {
        self.deserialize(bytes).map(drop)
    }
}

impl<T, S: Serde<T> + ?Sized> Serde<T> for Arc<S> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn serialize(&self, value: &T) -> Result<Vec<u8>> {
        (**self).serialize(value)
    }
    fn deserialize(&self, bytes: &[u8]) -> Result<T> {
        (**self).deserialize(bytes)
    }
    fn check(&self, bytes: &[u8]) -> Result<()> {
        (**self).check(bytes)
    }
}

/// Constructors for the built-in serdes, named as in Kafka's `Serdes` class.
#[derive(Debug, Clone, Copy)]
pub struct Serdes;

impl Serdes {
    /// UTF-8 strings (Kafka `Serdes.String()`).
    pub fn string() -> StringSerde {
        StringSerde
    }

    /// IEEE-754 doubles, 8 bytes big-endian (Kafka `Serdes.Double()`).
    pub fn f64() -> F64Serde {
        F64Serde
    }

    /// Signed 64-bit integers, 8 bytes big-endian (Kafka `Serdes.Long()`).
    pub fn i64() -> I64Serde {
        I64Serde
    }

    /// Signed 32-bit integers, 4 bytes big-endian (Kafka `Serdes.Integer()`).
    pub fn i32() -> I32Serde {
        I32Serde
    }

    /// Raw bytes, unchanged (Kafka `Serdes.ByteArray()`).
    pub fn bytes() -> BytesSerde {
        BytesSerde
    }
}
