//! The hot indexer: a WAL consumer ([`crate::wal::consumer`]) that writes
//! events into partitions.
//!
//! It adds each durable event to its partition's `IndexWriter` and commits
//! every written partition together at most every `hot.commit_interval`
//! (commits are batched by time: a commit per request would halve
//! throughput). After the commits it reloads the searchers and writes its
//! checkpoint; the driver then lets the WAL drop what every consumer has
//! passed. Partitions holding new event-class documents are committed on
//! their own after `hot.event_commit_interval`; each commit carries its
//! position, so a restart skips what they hold, and the checkpoint waits
//! for the regular commit. Its housekeeping enforces hot retention.
//!
//! On a single node the WAL's event-class batches have an indexer of
//! their own ([`Indexer::for_events`], consumer `hot-events`): it reads the same
//! WAL from its own checkpoint, indexes only those batches into the
//! partitions of [`super::EVENTS_STREAM`] and commits every
//! `hot.event_commit_interval`, at the server's normal priority; the WAL's
//! indexer skips them. So an event is searchable within that interval of
//! its ack however far behind a flood of logs keeps the main indexer.
//!
//! In cluster mode one indexer runs per topic partition the node owns
//! (`crate::cluster::group`), over that partition's records: its hot
//! partitions are that stream's (`PartitionKey::kafka`), its positions the
//! partition's offsets, its checkpoint `kafka.{P}/checkpoint.json`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::metrics::gauge::Gauge;
use tantivy::indexer::UserOperation;
use tantivy::{IndexWriter, TantivyDocument};
use time::{Date, OffsetDateTime};

use super::config::HotConfig;
use super::{HotError, HotIndex, Partition, PartitionKey};
use crate::batch;
use crate::telemetry::{Metrics, TenantType};
use crate::wal::consumer::{Consumer, Flush};
use crate::wal::{Lsn, Record};

pub const CONSUMER: &str = "hot";
/// The events' indexer's consumer name ([`Indexer::for_events`]).
pub const EVENTS_CONSUMER: &str = "hot-events";
/// WAL bytes read per step, so commits are not starved under load. WAL
/// batches are mostly compressed (5-6x for stored events), so a step holds
/// about 6 MiB of events: at this machine's indexing speed, a fraction of
/// the default commit interval.
const READ_BATCH_BYTES: usize = 1 << 20;
/// Checkpoints past records with nothing to commit, at most this often.
const IDLE_CHECKPOINT_EVERY: Duration = Duration::from_secs(1);
/// A writer unused this long is closed, freeing its indexing memory.
const WRITER_IDLE: Duration = Duration::from_secs(300);

struct Writer {
    writer: IndexWriter<TantivyDocument>,
    partition: Arc<Partition>,
    /// Events added since the last commit.
    pending: u64,
    last_used: Instant,
}

pub struct Indexer {
    hot: Arc<HotIndex>,
    /// The stream it indexes: the WAL (`None`) or a topic partition.
    kafka: Option<u32>,
    config: HotConfig,
    metrics: Arc<Metrics>,
    writers: HashMap<PartitionKey, Writer>,
    /// Commit payload LSN of each partition, for exactly-once replay.
    committed: HashMap<PartitionKey, Lsn>,
    /// Last checkpoint written, to skip rewriting an unchanged one.
    checkpoint: Lsn,
    last_commit: Instant,
    /// When the checkpoint last moved without a commit.
    last_idle_checkpoint: Instant,
    /// Partitions with event-class documents not yet committed, and since
    /// when the first of them waits.
    events: Option<(Instant, HashSet<PartitionKey>)>,
    /// Which batches it indexes, by class.
    classes: Classes,
}

/// Which WAL batches an indexer takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Classes {
    /// Every batch (a topic partition's indexer, or the WAL's without an
    /// event indexer beside it).
    All,
    /// All but event-class batches (the WAL's, with the events' indexer).
    NotEvents,
    /// Event-class batches only ([`Indexer::for_events`]).
    Events,
}

