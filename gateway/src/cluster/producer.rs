//! # The gateway role's log: batches to the events topic
//!
//! Each sealed batch becomes one Kafka record, or one per part when the
//! pipeline cut it to `cluster.max_record_bytes` (`docs/cluster.md`,
//! "Records on the topic"): the batch as the WAL would hold it, headers
//! `logway-batch`, `tenant`, `type`, key `{tenant}/{type}/{k}` (one key
//! for all parts: one partition, in order). The request is answered 2xx
//! only when every record's delivery report says every in-sync replica
//! has it (`acks=all`, idempotent producer).
//!
//! librdkafka never times a record out (`message.timeout.ms = 0`): the
//! request is timed out here, after `cluster.ack_timeout`, and answered
//! 503 while the record stays queued (the spike found that a broker may
//! not survive the idempotent producer's epoch bump that librdkafka's own
//! timeout causes; `docs/cluster.md`). While the producer reports every
//! broker down, requests are refused at once, except one a second that
//! goes through as a probe: its delivery, when the brokers are back, is
//! what lets requests in again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use tokio::sync::oneshot;

use super::config::ClusterConfig;
use crate::batch::BATCH_VERSION;
use crate::config::value::kafka_client;
use crate::pipeline::log::{Durable, Log};
use crate::pipeline::{Error, Sealed};
use crate::telemetry::Metrics;

/// How often a request goes through as a probe while every broker is down.
const PROBE_EVERY_MS: i64 = 1000;

/// What the producer's callbacks share with [`KafkaLog`].
struct Context {
    /// The producer said every broker is down; cleared by a delivery.
    down: AtomicBool,
    metrics: Arc<Metrics>,
}

impl Context {
    fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::Relaxed);
        self.metrics.cluster_brokers_down.set(i64::from(down));
    }
}

impl ClientContext for Context {
    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
            self.set_down(true);
        }
        tracing::warn!(%error, reason, "kafka client");
    }
}

impl ProducerContext for Context {
    type DeliveryOpaque = Box<oneshot::Sender<Result<(), String>>>;

    fn delivery(&self, result: &DeliveryResult<'_>, done: Self::DeliveryOpaque) {
        let result = match result {
            Ok(_) => {
                if self.down.load(Ordering::Relaxed) {
                    self.set_down(false);
                }
                self.metrics.cluster_records_delivered.inc();
                Ok(())
            }
            Err((e, _)) => {
                self.metrics.cluster_record_errors.inc();
                Err(e.to_string())
            }
        };
        // The request may have been answered (timed out) already.
        let _ = done.send(result);
    }
}

pub struct KafkaLog {
    producer: ThreadedProducer<Context>,
    context: Arc<Context>,
    topic: String,
    per_stream: u64,
    ack_timeout: Duration,
    max_record_bytes: usize,
    /// Picks `k` for batches without an idempotency key.
    next: AtomicU64,
    /// When the last probe went through while down (Unix ms).
    last_probe_ms: AtomicI64,
}

