//! The runtime the README promises the Kafka changelog works on: a logged store built,
//! written, committed (exactly-once, so through a transaction) and restored elsewhere,
//! all on a current-thread tokio runtime (the multi-thread one is what every other Kafka
//! test uses).
#![cfg(feature = "kafka")]

use std::sync::Arc;

use statestore::kafka::{KafkaChangelog, KafkaChangelogConfig};
use statestore::prelude::*;

#[tokio::test(flavor = "current_thread")]
async fn the_kafka_changelog_runs_on_a_current_thread_runtime() -> Result<()> {
    let Some(bootstrap) = test_support::single_broker() else {
        return Ok(());
    };
    let app = test_support::unique_name("current-thread");
    let changelog = Arc::new(KafkaChangelog::new(KafkaChangelogConfig::new(bootstrap))?);
    let builder = || {
        Stores::key_value_store_builder(
            Stores::in_memory_key_value_store("rewards"),
            Serdes::string(),
            Serdes::f64(),
        )
    };
    let (first, second) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let context = StoreContext::new(app.as_str(), 0, 1, first.path())?
        .with_changelog(changelog.clone())
        .with_guarantee(ProcessingGuarantee::ExactlyOnce);
    let mut rewards = builder().build(&context).await?;
    rewards.put(&"alice".to_owned(), &12.5)?;
    rewards.commit().await?;

    let elsewhere = StoreContext::new(app.as_str(), 0, 1, second.path())?
        .with_changelog(changelog)
        .with_guarantee(ProcessingGuarantee::ExactlyOnce);
    let restored = builder().build(&elsewhere).await?;
    assert_eq!(restored.get(&"alice".to_owned())?, Some(12.5));
    Ok(())
}