impl Indexer {
    /// Indexes the WAL from `checkpoint` (what [`HotIndex::open`] read).
    pub fn new(
        hot: Arc<HotIndex>,
        checkpoint: Lsn,
        config: HotConfig,
        metrics: Arc<Metrics>,
    ) -> Indexer {
        Indexer::of_stream(hot, None, checkpoint, config, metrics)
    }

    /// Indexes one stream (the WAL, or topic partition `kafka`) from
    /// `checkpoint`.
    pub fn of_stream(
        hot: Arc<HotIndex>,
        kafka: Option<u32>,
        checkpoint: Lsn,
        config: HotConfig,
        metrics: Arc<Metrics>,
    ) -> Indexer {
        let committed = hot
            .all_partitions()
            .into_iter()
            .filter(|p| p.key.kafka == kafka)
            .map(|p| (p.key.clone(), p.committed_lsn))
            .collect();
        Indexer {
            hot,
            kafka,
            config,
            metrics,
            writers: HashMap::new(),
            committed,
            checkpoint,
            last_commit: Instant::now(),
            last_idle_checkpoint: Instant::now(),
            events: None,
            classes: Classes::All,
        }
    }

    /// Leaves event-class batches to the events' indexer
    /// ([`Indexer::for_events`]).
    pub fn without_events(mut self) -> Indexer {
        self.classes = Classes::NotEvents;
        self
    }

    /// The WAL's event-class batches, indexed ahead of the rest (see the
    /// module docs): an indexer of [`super::EVENTS_STREAM`] that takes only
    /// those batches and commits every `hot.event_commit_interval`, as
    /// consumer [`EVENTS_CONSUMER`]. It starts from the stream's
    /// checkpoint, or the first time from the WAL indexer's
    /// (`wal_checkpoint`: what came before it is in the WAL's partitions).
    pub fn for_events(
        hot: Arc<HotIndex>,
        wal_checkpoint: Lsn,
        config: &HotConfig,
        metrics: Arc<Metrics>,
    ) -> Indexer {
        let checkpoint = hot
            .kafka_checkpoint(super::EVENTS_STREAM)
            .unwrap_or(wal_checkpoint);
        let mut config = config.clone();
        config.commit_interval = config.event_commit_interval;
        let mut indexer =
            Indexer::of_stream(hot, Some(super::EVENTS_STREAM), checkpoint, config, metrics);
        indexer.classes = Classes::Events;
        indexer
    }

