//! The one place object_store's errors become statestore's.

use state_core::{Error, ErrorKind};

/// Maps `err`, met while doing `doing` (which names the object or the listing), to
/// statestore's error of the matching kind; the message says what was being done and
/// where, and the object store's error is kept as the cause. Object store errors name
/// paths and services, never credentials.
pub(crate) fn map_error(err: object_store::Error, doing: impl std::fmt::Display) -> Error {
    use object_store::Error as E;
    let (kind, hint) = match &err {
        E::NotFound { .. } => (ErrorKind::NotFound, ""),
        E::PermissionDenied { .. } | E::Unauthenticated { .. } => (
            ErrorKind::InvalidInput,
            "the object store refused the credentials (AWS_ACCESS_KEY_ID / \
             AWS_SECRET_ACCESS_KEY or the store's options)",
        ),
        E::InvalidPath { .. } | E::UnknownConfigurationKey { .. } => (ErrorKind::InvalidInput, ""),
        E::NotSupported { .. } | E::NotImplemented { .. } => (ErrorKind::Unsupported, ""),
        E::AlreadyExists { .. } | E::Precondition { .. } | E::NotModified { .. } => {
            (ErrorKind::Internal, "")
        }
        E::JoinError { .. } => (ErrorKind::Internal, ""),
        // Generic: transport failures, server errors, retries exhausted.
        _ => (
            ErrorKind::Unavailable,
            "the object store is unreachable or failing",
        ),
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