impl KafkaLog {
    /// Connects the producer (and creates the topic if asked to); fails
    /// when no broker answers within `cluster.ack_timeout`.
    pub async fn connect(
        config: &ClusterConfig,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<KafkaLog> {
        // A default the user's `client` may change, then theirs, then the
        // properties the delivery contract depends on.
        let mut client = kafka_client(&config.brokers, &[("linger.ms", "5")], &config.client);
        client
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("compression.type", "zstd")
            .set("message.timeout.ms", "0")
            .set("partitioner", "murmur2_random")
            .set(
                "queue.buffering.max.kbytes",
                (config.queue_bytes / 1024).to_string(),
            )
            .set(
                "message.max.bytes",
                (config.max_record_bytes + (64 << 10)).to_string(),
            );
        if config.create_topic {
            create_topic(&client, config).await?;
        }
        let (topic, timeout) = (config.topic.clone(), config.ack_timeout);
        // Fails now rather than at the first request when nothing answers.
        let (producer, partitions) = tokio::task::spawn_blocking(move || {
            let context = Context {
                down: AtomicBool::new(false),
                metrics,
            };
            let producer: ThreadedProducer<Context> = client.create_with_context(context)?;
            let metadata = producer.client().fetch_metadata(Some(&topic), timeout)?;
            let partitions = metadata
                .topics()
                .first()
                .map_or(0, |t| t.partitions().len());
            Ok::<_, KafkaError>((producer, partitions))
        })
        .await?
        .map_err(|e| {
            anyhow::anyhow!(
                "no Kafka broker of cluster.brokers ({}) answered: {e}",
                config.brokers
            )
        })?;
        tracing::info!(brokers = %config.brokers, topic = %config.topic, partitions, "cluster log connected");
        Ok(KafkaLog {
            context: producer.context().clone(),
            producer,
            topic: config.topic.clone(),
            per_stream: u64::from(config.partitions_per_stream),
            ack_timeout: config.ack_timeout,
            max_record_bytes: config.max_record_bytes,
            next: AtomicU64::new(0),
            last_probe_ms: AtomicI64::new(0),
        })
    }

    /// The record key: `{tenant}/{type}/{k}`; `k` follows the idempotency
    /// key, so a retried keyed request lands on its first try's partition.
    fn key(&self, batch: &Sealed) -> String {
        let k = match &batch.idempotency_key {
            Some(key) => xxhash_rust::xxh3::xxh3_64(key.as_bytes()),
            None => self.next.fetch_add(1, Ordering::Relaxed),
        } % self.per_stream;
        format!("{}/{}/{k}", batch.tenant, batch.log_type)
    }

    /// While every broker is down: whether this request is the probe.
    fn probe_due(&self) -> bool {
        let now = crate::now_ms();
        let last = self.last_probe_ms.load(Ordering::Relaxed);
        now - last >= PROBE_EVERY_MS
            && self
                .last_probe_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

impl Log for KafkaLog {
    fn submit(&self, batch: &Sealed) -> Result<Durable, Error> {
        // Only a single event larger than a record is left over the limit.
        if let Some(p) = batch
            .payloads
            .iter()
            .find(|p| p.len() > self.max_record_bytes)
        {
            return Err(Error::TooLarge(format!(
                "an event makes a {} byte record; cluster mode takes at most {} \
                 (cluster.max_record_bytes)",
                p.len(),
                self.max_record_bytes
            )));
        }
        if self.context.down.load(Ordering::Relaxed) && !self.probe_due() {
            return Err(Error::Unavailable("no Kafka broker is reachable".into()));
        }
        // One key for every part: they land on one partition, in order.
        let key = self.key(batch);
        let version = BATCH_VERSION.to_string();
        let headers = OwnedHeaders::new_with_capacity(3)
            .insert(Header {
                key: "logway-batch",
                value: Some(version.as_str()),
            })
            .insert(Header {
                key: "tenant",
                value: Some(batch.tenant.as_str()),
            })
            .insert(Header {
                key: "type",
                value: Some(batch.log_type.as_str()),
            });
        let mut reports = Vec::with_capacity(batch.payloads.len());
        for payload in &batch.payloads {
            let (done, report) = oneshot::channel();
            let record = BaseRecord::with_opaque_to(&self.topic, Box::new(done))
                .key(key.as_str())
                .payload(&payload[..])
                .headers(headers.clone());
            self.producer.send(record).map_err(|(e, _)| match e {
                KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull) => Error::Unavailable(
                    "the Kafka producer's queue is full (cluster.queue_bytes); brokers are behind"
                        .into(),
                ),
                e => Error::Unavailable(format!("Kafka refused the batch: {e}")),
            })?;
            reports.push(report);
        }
        let (timeout, context) = (self.ack_timeout, self.context.clone());
        Ok(Box::pin(async move {
            let all = futures_util::future::join_all(reports);
            let reports = tokio::time::timeout(timeout, all).await.map_err(|_| {
                context.metrics.cluster_ack_timeouts.inc();
                Error::Unavailable(format!(
                    "Kafka did not confirm the batch within cluster.ack_timeout ({}s)",
                    timeout.as_secs_f64()
                ))
            })?;
            for report in reports {
                match report {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        return Err(Error::Unavailable(format!(
                            "Kafka did not take the batch: {e}"
                        )));
                    }
                    Err(_) => return Err(Error::Unavailable("the Kafka producer stopped".into())),
                }
            }
            Ok(())
        }))
    }

    fn max_payload(&self) -> usize {
        self.max_record_bytes
    }
}

impl Drop for KafkaLog {
    fn drop(&mut self) {
        // Delivers what is queued if the brokers are there; a batch left
        // undelivered was never acknowledged.
        if let Err(e) = self.producer.flush(self.ack_timeout) {
            tracing::warn!(error = %e, "kafka producer: records left undelivered at stop");
        }
    }
}

/// Creates the events topic unless it exists.
async fn create_topic(client: &ClientConfig, config: &ClusterConfig) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = client.create()?;
    let topic = NewTopic::new(
        &config.topic,
        config.partitions,
        TopicReplication::Fixed(config.replication_factor),
    );
    let options = AdminOptions::new().operation_timeout(Some(config.ack_timeout));
    let created = tokio::time::timeout(config.ack_timeout, admin.create_topics([&topic], &options))
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "no Kafka broker of cluster.brokers ({}) answered within cluster.ack_timeout",
                config.brokers
            )
        })??;
    for result in created {
        match result {
            Ok(name) => {
                tracing::info!(topic = %name, partitions = config.partitions, "created the events topic")
            }
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => anyhow::bail!("cannot create topic {name}: {code}"),
        }
    }
    Ok(())
}
