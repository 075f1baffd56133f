//! Replay: archived events back into the hot tier, as jobs.
//!
//! A job names a tenant (the admin key's), an optional log type and a
//! range `[from, to)` of *receive* time (the archive is partitioned by it,
//! so a job lists only the hour prefixes the range needs). It reads each
//! object, keeps the events received in the range, and indexes them into
//! *rehydrated* partitions (`hot/{tenant}/{type}/replay-{day of replay}`),
//! which search sees like any other and which `hot.rehydrated_retention`
//! (3 days) deletes, so replayed data does not pin disk.
//!
//! With a `query` (the search syntax), only matching events are replayed:
//! each object's candidates go through a scratch in-memory index first, so
//! a query costs about one more indexing pass.
//!
//! Idempotent: an event whose `id` is already hot (in its normal partition
//! or a rehydrated one) or was already added by this job is skipped and
//! counted as a duplicate. A corrupt or truncated object, or a line that is
//! not an event, is reported in the job's `errors` and the job goes on.
//! Jobs run one at a time (each writes rehydrated partitions); later ones
//! wait in `queued`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;
use tantivy::IndexWriter;
use time::OffsetDateTime;

use crate::archive::store::{ObjectMeta, ObjectStore};
use crate::archive::{day_prefix, type_prefix};
use crate::event::format_time;
use crate::hot::schema::Parsed;
use crate::hot::{HotIndex, Partition, PartitionKey};

/// Events indexed between commits (each commit makes them searchable and
/// lets the job forget their ids).
const COMMIT_EVERY: u64 = 100_000;
/// Finished jobs remembered for `GET`.
const KEEP_FINISHED: usize = 100;
/// Errors listed per job (all are counted).
const MAX_ERRORS: usize = 100;
const WRITER_MEMORY: usize = 128 * 1024 * 1024;

/// What a job replays.
#[derive(Debug, Clone)]
pub struct ReplayRequest {
    pub log_type: Option<String>,
    pub from: OffsetDateTime,
    pub to: OffsetDateTime,
    /// Only events matching this search query (the search syntax).
    pub query: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Progress {
    pub id: String,
    pub tenant: String,
    #[serde(rename = "type")]
    pub log_type: Option<String>,
    pub from: String,
    pub to: String,
    pub query: Option<String>,
    /// Events in range that the query did not match.
    pub events_not_matching: u64,
    /// `queued`, `running`, `done`, `failed` or `cancelled`.
    pub state: &'static str,
    pub objects_total: u64,
    pub objects_done: u64,
    pub bytes_read: u64,
    pub events_read: u64,
    pub events_indexed: u64,
    pub duplicates_skipped: u64,
    /// Events in the listed objects but received outside `[from, to)`.
    pub events_outside_range: u64,
    pub events_per_sec: f64,
    pub eta_seconds: Option<f64>,
    pub elapsed_ms: u64,
    pub error_count: u64,
    pub errors: Vec<String>,
}

pub struct Job {
    pub tenant: String,
    request: ReplayRequest,
    progress: Mutex<Progress>,
    cancel: AtomicBool,
    started: Mutex<Option<Instant>>,
}

impl Job {
    /// A snapshot of the job's progress, with rate and ETA.
    pub fn progress(&self) -> Progress {
        let mut p = self.progress.lock().unwrap().clone();
        if let Some(start) = *self.started.lock().unwrap() {
            let secs = start.elapsed().as_secs_f64();
            if p.state == "running" {
                p.elapsed_ms = (secs * 1000.0) as u64;
            }
            let secs = (p.elapsed_ms as f64 / 1000.0).max(1e-3);
            p.events_per_sec = (p.events_read as f64 / secs).round();
            if p.state == "running" && p.objects_done > 0 {
                let per_object = secs / p.objects_done as f64;
                p.eta_seconds = Some(
                    (per_object * (p.objects_total - p.objects_done) as f64 * 10.0).round() / 10.0,
                );
            }
        }
        p
    }

    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Release);
    }

    fn error(&self, message: String) {
        let mut p = self.progress.lock().unwrap();
        p.error_count += 1;
        if p.errors.len() < MAX_ERRORS {
            p.errors.push(message);
        }
    }
}

/// Every replay job of the gateway.
#[derive(Default)]
pub struct Replays {
    jobs: Mutex<Vec<Arc<Job>>>,
    /// Held by the running job.
    gate: Arc<Mutex<()>>,
    /// Nice value of job threads (`server.background_nice`).
    nice: i32,
}

impl Replays {
    pub fn new(nice: i32) -> Replays {
        Replays {
            nice,
            ..Replays::default()
        }
    }

