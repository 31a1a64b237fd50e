//! Choosing serdes (`--key-serde`, `--value-serde`) and showing decoded bytes.

use std::fmt::Write as _;

use state_core::{Error, RecordValidator, Result, Serde, Serdes};

/// The serde names the flags accept.
pub const NAMES: [&str; 5] = ["string", "f64", "i64", "i32", "bytes"];

/// A serde chosen at run time; bytes are those of Kafka's Java serializers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SerdeKind {
    /// UTF-8 text (`StringSerializer`).
    String,
    /// 8-byte big-endian IEEE 754 (`DoubleSerializer`).
    F64,
    /// 8-byte big-endian (`LongSerializer`).
    I64,
    /// 4-byte big-endian (`IntegerSerializer`).
    I32,
    /// Raw bytes, shown and typed as hex.
    Bytes,
}

impl SerdeKind {
    /// Parses one of [`NAMES`].
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "string" => Ok(Self::String),
            "f64" => Ok(Self::F64),
            "i64" => Ok(Self::I64),
            "i32" => Ok(Self::I32),
            "bytes" => Ok(Self::Bytes),
            other => Err(Error::invalid_input(format!(
                "unknown serde {other}; expected one of {}",
                NAMES.join(", ")
            ))),
        }
    }

    /// The flag's name for this serde.
    pub fn name(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::F64 => "f64",
            Self::I64 => "i64",
            Self::I32 => "i32",
            Self::Bytes => "bytes",
        }
    }

    /// Whether `bytes` decode, without formatting them.
    pub fn check(self, bytes: &[u8]) -> Result<()> {
        match self {
            Self::String => Serdes::string().check(bytes),
            Self::F64 => Serdes::f64().check(bytes),
            Self::I64 => Serdes::i64().check(bytes),
            Self::I32 => Serdes::i32().check(bytes),
            Self::Bytes => Ok(()),
        }
    }

    /// Decodes `bytes` and formats the value for display.
    pub fn show(self, bytes: &[u8]) -> Result<String> {
        Ok(match self {
            Self::String => format!("{:?}", Serdes::string().deserialize(bytes)?),
            Self::F64 => Serdes::f64().deserialize(bytes)?.to_string(),
            Self::I64 => Serdes::i64().deserialize(bytes)?.to_string(),
            Self::I32 => Serdes::i32().deserialize(bytes)?.to_string(),
            Self::Bytes => hex(bytes),
        })
    }

    /// Encodes a value typed on the command line.
    pub fn encode(self, text: &str) -> Result<Vec<u8>> {
        let bad = |what: &str| {
            Error::invalid_input(format!("{text:?} is not {what} (serde {})", self.name()))
        };
        match self {
            Self::String => Serdes::string().serialize(&text.to_owned()),
            Self::F64 => Serdes::f64().serialize(&text.parse().map_err(|_| bad("a number"))?),
            Self::I64 => Serdes::i64().serialize(&text.parse().map_err(|_| bad("an i64"))?),
            Self::I32 => Serdes::i32().serialize(&text.parse().map_err(|_| bad("an i32"))?),
            Self::Bytes => unhex(text).ok_or_else(|| bad("hex bytes")),
        }
    }
}

/// The key and value serdes of one store.
#[derive(Debug, Clone, Copy)]
pub struct KeyValueSerdes {
    /// For keys.
    pub key: SerdeKind,
    /// For values.
    pub value: SerdeKind,
}

impl KeyValueSerdes {
    /// Shows a key; an undecodable one is named by its hex bytes.
    pub fn show_key(&self, key: &[u8]) -> Result<String> {
        self.key.show(key).map_err(|err| {
            Error::invalid_input(format!(
                "key {} does not fit key serde {}",
                hex(key),
                self.key.name()
            ))
            .with_source(err)
        })
    }

    /// Shows the value stored under `key`.
    pub fn show_value(&self, key: &[u8], value: &[u8]) -> Result<String> {
        self.value.show(value).map_err(|err| {
            let key = self.key.show(key).unwrap_or_else(|_| hex(key));
            Error::invalid_input(format!(
                "the value of key {key} ({} bytes) does not fit value serde {}",
                value.len(),
                self.value.name()
            ))
            .with_source(err)
        })
    }
}

impl RecordValidator for KeyValueSerdes {
    fn validate(&self, key: &[u8], value: Option<&[u8]>) -> Result<()> {
        // Formatting every record cost more than applying it: check first, and build the
        // error's text only for a record that fails.
        if self.key.check(key).is_err() {
            self.show_key(key)?;
        }
        if let Some(value) = value
            && self.value.check(value).is_err()
        {
            self.show_value(key, value)?;
        }
        Ok(())
    }
}

/// `0x` and lowercase hex digits.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(2 + bytes.len() * 2);
    out.push_str("0x");
    for byte in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{byte:02x}");
    }
    out
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    let digits = text.strip_prefix("0x").unwrap_or(text);
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(digits.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_then_show_round_trips() {
        for (kind, text, shown) in [
            (SerdeKind::String, "alice", "\"alice\""),
            (SerdeKind::F64, "12.5", "12.5"),
            (SerdeKind::I64, "-3", "-3"),
            (SerdeKind::I32, "7", "7"),
            (SerdeKind::Bytes, "0x00ff", "0x00ff"),
        ] {
            let bytes = kind.encode(text).unwrap();
            assert_eq!(kind.show(&bytes).unwrap(), shown);
        }
    }

    #[test]
    fn a_value_that_does_not_fit_names_serde_and_key() {
        let serdes = KeyValueSerdes {
            key: SerdeKind::String,
            value: SerdeKind::F64,
        };
        let err = serdes.show_value(b"bob", b"abc").unwrap_err().to_string();
        assert!(err.contains("\"bob\"") && err.contains("f64"), "{err}");
        assert!(SerdeKind::I32.encode("x").is_err());
        assert!(SerdeKind::Bytes.encode("0xf").is_err());
    }
}
