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
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use prometheus_client::metrics::gauge::Gauge;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::PartitionKey;
use super::config::ArchiveConfig;
use super::store::ObjectStore;
use crate::batch;
use crate::telemetry::{Metrics, TenantType};
use crate::wal::consumer::{Consumer, Flush};
use crate::wal::{Lsn, Record};

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

/// One partition's object being filled: zstd frames one after another
/// (one stream may hold many frames; `zstd -d` and replay read them all).
/// A compressed WAL batch of one log type is already such a frame and is
/// copied as it is; other events are collected as lines and compressed
/// into a frame of their own.
#[derive(Default)]
struct Part {
    frames: Vec<u8>,
    /// Lines not in a frame yet.
    lines: Vec<u8>,
    events: u64,
}

/// Collected lines are compressed into a frame from this size on.
const LINES_FRAME_BYTES: usize = 256 * 1024;

impl Part {
    /// Compresses the collected lines into a frame (order is kept: a
    /// copied frame is appended only after the lines before it).
    fn seal_lines(&mut self) {
        if self.lines.is_empty() {
            return;
        }
        let frame = zstd::bulk::compress(&self.lines, ZSTD_LEVEL).expect("zstd into memory");
        self.frames.extend_from_slice(&frame);
        self.lines.clear();
    }

    fn finish(mut self) -> Vec<u8> {
        self.seal_lines();
        self.frames
    }
}

pub struct Writer {
    store: Arc<dyn ObjectStore>,
    runtime: tokio::runtime::Handle,
    config: ArchiveConfig,
    metrics: Arc<Metrics>,
    status: Arc<Status>,
    state_path: PathBuf,
    state: State,
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
    crate::disk_format::replace_file(path, &serde_json::to_vec(state).expect("state serializes"))
}

impl Writer {
    /// Reads (or starts) the writer's state; run it with a
    /// [`crate::wal::consumer::Driver`].
    pub fn new(
        data_dir: &Path,
        store: Arc<dyn ObjectStore>,
        runtime: tokio::runtime::Handle,
        config: ArchiveConfig,
        metrics: Arc<Metrics>,
        status: Arc<Status>,
    ) -> std::io::Result<Writer> {
        let state_path = data_dir.join(STATE_FILE);
        let mut state = load_state(&state_path)?;
        if state.writer.is_empty() {
            state.writer = ulid::Ulid::generate().to_string();
            save_state(&state_path, &state)?;
        }
        status.checkpoint.store(state.checkpoint, Ordering::Relaxed);
        if let Some(p) = state.pending {
            tracing::info!(
                start = p.start,
                end = p.end,
                "archive: redoing an unfinished round"
            );
        }
        Ok(Writer {
            store,
            runtime,
            config,
            metrics,
            status,
            state_path,
            state,
            parts: BTreeMap::new(),
            round_bytes: 0,
            round_opened: None,
        })
    }

