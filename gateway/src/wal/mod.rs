//! # Write-ahead log
//!
//! Every accepted request becomes one WAL record before it is acknowledged;
//! the hot index and the idempotency table (later: the archive) are
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
//! (`logway_wal_torn_bytes_total`). Earlier segments were fsynced whole
//! before rotation; a reader that still finds a bad record there counts it
//! and moves on to the next segment rather than stopping the log.
//!
//! ## Trimming and the cap
//! Each consumer registers a checkpoint (the LSN up to which it has durably
//! processed). A sealed segment is deleted when every consumer's checkpoint
//! is at or past its end. Appends that would take the WAL past `max_bytes`
//! fail with [`WalError::Full`] (the API answers 503 with `Retry-After`).

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::format::{self, FormatError};

pub type Lsn = u64;

const HEADER_BYTES: u64 = 8;
/// Longest pause of [`Wal::wait_past`] on a closed WAL.
pub const CLOSED_WAIT: Duration = Duration::from_millis(50);
/// Segment files kept for reuse.
pub const MAX_FREE: usize = 2;
const FORMAT: &str = "3";
/// Formats this build reads and marks as [`FORMAT`] at open: 2 differs only
/// in its batches (all version 1, which are still read).
const READS_FORMATS: &[&str] = &["2"];
/// Largest record; a request is bounded well below this by the body limits.
pub const MAX_RECORD_BYTES: u64 = 256 * 1024 * 1024;
/// Bytes one group commit writes at most before it fsyncs.
const GROUP_COMMIT_MAX_BYTES: usize = 16 * 1024 * 1024;

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
}

#[derive(Debug, Clone, Copy)]
struct Segment {
    start: Lsn,
    /// Valid bytes in the file (for the active segment: durable bytes).
    len: u64,
}

impl Segment {
    fn end(&self) -> Lsn {
        self.start + self.len
    }
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
}

struct Append {
    payload: bytes::Bytes,
    done: oneshot::Sender<Result<Lsn, WalError>>,
}

enum Msg {
    Append(Append),
    /// Stop after everything queued before it is durable.
    Close,
}

/// Handle to the write-ahead log; cheap to clone.
#[derive(Clone)]
pub struct Wal {
    shared: Arc<Shared>,
    tx: mpsc::Sender<Msg>,
}

/// The writer thread; join it after dropping every [`Wal`] handle.
pub struct WalWriterThread(std::thread::JoinHandle<()>);

impl WalWriterThread {
    pub fn join(self) {
        let _ = self.0.join();
    }
}

fn segment_path(dir: &Path, start: Lsn) -> PathBuf {
    dir.join(format!("{start:020}.wal"))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Refuses a WAL of another format; marks a new one.
fn check_format(dir: &Path, has_segments: bool) -> Result<(), WalError> {
    format::check(
        dir,
        FORMAT,
        READS_FORMATS,
        has_segments,
        "holds segments of WAL format 1 (an earlier build); let that build drain it (its consumers catch up on start), then remove the directory",
    )
    .map_err(|e| match e {
        FormatError::Io(e) => WalError::Io(e),
        FormatError::Refused(m) => WalError::Format(m),
    })
}

fn checksum(lsn: Lsn, len: u32, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&lsn.to_le_bytes());
    h.update(&len.to_le_bytes());
    h.update(payload);
    h.finalize()
}

/// Reads the record at `lsn`, the reader's position. `Ok(None)` means a
/// clean end; `Err` means a torn or corrupt record (with a reason).
fn read_record(
    r: &mut impl Read,
    lsn: Lsn,
    limit: u64,
) -> io::Result<Result<Option<Vec<u8>>, String>> {
    if limit == 0 {
        return Ok(Ok(None));
    }
    if limit < HEADER_BYTES {
        return Ok(Err(format!(
            "{limit} trailing bytes, shorter than a record header"
        )));
    }
    let mut header = [0u8; 8];
    r.read_exact(&mut header)?;
    let len = u32::from_le_bytes(header[0..4].try_into().unwrap());
    let crc = u32::from_le_bytes(header[4..8].try_into().unwrap());
    if u64::from(len) > MAX_RECORD_BYTES || u64::from(len) > limit - HEADER_BYTES {
        return Ok(Err(format!(
            "record length {len} runs past the end of the segment"
        )));
    }
    let mut payload = vec![0u8; len as usize];
    r.read_exact(&mut payload)?;
    if checksum(lsn, len, &payload) != crc {
        return Ok(Err("record checksum mismatch".to_string()));
    }
    Ok(Ok(Some(payload)))
}

