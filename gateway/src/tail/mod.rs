//! Live tail: newly durable events, matched against each open tail's
//! query, pushed to its subscriber (the UI's live view, `GET
//! /api/v1/tail`). Events come from the WAL as soon as they are fsynced,
//! not from the index, so a tail shows an event as soon as its client was
//! answered.
//!
//! One thread (`tail-reader`, at `server.background_nice`: ingest goes
//! first, a tail lags instead) runs while at least one tail is open: it
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
mod pruned;

use std::collections::HashMap;
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
    /// The reader's priority: ingest goes first, the tails lag instead.
    nice: i32,
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
    /// `per_sec` events a second and holding at most `buffer_bytes`; the
    /// reader thread runs at `nice` (`server.background_nice`).
    pub fn new(wal: Wal, buffer_bytes: usize, per_sec: u32, max_tails: usize, nice: i32) -> Tail {
        Tail {
            inner: Arc::new(Inner {
                wal,
                buffer_bytes: buffer_bytes.max(1),
                per_sec: f64::from(per_sec.max(1)),
                max_tails,
                nice,
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
        crate::background::lower_thread_priority(self.nice);
        let mut reader = None;
        let mut plan = Plan::default();
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
                if !plan.is_for(&guard) {
                    plan = Plan::of(&guard);
                }
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
                plan.deliver(&record.payload);
            }
        }
        self.reader_running.store(false, Ordering::Release);
    }
}

/// The open tails grouped by tenant, then by query and type: rebuilt when
/// a tail opens or closes, not per record.
#[derive(Default)]
struct Plan {
    /// The tails it was made for.
    ids: Vec<u64>,
    tenants: HashMap<String, TenantPlan>,
}

struct TenantPlan {
    groups: Vec<Group>,
    /// Top-level members some group's query reads: all an event is
    /// parsed for.
    names: Vec<String>,
}

/// Tails with the same query and type: matched once per event.
struct Group {
    log_type: Option<String>,
    /// Bytes a matching event must hold (skips the parse of most events).
    required: Option<memchr::memmem::Finder<'static>>,
    /// The first one's matcher is the group's.
    members: Vec<Arc<Subscriber>>,
}

impl Plan {
    fn is_for(&self, subs: &[Arc<Subscriber>]) -> bool {
        self.ids.iter().copied().eq(subs.iter().map(|s| s.id))
    }

    fn of(subs: &[Arc<Subscriber>]) -> Plan {
        let mut tenants: HashMap<String, TenantPlan> = HashMap::new();
        for s in subs {
            let t = tenants.entry(s.tenant.clone()).or_insert(TenantPlan {
                groups: Vec::new(),
                names: Vec::new(),
            });
            let same = |g: &&mut Group| g.log_type == s.log_type && g.members[0].query == s.query;
            match t.groups.iter_mut().find(same) {
                Some(g) => g.members.push(s.clone()),
                None => {
                    for n in s.matcher.names() {
                        if !t.names.contains(&n) {
                            t.names.push(n);
                        }
                    }
                    t.groups.push(Group {
                        log_type: s.log_type.clone(),
                        required: s
                            .matcher
                            .required_bytes()
                            .map(|b| memchr::memmem::Finder::new(&b).into_owned()),
                        members: vec![s.clone()],
                    });
                }
            }
        }
        Plan {
            ids: subs.iter().map(|s| s.id).collect(),
            tenants,
        }
    }

    /// Hands one WAL record's matching events to each tail.
    fn deliver(&self, payload: &[u8]) {
        // The header first (cheap), the body only for a tenant with tails.
        let Ok((header, raw)) = batch::decode_raw(payload) else {
            return;
        };
        let Some(tenant) = self.tenants.get(&header.tenant) else {
            return;
        };
        let Ok(batch) = batch::Batch::from_raw(header, raw) else {
            return;
        };
        let groups = &tenant.groups;
        let mut matched: Vec<Vec<&[u8]>> = vec![Vec::new(); groups.len()];
        let mut wants = vec![false; groups.len()];
        for (log_type, event) in batch.typed_events() {
            // A group wants the event if it is of its type and holds the
            // bytes its query requires; the event is parsed only when a
            // group that wants it looks at what it holds, and then only as
            // far as the queries look.
            let mut needs_value = false;
            for (w, g) in wants.iter_mut().zip(groups) {
                *w = g.log_type.as_deref().is_none_or(|t| t == log_type)
                    && g.required.as_ref().is_none_or(|f| f.find(event).is_some());
                needs_value |= *w && !g.members[0].matcher.matches_everything();
            }
            let value = if needs_value {
                match pruned::parse(event, &tenant.names) {
                    Ok(v) => Some(v),
                    Err(_) => continue,
                }
            } else {
                None
            };
            for ((g, &w), m) in groups.iter().zip(&wants).zip(&mut matched) {
                let matcher = &g.members[0].matcher;
                if w && (matcher.matches_everything()
                    || value.as_ref().is_some_and(|v| matcher.matches(v)))
                {
                    m.push(event);
                }
            }
        }
        let now = Instant::now();
        for (g, m) in groups.iter().zip(&matched) {
            if !m.is_empty() {
                g.hand_over(m, now);
            }
        }
    }
}

impl Group {
    /// Gives each member the first of `matched` its rate allows now and
    /// its buffer holds, and counts the rest as skipped. The JSON array is
    /// written once for the group; each member gets a prefix of it.
    fn hand_over(&self, matched: &[&[u8]], now: Instant) {
        let budgets: Vec<usize> = self
            .members
            .iter()
            .map(|s| {
                let mut a = lock(&s.allowance);
                a.0 = (a.0 + now.duration_since(a.1).as_secs_f64() * s.per_sec).min(s.per_sec);
                a.1 = now;
                a.0.floor() as usize
            })
            .collect();
        let most = budgets.iter().copied().max().unwrap_or(0);
        // `[e1,e2,…`, and where each event ends in it.
        let mut data = String::from("[");
        let mut ends = Vec::new();
        for event in matched.iter().take(most) {
            let Ok(text) = std::str::from_utf8(event) else {
                break;
            };
            if !ends.is_empty() {
                data.push(',');
            }
            data.push_str(text);
            ends.push(data.len());
        }
        for (s, &budget) in self.members.iter().zip(&budgets) {
            let room = s
                .limit
                .saturating_sub(s.counts.queued.load(Ordering::Acquire));
            // Events that fit: the array with its closing `]` within room.
            let taken = ends[..budget.min(ends.len())].partition_point(|&end| end < room);
            let skipped = matched.len() - taken;
            if skipped > 0 {
                s.counts.skipped.fetch_add(skipped as u64, Ordering::AcqRel);
            }
            if taken == 0 {
                continue;
            }
            let end = ends[taken - 1];
            let mut message = String::with_capacity(end + 1);
            message.push_str(&data[..end]);
            message.push(']');
            lock(&s.allowance).0 -= taken as f64;
            let bytes = message.len();
            s.counts.queued.fetch_add(bytes, Ordering::AcqRel);
            if s.tx.send(message).is_err() {
                s.counts.queued.fetch_sub(bytes, Ordering::AcqRel);
            }
        }
    }
}
