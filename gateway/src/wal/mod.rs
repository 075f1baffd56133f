//! # Write-ahead log
//!
//! Every accepted request becomes one WAL record before it is acknowledged;
//! the hot index, the archive writer and the idempotency table are
//! *consumers* that read the WAL from their own checkpoint.
//!
//! ## Why not a crate
//! We looked at `mrecordlog` (Quickwit), `okaywal` and `fjall`. mrecordlog's
//! persist policy is per-queue and it has no notion of readers that trail
//! the writer with their own checkpoints; okaywal has group commit and
//! checkpoints but one checkpointer, and no byte cap that maps to a 503;
//! fjall is a full LSM tree. What we need is small: append + group fsync +
//! sequential readers + delete-when-all-consumers-passed + a disk cap. It is
//! ~400 lines here, tested for torn tails below and by the kill -9 test.
//!
//! ## Layout on disk
//! `data/wal/{start_lsn:020}.wal` segments. An LSN is a byte position in one
//! ever-growing log: a record's LSN is its segment's start LSN plus its
//! offset in the file. A new segment starts at the previous segment's end,
//! so LSNs are dense, sortable and survive restarts.
//!
//! A record is `len: u32 LE | crc: u32 LE | payload[len]`, where `crc` is
//! CRC-32 (IEEE, `crc32fast`) of the record's LSN (8 bytes LE), the four
//! `len` bytes, then the payload: a corrupted length is caught like
//! corrupted data, and a record left over from a segment file's earlier use
//! (see recycling) fails its checksum at its new position. What a payload
//! holds is the business of [`crate::batch`]; the WAL treats it as opaque
//! bytes. `data/wal/FORMAT` holds the format version (`3`); a WAL without
//! it (written by an earlier build, whose checksums did not cover the LSN)
//! is refused at open rather than misread. Format 3 differs from 2 only in
//! what payloads hold (batch version 2 may compress its body): a format 2
//! WAL is read as it is and marked 3 at open, so the build before this one
//! refuses it rather than skip batches it cannot decode.
//!
//! ## Recycling
//! A segment no consumer needs is not deleted but renamed to
//! `{start:020}.free` (at most [`MAX_FREE`] of them; beyond that, deleted),
//! and the next rotation renames a free file to the new segment and
//! overwrites it from the start. Overwriting file pages that are still in
//! the page cache is several times cheaper in CPU than filling new ones, and
//! `fdatasync` of blocks already allocated commits no file-size change (the
//! technique of PostgreSQL's WAL recycling). Free files are not counted in
//! `wal.max_bytes`; they take at most `MAX_FREE × segment_bytes` more disk.
//!
//! ## Durability
//! One writer thread takes appends from a bounded queue, writes every append
//! waiting at that moment in one `write`, calls `fdatasync` once, then
//! answers all of them (group commit). An append is acknowledged only after
//! that fsync. A segment is fsynced before the next one is created, and the
//! directory is fsynced after a create or delete.
//!
//! ## Recovery
//! On open, the last segment is scanned record by record; at the first
//! record that is short, has a length past the end of the file, or fails its
//! checksum, the file is truncated there and the cut bytes are counted
//! (`logway_wal_torn_bytes`). Earlier segments were fsynced whole
//! before rotation; a reader that still finds a bad record there counts it
//! and moves on to the next segment rather than stopping the log.
//!
//! ## Files
//! [`record`] the record format and its checksum; [`segment`] segment files,
//! the scan at open, recycling, rotation and trimming; [`writer`] the group
//! commit thread; [`reader`] sequential readers; [`consumer`] the loop every
//! consumer shares; [`config`] the `[wal]` section.
//!
//! ## Trimming and the cap
//! Each consumer registers a checkpoint (the LSN up to which it has durably
//! processed). A sealed segment is deleted when every consumer's checkpoint
//! is at or past its end. Appends that would take the WAL past `max_bytes`
//! fail with [`WalError::Full`] (the API answers 503 with `Retry-After`).

pub mod config;
pub mod consumer;
mod reader;
mod record;
mod segment;
#[cfg(test)]
mod tests;
mod writer;

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

pub use crate::config::class::Class;

pub use reader::{Record, WalReader};
use record::HEADER_BYTES;
pub use record::MAX_RECORD_BYTES;
use segment::Segment;
pub use writer::WalWriterThread;

pub type Lsn = u64;

/// Longest pause of [`Wal::wait_past`] on a closed WAL.
pub const CLOSED_WAIT: Duration = Duration::from_millis(50);
/// Segment files kept for reuse.
pub const MAX_FREE: usize = 2;