/// Scans the segment starting at `start`; returns the length of its valid
/// prefix and of its file.
fn valid_prefix(path: &Path, start: Lsn) -> io::Result<(u64, u64)> {
    let file_len = fs::metadata(path)?.len();
    let mut r = BufReader::with_capacity(1 << 20, File::open(path)?);
    let mut pos = 0u64;
    loop {
        match read_record(&mut r, start + pos, file_len - pos)? {
            Ok(Some(p)) => pos += HEADER_BYTES + p.len() as u64,
            Ok(None) => return Ok((pos, file_len)),
            Err(_) => return Ok((pos, file_len)),
        }
    }
}

impl Wal {
    /// Opens (or creates) the WAL in `dir`, cutting a torn tail, and starts
    /// the writer thread.
    pub fn open(dir: &Path, opts: WalOptions) -> Result<(Wal, WalWriterThread), WalError> {
        fs::create_dir_all(dir)?;
        let names: Vec<String> = fs::read_dir(dir)?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        let mut starts: Vec<Lsn> = names
            .iter()
            .filter_map(|name| name.strip_suffix(".wal")?.parse().ok())
            .collect();
        starts.sort_unstable();
        check_format(dir, !starts.is_empty())?;
        let free: Vec<PathBuf> = names
            .iter()
            .filter(|name| name.ends_with(".free"))
            .map(|name| dir.join(name))
            .collect();
        let mut segments = Vec::new();
        let mut torn = 0u64;
        let mut disk = 0u64;
        for (i, &start) in starts.iter().enumerate() {
            let path = segment_path(dir, start);
            let len = if i + 1 == starts.len() {
                let (valid, file_len) = valid_prefix(&path, start)?;
                if valid < file_len {
                    tracing::warn!(segment = %path.display(), cut = file_len - valid, "cutting torn WAL tail");
                    let f = OpenOptions::new().write(true).open(&path)?;
                    f.set_len(valid)?;
                    f.sync_all()?;
                    torn += file_len - valid;
                }
                valid
            } else {
                fs::metadata(&path)?.len()
            };
            disk += len;
            segments.push(Segment { start, len });
        }
        let (file, durable) = match segments.last() {
            Some(last) => {
                let mut f = OpenOptions::new()
                    .write(true)
                    .open(segment_path(dir, last.start))?;
                f.seek(SeekFrom::End(0))?;
                (f, last.end())
            }
            None => {
                let f = File::create(segment_path(dir, 0))?;
                sync_dir(dir)?;
                segments.push(Segment { start: 0, len: 0 });
                (f, 0)
            }
        };
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            opts: opts.clone(),
            segments: Mutex::new(segments),
            durable: AtomicU64::new(durable),
            disk_bytes: AtomicU64::new(disk),
            pending_bytes: AtomicU64::new(0),
            torn_bytes: AtomicU64::new(torn),
            free: Mutex::new(free),
            consumers: Mutex::new(BTreeMap::new()),
            wake: (Mutex::new(()), Condvar::new()),
            closed: AtomicBool::new(false),
        });
        let (tx, rx) = mpsc::channel(opts.queue_len.max(1));
        let writer_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("wal-writer".into())
            .spawn(move || writer_loop(writer_shared, file, rx))?;
        Ok((Wal { shared, tx }, WalWriterThread(thread)))
    }

    /// Appends one record; resolves once it is fsynced, with its LSN.
    /// (`Bytes`, so a caller that retries after `Full` keeps its payload
    /// without copying it.)
    pub async fn append(&self, payload: impl Into<bytes::Bytes>) -> Result<Lsn, WalError> {
        self.submit(payload)?.await
    }

    /// Queues one record and returns at once; the future resolves once it
    /// is fsynced, with its LSN. Records are written in the order they were
    /// submitted, so a caller that submits in order keeps its order in the
    /// log while it waits for several fsyncs at a time.
    pub fn submit(
        &self,
        payload: impl Into<bytes::Bytes>,
    ) -> Result<impl std::future::Future<Output = Result<Lsn, WalError>> + Send + 'static, WalError>
    {
        let payload: bytes::Bytes = payload.into();
        let size = payload.len() as u64 + HEADER_BYTES;
        let used = self.shared.disk_bytes.load(Ordering::Relaxed)
            + self.shared.pending_bytes.load(Ordering::Relaxed);
        if used + size > self.shared.opts.max_bytes {
            return Err(WalError::Full {
                used,
                max: self.shared.opts.max_bytes,
            });
        }
        let (done, wait) = oneshot::channel();
        self.shared.pending_bytes.fetch_add(size, Ordering::Relaxed);
        if let Err(e) = self.tx.try_send(Msg::Append(Append { payload, done })) {
            self.shared.pending_bytes.fetch_sub(size, Ordering::Relaxed);
            return Err(match e {
                mpsc::error::TrySendError::Full(_) => WalError::QueueFull,
                mpsc::error::TrySendError::Closed(_) => WalError::Closed,
            });
        }
        Ok(async move { wait.await.map_err(|_| WalError::Closed)? })
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
        let mut doomed = Vec::new();
        {
            let mut segments = self.shared.segments.lock().unwrap();
            while segments.len() > 1 && segments[0].end() <= min {
                doomed.push(segments.remove(0));
            }
        }
        for seg in &doomed {
            let path = segment_path(&self.shared.dir, seg.start);
            let mut free = self.shared.free.lock().unwrap();
            if free.len() < MAX_FREE {
                let to = path.with_extension("free");
                fs::rename(&path, &to)?;
                free.push(to);
            } else {
                fs::remove_file(path)?;
            }
            drop(free);
            self.shared.disk_bytes.fetch_sub(seg.len, Ordering::Relaxed);
        }
        if !doomed.is_empty() {
            sync_dir(&self.shared.dir)?;
        }
        Ok(())
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

fn writer_loop(shared: Arc<Shared>, mut file: File, mut rx: mpsc::Receiver<Msg>) {
    let mut buf: Vec<u8> = Vec::new();
    let mut group: Vec<(Lsn, Append)> = Vec::new();
    let mut closing = false;
    while !closing {
        let Some(Msg::Append(first)) = rx.blocking_recv() else {
            break;
        };
        let mut next = Some(first);
        // Take everything waiting now, up to a byte budget, for one fsync.
        let mut taken = 0usize;
        while let Some(append) = next.take() {
            taken += append.payload.len();
            let size = append.payload.len() as u64 + HEADER_BYTES;
            let (seg_start, seg_len) = {
                let segs = shared.segments.lock().unwrap();
                let last = segs.last().unwrap();
                (last.start, last.len)
            };
            let written = seg_len + buf.len() as u64;
            if written > 0 && written + size > shared.opts.segment_bytes {
                // Seal the current segment: flush what is buffered, then rotate.
                let result =
                    flush(&shared, &mut file, &mut buf).and_then(|_| rotate(&shared, &mut file));
                if let Err(e) = result {
                    fail_all(&shared, &mut group, &e);
                    buf.clear();
                }
                let lsn = shared.segments.lock().unwrap().last().unwrap().end();
                encode(&mut buf, lsn, &append.payload);
                group.push((lsn, append));
            } else {
                encode(&mut buf, seg_start + written, &append.payload);
                group.push((seg_start + written, append));
            }
            if taken < GROUP_COMMIT_MAX_BYTES {
                match rx.try_recv() {
                    Ok(Msg::Append(a)) => next = Some(a),
                    Ok(Msg::Close) => closing = true,
                    Err(_) => {}
                }
            }
        }
        match flush(&shared, &mut file, &mut buf) {
            Ok(()) => {
                for (lsn, append) in group.drain(..) {
                    let size = append.payload.len() as u64 + HEADER_BYTES;
                    shared.pending_bytes.fetch_sub(size, Ordering::Relaxed);
                    let _ = append.done.send(Ok(lsn));
                }
            }
            Err(e) => fail_all(&shared, &mut group, &e),
        }
        buf.clear();
    }
    rx.close();
    // Anything that raced in after the close marker is refused, not lost.
    while let Ok(msg) = rx.try_recv() {
        if let Msg::Append(a) = msg {
            shared
                .pending_bytes
                .fetch_sub(a.payload.len() as u64 + HEADER_BYTES, Ordering::Relaxed);
            let _ = a.done.send(Err(WalError::Closed));
        }
    }
    let _ = file.sync_data();
    shared.closed.store(true, Ordering::Release);
    let _guard = shared.wake.0.lock().unwrap();
    shared.wake.1.notify_all();
}

fn encode(buf: &mut Vec<u8>, lsn: Lsn, payload: &[u8]) {
    let len = payload.len() as u32;
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&checksum(lsn, len, payload).to_le_bytes());
    buf.extend_from_slice(payload);
}

