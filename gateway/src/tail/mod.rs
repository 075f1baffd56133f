//! Live tail: newly durable events, matched against each open tail's
//! query, pushed to its subscriber (the UI's live view, `GET
//! /api/v1/tail`). Events come from the WAL as soon as they are fsynced,
//! not from the index, so a tail shows an event as soon as its client was
//! answered.
//!
//! One thread (`tail-reader`) runs while at least one tail is open: it
//! follows the durable end of the WAL with its own reader (no checkpoint:
//! a tail starts at "now" and never holds WAL segments), decodes each
//! batch once, parses an event only when a tail of its tenant (and type)
//! is open, and hands the matching events to each tail. Each tail has a
//! bounded buffer (`ui.tail_buffer_bytes`): when its client reads slower
//! than events arrive, what does not fit is counted as skipped and
//! dropped, so a slow client never holds memory, the WAL or ingest.

pub mod matcher;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

pub use matcher::Matcher;

use crate::batch;
use crate::wal::Wal;

/// WAL payload bytes the reader takes per step.
const READ_BYTES: usize = 4 << 20;
/// Longest wait for new records, so a closed tail is noticed soon.
const WAIT: Duration = Duration::from_millis(100);

/// The open tails and the thread that feeds them.
pub struct Tail {
    inner: Arc<Inner>,
}

struct Inner {
    wal: Wal,
    buffer_bytes: usize,
    max_tails: usize,
    subscribers: Mutex<Vec<Arc<Subscriber>>>,
    /// Wakes the reader when the first tail opens.
    opened: Condvar,
    reader_running: AtomicBool,
    closed: AtomicBool,
    next_id: AtomicU64,
}

/// What one open tail wants and where its events go. Only the reader's
/// list holds it (and so the sender): clearing the list ends the streams.
struct Subscriber {
    id: u64,
    tenant: String,
    log_type: Option<String>,
    matcher: Matcher,
    tx: mpsc::UnboundedSender<Vec<String>>,
    counts: Arc<Counts>,
    limit: usize,
}

/// What the reader and the tail's stream both count.
#[derive(Default)]
struct Counts {
    /// Bytes handed over and not yet taken by the client, at most `limit`.
    queued: AtomicUsize,
    skipped: AtomicU64,
}

/// One open tail; dropping it closes the tail.
pub struct Subscription {
    id: u64,
    rx: mpsc::UnboundedReceiver<Vec<String>>,
    counts: Arc<Counts>,
    inner: Arc<Inner>,
}

#[derive(Debug, thiserror::Error)]
pub enum TailError {
    #[error("{0} live tails are open (ui.max_tails); close one or try later")]
    TooMany(usize),
    #[error("the gateway is shutting down")]
    Closed,
}

impl Tail {
    pub fn new(wal: Wal, buffer_bytes: usize, max_tails: usize) -> Tail {
        Tail {
            inner: Arc::new(Inner {
                wal,
                buffer_bytes: buffer_bytes.max(1),
                max_tails,
                subscribers: Mutex::new(Vec::new()),
                opened: Condvar::new(),
                reader_running: AtomicBool::new(false),
                closed: AtomicBool::new(false),
                next_id: AtomicU64::new(0),
            }),
        }
    }

    /// Opens a tail of `tenant`'s events (of one type, or all) that match.
    pub fn subscribe(
        &self,
        tenant: &str,
        log_type: Option<&str>,
        matcher: Matcher,
    ) -> Result<Subscription, TailError> {
        let inner = &self.inner;
        if inner.closed.load(Ordering::Acquire) {
            return Err(TailError::Closed);
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let id = inner.next_id.fetch_add(1, Ordering::Relaxed);
        let counts = Arc::new(Counts::default());
        let sub = Arc::new(Subscriber {
            id,
            tenant: tenant.to_string(),
            log_type: log_type.map(str::to_string),
            matcher,
            tx,
            counts: counts.clone(),
            limit: inner.buffer_bytes,
        });
        {
            let mut subs = lock(&inner.subscribers);
            if subs.len() >= inner.max_tails {
                return Err(TailError::TooMany(subs.len()));
            }
            subs.push(sub);
        }
        if !inner.reader_running.swap(true, Ordering::AcqRel) {
            let reader = inner.clone();
            let started = std::thread::Builder::new()
                .name("tail-reader".into())
                .spawn(move || reader.run());
            if let Err(e) = started {
                inner.reader_running.store(false, Ordering::Release);
                tracing::error!(error = %e, "cannot start the live tail's reader");
            }
        }
        inner.opened.notify_all();
        Ok(Subscription {
            id,
            rx,
            counts,
            inner: inner.clone(),
        })
    }

    /// Open tails now.
    pub fn open_tails(&self) -> usize {
        lock(&self.inner.subscribers).len()
    }

    /// Ends every tail (their streams end) and refuses new ones: the first
    /// step of shutdown, so open streams do not hold the HTTP server.
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        lock(&self.inner.subscribers).clear();
        self.inner.opened.notify_all();
    }
}

