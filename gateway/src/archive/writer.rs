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
//! ## Cluster mode
//!
//! One writer runs per topic partition the node owns in group
//! `{group_prefix}-archive` (`crate::cluster::archiver`); positions are
//! the partition's offsets and the writer id in keys is `k{P}`. The
//! checkpoint is the group's committed offset (where the next owner
//! starts). Rounds end where the records say (see `accepts`), so any
//! owner, also two at once, cuts the same ones; only a round cut because
//! the partition went idle is recorded first, as a marker object
//! `{prefix}/_rounds/k{P}/{start:020}.json` holding `{"end":E}`, which
//! whoever opens a round at `start` looks for and follows. A marker is
//! deleted once the group has confirmed an offset past it.
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
use crate::wal::consumer::{Consumer, Flush, PartitionOffsets};
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

/// Cluster mode: a round ends before every offset that is a multiple of
/// this (a bound on a round that a size would give, but the same for
/// every reader: a partition's round holds at most this many records, up
/// to `cluster.max_record_bytes` each).
pub const ROUND_RECORDS: u64 = 1024;

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

/// Where the writer records its checkpoint and pending round.
enum Ledger {
    /// The single node: `archive-state.json` in the data directory.
    File(PathBuf),
    /// Cluster mode, one topic partition: marker objects in the bucket;
    /// the checkpoint is the group's offset.
    Bucket {
        partition: u32,
        offsets: Arc<PartitionOffsets>,
        /// Starts of the markers of this partition in the bucket, listed
        /// once (an earlier owner's) and then kept here; `None` until
        /// listed.
        markers: Option<Vec<u64>>,
    },
}

