//! The archive writer: a WAL consumer that cuts the log into rounds and
//! uploads each round as one object per partition (see [`super`] for keys
//! and format).
//!
//! ## State file
//!
//! `{data_dir}/archive-state.json`:
//! `{"writer":"01K…","checkpoint":LSN,"pending":{"start":S,"end":E}}`,
//! replaced by rename + fsync. `writer` is this data directory's writer id
//! (part of every key), picked when the file is first written. `checkpoint` is where the next round starts
//! (everything before it is uploaded). `pending` is written before a
//! round's first upload and cleared after its last: at start a pending
//! round is cut again at exactly `end`, so it yields the same keys and the
//! uploads overwrite what a crash left half done.
//!
//! ## Failures
//!
//! A failed upload is retried (the store's own retries, then here with a
//! backoff up to 30 s) until it succeeds: the round stays open, the WAL
//! keeps its records (the writer's WAL checkpoint does not move), and the
//! lag shows in `logway_archive_lag_bytes` and `/readyz`. At shutdown an
//! unfinished round is left pending for the next start.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::PartitionKey;
use super::store::ObjectStore;
use crate::batch;
use crate::config::ArchiveConfig;
use crate::telemetry::{Metrics, TenantType};
use crate::wal::{Record, Wal};

pub const CONSUMER: &str = "archive";
const STATE_FILE: &str = "archive-state.json";
const READ_BATCH_BYTES: usize = 4 * 1024 * 1024;
const ZSTD_LEVEL: i32 = 3;

#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
struct State {
    #[serde(default)]
    writer: String,
    checkpoint: u64,
    #[serde(default)]
    pending: Option<Range>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
struct Range {
    start: u64,
    end: u64,
}

/// What the rest of the gateway can see of the writer.
#[derive(Debug, Default)]
pub struct Status {
    /// Everything before this WAL position is archived.
    pub checkpoint: std::sync::atomic::AtomicU64,
    pub last_error: Mutex<Option<String>>,
}

/// One partition's object being filled.
struct Part {
    encoder: zstd::stream::write::Encoder<'static, Vec<u8>>,
    events: u64,
}

pub struct Writer {
    wal: Wal,
    store: Arc<dyn ObjectStore>,
    runtime: tokio::runtime::Handle,
    config: ArchiveConfig,
    metrics: Arc<Metrics>,
    status: Arc<Status>,
    stop: Arc<AtomicBool>,
    state_path: PathBuf,
    state: State,
    reader: crate::wal::WalReader,
    /// Records read but not yet in a round (a pending round ended before them).
    carry: std::collections::VecDeque<Record>,
    parts: BTreeMap<PartitionKey, Part>,
    round_bytes: usize,
    round_opened: Option<Instant>,
}

/// Reads the writer's state (a missing file: from the WAL's start).
fn load_state(path: &Path) -> std::io::Result<State> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| std::io::Error::other(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
        Err(e) => Err(e),
    }
}

fn save_state(path: &Path, state: &State) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&serde_json::to_vec(state).expect("state serializes"))?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

