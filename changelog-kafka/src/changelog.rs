//! [`KafkaChangelog`]: creates changelog topics and hands out sinks and readers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::config::FromClientConfig;
use rdkafka::consumer::BaseConsumer;
use state_core::{
    Changelog, ChangelogReader, ChangelogSink, Error, ErrorKind, InputBinding, IsolationLevel,
    ProcessingGuarantee, Result, SinkOptions, TopicSpec,
};

use crate::admin::{self, Admin, AdminCreator, TopicCreator};
use crate::config::KafkaChangelogConfig;
use crate::error::{At, kafka_error};
use crate::input::{ConsumerInput, InputGroup};
use crate::reader::KafkaReader;
use crate::sink::{DEFAULT_TRANSACTION_TIMEOUT, KafkaSink};

/// A [`Changelog`] on a Kafka cluster through librdkafka.
pub struct KafkaChangelog {
    config: Arc<KafkaChangelogConfig>,
    admin: Admin,
    creator: Arc<dyn TopicCreator>,
    /// One watermark client per isolation level, shared by every reader: a store
    /// manager asks for a reader for each partition it assigns, and every librdkafka
    /// client costs threads and broker connections.
    watermark_clients: Mutex<[Option<Arc<BaseConsumer>>; 2]>,
    /// The input consumers of sinks with an input binding, shared by every sink of the
    /// same binding and guarantee (a restarted sink finds its group's coordinator known).
    inputs: Mutex<HashMap<(InputBinding, ProcessingGuarantee), Arc<dyn InputGroup>>>,
}