impl Subscription {
    /// The next events that matched (`None` once the tail is closed).
    pub async fn next(&mut self) -> Option<Vec<String>> {
        let events = self.rx.recv().await?;
        let bytes: usize = events.iter().map(String::len).sum();
        self.counts.queued.fetch_sub(bytes, Ordering::AcqRel);
        Some(events)
    }

    /// Matching events dropped so far because this tail's buffer was full.
    pub fn skipped(&self) -> u64 {
        self.counts.skipped.load(Ordering::Acquire)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        lock(&self.inner.subscribers).retain(|s| s.id != self.id);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Inner {
    /// The reader thread: sleeps while no tail is open; otherwise follows
    /// the durable end from where it was when the first tail opened.
    fn run(self: Arc<Self>) {
        let mut reader = None;
        loop {
            if self.closed.load(Ordering::Acquire) {
                break;
            }
            let subs: Vec<Arc<Subscriber>> = {
                let guard = lock(&self.subscribers);
                let guard = self
                    .opened
                    .wait_timeout_while(guard, Duration::from_secs(1), |s| {
                        s.is_empty() && !self.closed.load(Ordering::Acquire)
                    })
                    .map(|(g, _)| g)
                    .unwrap_or_else(|e| e.into_inner().0);
                guard.clone()
            };
            if subs.is_empty() {
                // Nobody watching: start again at the durable end next time.
                reader = None;
                continue;
            }
            let r = reader.get_or_insert_with(|| self.wal.reader(self.wal.durable_lsn()));
            let records = match r.read_available(READ_BYTES) {
                Ok(records) => records,
                Err(e) => {
                    tracing::warn!(error = %e, "live tail cannot read the WAL; starting again at its end");
                    reader = None;
                    std::thread::sleep(WAIT);
                    continue;
                }
            };
            if records.is_empty() {
                self.wal.wait_past(r.position(), WAIT);
                continue;
            }
            for record in records {
                deliver(&record.payload, &subs);
            }
        }
        self.reader_running.store(false, Ordering::Release);
    }
}

/// Hands one WAL record's matching events to each tail.
fn deliver(payload: &[u8], subs: &[Arc<Subscriber>]) {
    let Ok(header) = batch::decode_header(payload) else {
        return;
    };
    let interested: Vec<&Arc<Subscriber>> =
        subs.iter().filter(|s| s.tenant == header.tenant).collect();
    if interested.is_empty() {
        return;
    }
    let Ok(batch) = batch::decode(payload) else {
        return;
    };
    let mut out: Vec<Vec<String>> = vec![Vec::new(); interested.len()];
    for (log_type, event) in batch.typed_events() {
        let wanted = |s: &Subscriber| s.log_type.as_deref().is_none_or(|t| t == log_type);
        if !interested.iter().any(|s| wanted(s)) {
            continue;
        }
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(event) else {
            continue;
        };
        for (i, s) in interested.iter().enumerate() {
            if wanted(s) && s.matcher.matches(&value) {
                out[i].push(String::from_utf8_lossy(event).into_owned());
            }
        }
    }
    for (s, mut events) in interested.into_iter().zip(out) {
        // What fits in the tail's buffer goes; the rest is skipped.
        let mut room = s
            .limit
            .saturating_sub(s.counts.queued.load(Ordering::Acquire));
        let fits = events
            .iter()
            .take_while(|e| {
                let ok = e.len() <= room;
                room = room.saturating_sub(e.len());
                ok
            })
            .count();
        let skipped = events.len() - fits;
        if skipped > 0 {
            s.counts.skipped.fetch_add(skipped as u64, Ordering::AcqRel);
            events.truncate(fits);
        }
        if events.is_empty() {
            continue;
        }
        let bytes: usize = events.iter().map(String::len).sum();
        s.counts.queued.fetch_add(bytes, Ordering::AcqRel);
        if s.tx.send(events).is_err() {
            s.counts.queued.fetch_sub(bytes, Ordering::AcqRel);
        }
    }
}
