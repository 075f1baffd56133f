//! The hot indexer: a WAL consumer that writes events into partitions.
//!
//! One thread reads durable WAL records from its checkpoint, adds each
//! event to its partition's `IndexWriter`, and commits every written
//! partition together at most every `hot.commit_interval` (commits are
//! batched by time: a commit per request would halve throughput). After the
//! commits it reloads the searchers, writes its checkpoint and lets the WAL
//! drop what every consumer has passed. It also enforces hot retention.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tantivy::{IndexWriter, TantivyDocument};
use time::{Date, OffsetDateTime};

use super::{HotError, HotIndex, Partition, PartitionKey};
use crate::batch;
use crate::config::HotConfig;
use crate::telemetry::{Metrics, TenantType};
use crate::wal::{Lsn, Wal, WalReader};

pub const CONSUMER: &str = "hot";
/// WAL bytes read per step, so commits are not starved under load. WAL
/// batches are mostly compressed (5-6x for stored events), so a step holds
/// about 6 MiB of events: at this machine's indexing speed, a fraction of
/// the default commit interval.
const READ_BATCH_BYTES: usize = 1 << 20;
/// A writer unused this long is closed, freeing its indexing memory.
const WRITER_IDLE: Duration = Duration::from_secs(300);
const RETENTION_EVERY: Duration = Duration::from_secs(60);
/// Failed steps or commits in a row, while stopping, before giving up.
const GIVE_UP_STOPPING: usize = 3;

struct Writer {
    writer: IndexWriter<TantivyDocument>,
    partition: Arc<Partition>,
    /// Events added since the last commit.
    pending: u64,
    last_used: Instant,
}

pub struct Indexer {
    hot: Arc<HotIndex>,
    wal: Wal,
    reader: WalReader,
    config: HotConfig,
    metrics: Arc<Metrics>,
    writers: HashMap<PartitionKey, Writer>,
    /// Commit payload LSN of each partition, for exactly-once replay.
    committed: HashMap<PartitionKey, Lsn>,
    /// Last checkpoint written, to skip rewriting an unchanged one.
    checkpoint: Lsn,
    stop: Arc<AtomicBool>,
}

impl Indexer {
    pub fn new(
        hot: Arc<HotIndex>,
        wal: Wal,
        checkpoint: Lsn,
        config: HotConfig,
        metrics: Arc<Metrics>,
        stop: Arc<AtomicBool>,
    ) -> Indexer {
        wal.register_consumer(CONSUMER, checkpoint);
        let committed = hot
            .all_partitions()
            .into_iter()
            .map(|p| (p.key.clone(), p.committed_lsn))
            .collect();
        Indexer {
            reader: wal.reader(checkpoint),
            hot,
            wal,
            config,
            metrics,
            writers: HashMap::new(),
            committed,
            checkpoint,
            stop,
        }
    }

    /// Runs until `stop` is set and everything durable is indexed and committed.
    pub fn run(mut self) {
        let mut last_commit = Instant::now();
        let mut last_retention = Instant::now() - RETENTION_EVERY;
        // Failures in a row since the gateway began stopping: past
        // GIVE_UP_STOPPING the indexer exits without finishing (what it has
        // not committed is still in the WAL and is indexed at the next start).
        let mut failing_while_stopping = 0;
        loop {
            let stopping = self.stop.load(Ordering::Acquire);
            let read = match self.step() {
                Ok(n) => n,
                Err(e) => {
                    tracing::error!(error = %e, "hot indexer step failed; retrying");
                    failing_while_stopping += usize::from(stopping);
                    if failing_while_stopping < GIVE_UP_STOPPING {
                        std::thread::sleep(Duration::from_millis(500));
                    }
                    0
                }
            };
            let pending = self.writers.values().any(|w| w.pending > 0);
            let caught_up = self.reader.position() >= self.wal.durable_lsn();
            if pending
                && (last_commit.elapsed() >= self.config.commit_interval || (stopping && caught_up))
            {
                match self.commit() {
                    Ok(()) => failing_while_stopping = 0,
                    Err(e) => {
                        tracing::error!(error = %e, "hot index commit failed; will retry");
                        failing_while_stopping += usize::from(stopping);
                    }
                }
                last_commit = Instant::now();
            } else if !pending && caught_up {
                // Nothing buffered: the checkpoint can still move past
                // records that produced no documents.
                let _ = self.advance_checkpoint();
            }
            if failing_while_stopping >= GIVE_UP_STOPPING
                || (stopping && caught_up && !self.writers.values().any(|w| w.pending > 0))
            {
                break;
            }
            if last_retention.elapsed() >= RETENTION_EVERY {
                self.enforce_retention(OffsetDateTime::now_utc());
                self.close_idle_writers();
                last_retention = Instant::now();
            }
            self.metrics.hot_index_lag_bytes.set(
                self.wal
                    .durable_lsn()
                    .saturating_sub(self.reader.position()) as i64,
            );
            if read == 0 {
                let until_commit = self
                    .config
                    .commit_interval
                    .saturating_sub(last_commit.elapsed());
                // At most 200 ms, so a stop is noticed soon whatever the
                // commit interval.
                let wait = if pending {
                    until_commit.min(Duration::from_millis(200))
                } else {
                    Duration::from_millis(200)
                };
                self.wal
                    .wait_past(self.reader.position(), wait.max(Duration::from_millis(1)));
            }
        }
        if failing_while_stopping >= GIVE_UP_STOPPING {
            tracing::error!(
                from = self.checkpoint,
                "hot indexer stopping without its last commit (the hot tier cannot be written); the WAL keeps those events for the next start"
            );
            // The writers are dropped without waiting for merges that
            // cannot finish either.
            return;
        }
        for (_, w) in self.writers.drain() {
            let _ = w.writer.wait_merging_threads();
        }
    }

