//! Kafka as a source: `[[kafka_sources]]` read existing topics into one
//! tenant and log type, through the route's filters like any request.
//!
//! One consumer group member per source (`group_id`, cooperative
//! rebalancing), reading records in batches of up to `max_batch`. Each
//! record becomes one item (`format = "json"`: the value is a JSON object;
//! `"text"`: the value is the message); a value that is not what the
//! format says becomes a rejected event, never a lost one. **Offsets are
//! committed only after the batch is durable** (in the WAL, or on the
//! events topic in cluster mode): a crash before the commit makes the
//! group deliver the batch again, and because every event's id is its
//! record's position (`kafka:{topic}/{partition}/{offset}`), the records
//! stored before are recognised as such (within `idempotency.window`) and
//! stored once. Over a rate limit or with the WAL full the batch waits and
//! is tried again; nothing is skipped.

pub mod config;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tokio::sync::watch;

use crate::config::value::kafka_client;
use crate::listen::stopped;
use crate::pipeline::{Claim, Error, Item, Meta, Pipeline};
use crate::tenants::Route;
use config::{Format, KafkaSourceConfig, Start};

/// How long a batch waits for more records after its first.
const BATCH_WAIT: Duration = Duration::from_millis(50);
/// Pause after an error that a retry may not fix, before trying again.
const ERROR_PAUSE: Duration = Duration::from_secs(5);

/// Reads the source's topics until shutdown.
pub async fn run(
    config: KafkaSourceConfig,
    route: Route,
    pipeline: Arc<Pipeline>,
    mut shutdown: watch::Receiver<bool>,
) {
    let consumer = match connect(&config) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            tracing::error!(error = %e, brokers = %config.brokers, "Kafka source not started");
            return;
        }
    };
    let source = format!("kafka:{}", config.topics.join(","));
    let max_line = pipeline.limits().max_line_bytes;
    let mut last_commit = None;
    loop {
        let first = tokio::select! {
            m = consumer.recv() => m,
            _ = stopped(&mut shutdown) => break,
        };
        let mut batch = match first {
            Ok(m) => vec![m.detach()],
            Err(e) => {
                tracing::warn!(error = %e, source, "Kafka source: read failed");
                continue;
            }
        };
        let deadline = tokio::time::Instant::now() + BATCH_WAIT;
        while batch.len() < config.max_batch {
            match tokio::time::timeout_at(deadline, consumer.recv()).await {
                Ok(Ok(m)) => batch.push(m.detach()),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, source, "Kafka source: read failed");
                    break;
                }
                Err(_) => break,
            }
        }
        let batch = Arc::new(batch);
        let ctx = Batch {
            pipeline: &pipeline,
            route: &route,
            tenant: &config.tenant,
            source: &source,
            format: config.format,
            max_line,
        };
        if !ctx.store(&batch, &mut shutdown).await {
            // Stopping before the batch was durable: not committed, the
            // group delivers it again.
            break;
        }
        let offsets = next_offsets(&batch);
        if let Err(e) = consumer.commit(&offsets, CommitMode::Async) {
            tracing::warn!(error = %e, source, "Kafka source: offset commit failed (the records may be read again, and are then recognised)");
        }
        last_commit = Some(offsets);
    }
    // The last commit again, synchronously, before the group is left.
    if let Some(offsets) = last_commit {
        let _ = tokio::task::spawn_blocking(move || {
            if let Err(e) = consumer.commit(&offsets, CommitMode::Sync) {
                tracing::warn!(error = %e, "Kafka source: final offset commit failed");
            }
        })
        .await;
    }
}

fn connect(config: &KafkaSourceConfig) -> Result<StreamConsumer, rdkafka::error::KafkaError> {
    // A default the user's `client` may change, then theirs, then what
    // committing only durable batches depends on.
    let mut client = kafka_client(
        &config.brokers,
        &[("partition.assignment.strategy", "cooperative-sticky")],
        &config.client,
    );
    let start = match config.start {
        Start::Earliest => "earliest",
        Start::Latest => "latest",
    };
    let consumer: StreamConsumer = client
        .set("group.id", &config.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", start)
        .create()?;
    let topics: Vec<&str> = config.topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics)?;
    tracing::info!(brokers = %config.brokers, topics = ?config.topics, group = %config.group_id, tenant = %config.tenant, "Kafka source reading");
    Ok(consumer)
}

