//! Event webhooks: an event-class route with a `webhook` has its events
//! pushed to an HTTP receiver as they become durable, with retries and a
//! durable cursor (docs/guides/delivery-classes.md#webhooks).
//!
//! One WAL consumer (`webhooks`) reads the log from its cursor, keeps the
//! event-class batches of the tenants' and types' webhooks, and at each
//! flush posts them, in WAL order, one request per batch of at most
//! `max_events`:
//!
//! ```json
//! {"tenant": "shop", "type": "payments", "events": [{…stored event…}, …]}
//! ```
//!
//! The cursor (`{data_dir}/webhooks.cursor`, written through a temporary
//! file, fsync and rename) moves past a request only after the receiver
//! answered 2xx: delivery is at least once (a crash between the answer and
//! the cursor sends again; each event carries its `id` to deduplicate).
//! A 408, 429, 5xx or no answer is tried again with backoff (100 ms
//! doubling to 10 s), holding back every later request of every webhook,
//! so order is kept, until `webhook.give_up_after`: then the request is
//! abandoned, logged and counted, and the cursor moves on (the events stay
//! stored and searchable). Another 4xx is abandoned at once
//! ([`crate::outbound`]). While the
//! cursor waits, the WAL keeps its segments: a receiver down long enough
//! makes the WAL fill, and ingest is refused, logs first.
//!
//! Not in cluster mode (no local WAL; config validation says so).

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::batch;
use crate::config::class::Class;
use crate::config::webhook::WebhookConfig;
use crate::outbound::Answer;
use crate::telemetry::Metrics;
use crate::wal::consumer::{Consumer, Flush};
use crate::wal::{Lsn, Record};

/// The consumer's name (WAL checkpoint, logs).
pub const CONSUMER: &str = "webhooks";
/// WAL payload read per step.
const READ_BYTES: usize = 4 << 20;
/// Events held for delivery before the consumer must flush.
const MAX_PENDING_EVENTS: usize = 20_000;
/// How soon held events are sent.
const SEND_WITHIN: Duration = Duration::from_millis(20);
/// How often the cursor moves past batches with nothing to send.
const CURSOR_EVERY: Duration = Duration::from_secs(1);

/// One webhook: where a tenant's events of one type go.
struct Hook {
    tenant: String,
    log_type: String,
    route: String,
    config: WebhookConfig,
}

/// One request waiting to be sent: a hook's events of one batch.
struct Pending {
    hook: usize,
    events: Vec<Vec<u8>>,
}

pub struct Webhooks {
    hooks: Vec<Hook>,
    by_type: HashMap<(String, String), usize>,
    pending: VecDeque<Pending>,
    pending_events: usize,
    first_pending: Option<Instant>,
    cursor_file: PathBuf,
    cursor_written: Instant,
    checkpoint: Lsn,
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
    metrics: Arc<Metrics>,
}

impl Webhooks {
    /// The consumer for the event-class routes with a webhook, from the
    /// cursor in `data_dir` (or the WAL's durable `end` the first time).
    /// `None` when no route has one.
    pub fn open(
        config: &crate::config::Config,
        end: Lsn,
        runtime: tokio::runtime::Handle,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Option<Webhooks>> {
        let mut hooks = Vec::new();
        let mut by_type = HashMap::new();
        for t in &config.tenants {
            for r in &t.routes {
                let Some(w) = &r.webhook else { continue };
                by_type.insert((t.name.clone(), r.log_type.clone()), hooks.len());
                hooks.push(Hook {
                    tenant: t.name.clone(),
                    log_type: r.log_type.clone(),
                    route: r.path.clone(),
                    config: w.clone(),
                });
            }
        }
        if hooks.is_empty() {
            return Ok(None);
        }
        let cursor_file = config.storage.data_dir.join("webhooks.cursor");
        let checkpoint = match std::fs::read_to_string(&cursor_file) {
            Ok(text) => text.trim().parse().map_err(|_| {
                std::io::Error::other(format!("{} is not a WAL position", cursor_file.display()))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                write_cursor(&cursor_file, end)?;
                end
            }
            Err(e) => return Err(e),
        };
        let client = reqwest::Client::builder()
            .build()
            .map_err(std::io::Error::other)?;
        Ok(Some(Webhooks {
            hooks,
            by_type,
            pending: VecDeque::new(),
            pending_events: 0,
            first_pending: None,
            cursor_file,
            cursor_written: Instant::now(),
            checkpoint,
            client,
            runtime,
            metrics,
        }))
    }

    /// Sends one request until it is answered 2xx, abandoned, or the
    /// gateway stops (`Err`: the cursor stays, it is sent again at the next
    /// start).
    fn deliver(&self, p: &Pending, at: &Flush) -> Result<(), String> {
        let hook = &self.hooks[p.hook];
        let w = &hook.config;
        let mut body =
            Vec::with_capacity(p.events.iter().map(|e| e.len() + 1).sum::<usize>() + 128);
        body.extend_from_slice(b"{\"tenant\":");
        body.extend_from_slice(
            serde_json::to_string(&hook.tenant)
                .unwrap_or_default()
                .as_bytes(),
        );
        body.extend_from_slice(b",\"type\":");
        body.extend_from_slice(
            serde_json::to_string(&hook.log_type)
                .unwrap_or_default()
                .as_bytes(),
        );
        body.extend_from_slice(b",\"events\":[");
        for (i, e) in p.events.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(e);
        }
        body.extend_from_slice(b"]}");
        let started = Instant::now();
        let mut backoff = Duration::from_millis(100);
        loop {
            let mut req = self
                .client
                .post(&w.url)
                .timeout(w.timeout)
                .header("content-type", "application/json")
                .header("user-agent", concat!("logway/", env!("CARGO_PKG_VERSION")));
            for (k, v) in &w.headers {
                req = req.header(k, v);
            }
            let answer = self
                .runtime
                .block_on(crate::outbound::post(req.body(body.clone()), &w.url));
            let (why, retry) = match answer {
                Answer::Accepted => {
                    self.count(hook, "delivered", p.events.len());
                    return Ok(());
                }
                Answer::Refused(why) => (why, false),
                Answer::Retry(why) => (why, true),
            };
            if !retry || started.elapsed() + backoff > w.give_up_after {
                tracing::error!(tenant = %hook.tenant, route = %hook.route, url = %w.url, events = p.events.len(), %why, "event webhook request abandoned; the events stay stored");
                self.count(hook, "abandoned", p.events.len());
                return Ok(());
            }
            if at.stopping() {
                return Err(format!("stopping while {} is unavailable: {why}", w.url));
            }
            tracing::warn!(tenant = %hook.tenant, route = %hook.route, url = %w.url, %why, "event webhook receiver unavailable; trying again");
            let until = Instant::now() + backoff;
            while Instant::now() < until && !at.stopping() {
                std::thread::sleep(Duration::from_millis(20));
            }
            backoff = (backoff * 2).min(Duration::from_secs(10));
        }
    }

    fn count(&self, hook: &Hook, outcome: &str, n: usize) {
        self.metrics
            .event_webhook_events
            .get_or_create(&crate::telemetry::WebhookLabels {
                tenant: hook.tenant.clone(),
                route: hook.route.clone(),
                outcome: outcome.to_string(),
            })
            .inc_by(n as u64);
    }
}

impl Consumer for Webhooks {
    const NAME: &'static str = CONSUMER;
    const READ_BYTES: usize = READ_BYTES;