pub struct Writer {
    store: Arc<dyn ObjectStore>,
    runtime: tokio::runtime::Handle,
    config: ArchiveConfig,
    metrics: Arc<Metrics>,
    status: Arc<Status>,
    ledger: Ledger,
    /// Whether a marker for the round starting at the checkpoint has been
    /// looked for (cluster mode; always for the single node).
    marker_checked: bool,
    state: State,
    parts: BTreeMap<PartitionKey, Part>,
    round_bytes: usize,
    round_opened: Option<Instant>,
    /// Cluster mode: the receive-time window (`received_ms` divided by
    /// `max_object_age`) of the round's last record, and when the round
    /// last took a record.
    last_window: Option<i64>,
    last_added: Option<Instant>,
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
            ledger: Ledger::File(state_path),
            marker_checked: true,
            state,
            parts: BTreeMap::new(),
            round_bytes: 0,
            round_opened: None,
            last_window: None,
            last_added: None,
        })
    }

    /// Cluster mode: the writer of topic partition `partition`, from the
    /// group's committed offset `checkpoint`; `offsets` follow the
    /// group's confirmed offset and the partition's high watermark.
    pub fn for_partition(
        partition: u32,
        checkpoint: Lsn,
        offsets: Arc<PartitionOffsets>,
        store: Arc<dyn ObjectStore>,
        runtime: tokio::runtime::Handle,
        config: ArchiveConfig,
        metrics: Arc<Metrics>,
    ) -> Writer {
        Writer {
            store,
            runtime,
            config,
            metrics,
            status: Arc::default(),
            ledger: Ledger::Bucket {
                partition,
                offsets,
                markers: None,
            },
            marker_checked: false,
            state: State {
                writer: format!("k{partition}"),
                checkpoint,
                pending: None,
            },
            parts: BTreeMap::new(),
            round_bytes: 0,
            round_opened: None,
            last_window: None,
            last_added: None,
        }
    }

    /// Where topic partition `partition`'s round markers are.
    fn markers_dir(&self, partition: u32) -> String {
        format!("{}/_rounds/k{partition}/", self.config.prefix)
    }

    /// Cluster mode, before a round opens: the range of a round some owner
    /// began at the same start, if there is one (it is cut the same way).
    fn find_pending(&mut self) -> Result<(), String> {
        let Ledger::Bucket { partition, .. } = self.ledger else {
            return Ok(());
        };
        if self.state.pending.is_some() {
            return Ok(());
        }
        let start = self.state.checkpoint;
        let key = format!("{}{start:020}.json", self.markers_dir(partition));
        match self.runtime.block_on(self.store.get(&key)) {
            Ok(body) => {
                let range: Range = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v["end"].as_u64())
                    .map(|end| Range { start, end })
                    .ok_or_else(|| format!("archive: unreadable round marker {key}"))?;
                tracing::info!(
                    partition,
                    start,
                    end = range.end,
                    "archive: redoing a round another owner began"
                );
                self.state.pending = Some(range);
                Ok(())
            }
            Err(super::store::StoreError::NotFound(_)) => Ok(()),
            Err(e) => Err(format!("archive: cannot read {key}: {e}")),
        }
    }

    /// Records the round about to be uploaded (`state.pending`).
    fn record_round(&mut self) -> Result<(), String> {
        let dir = match &self.ledger {
            Ledger::Bucket { partition, .. } => self.markers_dir(*partition),
            Ledger::File(_) => String::new(),
        };
        match &mut self.ledger {
            Ledger::File(path) => save_state(path, &self.state)
                .map_err(|e| format!("archive: cannot record the round: {e}")),
            Ledger::Bucket { markers, .. } => {
                let Some(range) = self.state.pending else {
                    return Ok(());
                };
                let key = format!("{dir}{:020}.json", range.start);
                let body = Bytes::from(format!("{{\"end\":{}}}\n", range.end));
                self.runtime
                    .block_on(self.store.put(&key, body))
                    .map_err(|e| format!("archive: cannot record the round in {key}: {e}"))?;
                if let Some(m) = markers {
                    m.push(range.start);
                }
                Ok(())
            }
        }
    }

    /// Records that the round is uploaded (`state.checkpoint` moved);
    /// cluster mode: deletes the markers the group's offset has passed.
    fn record_done(&mut self) {
        let dir = match &self.ledger {
            Ledger::Bucket { partition, .. } => self.markers_dir(*partition),
            Ledger::File(_) => String::new(),
        };
        let (offsets, markers) = match &mut self.ledger {
            Ledger::File(path) => {
                // If this write fails the round is redone at start (same keys).
                if let Err(e) = save_state(path, &self.state) {
                    tracing::error!(error = %e, "archive: cannot record the checkpoint");
                }
                return;
            }
            Ledger::Bucket {
                offsets, markers, ..
            } => (offsets, markers),
        };
        if markers.is_none() {
            // Once: those an earlier owner left (it may have died before
            // deleting them); this writer's own are added as written.
            match self.runtime.block_on(self.store.list(&dir)) {
                Ok(listed) => {
                    *markers = Some(
                        listed
                            .iter()
                            .filter_map(|m| m.key[dir.len()..].strip_suffix(".json")?.parse().ok())
                            .collect(),
                    )
                }
                Err(e) => {
                    tracing::warn!(error = %e, dir, "archive: cannot list round markers");
                    return;
                }
            }
        }
        let confirmed = offsets.confirmed.load(Ordering::Acquire);
        let Some(markers) = markers else { return };
        let store = &self.store;
        markers.retain(|&start| {
            if start >= confirmed {
                return true;
            }
            let key = format!("{dir}{start:020}.json");
            match self.runtime.block_on(store.delete(&key)) {
                Ok(()) => false,
                Err(e) => {
                    tracing::warn!(error = %e, key, "archive: cannot delete a round marker");
                    true
                }
            }
        });
    }

    /// Cluster mode: a round is uploaded when the records end it (the
    /// next one was refused, see `accepts`), when a marker ends it, or
    /// when the partition has
    /// been idle for `max_object_age` (a cut of the clock, not of the
    /// records: its range is written down first as a marker). A round
    /// still open when the partition is given back (or the node stops) is
    /// dropped: the next owner reads it again from the group's offset and
    /// cuts it the same way.
    fn flush_cluster(&mut self, at: &Flush) -> Result<Option<Lsn>, String> {
        if at.stopping() || at.ending {
            self.drop_round();
            return Ok(None);
        }
        if let Some(p) = self.state.pending {
            if at.position < p.end || at.position <= self.state.checkpoint {
                return Ok(None);
            }
            self.flush_round(p.end, at, false)?;
            return Ok(Some(p.end));
        }
        // Idle: nothing new for `max_object_age`, and the broker says the
        // partition ends here (a reader behind, whose fetches stalled, is
        // not idle: it would cut where another owner does not).
        let age = self.config.max_object_age;
        let at_end = match &self.ledger {
            Ledger::Bucket { offsets, .. } => at.position >= offsets.high.load(Ordering::Acquire),
            Ledger::File(_) => unreachable!("the single node's rounds are cut in `flush`"),
        };
        let idle = at.caught_up
            && at_end
            && self.round_opened.is_some_and(|t| t.elapsed() >= age)
            && self.last_added.is_some_and(|t| t.elapsed() >= age);
        if !(at.full || idle) || at.position <= self.state.checkpoint {
            return Ok(None);
        }
        self.flush_round(at.position, at, idle && !at.full)?;
        Ok(Some(at.position))
    }

    /// The `max_object_age` window of a receive time (cluster mode's cuts).
    fn window(&self, received_ms: i64) -> i64 {
        received_ms.div_euclid((self.config.max_object_age.as_millis() as i64).max(1))
    }

    /// Forgets the open round (cluster mode, when giving the partition back).
    fn drop_round(&mut self) {
        self.parts.clear();
        self.round_bytes = 0;
        self.round_opened = None;
        self.last_window = None;
        self.last_added = None;
        self.state.pending = None;
        self.marker_checked = false;
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
        self.last_window = Some(self.window(h.received_ms));
        self.last_added = Some(Instant::now());
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
    /// `record`: the round's range is written down first (always for the
    /// single node; in cluster mode for a cut the records alone do not
    /// make, see [`Writer::flush_cluster`]).
    fn flush_round(&mut self, end: u64, at: &Flush, record: bool) -> Result<(), String> {
        let start = self.state.checkpoint;
        if self.state.pending.is_none() {
            self.state.pending = Some(Range { start, end });
            if record && let Err(e) = self.record_round() {
                self.state.pending = None;
                return Err(e);
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
        self.record_done();
        self.marker_checked = matches!(self.ledger, Ledger::File(_));
        self.status.checkpoint.store(end, Ordering::Relaxed);
        self.round_bytes = 0;
        self.round_opened = None;
        self.last_window = None;
        self.last_added = None;
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
    /// says now. In cluster mode rounds end where the records say, the
    /// same for every reader from any start (two owners of a partition,
    /// which a consumer group does not rule out, then cut the same
    /// rounds): before a record whose receive time is in another
    /// `max_object_age` window than the record before it, and before
    /// every [`ROUND_RECORDS`]th offset.
    fn accepts(&self, record: &Record) -> bool {
        if !self.marker_checked {
            // Cluster mode: a round opens only once its marker, if any,
            // is known (looked up by the flush this refusal causes).
            return false;
        }
        if let Some(p) = self.state.pending {
            return record.lsn < p.end;
        }
        match (&self.ledger, self.last_window) {
            (Ledger::File(_), _) => self.round_bytes < self.config.max_object_bytes,
            (Ledger::Bucket { .. }, None) => true,
            (Ledger::Bucket { .. }, Some(last)) => {
                // An undecodable record is logged and skipped by `add`.
                !record.lsn.is_multiple_of(ROUND_RECORDS)
                    && batch::decode_header(&record.payload)
                        .map_or(true, |h| self.window(h.received_ms) == last)
            }
        }
    }

    fn consume(&mut self, record: Record) -> Result<(), String> {
        self.add(&record);
        Ok(())
    }

    fn flush(&mut self, at: &Flush) -> Result<Option<Lsn>, String> {
        if !self.marker_checked {
            self.find_pending()?;
            self.marker_checked = true;
            return Ok(None);
        }
        if matches!(self.ledger, Ledger::Bucket { .. }) {
            return self.flush_cluster(at);
        }
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
        self.flush_round(end, at, true)?;
        Ok(Some(end))
    }

    fn pending(&self) -> bool {
        self.round_opened.is_some()
    }

    fn flush_in(&self) -> Option<Duration> {
        let age = self.config.max_object_age;
        let opened = self.round_opened?;
        Some(match (&self.ledger, self.last_added) {
            (Ledger::Bucket { .. }, Some(last)) => age
                .saturating_sub(opened.elapsed())
                .max(age.saturating_sub(last.elapsed())),
            _ => age.saturating_sub(opened.elapsed()),
        })
    }

    fn lag_gauge(&self) -> Option<&Gauge> {
        matches!(self.ledger, Ledger::File(_)).then_some(&self.metrics.archive_lag_bytes)
    }
}