    /// Reads and indexes what is durable now; returns records read.
    fn step(&mut self) -> Result<usize, HotError> {
        let records = self.reader.read_available(READ_BATCH_BYTES)?;
        let today = OffsetDateTime::now_utc();
        let hot = self.hot.clone();
        for record in &records {
            let batch = match batch::decode(&record.payload) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(lsn = record.lsn, error = %e, "undecodable WAL record skipped");
                    continue;
                }
            };
            let h = &batch.header;
            let received =
                OffsetDateTime::from_unix_timestamp_nanos(i128::from(h.received_ms) * 1_000_000)
                    .unwrap_or(today);
            // Events come grouped by log type (one group unless a filter retyped some).
            let mut current: Option<(PartitionKey, bool, u64)> = None;
            for (log_type, line) in batch.typed_events() {
                if current
                    .as_ref()
                    .is_none_or(|(k, _, _)| k.log_type != log_type)
                {
                    if let Some((key, _, added)) = current.take() {
                        self.count_indexed(&key, added);
                    }
                    let key = PartitionKey {
                        tenant: h.tenant.clone(),
                        log_type: log_type.to_string(),
                        day: received.date(),
                        rehydrated: false,
                    };
                    // Skip what is already in this partition's last commit, and
                    // what was received so long ago that retention would drop it.
                    let skip = self.committed.get(&key).is_some_and(|&c| c >= record.end)
                        || expired(
                            key.day,
                            self.config.retention_for(&key.tenant, &key.log_type),
                            today,
                        );
                    current = Some((key, skip, 0));
                }
                let (key, skip, added) = current.as_mut().expect("set above");
                if *skip {
                    continue;
                }
                match hot.schema.document(line) {
                    Ok(doc) => {
                        let writer = self.writer(key)?;
                        writer.writer.add_document(doc)?;
                        writer.pending += 1;
                        writer.last_used = Instant::now();
                        *added += 1;
                    }
                    Err(e) => tracing::error!(lsn = record.lsn, error = %e, "event not indexable"),
                }
            }
            if let Some((key, _, added)) = current.take() {
                self.count_indexed(&key, added);
            }
        }
        Ok(records.len())
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
            let writer = partition
                .index
                .writer_with_num_threads(1, self.config.writer_memory_bytes.max(15_000_000))?;
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

    /// Commits every partition with new events, then moves the checkpoint.
    fn commit(&mut self) -> Result<(), HotError> {
        let lsn = self.reader.position();
        let payload = format!("{{\"lsn\":{lsn}}}");
        for (key, w) in self.writers.iter_mut().filter(|(_, w)| w.pending > 0) {
            let mut prepared = w.writer.prepare_commit()?;
            prepared.set_payload(&payload);
            prepared.commit()?;
            w.partition.reader.reload()?;
            w.pending = 0;
            self.committed.insert(key.clone(), lsn);
        }
        self.advance_checkpoint()
    }

    fn advance_checkpoint(&mut self) -> Result<(), HotError> {
        let lsn = self.reader.position();
        if lsn != self.checkpoint {
            self.hot.write_checkpoint(lsn)?;
            self.wal.set_checkpoint(CONSUMER, lsn)?;
            self.checkpoint = lsn;
        }
        Ok(())
    }

    /// Deletes partitions whose day ended longer ago than their type's retention.
    pub fn enforce_retention(&mut self, now: OffsetDateTime) {
        for p in self.hot.all_partitions() {
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
    use crate::wal::WalOptions;
    use time::macros::datetime;

    #[test]
    fn retention_deletes_expired_partitions_per_type_and_nothing_younger() {
        let dir = tempfile::tempdir().unwrap();
        let (hot, checkpoint) = HotIndex::open(&dir.path().join("hot")).unwrap();
        let opts = WalOptions {
            max_bytes: 1 << 20,
            segment_bytes: 1 << 16,
            queue_len: 8,
        };
        let (wal, _writer) = Wal::open(&dir.path().join("wal"), opts).unwrap();
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
        let stop = Arc::new(AtomicBool::new(false));
        let mut indexer = Indexer::new(
            hot.clone(),
            wal,
            checkpoint,
            config,
            Arc::new(Metrics::new()),
            stop,
        );
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