    fn checkpoint(&self) -> Lsn {
        self.checkpoint
    }

    fn accepts(&self, _record: &Record) -> bool {
        self.pending_events < MAX_PENDING_EVENTS
    }

    /// Keeps the events of an event-class batch a webhook wants (the
    /// header first: other batches are not decompressed).
    fn consume(&mut self, record: Record) -> Result<(), String> {
        let (header, raw) = batch::decode_raw(&record.payload)?;
        if header.class != Class::Event {
            return Ok(());
        }
        let b = batch::Batch::from_raw(header, raw)?;
        // The hook of the current run of one log type.
        let mut run: Option<(&str, Option<usize>)> = None;
        for (log_type, line) in b.typed_events() {
            let hook = match run {
                Some((t, hook)) if t == log_type => hook,
                _ => {
                    let key = (b.header.tenant.clone(), log_type.to_string());
                    let hook = self.by_type.get(&key).copied();
                    run = Some((log_type, hook));
                    hook
                }
            };
            let Some(hook) = hook else { continue };
            let max = self.hooks[hook].config.max_events;
            // Requests keep the WAL's order: a new one when the hook changes.
            match self.pending.back_mut() {
                Some(p) if p.hook == hook && p.events.len() < max => p.events.push(line.to_vec()),
                _ => self.pending.push_back(Pending {
                    hook,
                    events: vec![line.to_vec()],
                }),
            }
            self.pending_events += 1;
            self.first_pending.get_or_insert_with(Instant::now);
        }
        Ok(())
    }

    /// Sends what is held, in order, then moves the cursor.
    fn flush(&mut self, at: &Flush) -> Result<Option<Lsn>, String> {
        let due = at.caught_up
            || at.full
            || at.ending
            || self
                .first_pending
                .is_some_and(|t| t.elapsed() >= SEND_WITHIN);
        if !due {
            return Ok(None);
        }
        let sent_any = !self.pending.is_empty();
        while let Some(p) = self.pending.front() {
            self.deliver(p, at)?;
            let sent = self.pending.pop_front().expect("front");
            self.pending_events -= sent.events.len();
        }
        self.first_pending = None;
        // Past batches without events the cursor moves at most every
        // CURSOR_EVERY (one fsync), so the WAL can let go of them.
        let quiet = self.cursor_written.elapsed() < CURSOR_EVERY && !at.ending;
        if at.position == self.checkpoint || (!sent_any && quiet) {
            return Ok(None);
        }
        write_cursor(&self.cursor_file, at.position).map_err(|e| e.to_string())?;
        self.cursor_written = Instant::now();
        self.checkpoint = at.position;
        Ok(Some(at.position))
    }

    fn pending(&self) -> bool {
        !self.pending.is_empty()
    }

    fn flush_in(&self) -> Option<Duration> {
        self.first_pending
            .map(|t| SEND_WITHIN.saturating_sub(t.elapsed()))
    }
}

/// Writes the cursor durably ([`crate::disk_format::replace_file`]).
fn write_cursor(path: &std::path::Path, lsn: Lsn) -> std::io::Result<()> {
    crate::disk_format::replace_file(path, format!("{lsn}\n").as_bytes())
}
