//! The one mapping from rdkafka errors to [`state_core::Error`].

use std::fmt;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use state_core::{Error, ErrorKind, Offset, Partition};

/// Where an operation failed, named in the error message.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct At<'a> {
    topic: Option<&'a str>,
    partition: Option<Partition>,
    offset: Option<Offset>,
}

impl<'a> At<'a> {
    /// Somewhere in `topic`.
    pub(crate) fn topic(topic: &'a str) -> Self {
        Self {
            topic: Some(topic),
            ..Self::default()
        }
    }

    /// A partition of `topic`.
    pub(crate) fn partition(topic: &'a str, partition: Partition) -> Self {
        Self {
            partition: Some(partition),
            ..Self::topic(topic)
        }
    }

    /// An offset in a partition of `topic`.
    pub(crate) fn offset(topic: &'a str, partition: Partition, offset: Offset) -> Self {
        Self {
            offset: Some(offset),
            ..Self::partition(topic, partition)
        }
    }
}

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        if let Some(topic) = self.topic {
            write!(f, "topic {topic}")?;
            sep = " ";
        }
        if let Some(partition) = self.partition {
            write!(f, "{sep}partition {partition}")?;
            sep = " ";
        }
        if let Some(offset) = self.offset {
            write!(f, "{sep}offset {offset}")?;
        }
        Ok(())
    }
}

/// Maps a failed rdkafka operation `op` (a phrase: "flushing", "creating the topic") at
/// `at` to a statestore error, keeping `err` as the source.
pub(crate) fn kafka_error(op: &str, at: At<'_>, err: KafkaError) -> Error {
    let kind = kind_of(&err);
    let place = at.to_string();
    // The cause's text is printed by `Error`'s Display from the source.
    let mut message = if place.is_empty() {
        format!("{op} failed")
    } else {
        format!("{op} failed on {place}")
    };
    if let KafkaError::Transaction(txn) = &err {
        if txn.is_fatal() {
            message.push_str(" (fatal: the producer is unusable)");
        } else if txn.txn_requires_abort() {
            message.push_str(" (the transaction must be aborted)");
        } else if txn.is_retriable() {
            message.push_str(" (retriable)");
        }
    }
    Error::new(kind, message).with_source(err)
}

/// Whether `err` came from the Kafka client (an rdkafka error anywhere in its causes),
/// as opposed to local storage or the caller: tools use it to say "Kafka" only when
/// Kafka is the cause.
pub fn is_kafka_error(err: &Error) -> bool {
    kafka_cause(err).is_some()
}

/// Whether `err`'s Kafka cause (see [`is_kafka_error`]) says the cluster did not answer:
/// a broker transport failure, all brokers down, or a request, operation or message that
/// timed out. Decided by the cause's error code, whatever kind the error as a whole was
/// given: a fatal client error is `Closed` even when a timeout began it.
pub fn is_unreachable(err: &Error) -> bool {
    use RDKafkaErrorCode as C;
    kafka_cause(err).and_then(code_of).is_some_and(|code| {
        matches!(
            code,
            C::BrokerTransportFailure
                | C::AllBrokersDown
                | C::OperationTimedOut
                | C::RequestTimedOut
                | C::MessageTimedOut
                | C::TimedOutQueue
        )
    })
}

/// The first rdkafka error among `err`'s causes.
fn kafka_cause(err: &Error) -> Option<&KafkaError> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(err);
    while let Some(current) = cause {
        if let Some(kafka) = current.downcast_ref::<KafkaError>() {
            return Some(kafka);
        }
        cause = current.source();
    }
    None
}

/// The error code `err` carries. rdkafka's `rdkafka_error_code` leaves out the code of a
/// failed admin request, which is how the admin client reports an unreachable cluster
/// (`OperationTimedOut`) or a refused topic.
fn code_of(err: &KafkaError) -> Option<RDKafkaErrorCode> {
    match err {
        KafkaError::AdminOp(code) => Some(*code),
        other => other.rdkafka_error_code(),
    }
}

