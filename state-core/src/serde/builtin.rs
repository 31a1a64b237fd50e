//! The built-in, Kafka-compatible serdes.

use super::Serde;
use crate::{Error, Result};

/// UTF-8 strings, as Kafka's `StringSerializer`.
#[derive(Debug, Clone, Copy, Default)]
pub struct StringSerde;

impl Serde<String> for StringSerde {
    fn name(&self) -> &str {
        "String"
    }

    fn serialize(&self, value: &String) -> Result<Vec<u8>> {
        Ok(value.as_bytes().to_vec())
    }

    fn deserialize(&self, bytes: &[u8]) -> Result<String> {
        self.check(bytes)?;
        Ok(String::from_utf8_lossy(bytes).into_owned())
    }

    fn check(&self, bytes: &[u8]) -> Result<()> {
        std::str::from_utf8(bytes).map(drop).map_err(|err| {
            Error::invalid_input(format!(
                "serde String: {} bytes are not valid UTF-8 ({err})",
                bytes.len()
            ))
        })
    }
}

/// Fixed-width big-endian numbers, as Kafka's `DoubleSerializer`, `LongSerializer`,
/// `IntegerSerializer`.
macro_rules! fixed_width_serde {
    ($(#[$doc:meta])* $serde:ident, $ty:ty, $kafka_name:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $serde;

        impl Serde<$ty> for $serde {
            fn name(&self) -> &str {
                $kafka_name
            }

            fn serialize(&self, value: &$ty) -> Result<Vec<u8>> {
                Ok(value.to_be_bytes().to_vec())
            }

            fn deserialize(&self, bytes: &[u8]) -> Result<$ty> {
                let array = bytes.try_into().map_err(|_| {
                    Error::invalid_input(format!(
                        "serde {}: expected {} bytes, got {}",
                        $kafka_name,
                        std::mem::size_of::<$ty>(),
                        bytes.len()
                    ))
                })?;
                Ok(<$ty>::from_be_bytes(array))
            }
        }
    };
}

fixed_width_serde!(
    /// IEEE-754 doubles, 8 bytes big-endian (Kafka `Serdes.Double()`).
    F64Serde, f64, "Double"
);
fixed_width_serde!(
    /// Signed 64-bit integers, 8 bytes big-endian (Kafka `Serdes.Long()`).
    I64Serde, i64, "Long"
);
fixed_width_serde!(
    /// Signed 32-bit integers, 4 bytes big-endian (Kafka `Serdes.Integer()`).
    I32Serde, i32, "Integer"
);

/// Raw bytes, unchanged (Kafka `Serdes.ByteArray()`).
#[derive(Debug, Clone, Copy, Default)]
pub struct BytesSerde;

impl Serde<Vec<u8>> for BytesSerde {
    fn name(&self) -> &str {
        "ByteArray"
    }

    fn serialize(&self, value: &Vec<u8>) -> Result<Vec<u8>> {
        Ok(value.clone())
    }

    fn deserialize(&self, bytes: &[u8]) -> Result<Vec<u8>> {
        Ok(bytes.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    // Bytes as Kafka's Java serializers write them (checked against the JDK's
    // ByteBuffer.putDouble / putLong / putInt, which are big-endian).
    #[test]
    fn bytes_match_kafka_java_serializers() {
        assert_eq!(
            F64Serde.serialize(&1.5).unwrap(),
            vec![0x3F, 0xF8, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            I64Serde.serialize(&-2).unwrap(),
            vec![0xFF; 7].into_iter().chain([0xFE]).collect::<Vec<_>>()
        );
        assert_eq!(I32Serde.serialize(&258).unwrap(), vec![0, 0, 1, 2]);
        assert_eq!(
            StringSerde.serialize(&"é".to_owned()).unwrap(),
            vec![0xC3, 0xA9]
        );
    }

    #[test]
    fn round_trips() {
        assert_eq!(
            F64Serde
                .deserialize(&F64Serde.serialize(&-0.25).unwrap())
                .unwrap(),
            -0.25
        );
        assert_eq!(
            I64Serde
                .deserialize(&I64Serde.serialize(&i64::MIN).unwrap())
                .unwrap(),
            i64::MIN
        );
        assert_eq!(
            I32Serde
                .deserialize(&I32Serde.serialize(&7).unwrap())
                .unwrap(),
            7
        );
        assert_eq!(BytesSerde.deserialize(&[0, 255]).unwrap(), vec![0, 255]);
    }

    #[test]
    fn bad_bytes_name_the_serde() {
        let err = F64Serde.deserialize(&[1, 2, 3]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(
            err.to_string().contains("Double") && err.to_string().contains("got 3"),
            "{err}"
        );
        let err = StringSerde.deserialize(&[0xFF, 0xFE]).unwrap_err();
        assert!(err.to_string().contains("String"), "{err}");
        assert!(I32Serde.deserialize(&[0; 8]).is_err());
    }
}
