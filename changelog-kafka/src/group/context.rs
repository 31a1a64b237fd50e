//! The rebalance callbacks: where the group protocol meets the store manager. The
//! callbacks only dispatch librdkafka's event to the [`GroupProtocol`] picked when the
//! consumer was built, which decides which partitions this member takes or gives up and
//! where its standbys go (the two protocols are described in their modules:
//! `protocol/cooperative.rs` for [`StandbyPolicy::None`](super::StandbyPolicy::None) and
//! [`AllUnowned`](super::StandbyPolicy::AllUnowned), `protocol/planned.rs` for
//! [`Replicas`](super::StandbyPolicy::Replicas)). Both translate the partitions into the
//! same store-manager calls (`handover.rs`).

use std::sync::Arc;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, TopicPartitionList};
use state_core::metrics::{self, RebalanceEvent};

use super::handover;
use super::member::Member;
use super::protocol::GroupProtocol;
use crate::error::{At, kafka_error};

/// The consumer context of a [`StatefulConsumer`](super::StatefulConsumer).
///
/// - Revoke (before the partitions go): the manager commits every active partition —
///   their stores' changes and input offsets — and closes the revoked ones or keeps them
///   as standbys. Lost partitions (the group moved them on already) are closed without
///   committing.
/// - Assign (after the partitions arrive): pause them and start their restores on the
///   runtime; the polling thread resumes a partition when the manager reports it ready,
///   so no record is processed against a store that has not finished restoring.
pub struct GroupContext {
    pub(crate) member: Arc<Member>,
    pub(crate) protocol: Box<dyn GroupProtocol>,
}

impl ClientContext for GroupContext {}

impl ConsumerContext for GroupContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        list: &mut TopicPartitionList,
    ) {
        let member = &self.member;
        let event = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => Some(RebalanceEvent::Assigned),
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS if consumer.assignment_lost() => {
                Some(RebalanceEvent::Lost)
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => Some(RebalanceEvent::Revoked),
            _ => None,
        };
        if let Some(event) = event {
            metrics::rebalance(event);
        }
        // The callback blocks the polling thread while it commits and closes: the span
        // covers that wait (the restores it spawns run outside it).
        let _span = tracing::info_span!(
            "rebalance",
            event = event.map_or("failed", RebalanceEvent::as_str),
            partitions = ?handover::ours(&member.topic, list),
        )
        .entered();
        let applied = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.protocol.assigned(member, consumer, list)
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                self.protocol.revoked(member, consumer, list)
            }
            other => {
                member.fail(kafka_error(
                    "rebalancing",
                    At::topic(&member.topic),
                    KafkaError::Rebalance(other.into()),
                ));
                self.protocol.failed(consumer, list)
            }
        };
        if let Err(err) = applied {
            member.fail(kafka_error("rebalancing", At::topic(&member.topic), err));
        }
    }
}