/// Past the last record of `batch`, per topic and partition.
fn next_offsets(batch: &[OwnedMessage]) -> TopicPartitionList {
    let mut next: BTreeMap<(&str, i32), i64> = BTreeMap::new();
    for m in batch {
        let e = next.entry((m.topic(), m.partition())).or_insert(0);
        *e = (*e).max(m.offset() + 1);
    }
    let mut tpl = TopicPartitionList::new();
    for ((topic, partition), offset) in next {
        // Only fails for a negative partition, which a fetched record has not.
        let _ = tpl.add_partition_offset(topic, partition, Offset::Offset(offset));
    }
    tpl
}

struct Batch<'a> {
    pipeline: &'a Arc<Pipeline>,
    route: &'a Route,
    tenant: &'a str,
    source: &'a str,
    format: Format,
    max_line: usize,
}

impl Batch<'_> {
    /// Makes `batch` durable, waiting out what a wait can fix; false when
    /// shutdown came first.
    async fn store(
        &self,
        batch: &Arc<Vec<OwnedMessage>>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> bool {
        loop {
            let wait = match self.try_store(batch).await {
                Ok(()) => return true,
                Err(e) => {
                    tracing::debug!(error = %e, source = self.source, "Kafka source batch waits");
                    e.retry_in().unwrap_or(ERROR_PAUSE)
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stopped(shutdown) => return false,
            }
        }
    }

    async fn try_store(&self, batch: &Arc<Vec<OwnedMessage>>) -> Result<(), Error> {
        let adm = self.pipeline.admit_listener(
            self.tenant,
            self.source.to_string(),
            self.route.clone(),
            None,
        );
        let bytes = batch
            .iter()
            .map(|m| m.payload().map_or(0, <[u8]>::len))
            .sum();
        self.pipeline.received(&adm, bytes)?;
        let (pipeline, records, format, max_line) = (
            self.pipeline.clone(),
            batch.clone(),
            self.format,
            self.max_line,
        );
        let (adm, built, claimed, in_flight) = tokio::task::spawn_blocking(move || {
            let items: Vec<(usize, Item<'_>)> = records
                .iter()
                .enumerate()
                .map(|(i, m)| (i + 1, item(m, format, max_line)))
                .collect();
            let ids = records
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    (
                        i,
                        format!("kafka:{}/{}/{}", m.topic(), m.partition(), m.offset()),
                    )
                })
                .collect();
            let c = pipeline.claim_items(&adm, items, ids);
            let in_flight = c.refused.iter().any(|r| r.2 == Claim::InFlight);
            let built = pipeline.build_with_ids(&adm, c.items, &Meta::now(), c.ids);
            (adm, built, c.claimed, in_flight)
        })
        .await
        .map_err(|e| Error::Unavailable(format!("building the batch failed: {e}")))?;
        if in_flight {
            return Err(Error::InFlight);
        }
        if built.events.is_empty() {
            // Every record was stored before (read again after a crash).
            return Ok(());
        }
        self.pipeline.check_events(&adm, built.events.len())?;
        self.pipeline
            .store_checked(&adm, built, None, Some(claimed))
            .await
    }
}

/// One record's value → the item it makes.
fn item(m: &OwnedMessage, format: Format, max_line: usize) -> Item<'_> {
    let value = m.payload().unwrap_or_default();
    let bad = |kind: &'static str, reason: String| Item::Bad {
        raw: Cow::Borrowed(value),
        reason,
        kind,
    };
    if value.len() > max_line {
        let reason = format!("record is longer than {max_line} bytes (limits.max_line_bytes)");
        return bad("line_too_long", reason);
    }
    let Ok(text) = std::str::from_utf8(value) else {
        return bad("invalid_utf8", "record value is not UTF-8".into());
    };
    match format {
        Format::Json => Item::Json(Cow::Borrowed(text)),
        Format::Text => {
            let line = text.strip_suffix('\n').unwrap_or(text);
            Item::Text(line.strip_suffix('\r').unwrap_or(line))
        }
    }
}