    /// Queues a job and starts its thread.
    pub fn start(
        &self,
        tenant: &str,
        request: ReplayRequest,
        store: Arc<dyn ObjectStore>,
        prefix: String,
        hot: Arc<HotIndex>,
    ) -> std::io::Result<Arc<Job>> {
        let id = ulid::Ulid::generate().to_string();
        let job = Arc::new(Job {
            tenant: tenant.to_string(),
            progress: Mutex::new(Progress {
                id: id.clone(),
                tenant: tenant.to_string(),
                log_type: request.log_type.clone(),
                from: format_time(request.from),
                to: format_time(request.to),
                query: request.query.clone(),
                events_not_matching: 0,
                state: "queued",
                objects_total: 0,
                objects_done: 0,
                bytes_read: 0,
                events_read: 0,
                events_indexed: 0,
                duplicates_skipped: 0,
                events_outside_range: 0,
                events_per_sec: 0.0,
                eta_seconds: None,
                elapsed_ms: 0,
                error_count: 0,
                errors: Vec::new(),
            }),
            request,
            cancel: AtomicBool::new(false),
            started: Mutex::new(None),
        });
        {
            let mut jobs = self.jobs.lock().unwrap();
            let finished = jobs
                .iter()
                .filter(|j| !matches!(j.progress().state, "queued" | "running"))
                .count();
            if finished >= KEEP_FINISHED
                && let Some(i) = jobs
                    .iter()
                    .position(|j| !matches!(j.progress().state, "queued" | "running"))
            {
                jobs.remove(i);
            }
            jobs.push(job.clone());
        }
        let runtime = tokio::runtime::Handle::current();
        let (gate, j, nice) = (self.gate.clone(), job.clone(), self.nice);
        std::thread::Builder::new()
            .name("replay".into())
            .spawn(move || {
                crate::lower_thread_priority(nice);
                let _running = gate.lock().unwrap_or_else(|e| e.into_inner());
                run(&j, &*store, &prefix, &hot, &runtime);
            })?;
        Ok(job)
    }

    /// A tenant's job by id (another tenant's is `None`).
    pub fn get(&self, tenant: &str, id: &str) -> Option<Arc<Job>> {
        self.jobs
            .lock()
            .unwrap()
            .iter()
            .find(|j| j.tenant == tenant && j.progress.lock().unwrap().id == id)
            .cloned()
    }

    pub fn list(&self, tenant: &str) -> Vec<Arc<Job>> {
        self.jobs
            .lock()
            .unwrap()
            .iter()
            .filter(|j| j.tenant == tenant)
            .cloned()
            .collect()
    }
}

fn set_state(job: &Job, state: &'static str) {
    let mut p = job.progress.lock().unwrap();
    p.state = state;
    if !matches!(state, "queued" | "running")
        && let Some(start) = *job.started.lock().unwrap()
    {
        p.elapsed_ms = start.elapsed().as_millis() as u64;
    }
}

/// The objects of the job's range: only the hour prefixes it needs.
fn plan(
    job: &Job,
    store: &dyn ObjectStore,
    prefix: &str,
    runtime: &tokio::runtime::Handle,
) -> Result<Vec<ObjectMeta>, String> {
    let r = &job.request;
    let types = match &r.log_type {
        Some(t) => vec![t.clone()],
        None => runtime
            .block_on(store.list_dirs(&format!("{prefix}/tenant={}/", job.tenant)))
            .map_err(|e| e.to_string())?
            .iter()
            .filter_map(|d| {
                d.trim_end_matches('/')
                    .rsplit('/')
                    .next()?
                    .strip_prefix("type=")
                    .map(str::to_string)
            })
            .collect(),
    };
    let mut objects = Vec::new();
    let last = r.to - time::Duration::nanoseconds(1);
    for log_type in &types {
        debug_assert!(type_prefix(prefix, &job.tenant, log_type).ends_with('/'));
        let mut day = r.from.date();
        while day <= last.date() {
            let dp = day_prefix(prefix, &job.tenant, log_type, day);
            for hour_dir in runtime
                .block_on(store.list_dirs(&dp))
                .map_err(|e| e.to_string())?
            {
                let Some(hour) = hour_dir
                    .trim_end_matches('/')
                    .rsplit('/')
                    .next()
                    .and_then(|h| h.strip_prefix("hour="))
                    .and_then(|h| h.parse::<u8>().ok())
                else {
                    continue;
                };
                let Ok(start) = day.with_hms(hour, 0, 0).map(|t| t.assume_utc()) else {
                    continue;
                };
                if start < r.to && start + time::Duration::HOUR > r.from {
                    objects.extend(
                        runtime
                            .block_on(store.list(&hour_dir))
                            .map_err(|e| e.to_string())?,
                    );
                }
            }
            let Some(next) = day.next_day() else { break };
            day = next;
        }
    }
    Ok(objects)
}