fn kind_of(err: &KafkaError) -> ErrorKind {
    match err {
        KafkaError::Transaction(txn) => {
            let by_code = code_kind(txn.code());
            if by_code == ErrorKind::Fenced {
                ErrorKind::Fenced
            } else if txn.is_fatal() {
                ErrorKind::Closed
            } else if txn.is_retriable() && !by_code.is_retriable() {
                ErrorKind::Unavailable
            } else {
                by_code
            }
        }
        KafkaError::ClientConfig(..)
        | KafkaError::ClientCreation(_)
        | KafkaError::AdminOpCreation(_)
        | KafkaError::Nul(_)
        | KafkaError::Subscription(_) => ErrorKind::InvalidInput,
        KafkaError::Canceled => ErrorKind::Closed,
        KafkaError::NoMessageReceived => ErrorKind::Timeout,
        // A fatal client error (the sink wraps the cause librdkafka reports for a fatal
        // producer in `Global`) leaves the client unusable: only being fenced is special.
        KafkaError::MessageConsumptionFatal(code) | KafkaError::Global(code) => {
            match code_kind(*code) {
                ErrorKind::Fenced => ErrorKind::Fenced,
                _ => ErrorKind::Closed,
            }
        }
        other => code_of(other).map_or(ErrorKind::Internal, code_kind),
    }
}

