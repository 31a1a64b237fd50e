//! Where partitions are served: what routes a key this instance does not serve to the
//! instance that does.

#[cfg(feature = "kafka")]
use std::sync::Arc;

use async_trait::async_trait;
use state_core::{Partition, Result};

/// Who serves one partition, as the group last said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placement {
    /// The owner's query endpoint (`host:port`), if the group is settled, the partition
    /// has an owner and that owner advertises an endpoint.
    pub owner: Option<String>,
    /// The endpoints of instances with a standby copy.
    pub standbys: Vec<String>,
    /// Whether the group was settled (not rebalancing) when asked.
    pub settled: bool,
}

/// Says where partitions are served; a consumer group's
/// [`GroupDirectory`](changelog_kafka::GroupDirectory) with the `kafka` feature.
#[async_trait]
pub trait Directory: Send + Sync {
    /// Who serves `partition`.
    async fn placement(&self, partition: Partition) -> Result<Placement>;
}

/// A single instance: nothing is served elsewhere.
#[derive(Debug, Default, Clone, Copy)]
pub struct Standalone;

#[async_trait]
impl Directory for Standalone {
    async fn placement(&self, _: Partition) -> Result<Placement> {
        Ok(Placement {
            settled: true,
            ..Placement::default()
        })
    }
}

#[cfg(feature = "kafka")]
#[async_trait]
impl Directory for Arc<changelog_kafka::GroupDirectory> {
    async fn placement(&self, partition: Partition) -> Result<Placement> {
        // Describing the group blocks on the broker: off the runtime's workers.
        let directory = self.clone();
        let view = tokio::task::spawn_blocking(move || directory.view())
            .await
            .map_err(|err| state_core::Error::internal(format!("describing the group: {err}")))??;
        Ok(placement_in(&view, partition))
    }
}

#[cfg(feature = "kafka")]
fn placement_in(view: &changelog_kafka::GroupView, partition: Partition) -> Placement {
    Placement {
        owner: view
            .owner(partition)
            .and_then(|member| member.endpoint.clone()),
        standbys: view
            .standbys(partition)
            .into_iter()
            .filter_map(|member| member.endpoint.clone())
            .collect(),
        settled: view.stable,
    }
}