/// Writes `buf` to the active segment and fsyncs; on failure the segment is
/// cut back to its last durable length so no partial record stays behind.
fn flush(shared: &Shared, file: &mut File, buf: &mut Vec<u8>) -> io::Result<()> {
    if buf.is_empty() {
        return Ok(());
    }
    let result = file.write_all(buf).and_then(|_| file.sync_data());
    let mut segs = shared.segments.lock().unwrap();
    let last = segs.last_mut().unwrap();
    match result {
        Ok(()) => {
            last.len += buf.len() as u64;
            shared
                .disk_bytes
                .fetch_add(buf.len() as u64, Ordering::Relaxed);
            shared.durable.store(last.end(), Ordering::Release);
            drop(segs);
            buf.clear();
            let _guard = shared.wake.0.lock().unwrap();
            shared.wake.1.notify_all();
            Ok(())
        }
        Err(e) => {
            let durable_len = last.len;
            drop(segs);
            let _ = file.set_len(durable_len);
            let _ = file.seek(SeekFrom::Start(durable_len));
            buf.clear();
            Err(e)
        }
    }
}

fn rotate(shared: &Shared, file: &mut File) -> io::Result<()> {
    let (start, len) = {
        let segs = shared.segments.lock().unwrap();
        let last = segs.last().unwrap();
        (last.end(), last.len)
    };
    // A reused file may be longer than what this segment holds.
    if file.metadata()?.len() > len {
        file.set_len(len)?;
    }
    file.sync_all()?;
    let path = segment_path(&shared.dir, start);
    let reuse = shared.free.lock().unwrap().pop();
    let new = match reuse {
        Some(free) => {
            fs::rename(&free, &path)?;
            OpenOptions::new().write(true).open(&path)?
        }
        None => File::create(&path)?,
    };
    sync_dir(&shared.dir)?;
    *file = new;
    shared
        .segments
        .lock()
        .unwrap()
        .push(Segment { start, len: 0 });
    Ok(())
}

