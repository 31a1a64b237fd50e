//! The one error type of statestore.
//!
//! Every backend and changelog maps its engine's errors into [`Error`] in one private
//! function, so callers match on [`Error::kind`] and never on an engine type.

use std::fmt;

/// A boxed error from a lower layer (an engine, a client, the OS).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Shorthand for results in statestore.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, as data a caller can branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A named thing (topic, partition, file, key space) does not exist.
    NotFound,
    /// Local state or a changelog record is damaged: a torn or garbled file of the
    /// backend's own store, an undecodable record. Restoring from the changelog can
    /// repair local state, so restore may wipe a store that fails with this kind.
    Corruption,
    /// A store location holds something the backend did not write: another backend's
    /// store, another program's files or database, an empty file where the database
    /// should be. It may be someone's data, so it is refused and never wiped; the
    /// message names the path and what was found there.
    Foreign,
    /// A dependency is unreachable or temporarily unable to serve (broker down, not
    /// enough in-sync replicas). Retrying later may succeed.
    Unavailable,
    /// An operation did not finish within its deadline. Retrying may succeed.
    Timeout,
    /// The caller passed something unusable: bad configuration, bytes a serde cannot
    /// decode, a conflicting topic layout.
    InvalidInput,
    /// The backend or changelog does not offer this operation.
    Unsupported,
    /// Another producer with the same transactional id took over; this one must stop.
    Fenced,
    /// A consumer group is rebalancing, or moved on to a newer generation, and refused
    /// a commit of input offsets. Nothing of the commit took effect (exactly-once: its
    /// transaction was aborted); the stores keep their changes, and the next commit
    /// after the rebalance tries again.
    Rebalancing,
    /// The store or sink was closed, or a previous fatal error made it unusable.
    Closed,
    /// A filesystem or OS error.
    Io,
    /// An offset outside the log: below its start (retention, delete-records) or past its
    /// end (the topic was deleted and recreated). Restore wipes and starts over.
    OutOfRange,
    /// A bug or broken invariant inside statestore or an engine.
    Internal,
}

impl ErrorKind {
    /// Whether retrying the same operation later can succeed without intervention.
    pub fn is_retriable(self) -> bool {
        matches!(
            self,
            ErrorKind::Unavailable | ErrorKind::Timeout | ErrorKind::Rebalancing
        )
    }

    fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not found",
            ErrorKind::Corruption => "corruption",
            ErrorKind::Foreign => "not this backend's store",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Timeout => "timeout",
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Fenced => "fenced",
            ErrorKind::Rebalancing => "consumer group rebalancing",
            ErrorKind::Closed => "closed",
            ErrorKind::Io => "io",
            ErrorKind::OutOfRange => "offset out of range",
            ErrorKind::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A statestore error: a [`ErrorKind`], a message that says what and where (store,
/// path, topic, partition, offset), and the lower-level cause if there is one.
pub struct Error {
    kind: ErrorKind,
    message: String,
    source: Option<BoxError>,
}

impl Error {
    /// Creates an error of `kind` with a message naming what failed and where.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// Attaches the lower-level cause.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Prefixes the message with more context (`"restoring store rewards-0: "`).
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    /// What went wrong, for branching.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message without the kind or the cause.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// A copy for a second receiver: the same kind and message, the cause as text.
    pub(crate) fn duplicate(&self) -> Error {
        let message = match &self.source {
            Some(source) => format!("{} (caused by: {source})", self.message),
            None => self.message.clone(),
        };
        Error::new(self.kind, message)
    }

    /// Whether retrying later can succeed (see [`ErrorKind::is_retriable`]).
    pub fn is_retriable(&self) -> bool {
        self.kind.is_retriable()
    }

    /// Shorthand for an [`ErrorKind::InvalidInput`] error.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }

    /// Shorthand for an [`ErrorKind::Corruption`] error.
    pub fn corruption(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Corruption, message)
    }

    /// Shorthand for an [`ErrorKind::Foreign`] error.
    pub fn foreign(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Foreign, message)
    }

    /// Shorthand for an [`ErrorKind::Unavailable`] error.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }

    /// Shorthand for an [`ErrorKind::Unsupported`] error.
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unsupported, message)
    }

    /// Shorthand for an [`ErrorKind::Internal`] error.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Debug is what `unwrap()` and `main() -> Result` print; make it the readable form.
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)?;
        // A cause whose text the message already quotes is not said twice; what caused
        // that cause still is.
        let mut cause = std::error::Error::source(self);
        while let Some(source) = cause {
            let quoted = match source.downcast_ref::<Error>() {
                Some(error) => {
                    !error.message().is_empty() && self.message.contains(error.message())
                }
                None => self.message.contains(&source.to_string()),
            };
            if !quoted {
                return write!(f, " (caused by: {source})");
            }
            cause = source.source();
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Self {
        let kind = match err.kind() {
            std::io::ErrorKind::NotFound => ErrorKind::NotFound,
            std::io::ErrorKind::InvalidData => ErrorKind::Corruption,
            std::io::ErrorKind::TimedOut => ErrorKind::Timeout,
            _ => ErrorKind::Io,
        };
        Error::new(kind, err.to_string()).with_source(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_the_message_quotes_is_not_said_twice_but_its_own_cause_is() {
        let io = std::io::Error::other("disk on fire");
        let inner = Error::invalid_input("value of 8 bytes is not an i32").with_source(io);
        let outer = Error::corruption(format!(
            "undecodable record at offset 3: {}",
            inner.message()
        ))
        .with_source(inner);
        assert_eq!(
            outer.to_string(),
            "corruption: undecodable record at offset 3: value of 8 bytes is not an i32 \
             (caused by: disk on fire)"
        );
    }

    #[test]
    fn a_cause_the_message_does_not_quote_is_said() {
        let outer = Error::corruption("reading the manifest")
            .with_source(Error::invalid_input("bad checksum"));
        assert_eq!(
            outer.to_string(),
            "corruption: reading the manifest (caused by: invalid input: bad checksum)"
        );
    }
}