impl Writer {
    /// Registers the consumer at its checkpoint; call [`Writer::run`] on a
    /// thread of its own.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        data_dir: &Path,
        wal: Wal,
        store: Arc<dyn ObjectStore>,
        runtime: tokio::runtime::Handle,
        config: ArchiveConfig,
        metrics: Arc<Metrics>,
        status: Arc<Status>,
        stop: Arc<AtomicBool>,
    ) -> std::io::Result<Writer> {
        let state_path = data_dir.join(STATE_FILE);
        let mut state = load_state(&state_path)?;
        if state.writer.is_empty() {
            state.writer = ulid::Ulid::generate().to_string();
            save_state(&state_path, &state)?;
        }
        wal.register_consumer(CONSUMER, state.checkpoint);
        status.checkpoint.store(state.checkpoint, Ordering::Relaxed);
        if let Some(p) = state.pending {
            tracing::info!(
                start = p.start,
                end = p.end,
                "archive: redoing an unfinished round"
            );
        }
        Ok(Writer {
            reader: wal.reader(state.checkpoint),
            wal,
            store,
            runtime,
            config,
            metrics,
            status,
            stop,
            state_path,
            state,
            carry: Default::default(),
            parts: BTreeMap::new(),
            round_bytes: 0,
            round_opened: None,
        })
    }

    /// Runs until `stop` is set and everything durable is archived (or the
    /// store is unreachable at shutdown: then the round stays pending).
    pub fn run(mut self) {
        loop {
            let stopping = self.stop.load(Ordering::Acquire);
            let read = match self.fill() {
                Ok(n) => n,
                Err(e) => {
                    tracing::error!(error = %e, "archive: reading the WAL failed; retrying");
                    std::thread::sleep(Duration::from_millis(500));
                    0
                }
            };
            let position = self.position();
            let caught_up = self.carry.is_empty() && position >= self.wal.durable_lsn();
            let forced_end = self.state.pending.map(|p| p.end);
            let due = forced_end == Some(position)
                || self.round_bytes >= self.config.max_object_bytes
                || self
                    .round_opened
                    .is_some_and(|t| t.elapsed() >= self.config.max_object_age)
                || (stopping && caught_up);
            if due && position > self.state.checkpoint && !self.flush_round(position, stopping) {
                return; // stopping with the store unreachable
            }
            self.metrics
                .archive_lag_bytes
                .set(self.wal.durable_lsn().saturating_sub(self.state.checkpoint) as i64);
            if stopping && caught_up && self.parts.is_empty() {
                return;
            }
            if read == 0 {
                let wait = self.round_opened.map_or(Duration::from_millis(200), |t| {
                    self.config
                        .max_object_age
                        .saturating_sub(t.elapsed())
                        .min(Duration::from_millis(200))
                });
                self.wal
                    .wait_past(position, wait.max(Duration::from_millis(1)));
            }
        }
    }

    /// Where the round being filled ends so far.
    fn position(&self) -> u64 {
        self.carry.front().map_or(self.reader.position(), |r| r.lsn)
    }

    /// Adds durable records to the round until it is full or a pending
    /// round's end is reached; returns how many were added.
    fn fill(&mut self) -> std::io::Result<usize> {
        if self.carry.is_empty() {
            self.carry
                .extend(self.reader.read_available(READ_BATCH_BYTES)?);
        }
        let mut added = 0;
        while let Some(record) = self.carry.front() {
            if self.state.pending.is_some_and(|p| record.lsn >= p.end)
                || self.round_bytes >= self.config.max_object_bytes
            {
                break;
            }
            let record = self.carry.pop_front().expect("front exists");
            self.add(&record);
            added += 1;
        }
        Ok(added)
    }

    fn add(&mut self, record: &Record) {
        let batch = match batch::decode(&record.payload) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(lsn = record.lsn, error = %e, "archive: undecodable WAL record skipped");
                return;
            }
        };
        let h = &batch.header;
        let received =
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(h.received_ms) * 1_000_000)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        self.round_opened.get_or_insert_with(Instant::now);
        let mut key: Option<PartitionKey> = None;
        for (log_type, line) in batch.typed_events() {
            if key.as_ref().is_none_or(|k| k.log_type != log_type) {
                key = Some(PartitionKey::new(&h.tenant, log_type, received));
            }
            let k = key.as_ref().expect("set above");
            if !self.parts.contains_key(k) {
                let encoder = zstd::stream::write::Encoder::new(Vec::new(), ZSTD_LEVEL)
                    .expect("zstd encoder in memory");
                self.parts.insert(k.clone(), Part { encoder, events: 0 });
            }
            let part = self.parts.get_mut(k).expect("inserted above");
            // Writes to a Vec cannot fail.
            let _ = part.encoder.write_all(line);
            let _ = part.encoder.write_all(b"\n");
            part.events += 1;
            self.round_bytes += line.len() + 1;
        }
    }

    /// Uploads the round `[checkpoint, end)`; false if stopping with an
    /// upload still failing.
    fn flush_round(&mut self, end: u64, stopping: bool) -> bool {
        let start = self.state.checkpoint;
        if self.state.pending.is_none() {
            self.state.pending = Some(Range { start, end });
            if let Err(e) = save_state(&self.state_path, &self.state) {
                tracing::error!(error = %e, "archive: cannot record the round; retrying");
                self.state.pending = None;
                if stopping || self.stop.load(Ordering::Acquire) {
                    return false; // the WAL keeps the round for the next start
                }
                std::thread::sleep(Duration::from_millis(500));
                return true;
            }
        }
        let parts = std::mem::take(&mut self.parts);
        let mut objects = Vec::with_capacity(parts.len());
        for (key, part) in parts {
            let body = Bytes::from(part.encoder.finish().expect("zstd into memory"));
            objects.push((key, part.events, body));
        }
        for (key, events, body) in &objects {
            let object_key = key.object_key(&self.config.prefix, start, end, &self.state.writer);
            let mut backoff = Duration::from_millis(500);
            loop {
                match self
                    .runtime
                    .block_on(self.store.put(&object_key, body.clone()))
                {
                    Ok(()) => break,
                    Err(e) => {
                        self.metrics.archive_upload_errors.inc();
                        let message = format!("upload of {object_key} failed: {e}");
                        tracing::warn!(error = %e, key = %object_key, "archive: upload failed; will retry");
                        *self
                            .status
                            .last_error
                            .lock()
                            .unwrap_or_else(|p| p.into_inner()) = Some(message);
                        if stopping || self.stop.load(Ordering::Acquire) {
                            return false;
                        }
                        self.metrics
                            .archive_lag_bytes
                            .set(self.wal.durable_lsn().saturating_sub(start) as i64);
                        std::thread::sleep(backoff);
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                    }
                }
            }
            self.metrics.archive_objects.inc();
            self.metrics.archive_bytes.inc_by(body.len() as u64);
            self.metrics
                .archive_events
                .get_or_create(&TenantType::new(&key.tenant, &key.log_type))
                .inc_by(*events);
        }
        *self
            .status
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = None;
        self.state.checkpoint = end;
        self.state.pending = None;
        // If this write fails the round is redone at start (same keys).
        if let Err(e) = save_state(&self.state_path, &self.state) {
            tracing::error!(error = %e, "archive: cannot record the checkpoint");
        }
        if let Err(e) = self.wal.set_checkpoint(CONSUMER, end) {
            tracing::error!(error = %e, "archive: WAL checkpoint failed");
        }
        self.status.checkpoint.store(end, Ordering::Relaxed);
        self.round_bytes = 0;
        self.round_opened = None;
        if !objects.is_empty() {
            tracing::debug!(
                start,
                end,
                objects = objects.len(),
                "archive: round uploaded"
            );
        }
        true
    }
}