fn fail_all(shared: &Shared, group: &mut Vec<(Lsn, Append)>, e: &io::Error) {
    tracing::error!(error = %e, "WAL write failed");
    let disk_full =
        e.raw_os_error() == Some(libc::ENOSPC) || e.kind() == io::ErrorKind::StorageFull;
    for (_, append) in group.drain(..) {
        let size = append.payload.len() as u64 + HEADER_BYTES;
        shared.pending_bytes.fetch_sub(size, Ordering::Relaxed);
        let err = if disk_full {
            WalError::DiskFull
        } else {
            WalError::Io(io::Error::new(e.kind(), e.to_string()))
        };
        let _ = append.done.send(Err(err));
    }
}

/// One record read back from the log.
pub struct Record {
    pub lsn: Lsn,
    /// LSN just past this record: a consumer that processed it checkpoints here.
    pub end: Lsn,
    pub payload: Vec<u8>,
}

/// Sequential reader over durable records; never reads past the durable
/// end, not even into its read-ahead buffer: past it, a recycled file still
/// holds old bytes that new records are about to overwrite.
pub struct WalReader {
    shared: Arc<Shared>,
    pos: Lsn,
    file: Option<(Segment, BufReader<io::Take<File>>)>,
}

impl WalReader {
    /// Position of the next record.
    pub fn position(&self) -> Lsn {
        self.pos
    }

