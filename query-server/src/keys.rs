//! Keys and values in URLs and bodies: a path segment is read as JSON when it is JSON
//! of the key type (`42` for an integer key), and as a string otherwise
//! (`customer-7` for a string key), so string keys need no quoting.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::answer::ApiError;

/// Longest key accepted, in bytes of its URL segment.
pub const MAX_KEY_LEN: usize = 16 * 1024;

/// `segment` as a key of type `K`.
pub(crate) fn parse_key<K: DeserializeOwned>(store: &str, segment: &str) -> Result<K, ApiError> {
    if segment.len() > MAX_KEY_LEN {
        return Err(ApiError::bad_request(
            "key_too_long",
            format!(
                "a key of store {store} may be at most {MAX_KEY_LEN} bytes; this one has {}",
                segment.len()
            ),
        ));
    }
    if let Ok(key) = serde_json::from_str::<K>(segment) {
        return Ok(key);
    }
    serde_json::from_value::<K>(Value::String(segment.to_owned())).map_err(|err| {
        ApiError::bad_request(
            "bad_key",
            format!("{segment:?} is not a key of store {store}: {err}"),
        )
    })
}

/// `value` as JSON.
pub(crate) fn to_json<T: Serialize>(store: &str, value: &T) -> Result<Value, ApiError> {
    serde_json::to_value(value).map_err(|err| {
        ApiError::internal(format!("a value of store {store} has no JSON form: {err}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_keys_need_no_quotes_and_numbers_parse() {
        assert_eq!(
            parse_key::<String>("s", "customer-7").unwrap(),
            "customer-7"
        );
        assert_eq!(parse_key::<String>("s", "42").unwrap(), "42");
        assert_eq!(parse_key::<i64>("s", "42").unwrap(), 42);
    }

    #[test]
    fn a_key_of_the_wrong_type_or_size_is_refused() {
        let err = parse_key::<i64>("visits", "alice").unwrap_err();
        assert_eq!(err.status.as_u16(), 400);
        assert!(
            err.body.detail.contains("store visits"),
            "{}",
            err.body.detail
        );
        let long = "k".repeat(MAX_KEY_LEN + 1);
        assert_eq!(
            parse_key::<String>("s", &long).unwrap_err().body.error,
            "key_too_long"
        );
    }
}