/// The open rehydrated partitions of one job, by log type.
struct Sink<'a> {
    hot: &'a HotIndex,
    tenant: &'a str,
    today: time::Date,
    writers: HashMap<String, (Arc<Partition>, IndexWriter)>,
    /// Partitions an id may already be in, per (type, day received).
    known: HashMap<(String, time::Date), Vec<Arc<Partition>>>,
    /// Ids selected since the last commit (indexed, or refused by the
    /// query): a second copy in the range is a duplicate.
    seen: HashSet<String>,
    pending: u64,
}

impl Sink<'_> {
    fn writer(&mut self, log_type: &str) -> Result<&mut IndexWriter, String> {
        if !self.writers.contains_key(log_type) {
            let key = PartitionKey {
                tenant: self.tenant.to_string(),
                log_type: log_type.to_string(),
                day: self.today,
                rehydrated: true,
            };
            let partition = self.hot.partition(&key).map_err(|e| e.to_string())?;
            let writer = partition
                .index
                .writer_with_num_threads(2, WRITER_MEMORY)
                .map_err(|e| format!("cannot open the rehydrated partition: {e}"))?;
            self.writers
                .insert(log_type.to_string(), (partition, writer));
        }
        Ok(&mut self.writers.get_mut(log_type).expect("inserted").1)
    }

    /// Indexes one selected event into its type's rehydrated partition and
    /// remembers its id.
    fn add(&mut self, event: Parsed) -> Result<(), String> {
        self.writer(&event.log_type)?
            .add_document(event.doc)
            .map_err(|e| format!("indexing failed: {e}"))?;
        self.seen.insert(event.id);
        self.pending += 1;
        Ok(())
    }

    fn is_duplicate(&mut self, log_type: &str, received: time::Date, id: &str) -> bool {
        if self.seen.contains(id) {
            return true;
        }
        let hot = self.hot;
        let tenant = self.tenant;
        let candidates = self
            .known
            .entry((log_type.to_string(), received))
            .or_insert_with(|| {
                hot.partitions_of(tenant, Some(log_type))
                    .into_iter()
                    .filter(|p| p.key.rehydrated || p.key.day == received)
                    .collect()
            });
        hot.contains_id(candidates, id)
    }

    fn commit(&mut self) -> Result<(), String> {
        for (partition, writer) in self.writers.values_mut() {
            writer.commit().map_err(|e| format!("commit failed: {e}"))?;
            partition.reader.reload().map_err(|e| e.to_string())?;
        }
        self.seen.clear();
        self.known.clear();
        self.pending = 0;
        Ok(())
    }
}