impl std::fmt::Debug for KafkaChangelog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaChangelog")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl KafkaChangelog {
    /// A changelog on the cluster `config` points at. Creates the admin client; no
    /// request is sent until the first operation.
    pub fn new(config: KafkaChangelogConfig) -> Result<Self> {
        Self::with_creator(config, |admin, config| {
            Arc::new(AdminCreator {
                admin,
                timeout: config.metadata_timeout,
            })
        })
    }

    /// A changelog whose topics are made by `creator` instead of CreateTopics.
    pub(crate) fn with_creator(
        config: KafkaChangelogConfig,
        creator: impl FnOnce(Admin, &KafkaChangelogConfig) -> Arc<dyn TopicCreator>,
    ) -> Result<Self> {
        let client_config =
            config.client_config(&[("allow.auto.create.topics", "false")], &config.admin);
        let admin: AdminClient<DefaultClientContext> = AdminClient::from_config(&client_config)
            .map_err(|err| kafka_error("creating the admin client", At::default(), err))?;
        let admin = Arc::new(admin);
        let creator = creator(Arc::clone(&admin), &config);
        Ok(Self {
            config: Arc::new(config),
            admin,
            creator,
            watermark_clients: Mutex::new([None, None]),
            inputs: Mutex::default(),
        })
    }

    /// The shared watermark client for `isolation`, created on first use.
    fn watermark_client(
        &self,
        topic: &str,
        isolation: IsolationLevel,
    ) -> Result<Arc<BaseConsumer>> {
        let mut clients = self
            .watermark_clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let slot = &mut clients[match isolation {
            IsolationLevel::ReadUncommitted => 0,
            IsolationLevel::ReadCommitted => 1,
        }];
        if let Some(client) = slot {
            return Ok(Arc::clone(client));
        }
        let client = Arc::new(KafkaReader::watermark_client(
            &self.config,
            topic,
            isolation,
        )?);
        *slot = Some(Arc::clone(&client));
        Ok(client)
    }

    /// The configuration this changelog was made with.
    pub fn config(&self) -> &KafkaChangelogConfig {
        &self.config
    }

    /// A [`KafkaSink`], as [`Changelog::sink`] without the type erasure. With
    /// [`SinkOptions::source`] the sink gets a consumer of its own in the input's group
    /// (never subscribed, so it takes no partitions): at-least-once commits the offsets
    /// through it, exactly-once sends them into each transaction with its group metadata
    /// (generation -1: a commit from outside the group's membership, which the broker
    /// accepts without fencing by generation). A consumer-group member's sink comes from
    /// its [`StatefulConsumer`](crate::StatefulConsumer) instead, fenced by generation.
    pub async fn kafka_sink(&self, options: &SinkOptions) -> Result<KafkaSink> {
        state_core::runtime::require_tokio("creating a Kafka changelog sink")?;
        let input = match &options.source {
            Some(binding) => Some(self.input_consumer(binding, options.guarantee)?),
            None => None,
        };
        KafkaSink::create(&self.config, options, input, DEFAULT_TRANSACTION_TIMEOUT).await
    }

    /// A cluster that did not answer (no broker listening, all down, requests timing out)
    /// is `Unavailable`, retriable, and named by its bootstrap servers: the first thing a
    /// user checks, which the client's own "Timed out" leaves out.
    fn unreachable_as_unavailable(&self, err: Error, spec: &TopicSpec) -> Error {
        if !crate::is_unreachable(&err) {
            return err;
        }
        Error::new(
            ErrorKind::Unavailable,
            format!(
                "the Kafka cluster at {} did not answer while changelog topic {} was being \
                 created (waited up to {:?}): is a broker running and reachable there?",
                self.config.bootstrap_servers, spec.name, self.config.metadata_timeout
            ),
        )
        .with_source(err)
    }

    fn input_consumer(
        &self,
        binding: &InputBinding,
        guarantee: ProcessingGuarantee,
    ) -> Result<Arc<dyn InputGroup>> {
        let mut inputs = self
            .inputs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = (binding.clone(), guarantee);
        if let Some(input) = inputs.get(&key) {
            return Ok(input.clone());
        }
        let ours = [
            ("group.id", binding.group_id.as_str()),
            ("enable.auto.commit", "false"),
            ("isolation.level", guarantee.isolation().as_str()),
            ("allow.auto.create.topics", "false"),
        ];
        let consumer =
            BaseConsumer::from_config(&self.config.client_config(&ours, &self.config.consumer))
                .map_err(|err| {
                    kafka_error(
                        "creating the input consumer",
                        At::topic(&binding.topic),
                        err,
                    )
                })?;
        let input: Arc<dyn InputGroup> = Arc::new(ConsumerInput::owned(&binding.topic, consumer));
        inputs.insert(key, input.clone());
        Ok(input)
    }

    /// A [`KafkaReader`] for `topic`, as [`Changelog::reader`] without the type erasure.
    pub fn kafka_reader(&self, topic: &str, isolation: IsolationLevel) -> Result<KafkaReader> {
        let meta = self.watermark_client(topic, isolation)?;
        // Read-committed readers also learn the log's end beyond the last stable offset.
        let log_end = match isolation {
            IsolationLevel::ReadCommitted => {
                Some(self.watermark_client(topic, IsolationLevel::ReadUncommitted)?)
            }
            IsolationLevel::ReadUncommitted => None,
        };
        Ok(KafkaReader::create(
            Arc::clone(&self.config),
            topic,
            isolation,
            meta,
            log_end,
        ))
    }
}

#[async_trait]
impl Changelog for KafkaChangelog {
    /// Creates the topic with the spec's partitions, replication factor (or the
    /// broker's default) and every config entry, then waits until every partition has a
    /// leader. An existing topic's partition count is checked, never silently reused.
    async fn ensure_topic(&self, spec: &TopicSpec) -> Result<()> {
        state_core::runtime::require_tokio(&format!("creating changelog topic {}", spec.name))?;
        admin::ensure_topic(
            self.creator.as_ref(),
            &self.admin,
            spec,
            self.config.metadata_timeout,
        )
        .await
        .map_err(|err| self.unreachable_as_unavailable(err, spec))
    }

    async fn sink(&self, options: &SinkOptions) -> Result<Arc<dyn ChangelogSink>> {
        Ok(Arc::new(self.kafka_sink(options).await?))
    }

    async fn reader(
        &self,
        topic: &str,
        isolation: IsolationLevel,
    ) -> Result<Arc<dyn ChangelogReader>> {
        Ok(Arc::new(self.kafka_reader(topic, isolation)?))
    }
}