#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("the write-ahead log is full ({used} of {max} bytes); consumers are behind")]
    Full { used: u64, max: u64 },
    #[error("the write-ahead log queue is full")]
    QueueFull,
    #[error("no space left on the data disk")]
    DiskFull,
    #[error("the write-ahead log is closed")]
    Closed,
    #[error("write-ahead log I/O error: {0}")]
    Io(#[from] io::Error),
    #[error("unreadable write-ahead log: {0}")]
    Format(String),
}

#[derive(Debug, Clone)]
pub struct WalOptions {
    pub max_bytes: u64,
    pub segment_bytes: u64,
    pub queue_len: usize,
    /// The event lane's queue ([`Wal::submit_class`]).
    pub event_queue_len: usize,
    /// Shares of `max_bytes` log- and metric-class appends may fill.
    pub log_share: f64,
    pub metric_share: f64,
}

impl WalOptions {
    /// The bytes on disk and queued past which `class` is refused.
    fn limit(&self, class: Class) -> u64 {
        let share = match class {
            Class::Log => self.log_share,
            Class::Metric => self.metric_share,
            Class::Event => 1.0,
        };
        (self.max_bytes as f64 * share) as u64
    }
}

/// Event-class appends, which the writer takes before the channel's.
#[derive(Default)]
struct EventLane {
    queue: std::collections::VecDeque<Append>,
    /// Set by the writer as it stops: later appends are refused.
    closed: bool,
}

struct Shared {
    dir: PathBuf,
    opts: WalOptions,
    /// Segments in LSN order; the last one is being written.
    segments: Mutex<Vec<Segment>>,
    /// End of the durable log: readers never read past it.
    durable: AtomicU64,
    /// Bytes of all segment files.
    disk_bytes: AtomicU64,
    /// Bytes accepted by `append` but not yet written.
    pending_bytes: AtomicU64,
    torn_bytes: AtomicU64,
    /// Files of trimmed segments, kept for reuse (`{start}.free`).
    free: Mutex<Vec<PathBuf>>,
    consumers: Mutex<BTreeMap<String, Lsn>>,
    wake: (Mutex<()>, Condvar),
    closed: AtomicBool,
    events: Mutex<EventLane>,
}

struct Append {
    payload: bytes::Bytes,
    done: oneshot::Sender<Result<Lsn, WalError>>,
}

enum Msg {
    Append(Append),
    /// An event was queued in [`Shared::events`].
    Wake,
    /// Stop after everything queued before it is durable.
    Close,
}

/// Handle to the write-ahead log; cheap to clone.
#[derive(Clone)]
pub struct Wal {
    shared: Arc<Shared>,
    tx: mpsc::Sender<Msg>,
}

impl Wal {
    /// Opens (or creates) the WAL in `dir`, cutting a torn tail, and starts
    /// the writer thread.
    pub fn open(dir: &Path, opts: WalOptions) -> Result<(Wal, WalWriterThread), WalError> {
        let (shared, file) = segment::open_dir(dir, opts.clone())?;
        let shared = Arc::new(shared);
        let (tx, rx) = mpsc::channel(opts.queue_len.max(1));
        let writer_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("wal-writer".into())
            .spawn(move || writer::run(writer_shared, file, rx))?;
        Ok((Wal { shared, tx }, WalWriterThread(thread)))
    }

    /// Appends one record; resolves once it is fsynced, with its LSN.
    /// (`Bytes`, so a caller that retries after `Full` keeps its payload
    /// without copying it.)
    pub async fn append(&self, payload: impl Into<bytes::Bytes>) -> Result<Lsn, WalError> {
        self.submit(payload)?.await
    }

    /// [`Wal::submit_class`] for a log-class record.
    pub fn submit(
        &self,
        payload: impl Into<bytes::Bytes>,
    ) -> Result<impl std::future::Future<Output = Result<Lsn, WalError>> + Send + 'static, WalError>
    {
        self.submit_class(payload, Class::Log)
    }

    /// Queues one record of `class` and returns at once; the future
    /// resolves once it is fsynced, with its LSN. Records of a class are
    /// written in the order they were submitted, so a caller that submits
    /// in order keeps its order in the log while it waits for several
    /// fsyncs at a time. Event-class records have a queue of their own,
    /// which the writer takes first, and may fill the whole of
    /// `max_bytes`; metric- and log-class records are refused past their
    /// shares of it ([`WalOptions::limit`]).
    pub fn submit_class(
        &self,
        payload: impl Into<bytes::Bytes>,
        class: Class,
    ) -> Result<impl std::future::Future<Output = Result<Lsn, WalError>> + Send + 'static, WalError>
    {
        let payload: bytes::Bytes = payload.into();
        let size = payload.len() as u64 + HEADER_BYTES;
        let used = self.shared.disk_bytes.load(Ordering::Relaxed)
            + self.shared.pending_bytes.load(Ordering::Relaxed);
        let max = self.shared.opts.limit(class);
        if used + size > max {
            return Err(WalError::Full { used, max });
        }
        let (done, wait) = oneshot::channel();
        self.shared.pending_bytes.fetch_add(size, Ordering::Relaxed);
        let append = Append { payload, done };
        if class == Class::Event {
            self.queue_event(append, size)?;
        } else if let Err(e) = self.tx.try_send(Msg::Append(append)) {
            self.shared.pending_bytes.fetch_sub(size, Ordering::Relaxed);
            return Err(match e {
                mpsc::error::TrySendError::Full(_) => WalError::QueueFull,
                mpsc::error::TrySendError::Closed(_) => WalError::Closed,
            });
        }
        Ok(async move { wait.await.map_err(|_| WalError::Closed)? })
    }