    /// Reads durable records until `max_bytes` of payload or the durable end.
    pub fn read_available(&mut self, max_bytes: usize) -> io::Result<Vec<Record>> {
        let mut out = Vec::new();
        let mut bytes = 0usize;
        while bytes < max_bytes {
            let durable = self.shared.durable.load(Ordering::Acquire);
            if self.pos >= durable {
                break;
            }
            // Find the segment holding `pos` (or the next one after a gap or trim).
            let segment = {
                let segs = self.shared.segments.lock().unwrap();
                segs.iter()
                    .copied()
                    .find(|s| s.end() > self.pos || s.start >= self.pos)
            };
            let Some(segment) = segment else { break };
            if segment.start > self.pos {
                self.pos = segment.start;
                self.file = None;
            }
            let limit = segment.end().min(durable);
            if self.pos >= limit {
                break;
            }
            let reopen = !matches!(&self.file, Some((s, _)) if s.start == segment.start);
            if reopen {
                let mut f = File::open(segment_path(&self.shared.dir, segment.start))?;
                f.seek(SeekFrom::Start(self.pos - segment.start))?;
                self.file = Some((segment, BufReader::with_capacity(1 << 20, f.take(0))));
            }
            let (_, reader) = self.file.as_mut().unwrap();
            // The file is read up to `limit` and no further.
            let file_pos = self.pos - segment.start + reader.buffer().len() as u64;
            reader
                .get_mut()
                .set_limit((limit - segment.start).saturating_sub(file_pos));
            match read_record(reader, self.pos, limit - self.pos)? {
                Ok(Some(payload)) => {
                    let end = self.pos + HEADER_BYTES + payload.len() as u64;
                    bytes += payload.len();
                    out.push(Record {
                        lsn: self.pos,
                        end,
                        payload,
                    });
                    self.pos = end;
                }
                Ok(None) => break,
                Err(reason) => {
                    // Only possible in a sealed segment damaged after it was
                    // fsynced: skip the rest of it, loudly.
                    tracing::error!(segment = segment.start, at = self.pos, %reason, "corrupt WAL record; skipping to the next segment");
                    self.shared
                        .torn_bytes
                        .fetch_add(segment.end().saturating_sub(self.pos), Ordering::Relaxed);
                    self.pos = segment.end();
                    self.file = None;
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> WalOptions {
        WalOptions {
            max_bytes: 1 << 30,
            segment_bytes: 1 << 20,
            queue_len: 64,
        }
    }

    fn read_all(wal: &Wal) -> Vec<Vec<u8>> {
        wal.reader(0)
            .read_available(usize::MAX)
            .unwrap()
            .into_iter()
            .map(|r| r.payload)
            .collect()
    }

    async fn write_n(dir: &Path, n: usize) {
        let (wal, thread) = Wal::open(dir, opts()).unwrap();
        for i in 0..n {
            wal.append(format!("record-{i}").into_bytes())
                .await
                .unwrap();
        }
        drop(wal);
        tokio::task::spawn_blocking(move || thread.join())
            .await
            .unwrap();
    }

    /// Files with this extension in `dir`, sorted.
    fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
        let mut files: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == ext))
            .collect();
        files.sort();
        files
    }

    fn last_segment(dir: &Path) -> PathBuf {
        files(dir, "wal").pop().unwrap()
    }

    /// A consumer waiting on a closed WAL pauses (briefly) instead of
    /// returning at once, which made a consumer not yet told to stop spin.
    #[tokio::test]
    async fn waiting_on_a_closed_wal_takes_the_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, writer) = Wal::open(dir.path(), opts()).unwrap();
        let lsn = wal.append("one").await.unwrap();
        let end = wal.durable_lsn();
        assert!(end > lsn);
        let start = std::time::Instant::now();
        wal.wait_past(lsn, Duration::from_secs(5));
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "data past lsn: no wait"
        );
        wal.close().await;
        tokio::task::spawn_blocking(move || writer.join())
            .await
            .unwrap();
        assert!(wal.is_closed());
        let start = std::time::Instant::now();
        wal.wait_past(end, Duration::from_secs(5));
        let waited = start.elapsed();
        assert!(waited >= CLOSED_WAIT, "{waited:?}");
        assert!(waited < Duration::from_secs(5), "{waited:?}");
    }

    #[tokio::test]
    async fn records_survive_reopen_in_order() {
        let dir = tempfile::tempdir().unwrap();
        write_n(dir.path(), 100).await;
        let (wal, _t) = Wal::open(dir.path(), opts()).unwrap();
        let all = read_all(&wal);
        assert_eq!(all.len(), 100);
        assert_eq!(all[99], b"record-99");
        assert_eq!(wal.torn_bytes(), 0);
    }

    #[tokio::test]
    async fn torn_tail_truncated_mid_record_is_cut_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        write_n(dir.path(), 10).await;
        let path = last_segment(dir.path());
        let len = fs::metadata(&path).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 3)
            .unwrap();
        let (wal, _t) = Wal::open(dir.path(), opts()).unwrap();
        assert_eq!(read_all(&wal).len(), 9);
        assert_eq!(wal.torn_bytes(), (HEADER_BYTES + 8) - 3);
        // The log stays writable after the cut, and the new record is readable.
        wal.append(b"after".to_vec()).await.unwrap();
        let all = read_all(&wal);
        assert_eq!(all.len(), 10);
        assert_eq!(all[9], b"after");
    }

    #[tokio::test]
    async fn zeroed_length_and_flipped_checksum_are_cut() {
        for damage in ["zero-length", "flip-crc"] {
            let dir = tempfile::tempdir().unwrap();
            write_n(dir.path(), 10).await;
            let path = last_segment(dir.path());
            let mut bytes = fs::read(&path).unwrap();
            let record = HEADER_BYTES as usize + 8; // "record-N"
            let at = record * 7; // the 8th record
            match damage {
                "zero-length" => bytes[at..at + 4].copy_from_slice(&[0, 0, 0, 0]),
                _ => bytes[at + 4] ^= 0x01,
            }
            fs::write(&path, &bytes).unwrap();
            let (wal, _t) = Wal::open(dir.path(), opts()).unwrap();
            assert_eq!(read_all(&wal).len(), 7, "{damage}");
            assert_eq!(wal.torn_bytes(), (record * 3) as u64, "{damage}");
        }
    }

    #[tokio::test]
    async fn segments_rotate_and_trim_only_past_every_consumer() {
        let dir = tempfile::tempdir().unwrap();
        let small = WalOptions {
            segment_bytes: 4096,
            ..opts()
        };
        let (wal, _t) = Wal::open(dir.path(), small).unwrap();
        wal.register_consumer("a", 0);
        wal.register_consumer("b", 0);
        let mut last = 0;
        for _ in 0..100 {
            last = wal.append(vec![7u8; 500]).await.unwrap();
        }
        let segments = files(dir.path(), "wal").len();
        assert!(segments > 5, "{segments}");
        wal.set_checkpoint("a", last).unwrap();
        assert_eq!(
            files(dir.path(), "wal").len(),
            segments,
            "b still needs them"
        );
        wal.set_checkpoint("b", last).unwrap();
        assert!(files(dir.path(), "wal").len() <= 2);
        // Trimmed segments: MAX_FREE kept for reuse, the rest deleted.
        assert_eq!(files(dir.path(), "free").len(), MAX_FREE);
        assert_eq!(
            wal.reader(last).read_available(usize::MAX).unwrap().len(),
            1
        );
    }

    #[tokio::test]
    async fn recycled_segment_files_never_yield_their_old_records() {
        let dir = tempfile::tempdir().unwrap();
        let small = WalOptions {
            segment_bytes: 4096,
            ..opts()
        };
        let (wal, t) = Wal::open(dir.path(), small.clone()).unwrap();
        wal.register_consumer("c", 0);
        let mut end = 0;
        for i in 0..40 {
            let lsn = wal
                .append(format!("old-{i:04}-{}", "x".repeat(480)))
                .await
                .unwrap();
            end = lsn + HEADER_BYTES + 489;
        }
        wal.set_checkpoint("c", end).unwrap();
        let free = files(dir.path(), "free");
        assert_eq!(free.len(), MAX_FREE);
        let free_len = fs::metadata(&free[0]).unwrap().len();
        // Enough new records to rotate into a free file, few enough to
        // leave most of its old records after the new ones.
        // New records as long as the old, so the first stale one starts
        // right where the new ones end and is whole: only its checksum,
        // bound to its old LSN, tells it apart.
        let before = files(dir.path(), "wal");
        let mut new = 0;
        while files(dir.path(), "wal") == before {
            wal.append(format!("new-{new:04}-{}", "y".repeat(480)))
                .await
                .unwrap();
            new += 1;
        }
        wal.append(format!("new-{new:04}-{}", "y".repeat(480)))
            .await
            .unwrap();
        new += 1;
        let reused = last_segment(dir.path());
        assert!(!before.contains(&reused));
        assert_eq!(
            files(dir.path(), "free").len(),
            MAX_FREE - 1,
            "one file reused"
        );
        assert!(fs::metadata(&reused).unwrap().len() <= free_len);
        // As after a crash: the segment file still holds old records past
        // the new ones. Reopen: only new records are read, and the stale
        // tail is cut.
        drop(wal);
        tokio::task::spawn_blocking(move || t.join()).await.unwrap();
        let reused_len = fs::metadata(&reused).unwrap().len();
        let (wal, _t) = Wal::open(dir.path(), small).unwrap();
        let payloads: Vec<String> = wal
            .reader(end)
            .read_available(usize::MAX)
            .unwrap()
            .into_iter()
            .map(|r| String::from_utf8(r.payload).unwrap())
            .collect();
        assert_eq!(payloads.len(), new);
        assert!(
            payloads.iter().all(|p| p.starts_with("new-")),
            "{payloads:?}"
        );
        assert!(fs::metadata(&reused).unwrap().len() < reused_len || reused_len < free_len);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reader_tailing_recycled_segments_reads_every_record_once() {
        // A reader that buffers ahead must never take a recycled file's old
        // bytes past the durable end for records.
        let dir = tempfile::tempdir().unwrap();
        let small = WalOptions {
            segment_bytes: 4096,
            ..opts()
        };
        let (wal, _t) = Wal::open(dir.path(), small).unwrap();
        wal.register_consumer("tail", 0);
        const N: usize = 400;
        let tail = wal.clone();
        let reader = std::thread::spawn(move || {
            let mut r = tail.reader(0);
            let mut got = Vec::new();
            while got.len() < N && tail.torn_bytes() == 0 {
                let records = r.read_available(usize::MAX).unwrap();
                if records.is_empty() {
                    tail.wait_past(r.position(), Duration::from_millis(20));
                }
                for rec in records {
                    got.push(String::from_utf8(rec.payload).unwrap());
                    tail.set_checkpoint("tail", rec.end).unwrap();
                }
            }
            got
        });
        let mut sent = Vec::new();
        for i in 0..N {
            let payload = format!("rec-{i:04}-{}", "z".repeat(100 + i % 300));
            wal.append(payload.clone()).await.unwrap();
            sent.push(payload);
        }
        let got = tokio::task::spawn_blocking(move || reader.join().unwrap())
            .await
            .unwrap();
        assert_eq!(wal.torn_bytes(), 0, "a reader took old bytes for records");
        assert_eq!(got, sent);
        assert!(!files(dir.path(), "free").is_empty() || files(dir.path(), "wal").len() < 3);
    }

    #[tokio::test]
    async fn a_wal_of_another_format_is_refused_not_misread() {
        let dir = tempfile::tempdir().unwrap();
        write_n(dir.path(), 3).await;
        fs::remove_file(dir.path().join(format::FILE)).unwrap();
        let err = Wal::open(dir.path(), opts()).err().expect("refused");
        assert!(err.to_string().contains("format 1"), "{err}");
        fs::write(dir.path().join(format::FILE), "9\n").unwrap();
        let err = Wal::open(dir.path(), opts()).err().expect("refused");
        assert!(err.to_string().contains("format 9"), "{err}");
    }

    #[tokio::test]
    async fn a_format_2_wal_is_read_and_marked_3() {
        let dir = tempfile::tempdir().unwrap();
        write_n(dir.path(), 3).await;
        fs::write(dir.path().join(format::FILE), "2\n").unwrap();
        let (wal, _t) = Wal::open(dir.path(), opts()).expect("format 2 is read");
        let records = wal.reader(0).read_available(usize::MAX).unwrap();
        assert_eq!(records.len(), 3);
        let marked = fs::read_to_string(dir.path().join(format::FILE)).unwrap();
        assert_eq!(marked.trim(), FORMAT);
    }

    #[tokio::test]
    async fn appends_past_the_cap_fail_with_full() {
        let dir = tempfile::tempdir().unwrap();
        let tiny = WalOptions {
            max_bytes: 10_000,
            segment_bytes: 4096,
            queue_len: 64,
        };
        let (wal, _t) = Wal::open(dir.path(), tiny).unwrap();
        wal.register_consumer("slow", 0);
        let mut full = false;
        for _ in 0..100 {
            match wal.append(vec![1u8; 1000]).await {
                Ok(_) => {}
                Err(WalError::Full { .. }) => {
                    full = true;
                    break;
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert!(full);
        assert!(wal.disk_bytes() <= 10_000);
    }

    #[tokio::test]
    async fn submitted_records_keep_their_order_while_waiting_together() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _t) = Wal::open(dir.path(), opts()).unwrap();
        let pending: Vec<_> = (0..50)
            .map(|i| wal.submit(format!("rec-{i:02}").into_bytes()).unwrap())
            .collect();
        let mut lsns = Vec::new();
        for p in pending {
            lsns.push(p.await.unwrap());
        }
        assert!(lsns.windows(2).all(|w| w[0] < w[1]), "{lsns:?}");
        let records = wal.reader(0).read_available(usize::MAX).unwrap();
        let payloads: Vec<String> = records
            .iter()
            .map(|r| String::from_utf8(r.payload.clone()).unwrap())
            .collect();
        let sent: Vec<String> = (0..50).map(|i| format!("rec-{i:02}")).collect();
        assert_eq!(payloads, sent);
    }

    #[tokio::test]
    async fn concurrent_appends_share_fsyncs_and_all_get_distinct_lsns() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _t) = Wal::open(
            dir.path(),
            WalOptions {
                queue_len: 256,
                ..opts()
            },
        )
        .unwrap();
        let mut tasks = Vec::new();
        for i in 0..200 {
            let wal = wal.clone();
            tasks.push(tokio::spawn(async move {
                wal.append(format!("{i:08}").into_bytes()).await.unwrap()
            }));
        }
        let mut lsns = Vec::new();
        for t in tasks {
            lsns.push(t.await.unwrap());
        }
        lsns.sort_unstable();
        lsns.dedup();
        assert_eq!(lsns.len(), 200);
        assert_eq!(read_all(&wal).len(), 200);
    }
}
