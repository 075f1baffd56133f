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
//! is open (and some tail there looks at events: `*` does not), and hands
//! the matching events to each tail. Each tail is bounded twice: at most
//! `ui.tail_max_events_per_sec` events a second (what a page can show;
//! streaming more costs the gateway and helps no one), and a buffer of
//! `ui.tail_buffer_bytes` for a client that reads slower than that. What
//! does not fit is counted as skipped and dropped, so a tail never holds
//! memory, the WAL or ingest.

pub mod matcher;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

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
    per_sec: f64,
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
    /// The query as parsed (tails with the same query and type are
    /// matched once per event).
    query: String,
    matcher: Matcher,
    /// Each message: a JSON array of events.
    tx: mpsc::UnboundedSender<String>,
    counts: Arc<Counts>,
    limit: usize,
    /// Events it may still take now, and when that was reckoned (only the
    /// reader thread touches it).
    allowance: Mutex<(f64, Instant)>,
    per_sec: f64,
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
    rx: mpsc::UnboundedReceiver<String>,
    counts: Arc<Counts>,
    inner: Arc<Inner>,
}

#[derive(Debug, thiserror::Error)]
pub enum TailError {
    #[error("{0} live tails are open (ui.max_tails); close one or try later")]
    TooMany(usize),
    #[error("the gateway is shutting down")]
    Closed,
    /// The query cannot be evaluated on single events.
    #[error("{0}")]
    Query(String),
}

impl Tail {
    /// Tails of at most `max_tails` at once, each taking at most
    /// `per_sec` events a second and holding at most `buffer_bytes`.
    pub fn new(wal: Wal, buffer_bytes: usize, per_sec: u32, max_tails: usize) -> Tail {
        Tail {
            inner: Arc::new(Inner {
                wal,
                buffer_bytes: buffer_bytes.max(1),
                per_sec: f64::from(per_sec.max(1)),
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
    /// `query` is search syntax after `normalize_negation`.
    pub fn subscribe(
        &self,
        tenant: &str,
        log_type: Option<&str>,
        query: &str,
    ) -> Result<Subscription, TailError> {
        let matcher = Matcher::parse(query).map_err(TailError::Query)?;
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
            query: query.trim().to_string(),
            matcher,
            tx,
            counts: counts.clone(),
            limit: inner.buffer_bytes,
            allowance: Mutex::new((inner.per_sec, Instant::now())),
            per_sec: inner.per_sec,
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
    /// The next events that matched, as a JSON array (`None` once the
    /// tail is closed).
    async fn next(&mut self) -> Option<String> {
        let events = self.rx.recv().await?;
        self.counts.queued.fetch_sub(events.len(), Ordering::AcqRel);
        Some(events)
    }

    /// The next events, and what follows them within `linger`, as one
    /// JSON array: one message (one write, one wake-up of the client) a
    /// linger instead of one per WAL record.
    pub async fn next_gathered(&mut self, linger: Duration) -> Option<String> {
        let mut all = self.next().await?;
        tokio::time::sleep(linger).await;
        while let Ok(more) = self.rx.try_recv() {
            self.counts.queued.fetch_sub(more.len(), Ordering::AcqRel);
            // `[a,b]` + `[c]` → `[a,b,c]`.
            all.pop();
            all.push(',');
            all.push_str(&more[1..]);
        }
        Some(all)
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

/// Tails with the same query and type: matched once per event.
struct Group<'a> {
    log_type: Option<&'a str>,
    matcher: &'a Matcher,
    /// Bytes a matching event must hold (skips the parse of most events).
    required: Option<memchr::memmem::Finder<'static>>,
    members: Vec<&'a Subscriber>,
    /// The record's events that matched, in order.
    matched: Vec<&'a [u8]>,
}

/// Hands one WAL record's matching events to each tail.
fn deliver(payload: &[u8], subs: &[Arc<Subscriber>]) {
    // The header first (cheap), the body only for a tenant with tails.
    let Ok((header, raw)) = batch::decode_raw(payload) else {
        return;
    };
    let mut groups: Vec<Group> = Vec::new();
    for s in subs.iter().filter(|s| s.tenant == header.tenant) {
        let log_type = s.log_type.as_deref();
        match groups
            .iter_mut()
            .find(|g| g.log_type == log_type && g.members[0].query == s.query)
        {
            Some(g) => g.members.push(s),
            None => groups.push(Group {
                log_type,
                matcher: &s.matcher,
                required: s
                    .matcher
                    .required_bytes()
                    .map(|b| memchr::memmem::Finder::new(&b).into_owned()),
                members: vec![s],
                matched: Vec::new(),
            }),
        }
    }
    if groups.is_empty() {
        return;
    }
    let Ok(batch) = batch::Batch::from_raw(header, raw) else {
        return;
    };
    let mut wants = vec![false; groups.len()];
    for (log_type, event) in batch.typed_events() {
        // A group wants the event if it is of its type and holds the bytes
        // its query requires; the event is parsed only when a group that
        // wants it looks at what it holds.
        let mut needs_value = false;
        for (w, g) in wants.iter_mut().zip(&groups) {
            *w = g.log_type.is_none_or(|t| t == log_type)
                && g.required.as_ref().is_none_or(|f| f.find(event).is_some());
            needs_value |= *w && !g.matcher.matches_everything();
        }
        let value = if needs_value {
            match serde_json::from_slice::<serde_json::Value>(event) {
                Ok(v) => Some(v),
                Err(_) => continue,
            }
        } else {
            None
        };
        for (g, &w) in groups.iter_mut().zip(&wants) {
            let matched = w
                && (g.matcher.matches_everything()
                    || value.as_ref().is_some_and(|v| g.matcher.matches(v)));
            if matched {
                g.matched.push(event);
            }
        }
    }
    let now = Instant::now();
    for g in &groups {
        if g.matched.is_empty() {
            continue;
        }
        for s in &g.members {
            hand_over(s, &g.matched, now);
        }
    }
}

/// Gives a tail the first of `matched` its rate allows now and its buffer
/// holds; counts the rest as skipped.
fn hand_over(s: &Subscriber, matched: &[&[u8]], now: Instant) {
    let budget = {
        let mut a = lock(&s.allowance);
        a.0 = (a.0 + now.duration_since(a.1).as_secs_f64() * s.per_sec).min(s.per_sec);
        a.1 = now;
        a.0.floor() as usize
    };
    let mut room = s
        .limit
        .saturating_sub(s.counts.queued.load(Ordering::Acquire));
    let mut data = String::from("[");
    let mut taken = 0;
    for event in matched.iter().take(budget) {
        let Ok(text) = std::str::from_utf8(event) else {
            break;
        };
        if text.len() + 1 > room {
            break;
        }
        room -= text.len() + 1;
        if taken > 0 {
            data.push(',');
        }
        data.push_str(text);
        taken += 1;
    }
    let skipped = matched.len() - taken;
    if skipped > 0 {
        s.counts.skipped.fetch_add(skipped as u64, Ordering::AcqRel);
    }
    if taken == 0 {
        return;
    }
    data.push(']');
    lock(&s.allowance).0 -= taken as f64;
    let bytes = data.len();
    s.counts.queued.fetch_add(bytes, Ordering::AcqRel);
    if s.tx.send(data).is_err() {
        s.counts.queued.fetch_sub(bytes, Ordering::AcqRel);
    }
}