fn code_kind(code: RDKafkaErrorCode) -> ErrorKind {
    use RDKafkaErrorCode as C;
    match code {
        C::BrokerTransportFailure
        | C::AllBrokersDown
        | C::Resolve
        | C::BrokerNotAvailable
        | C::LeaderNotAvailable
        | C::NotLeaderForPartition
        | C::ReplicaNotAvailable
        | C::NetworkException
        | C::CoordinatorLoadInProgress
        | C::CoordinatorNotAvailable
        | C::NotCoordinator
        | C::WaitingForCoordinator
        | C::NotEnoughReplicas
        | C::NotEnoughReplicasAfterAppend
        | C::ISRInsufficient
        | C::KafkaStorageError
        | C::ConcurrentTransactions
        | C::PreferredLeaderNotAvailable
        | C::EligibleLeadersNotAvailable
        | C::FencedLeaderEpoch
        | C::UnknownLeaderEpoch
        | C::ThrottlingQuotaExceeded
        | C::NotController
        | C::Retry
        | C::InProgress
        | C::PreviousInProgress
        | C::QueueFull
        | C::NodeUpdate
        | C::WaitCache => ErrorKind::Unavailable,
        C::MessageTimedOut | C::OperationTimedOut | C::RequestTimedOut | C::TimedOutQueue => {
            ErrorKind::Timeout
        }
        C::ProducerFenced
        | C::InvalidProducerEpoch
        | C::Fenced
        | C::TransactionCoordinatorFenced
        | C::FencedInstanceId => ErrorKind::Fenced,
        C::IllegalGeneration
        | C::RebalanceInProgress
        | C::UnknownMemberId
        | C::StaleMemberEpoch => ErrorKind::Rebalancing,
        C::OffsetOutOfRange | C::AutoOffsetReset | C::LogTruncation => ErrorKind::OutOfRange,
        C::UnknownTopicOrPartition
        | C::UnknownTopic
        | C::UnknownPartition
        | C::UnknownTopicId
        | C::ResourceNotFound
        | C::NoEnt => ErrorKind::NotFound,
        C::Authentication
        | C::SaslAuthenticationFailed
        | C::UnsupportedSASLMechanism
        | C::IllegalSASLState
        | C::SSL
        | C::TopicAuthorizationFailed
        | C::ClusterAuthorizationFailed
        | C::GroupAuthorizationFailed
        | C::TransactionalIdAuthorizationFailed
        | C::InvalidArgument
        | C::InvalidConfig
        | C::InvalidPartitions
        | C::InvalidReplicationFactor
        | C::InvalidReplicaAssignment
        | C::InvalidTopic
        | C::TopicAlreadyExists
        | C::PolicyViolation
        | C::InvalidRequiredAcks
        | C::InvalidTransactionTimeout
        | C::MessageSizeTooLarge
        | C::InvalidMessageSize
        | C::MessageBatchTooLarge
        | C::InvalidTimestamp
        | C::InvalidRecord
        | C::InvalidRequest
        | C::InvalidType
        | C::Conflict => ErrorKind::InvalidInput,
        C::UnsupportedVersion
        | C::UnsupportedFeature
        | C::NotImplemented
        | C::UnsupportedForMessageFormat
        | C::UnsupportedCompressionType
        | C::SecurityDisabled
        | C::TopicDeletionDisabled => ErrorKind::Unsupported,
        C::BadMessage | C::BadCompression | C::InvalidMessage => ErrorKind::Corruption,
        C::FileSystem | C::CriticalSystemResource => ErrorKind::Io,
        C::Fatal | C::BrokerDestroy | C::DestroyBroker | C::PurgeQueue | C::PurgeInflight => {
            ErrorKind::Closed
        }
        _ => ErrorKind::Internal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_errors_are_told_from_local_ones() {
        let kafka = kafka_error(
            "fetching watermarks",
            At::topic("t"),
            KafkaError::MetadataFetch(RDKafkaErrorCode::AllBrokersDown),
        );
        assert!(is_kafka_error(&kafka));
        assert!(is_kafka_error(
            &Error::internal("wrapper").with_source(kafka)
        ));
        let disk = Error::from(std::io::Error::from(std::io::ErrorKind::PermissionDenied));
        assert!(!is_kafka_error(&disk));
        assert!(!is_kafka_error(&Error::unavailable("LOCK held")));
    }

    #[test]
    fn an_unreachable_cluster_is_told_by_the_code_of_the_cause() {
        let at = At::topic("t");
        let unreachable = [
            KafkaError::MetadataFetch(RDKafkaErrorCode::AllBrokersDown),
            KafkaError::MetadataFetch(RDKafkaErrorCode::BrokerTransportFailure),
            KafkaError::AdminOp(RDKafkaErrorCode::OperationTimedOut),
            KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut),
            KafkaError::OffsetFetch(RDKafkaErrorCode::RequestTimedOut),
            // Fatal, so `Closed` as a whole, but the cluster did not answer.
            KafkaError::Global(RDKafkaErrorCode::AllBrokersDown),
        ];
        for cause in unreachable {
            let text = cause.to_string();
            let err = Error::internal("wrapper").with_source(kafka_error("x", at, cause));
            assert!(is_unreachable(&err), "{text}");
        }
        let answered = [
            KafkaError::MetadataFetch(RDKafkaErrorCode::UnknownTopicOrPartition),
            KafkaError::AdminOp(RDKafkaErrorCode::PolicyViolation),
            KafkaError::Global(RDKafkaErrorCode::ProducerFenced),
            KafkaError::NoMessageReceived,
        ];
        for cause in answered {
            let text = cause.to_string();
            assert!(!is_unreachable(&kafka_error("x", at, cause)), "{text}");
        }
        assert!(!is_unreachable(&Error::new(
            ErrorKind::Timeout,
            "a local deadline"
        )));
    }

    #[test]
    fn a_failed_admin_request_is_mapped_by_its_code() {
        let kind = |code| kafka_error("x", At::default(), KafkaError::AdminOp(code)).kind();
        assert_eq!(
            kind(RDKafkaErrorCode::OperationTimedOut),
            ErrorKind::Timeout
        );
        assert_eq!(
            kind(RDKafkaErrorCode::InvalidReplicationFactor),
            ErrorKind::InvalidInput
        );
    }

    #[test]
    fn retriable_and_fatal_codes_are_told_apart() {
        let kind =
            |code| kafka_error("x", At::default(), KafkaError::MessageProduction(code)).kind();
        assert_eq!(
            kind(RDKafkaErrorCode::NotEnoughReplicas),
            ErrorKind::Unavailable
        );
        assert_eq!(
            kind(RDKafkaErrorCode::BrokerTransportFailure),
            ErrorKind::Unavailable
        );
        assert_eq!(kind(RDKafkaErrorCode::MessageTimedOut), ErrorKind::Timeout);
        assert_eq!(kind(RDKafkaErrorCode::ProducerFenced), ErrorKind::Fenced);
        assert_eq!(
            kind(RDKafkaErrorCode::InvalidProducerEpoch),
            ErrorKind::Fenced
        );
        assert_eq!(
            kind(RDKafkaErrorCode::OffsetOutOfRange),
            ErrorKind::OutOfRange
        );
        assert_eq!(
            kind(RDKafkaErrorCode::AutoOffsetReset),
            ErrorKind::OutOfRange
        );
        assert_eq!(
            kind(RDKafkaErrorCode::UnknownTopicOrPartition),
            ErrorKind::NotFound
        );
        assert_eq!(
            kind(RDKafkaErrorCode::TopicAuthorizationFailed),
            ErrorKind::InvalidInput
        );
        assert!(!kind(RDKafkaErrorCode::MessageSizeTooLarge).is_retriable());
        let config = KafkaError::ClientConfig(
            rdkafka::types::RDKafkaConfRes::RD_KAFKA_CONF_INVALID,
            "bad".into(),
            "acks".into(),
            "x".into(),
        );
        assert_eq!(kind_of(&config), ErrorKind::InvalidInput);
    }

    #[test]
    fn the_message_names_topic_partition_and_offset() {
        let err = kafka_error(
            "reading",
            At::offset("orders-changelog", 3, 42),
            KafkaError::MessageConsumption(RDKafkaErrorCode::OffsetOutOfRange),
        );
        let text = err.to_string();
        assert!(
            text.contains("topic orders-changelog partition 3 offset 42"),
            "{text}"
        );
        assert!(text.starts_with("offset out of range"), "{text}");
    }
}