fn run(
    job: &Job,
    store: &dyn ObjectStore,
    prefix: &str,
    hot: &HotIndex,
    runtime: &tokio::runtime::Handle,
) {
    *job.started.lock().unwrap() = Some(Instant::now());
    set_state(job, "running");
    let objects = match plan(job, store, prefix, runtime) {
        Ok(o) => o,
        Err(e) => {
            job.error(format!("listing the archive failed: {e}"));
            set_state(job, "failed");
            return;
        }
    };
    job.progress.lock().unwrap().objects_total = objects.len() as u64;
    let query = match job
        .request
        .query
        .as_deref()
        .map(|q| crate::hot::search::parse_query(hot, q))
    {
        None => None,
        Some(Ok(q)) => Some(q),
        Some(Err(e)) => {
            job.error(format!("invalid query: {e}"));
            set_state(job, "failed");
            return;
        }
    };
    let (from, to) = (job.request.from, job.request.to);
    let mut sink = Sink {
        hot,
        tenant: &job.tenant,
        today: OffsetDateTime::now_utc().date(),
        writers: HashMap::new(),
        known: HashMap::new(),
        seen: HashSet::new(),
        pending: 0,
    };
    for object in &objects {
        if job.cancel.load(Ordering::Acquire) {
            break;
        }
        let bytes = match runtime.block_on(store.get(&object.key)) {
            Ok(b) => b,
            Err(e) => {
                job.error(format!("{}: cannot read: {e}", object.key));
                job.progress.lock().unwrap().objects_done += 1;
                continue;
            }
        };
        let text = match zstd::decode_all(&bytes[..]) {
            Ok(t) => t,
            Err(e) => {
                job.error(format!(
                    "{}: corrupt or truncated object, skipped: {e}",
                    object.key
                ));
                let mut p = job.progress.lock().unwrap();
                p.objects_done += 1;
                p.bytes_read += bytes.len() as u64;
                continue;
            }
        };
        let (mut read, mut indexed, mut dups, mut outside) = (0u64, 0u64, 0u64, 0u64);
        // Each line is parsed once, into its document and what selects it.
        // Without a query it is indexed right away (the indexing threads
        // work while the next lines are parsed); with one, the object's
        // candidates go through the query first.
        let mut selected: Vec<Parsed> = Vec::new();
        for (n, line) in text.split(|&b| b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            read += 1;
            let event = match hot.schema.parse(line) {
                Ok(e) => e,
                Err(e) => {
                    job.error(format!(
                        "{} line {}: not an indexable event: {e}",
                        object.key,
                        n + 1
                    ));
                    continue;
                }
            };
            let received = event.received_at.into_utc();
            if received < from || received >= to {
                outside += 1;
                continue;
            }
            if sink.is_duplicate(&event.log_type, received.date(), &event.id) {
                dups += 1;
                continue;
            }
            if query.is_some() {
                sink.seen.insert(event.id.clone());
                selected.push(event);
            } else if let Err(e) = sink.add(event) {
                job.error(e);
                set_state(job, "failed");
                return;
            } else {
                indexed += 1;
            }
        }
        let mut not_matching = 0;
        if let Some(q) = &query {
            let before = selected.len();
            match matching(hot, q.as_ref(), selected) {
                Ok(kept) => selected = kept,
                Err(e) => {
                    job.error(format!("{}: query failed: {e}", object.key));
                    set_state(job, "failed");
                    return;
                }
            }
            not_matching = (before - selected.len()) as u64;
        }
        for event in selected {
            if let Err(e) = sink.add(event) {
                job.error(e);
                set_state(job, "failed");
                return;
            }
            indexed += 1;
        }
        {
            let mut p = job.progress.lock().unwrap();
            p.objects_done += 1;
            p.bytes_read += bytes.len() as u64;
            p.events_read += read;
            p.events_indexed += indexed;
            p.duplicates_skipped += dups;
            p.events_outside_range += outside;
            p.events_not_matching += not_matching;
        }
        if sink.pending >= COMMIT_EVERY
            && let Err(e) = sink.commit()
        {
            job.error(e);
            set_state(job, "failed");
            return;
        }
    }
    if let Err(e) = sink.commit() {
        job.error(e);
        set_state(job, "failed");
        return;
    }
    let cancelled = job.cancel.load(Ordering::Acquire);
    set_state(job, if cancelled { "cancelled" } else { "done" });
    let p = job.progress();
    tracing::info!(id = %p.id, tenant = %p.tenant, state = p.state, objects = p.objects_done, indexed = p.events_indexed, duplicates = p.duplicates_skipped, errors = p.error_count, "replay finished");
}

/// The events of `candidates` that match `query`: they are indexed into a
/// scratch in-memory index (the hot schema), searched, and read back from
/// their stored `_source`, so a query means exactly what it means in search.
fn matching(
    hot: &HotIndex,
    query: &dyn tantivy::query::Query,
    candidates: Vec<Parsed>,
) -> Result<Vec<Parsed>, String> {
    if candidates.is_empty() {
        return Ok(candidates);
    }
    let index = tantivy::Index::create_in_ram(hot.schema.schema.clone());
    let mut writer: IndexWriter = index
        .writer_with_num_threads(1, 64 * 1024 * 1024)
        .map_err(|e| e.to_string())?;
    for event in &candidates {
        writer
            .add_document(event.doc.clone())
            .map_err(|e| e.to_string())?;
    }
    writer.commit().map_err(|e| e.to_string())?;
    let searcher = index.reader().map_err(|e| e.to_string())?.searcher();
    let hits = searcher
        .search(query, &tantivy::collector::DocSetCollector)
        .map_err(|e| e.to_string())?;
    let mut ids = HashSet::with_capacity(hits.len());
    for addr in hits {
        let doc: tantivy::TantivyDocument = searcher.doc(addr).map_err(|e| e.to_string())?;
        use tantivy::schema::Value as _;
        if let Some(source) = doc.get_first(hot.schema.source).and_then(|v| v.as_str())
            && let Ok(head) = serde_json::from_str::<EventHead>(source)
        {
            ids.insert(head.id);
        }
    }
    Ok(candidates
        .into_iter()
        .filter(|e| ids.contains(&e.id))
        .collect())
}

/// The id of a matching event, read back from its `_source`.
#[derive(serde::Deserialize)]
struct EventHead {
    id: String,
}