    /// Indexes the events of one durable WAL record.
    fn index(&mut self, record: &Record) -> Result<(), HotError> {
        let today = OffsetDateTime::now_utc();
        // The header first: a batch left to the other indexer is not
        // decompressed.
        let batch = match batch::decode_raw(&record.payload).and_then(|(header, raw)| {
            let event = header.class == crate::wal::Class::Event;
            let mine = match self.classes {
                Classes::All => true,
                Classes::NotEvents => !event,
                Classes::Events => event,
            };
            mine.then(|| batch::Batch::from_raw(header, raw))
                .transpose()
        }) {
            Ok(None) => return Ok(()),
            Ok(Some(b)) => b,
            Err(e) => {
                tracing::error!(lsn = record.lsn, error = %e, "undecodable WAL record skipped");
                return Ok(());
            }
        };
        let hot = self.hot.clone();
        let h = &batch.header;
        let event = h.class == crate::wal::Class::Event;
        let received =
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(h.received_ms) * 1_000_000)
                .unwrap_or(today);
        // Events come grouped by log type (one group unless a filter retyped some).
        let mut current: Option<(PartitionKey, bool, u64)> = None;
        // Whether the current partition's events carry `_lsn` (a new one does).
        let mut has_lsn = true;
        let mut docs = Vec::new();
        for (log_type, line) in batch.typed_events() {
            if current
                .as_ref()
                .is_none_or(|(k, _, _)| k.log_type != log_type)
            {
                self.end_group(current.take(), std::mem::take(&mut docs), event)?;
                let key = PartitionKey {
                    tenant: h.tenant.clone(),
                    log_type: log_type.to_string(),
                    day: received.date(),
                    rehydrated: false,
                    kafka: self.kafka,
                };
                // Skip what is already in this partition's last commit, and
                // what was received so long ago that retention would drop it.
                let skip = self.committed.get(&key).is_some_and(|&c| c >= record.end)
                    || expired(
                        key.day,
                        self.config.retention_for(&key.tenant, &key.log_type),
                        today,
                    );
                has_lsn = hot.existing(&key).is_none_or(|p| p.has_lsn);
                current = Some((key, skip, 0));
            }
            let (_, skip, added) = current.as_mut().expect("set above");
            if *skip {
                continue;
            }
            match hot.schema.document(line) {
                Ok(mut doc) => {
                    if has_lsn {
                        doc.add_u64(hot.schema.lsn, record.end);
                    }
                    docs.push(UserOperation::Add(doc));
                    *added += 1;
                }
                Err(e) => tracing::error!(lsn = record.lsn, error = %e, "event not indexable"),
            }
        }
        self.end_group(current.take(), docs, event)
    }

    /// Ends a record's group of events of one partition: hands their
    /// documents to its writer in one batch (one channel send instead of
    /// one per document: 5-12% less indexing CPU in three `index-bench` runs) and counts
    /// them.
    fn end_group(
        &mut self,
        group: Option<(PartitionKey, bool, u64)>,
        docs: Vec<UserOperation<TantivyDocument>>,
        event: bool,
    ) -> Result<(), HotError> {
        let Some((key, _, added)) = group else {
            return Ok(());
        };
        if !docs.is_empty() {
            let writer = self.writer(&key)?;
            writer.writer.run(docs)?;
            writer.pending += added;
            writer.last_used = Instant::now();
            if event {
                let (_, keys) = self
                    .events
                    .get_or_insert_with(|| (Instant::now(), HashSet::new()));
                keys.insert(key.clone());
            }
        }
        self.count_indexed(&key, added);
        Ok(())
    }

    fn count_indexed(&self, key: &PartitionKey, added: u64) {
        if added > 0 {
            self.metrics
                .events_indexed
                .get_or_create(&TenantType::new(&key.tenant, &key.log_type))
                .inc_by(added);
        }
    }

    fn writer(&mut self, key: &PartitionKey) -> Result<&mut Writer, HotError> {
        if !self.writers.contains_key(key) {
            let partition = self.hot.partition(key)?;
            let threads = self.config.threads();
            // tantivy wants at least 15 MB per thread.
            let memory = self.config.writer_memory_bytes.max(threads * 15_000_000);
            let writer = partition.index.writer_with_num_threads(threads, memory)?;
            self.writers.insert(
                key.clone(),
                Writer {
                    writer,
                    partition,
                    pending: 0,
                    last_used: Instant::now(),
                },
            );
        }
        Ok(self.writers.get_mut(key).unwrap())
    }

    /// Commits every partition with new events at `lsn`, then writes the
    /// checkpoint.
    fn commit(&mut self, lsn: Lsn) -> Result<(), HotError> {
        self.events = None;
        self.commit_partitions(lsn, |_| true)?;
        self.advance_checkpoint(lsn)
    }

    /// Commits the partitions `which` picks that have new events, at `lsn`
    /// (every record before it is in them).
    fn commit_partitions(
        &mut self,
        lsn: Lsn,
        which: impl Fn(&PartitionKey) -> bool,
    ) -> Result<(), HotError> {
        let payload = format!("{{\"lsn\":{lsn}}}");
        let due = self
            .writers
            .iter_mut()
            .filter(|(key, w)| w.pending > 0 && which(key));
        for (key, w) in due {
            let mut prepared = w.writer.prepare_commit()?;
            prepared.set_payload(&payload);
            prepared.commit()?;
            w.partition.reader.reload()?;
            w.partition.set_visible_lsn(lsn);
            w.pending = 0;
            self.committed.insert(key.clone(), lsn);
        }
        Ok(())
    }

    /// When the waiting event-class documents are due for their commit.
    fn events_due_in(&self) -> Option<Duration> {
        self.events.as_ref().map(|(since, _)| {
            self.config
                .event_commit_interval
                .saturating_sub(since.elapsed())
        })
    }

    fn advance_checkpoint(&mut self, lsn: Lsn) -> Result<(), HotError> {
        if lsn != self.checkpoint {
            self.hot.write_checkpoint(self.kafka, lsn)?;
            self.checkpoint = lsn;
        }
        Ok(())
    }

    /// Deletes partitions whose day ended longer ago than their type's
    /// retention: its stream's, and the WAL's indexer also those of topic
    /// partitions no indexer of this node owns now.
    pub fn enforce_retention(&mut self, now: OffsetDateTime) {
        let owned = self.hot.owned().unwrap_or_default();
        let mine = |key: &PartitionKey| match (self.kafka, key.kafka) {
            (_, k) if k == self.kafka => true,
            (None, Some(p)) => p != super::EVENTS_STREAM && !owned.contains(&p),
            _ => false,
        };
        for p in self.hot.all_partitions() {
            if !mine(&p.key) {
                continue;
            }
            let retention = if p.key.rehydrated {
                self.config.rehydrated_retention
            } else {
                self.config.retention_for(&p.key.tenant, &p.key.log_type)
            };
            if !expired(p.key.day, retention, now) {
                continue;
            }
            if let Some(w) = self.writers.remove(&p.key) {
                // Everything in it has expired: nothing to commit.
                let mut writer = w.writer;
                let _ = writer.rollback();
                drop(writer);
            }
            match self.hot.delete_partition(&p.key) {
                Ok(()) => {
                    tracing::info!(tenant = %p.key.tenant, r#type = %p.key.log_type, day = %super::day_name(p.key.day), "hot retention: partition deleted");
                    self.metrics.hot_partitions_deleted.inc();
                }
                Err(e) => {
                    tracing::error!(dir = %p.dir.display(), error = %e, "cannot delete expired partition")
                }
            }
        }
    }

    fn close_idle_writers(&mut self) {
        let idle: Vec<PartitionKey> = self
            .writers
            .iter()
            .filter(|(_, w)| w.pending == 0 && w.last_used.elapsed() > WRITER_IDLE)
            .map(|(k, _)| k.clone())
            .collect();
        for key in idle {
            if let Some(w) = self.writers.remove(&key) {
                let _ = w.writer.wait_merging_threads();
            }
        }
    }
}