    /// Puts an event-class append in its lane and wakes the writer (if the
    /// channel is full the writer is busy and looks at the lane before its
    /// next group).
    fn queue_event(&self, append: Append, size: u64) -> Result<(), WalError> {
        let refused = {
            let mut lane = self.shared.events.lock().unwrap();
            if lane.closed {
                Some(WalError::Closed)
            } else if lane.queue.len() >= self.shared.opts.event_queue_len.max(1) {
                Some(WalError::QueueFull)
            } else {
                lane.queue.push_back(append);
                None
            }
        };
        if let Some(e) = refused {
            self.shared.pending_bytes.fetch_sub(size, Ordering::Relaxed);
            return Err(e);
        }
        let _ = self.tx.try_send(Msg::Wake);
        Ok(())
    }

    /// End of the durable log.
    pub fn durable_lsn(&self) -> Lsn {
        self.shared.durable.load(Ordering::Acquire)
    }

    /// Bytes of WAL segments on disk.
    pub fn disk_bytes(&self) -> u64 {
        self.shared.disk_bytes.load(Ordering::Relaxed)
    }

    /// Bytes cut from a torn tail at open.
    pub fn torn_bytes(&self) -> u64 {
        self.shared.torn_bytes.load(Ordering::Relaxed)
    }

    /// Registers a consumer at its durable checkpoint; segments it still
    /// needs are kept until it moves past them.
    pub fn register_consumer(&self, name: &str, checkpoint: Lsn) {
        self.shared
            .consumers
            .lock()
            .unwrap()
            .insert(name.to_string(), checkpoint);
    }

    /// Records that `name` has durably processed everything before `lsn`,
    /// and deletes the sealed segments no consumer needs any more.
    pub fn set_checkpoint(&self, name: &str, lsn: Lsn) -> io::Result<()> {
        let min = {
            let mut consumers = self.shared.consumers.lock().unwrap();
            consumers.insert(name.to_string(), lsn);
            consumers.values().copied().min().unwrap_or(lsn)
        };
        segment::trim(&self.shared, min)
    }

    /// A consumer's checkpoint as last set.
    #[cfg(test)]
    pub fn checkpoint_of(&self, name: &str) -> Option<Lsn> {
        self.shared.consumers.lock().unwrap().get(name).copied()
    }

    /// Oldest LSN still on disk.
    pub fn first_lsn(&self) -> Lsn {
        self.shared.segments.lock().unwrap()[0].start
    }

    /// A reader positioned at `from` (clamped to the oldest segment).
    pub fn reader(&self, from: Lsn) -> WalReader {
        WalReader {
            shared: self.shared.clone(),
            pos: from.max(self.first_lsn()),
            file: None,
        }
    }

    /// Waits until the durable end passes `lsn`, the WAL closes, or
    /// `timeout`. On a WAL already closed nothing more becomes durable: it
    /// pauses for at most [`CLOSED_WAIT`] instead of returning at once, so a
    /// consumer not yet told to stop does not spin (the archive writer did,
    /// taking a core from the hot indexer's last commits), and still
    /// notices its stop soon.
    pub fn wait_past(&self, lsn: Lsn, timeout: Duration) {
        if self.is_closed() {
            std::thread::sleep(timeout.min(CLOSED_WAIT));
            return;
        }
        let (lock, cvar) = &self.shared.wake;
        let deadline = std::time::Instant::now() + timeout;
        let mut guard = lock.lock().unwrap();
        while self.durable_lsn() <= lsn && !self.is_closed() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            guard = cvar.wait_timeout(guard, left).unwrap().0;
        }
    }

    /// True once the writer has stopped.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }

    /// Asks the writer to stop once what is queued is durable; later
    /// appends fail with [`WalError::Closed`]. Readers keep working.
    pub async fn close(&self) {
        let _ = self.tx.send(Msg::Close).await;
    }
}