    fn add(&mut self, record: &Record) {
        let undecodable = |e: String| {
            tracing::error!(lsn = record.lsn, error = %e, "archive: undecodable WAL record skipped");
        };
        let (h, raw) = match batch::decode_raw(&record.payload) {
            Ok(b) => b,
            Err(e) => return undecodable(e),
        };
        let received =
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(h.received_ms) * 1_000_000)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        self.round_opened.get_or_insert_with(Instant::now);
        // The common case: a compressed batch of one log type is copied as
        // the frame it is, without decompressing or compressing again.
        if let batch::RawBody::Frame(frame) = &raw
            && h.types.len() <= 1
        {
            let log_type = h.types.first().map_or(&h.log_type, |r| &r.log_type);
            let part = self
                .parts
                .entry(PartitionKey::new(&h.tenant, log_type, received))
                .or_default();
            part.seal_lines();
            part.frames.extend_from_slice(frame);
            part.events += h.n as u64;
            self.round_bytes += raw.plain_len();
            return;
        }
        let batch = match batch::Batch::from_raw(h, raw) {
            Ok(b) => b,
            Err(e) => return undecodable(e),
        };
        let mut key: Option<PartitionKey> = None;
        for (log_type, line) in batch.typed_events() {
            if key.as_ref().is_none_or(|k| k.log_type != log_type) {
                key = Some(PartitionKey::new(&batch.header.tenant, log_type, received));
            }
            let k = key.as_ref().expect("set above");
            if !self.parts.contains_key(k) {
                self.parts.insert(k.clone(), Part::default());
            }
            let part = self.parts.get_mut(k).expect("inserted above");
            part.lines.extend_from_slice(line);
            part.lines.push(b'\n');
            part.events += 1;
            if part.lines.len() >= LINES_FRAME_BYTES {
                part.seal_lines();
            }
            self.round_bytes += line.len() + 1;
        }
    }

    /// Uploads the round `[checkpoint, end)`, retrying a failed upload
    /// until it succeeds or the gateway stops (then the WAL keeps the round
    /// for the next start).
    fn flush_round(&mut self, end: u64, at: &Flush) -> Result<(), String> {
        let start = self.state.checkpoint;
        if self.state.pending.is_none() {
            self.state.pending = Some(Range { start, end });
            if let Err(e) = save_state(&self.state_path, &self.state) {
                self.state.pending = None;
                return Err(format!("archive: cannot record the round: {e}"));
            }
        }
        let parts = std::mem::take(&mut self.parts);
        let mut objects = Vec::with_capacity(parts.len());
        for (key, part) in parts {
            let events = part.events;
            objects.push((key, events, Bytes::from(part.finish())));
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
                            .unwrap_or_else(|p| p.into_inner()) = Some(message.clone());
                        if at.stopping() {
                            return Err(message);
                        }
                        self.metrics
                            .archive_lag_bytes
                            .set(at.durable_lsn().saturating_sub(start) as i64);
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
        Ok(())
    }
}

impl Consumer for Writer {
    const NAME: &'static str = CONSUMER;
    const READ_BYTES: usize = READ_BATCH_BYTES;
    /// An upload or state write that fails while stopping ends the writer
    /// at once: the store may be down for long, and the WAL keeps the round.
    const GIVE_UP_WHILE_STOPPING: usize = 1;

    fn checkpoint(&self) -> Lsn {
        self.state.checkpoint
    }

    /// A round is full at `archive.max_object_bytes`; a round left pending
    /// by a crash ends exactly where it ended then, whatever the config
    /// says now.
    fn accepts(&self, lsn: Lsn) -> bool {
        match self.state.pending {
            Some(p) => lsn < p.end,
            None => self.round_bytes < self.config.max_object_bytes,
        }
    }

    fn consume(&mut self, record: Record) -> Result<(), String> {
        self.add(&record);
        Ok(())
    }

    fn flush(&mut self, at: &Flush) -> Result<Option<Lsn>, String> {
        // A round redone after a crash is uploaded whole, to the keys it
        // had then; a new one when full, old or the last.
        let due = match self.state.pending {
            Some(p) => at.position >= p.end,
            None => {
                self.round_bytes >= self.config.max_object_bytes
                    || self
                        .round_opened
                        .is_some_and(|t| t.elapsed() >= self.config.max_object_age)
                    || (at.caught_up && at.stopping())
                    || at.ending
            }
        };
        if !due || at.position <= self.state.checkpoint {
            return Ok(None);
        }
        let end = self.state.pending.map_or(at.position, |p| p.end);
        self.flush_round(end, at)?;
        Ok(Some(end))
    }

    fn pending(&self) -> bool {
        self.round_opened.is_some()
    }

    fn flush_in(&self) -> Option<Duration> {
        self.round_opened
            .map(|t| self.config.max_object_age.saturating_sub(t.elapsed()))
    }

    fn lag_gauge(&self) -> Option<&Gauge> {
        Some(&self.metrics.archive_lag_bytes)
    }
}