impl Consumer for Indexer {
    const NAME: &'static str = CONSUMER;
    const READ_BYTES: usize = READ_BATCH_BYTES;

    fn name(&self) -> &'static str {
        if self.classes == Classes::Events {
            EVENTS_CONSUMER
        } else {
            CONSUMER
        }
    }

    fn checkpoint(&self) -> Lsn {
        self.checkpoint
    }

    fn consume(&mut self, record: Record) -> Result<(), String> {
        self.index(&record).map_err(|e| e.to_string())
    }

    /// Commits every `hot.commit_interval` (and when stopping, caught up).
    fn flush(&mut self, at: &Flush) -> Result<Option<Lsn>, String> {
        let pending = self.pending();
        if pending
            && (self.last_commit.elapsed() >= self.config.commit_interval
                || (at.caught_up && at.stopping())
                || at.ending)
        {
            self.last_commit = Instant::now();
            self.commit(at.position)
                .map_err(|e| format!("hot index commit failed: {e}"))?;
            return Ok(Some(at.position));
        }
        if self.events_due_in().is_some_and(|d| d.is_zero()) {
            // Only the partitions holding events; the checkpoint waits.
            let (_, keys) = self.events.take().expect("due");
            self.commit_partitions(at.position, |k| keys.contains(k))
                .map_err(|e| format!("hot index commit of events failed: {e}"))?;
            return Ok(None);
        }
        if !pending
            && at.caught_up
            && at.position != self.checkpoint
            && (self.last_idle_checkpoint.elapsed() >= IDLE_CHECKPOINT_EVERY || at.stopping())
        {
            // Nothing buffered: the checkpoint can still move past records
            // that produced no documents (at most every second: an
            // indexer that skips most batches is caught up after every
            // step; a failure here waits for the next).
            self.last_idle_checkpoint = Instant::now();
            return Ok(self
                .advance_checkpoint(at.position)
                .ok()
                .map(|()| at.position));
        }
        Ok(None)
    }

    fn pending(&self) -> bool {
        self.writers.values().any(|w| w.pending > 0)
    }

    fn flush_in(&self) -> Option<Duration> {
        let regular = self.pending().then(|| {
            self.config
                .commit_interval
                .saturating_sub(self.last_commit.elapsed())
        });
        match (regular, self.events_due_in()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn housekeeping(&mut self) {
        self.enforce_retention(OffsetDateTime::now_utc());
        self.close_idle_writers();
    }

    fn lag_gauge(&self) -> Option<&Gauge> {
        self.kafka
            .is_none()
            .then_some(&self.metrics.hot_index_lag_bytes)
    }

    /// Waits for merges after a complete run; after giving up, the writers
    /// are dropped without waiting for merges that cannot finish either.
    fn finish(mut self, complete: bool) {
        if complete {
            for (_, w) in self.writers.drain() {
                let _ = w.writer.wait_merging_threads();
            }
        }
    }
}

/// A day's partition expires once the day's end is `retention` in the past.
pub fn expired(day: Date, retention: Duration, now: OffsetDateTime) -> bool {
    let Some(next) = day.next_day() else {
        return false;
    };
    let day_end = next.midnight().assume_utc();
    now - day_end > retention
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn retention_deletes_expired_partitions_per_type_and_nothing_younger() {
        let dir = tempfile::tempdir().unwrap();
        let (hot, checkpoint) = HotIndex::open(&dir.path().join("hot")).unwrap();
        let mut config = HotConfig::default(); // 7 days
        config
            .retention_by_type
            .insert("debug_logs".into(), Duration::from_secs(86_400));
        let now = datetime!(2026-11-21 12:00 UTC);
        let part = |log_type: &str, days_ago: i64, rehydrated: bool| PartitionKey {
            tenant: "t".into(),
            log_type: log_type.into(),
            day: (now - time::Duration::days(days_ago)).date(),
            rehydrated,
            kafka: None,
        };
        let key = |log_type: &str, days_ago: i64| part(log_type, days_ago, false);
        let keys = [
            key("app_logs", 9),
            key("app_logs", 7),
            key("app_logs", 0),
            key("debug_logs", 2),
            key("debug_logs", 1),
            // Rehydrated: 3 days (the default) from the day of the replay.
            part("app_logs", 4, true),
            part("app_logs", 1, true),
        ];
        for k in &keys {
            hot.partition(k).unwrap();
        }
        let mut indexer = Indexer::new(hot.clone(), checkpoint, config, Arc::new(Metrics::new()));
        indexer.enforce_retention(now);
        let left: Vec<PartitionKey> = hot.all_partitions().iter().map(|p| p.key.clone()).collect();
        // app_logs from 9 days ago, debug_logs from 2 days ago and the
        // replay of 4 days ago are past their retention; the 7-day-old
        // app_logs day ended 6.5 days ago.
        assert_eq!(
            left,
            vec![
                keys[1].clone(),
                keys[6].clone(),
                keys[2].clone(),
                keys[4].clone()
            ]
        );
        assert!(
            !dir.path()
                .join("hot/t/app_logs")
                .join(super::super::day_name(keys[0].day))
                .exists()
        );
        assert!(
            dir.path()
                .join("hot/t/app_logs")
                .join(super::super::day_name(keys[1].day))
                .exists()
        );
        assert!(dir.path().join("hot/t/app_logs/replay-2026-11-20").exists());
        assert_eq!(indexer.metrics.hot_partitions_deleted.get(), 3);
    }

    #[test]
    fn a_day_expires_only_after_its_end_plus_retention() {
        let day = datetime!(2026-01-10 12:00 UTC).date();
        let week = Duration::from_secs(7 * 86_400);
        assert!(!expired(day, week, datetime!(2026-01-18 00:00 UTC)));
        assert!(!expired(day, week, datetime!(2026-01-17 23:59 UTC)));
        assert!(expired(day, week, datetime!(2026-01-18 00:01 UTC)));
    }
}
