//! The one place object_store's errors become statestore's.

use state_core::{Error, ErrorKind};

const CREDENTIALS: &str = "the object store refused the credentials (AWS_ACCESS_KEY_ID / \
                           AWS_SECRET_ACCESS_KEY or the store's options)";

/// The HTTP status a request failed with, from object_store's message ("... status
/// code: 403 Forbidden ..."): its retry error, which holds the status, is private.
fn http_status(text: &str) -> Option<u16> {
    let (_, rest) = text.split_once("status code: ")?;
    rest.get(..3)?.parse().ok()
}

/// Maps `err`, met while doing `doing` (which names the object or the listing), to
/// statestore's error of the matching kind; the message says what was being done and
/// where, and the object store's error is kept as the cause. Object store errors name
/// paths and services, never credentials.
pub(crate) fn map_error(err: object_store::Error, doing: impl std::fmt::Display) -> Error {
    use object_store::Error as E;
    let (kind, hint) = match &err {
        E::NotFound { .. } => (ErrorKind::NotFound, ""),
        E::PermissionDenied { .. } | E::Unauthenticated { .. } => {
            (ErrorKind::InvalidInput, CREDENTIALS)
        }
        E::InvalidPath { .. } | E::UnknownConfigurationKey { .. } => (ErrorKind::InvalidInput, ""),
        E::NotSupported { .. } | E::NotImplemented { .. } => (ErrorKind::Unsupported, ""),
        E::AlreadyExists { .. } | E::Precondition { .. } | E::NotModified { .. } => {
            (ErrorKind::Internal, "")
        }
        E::JoinError { .. } => (ErrorKind::Internal, ""),
        // Generic: transport failures, server errors, retries exhausted; and some
        // requests (S3 listings) report an HTTP refusal only here, in the text.
        _ => match http_status(&err.to_string()) {
            Some(401 | 403) => (ErrorKind::InvalidInput, CREDENTIALS),
            Some(404) if err.to_string().contains("NoSuchBucket") => {
                (ErrorKind::NotFound, "the bucket does not exist")
            }
            Some(404) => (ErrorKind::NotFound, ""),
            Some(status) if (400..500).contains(&status) => (ErrorKind::InvalidInput, ""),
            _ => (
                ErrorKind::Unavailable,
                "the object store is unreachable or failing",
            ),
        },
    };
    let message = if hint.is_empty() {
        doing.to_string()
    } else {
        format!("{doing}: {hint}")
    };
    Error::new(kind, message).with_source(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_the_cause() {
        let not_found = object_store::Error::NotFound {
            path: "p".into(),
            source: "gone".into(),
        };
        assert_eq!(
            map_error(not_found, "reading p").kind(),
            ErrorKind::NotFound
        );
        let denied = object_store::Error::PermissionDenied {
            path: "p".into(),
            source: "403".into(),
        };
        let err = map_error(denied, "reading p");
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("refused the credentials"), "{err}");
        let refused = object_store::Error::Generic {
            store: "S3",
            source: "Server returned non-2xx status code: 403 Forbidden: <Code>SignatureDoesNotMatch</Code>".into(),
        };
        assert_eq!(
            map_error(refused, "listing").kind(),
            ErrorKind::InvalidInput
        );
        let missing = object_store::Error::Generic {
            store: "S3",
            source: "Server returned non-2xx status code: 404 Not Found: <Code>NoSuchBucket</Code>"
                .into(),
        };
        let err = map_error(missing, "listing");
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert!(
            err.to_string().contains("the bucket does not exist"),
            "{err}"
        );
        let generic = object_store::Error::Generic {
            store: "S3",
            source: "connection refused".into(),
        };
        let err = map_error(generic, "listing s3://b/x");
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert!(err.is_retriable());
        assert!(err.to_string().contains("listing s3://b/x"), "{err}");
    }
}
