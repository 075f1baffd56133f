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
//! An object is read as a stream of lines (never decompressed whole). With
//! a `query` (the search syntax), only matching events are replayed: the
//! candidates go through a scratch in-memory index first, a chunk of lines
//! at a time, so a query costs about one more indexing pass.
//!
//! Idempotent: an event whose `id` is already hot (in its normal partition
//! or a rehydrated one) or was already added by this job is skipped and
//! counted as a duplicate (how, cheaply: [`Sink`]). A corrupt or truncated
//! object, or a line that is not an event, is reported in the job's
//! `errors` and the job goes on; the lines before a break count.
//! Jobs run one at a time (each writes rehydrated partitions); later ones
//! wait in `queued`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;
use tantivy::{IndexWriter, Searcher};
use time::OffsetDateTime;

use crate::archive::store::{ObjectMeta, ObjectStore};
use crate::archive::{day_prefix, type_prefix};
use crate::event::format_time;
use crate::hot::schema::Parsed;
use crate::hot::{HotIndex, IdLookup, Partition, PartitionKey};

/// Events indexed between commits (each commit makes them searchable and
/// lets the job forget their ids).
const COMMIT_EVERY: u64 = 100_000;
/// Finished jobs remembered for `GET`.
const KEEP_FINISHED: usize = 100;
/// Errors listed per job (all are counted).
const MAX_ERRORS: usize = 100;
const WRITER_MEMORY: usize = 128 * 1024 * 1024;
/// Ids of one hour partition a job remembers as hashes: a set of at most
/// 4M slots of 9 bytes (36 MB; 54 MB while it grows from 2M slots). Past
/// it, each id costs an exact lookup.
const HOUR_IDS_MAX: usize = 3_500_000;

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

/// The open rehydrated partitions of one job, by log type, and what tells
/// a new event from one already hot.
///
/// An id is a duplicate if it was hot before the job began (in the live
/// partition of the day it was received, or in a rehydrated one), or if
/// the job already selected it. Only replay jobs write rehydrated
/// partitions, one at a time, so those are looked up as they were when
/// the job began; live partitions as of their latest reload.
/// The job's own events are looked up only when one of them could be the
/// same event: an event is archived under the hour it was received, so
/// its copies share an hour partition, and the job keeps the ids of the
/// current hour partition as 64-bit hashes; only a hash already seen costs
/// an exact lookup.
struct Sink<'a> {
    hot: &'a HotIndex,
    tenant: &'a str,
    today: time::Date,
    /// Per log type: the job's rehydrated partition, its writer, and its
    /// ids as of its last commit.
    writers: HashMap<String, (IndexWriter, PartitionIds)>,
    /// The tenant's rehydrated partitions before this job wrote anything.
    rehydrated_before: Vec<(PartitionKey, Searcher)>,
    /// What else is hot, per (type, day received).
    known: HashMap<(String, time::Date), Known>,
    /// Ids selected since the last commit (indexed, or refused by the
    /// query), not yet searchable: a second copy is a duplicate.
    seen: HashSet<String>,
    /// Hashes of the ids selected in the current hour partition; `None`
    /// past [`HOUR_IDS_MAX`], when every id costs a lookup in the job's
    /// own partition.
    hour_ids: Option<HashSet<u64>>,
    hour: String,
    pending: u64,
}

impl<'a> Sink<'a> {
    fn new(hot: &'a HotIndex, tenant: &'a str) -> Sink<'a> {
        Sink {
            hot,
            tenant,
            today: OffsetDateTime::now_utc().date(),
            writers: HashMap::new(),
            rehydrated_before: hot
                .partitions_of(tenant, None)
                .into_iter()
                .filter(|p| p.key.rehydrated)
                .map(|p| (p.key.clone(), p.reader.searcher()))
                .collect(),
            known: HashMap::new(),
            seen: HashSet::new(),
            hour_ids: Some(HashSet::new()),
            hour: String::new(),
            pending: 0,
        }
    }

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
            let ids = PartitionIds::new(self.hot, partition);
            self.writers.insert(log_type.to_string(), (writer, ids));
        }
        Ok(&mut self.writers.get_mut(log_type).expect("inserted").0)
    }

    /// Called before each object: copies of one event share its hour
    /// partition, so the ids of the previous one can be forgotten.
    fn enter_hour(&mut self, object_key: &str) {
        let hour = object_key.rsplit_once('/').map_or("", |(dir, _)| dir);
        if hour != self.hour {
            self.hour = hour.to_string();
            self.hour_ids = Some(HashSet::new());
        }
    }

    /// Remembers a selected event's id (indexed, or about to be tested
    /// against the query).
    fn select(&mut self, id: String, hash: u64) {
        if let Some(ids) = &mut self.hour_ids {
            if ids.len() < HOUR_IDS_MAX {
                ids.insert(hash);
            } else {
                self.hour_ids = None;
            }
        }
        self.seen.insert(id);
    }

    /// Indexes one selected event into its type's rehydrated partition.
    fn add(&mut self, event: Parsed) -> Result<(), String> {
        self.writer(&event.log_type)?
            .add_document(event.doc)
            .map_err(|e| format!("indexing failed: {e}"))?;
        self.pending += 1;
        Ok(())
    }

    /// `hash` is [`id_hash`] of `id`, which [`Sink::select`] takes too.
    fn is_duplicate(&mut self, log_type: &str, received: time::Date, id: &str, hash: u64) -> bool {
        if self.seen.contains(id) {
            return true;
        }
        let own = match &self.hour_ids {
            Some(ids) => ids.contains(&hash),
            None => true,
        };
        if own
            && let Some((_, ids)) = self.writers.get_mut(log_type)
            && ids.contains(self.hot, id)
        {
            return true;
        }
        let (hot, tenant) = (self.hot, self.tenant);
        let before = &self.rehydrated_before;
        self.known
            .entry((log_type.to_string(), received))
            .or_insert_with(|| Known {
                live: hot
                    .partitions_of(tenant, Some(log_type))
                    .into_iter()
                    .filter(|p| !p.key.rehydrated && p.key.day == received)
                    .map(|p| PartitionIds::new(hot, p))
                    .collect(),
                rehydrated: hot.id_lookup(
                    before
                        .iter()
                        .filter(|(key, _)| key.log_type == log_type)
                        .map(|(_, searcher)| searcher),
                ),
            })
            .contains(hot, id)
    }

    fn commit(&mut self) -> Result<(), String> {
        for (writer, ids) in self.writers.values_mut() {
            writer.commit().map_err(|e| format!("commit failed: {e}"))?;
            ids.partition.reader.reload().map_err(|e| e.to_string())?;
        }
        self.seen.clear();
        self.known.clear();
        self.pending = 0;
        Ok(())
    }
}

/// The partitions an event of one type and day received may already be in,
/// other than the job's own.
struct Known {
    /// The live partition of that day (the hot indexer may commit while
    /// the job runs).
    live: Vec<PartitionIds>,
    /// The type's rehydrated partitions as they were before the job.
    rehydrated: IdLookup,
}

impl Known {
    fn contains(&mut self, hot: &HotIndex, id: &str) -> bool {
        self.rehydrated.contains(id) || self.live.iter_mut().any(|p| p.contains(hot, id))
    }
}

/// A partition's ids as of its reader's last reload: the term dictionaries
/// are opened again only when the reader has reloaded.
struct PartitionIds {
    partition: Arc<Partition>,
    generation: Option<u64>,
    ids: IdLookup,
}

impl PartitionIds {
    fn new(hot: &HotIndex, partition: Arc<Partition>) -> PartitionIds {
        PartitionIds {
            partition,
            generation: None,
            ids: hot.id_lookup([]),
        }
    }

    fn contains(&mut self, hot: &HotIndex, id: &str) -> bool {
        let searcher = self.partition.reader.searcher();
        let generation = searcher.generation().generation_id();
        if self.generation != Some(generation) {
            self.generation = Some(generation);
            self.ids = hot.id_lookup([&searcher]);
        }
        self.ids.contains(id)
    }
}

/// A fixed hash of an id (the same in every run), for [`Sink::hour_ids`].
fn id_hash(id: &str) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault};
    BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one(id)
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
    let mut sink = Sink::new(hot, &job.tenant);
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
        sink.enter_hour(&object.key);
        let read = replay_object(job, &object.key, &bytes, hot, query.as_deref(), &mut sink);
        job.progress.lock().unwrap().objects_done += 1;
        if let Err(e) = read {
            job.error(e);
            set_state(job, "failed");
            return;
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

/// Reads one object as a stream of lines and indexes the events it
/// selects. A line that is not an event, or a stream that breaks (a
/// corrupt or truncated object), is reported and the job goes on: the
/// lines before the break count. `Err` is what fails the job (the hot tier
/// refused a document, or the query could not run).
fn replay_object(
    job: &Job,
    key: &str,
    object: &[u8],
    hot: &HotIndex,
    query: Option<&dyn tantivy::query::Query>,
    sink: &mut Sink,
) -> Result<(), String> {
    let (from, to) = (job.request.from, job.request.to);
    let mut lines = match zstd::stream::read::Decoder::with_buffer(object) {
        Ok(d) => std::io::BufReader::with_capacity(256 * 1024, d),
        Err(e) => {
            job.error(format!("{key}: cannot decompress: {e}"));
            return Ok(());
        }
    };
    let mut counts = Counts::default();
    // With a query, candidates are tested together, a chunk at a time.
    let mut selected: Vec<Parsed> = Vec::new();
    let mut line = Vec::new();
    for n in 1.. {
        line.clear();
        match std::io::BufRead::read_until(&mut lines, b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                job.error(format!(
                    "{key}: corrupt or truncated object, read up to line {}: {e}",
                    n - 1
                ));
                break;
            }
        }
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        if text.is_empty() {
            continue;
        }
        counts.read += 1;
        let mut event = match hot.schema.parse(text) {
            Ok(e) => e,
            Err(e) => {
                job.error(format!("{key} line {n}: not an indexable event: {e}"));
                continue;
            }
        };
        let received = event.received_at.into_utc();
        if received < from || received >= to {
            counts.outside += 1;
        } else {
            let hash = id_hash(&event.id);
            if sink.is_duplicate(&event.log_type, received.date(), &event.id, hash) {
                counts.duplicates += 1;
            } else if query.is_some() {
                sink.select(event.id.clone(), hash);
                selected.push(event);
            } else {
                sink.select(std::mem::take(&mut event.id), hash);
                sink.add(event)?;
                counts.indexed += 1;
            }
        }
        if counts.read % CHUNK == 0 {
            if let Some(q) = query {
                index_matching(hot, q, std::mem::take(&mut selected), sink, &mut counts)
                    .map_err(|e| format!("{key}: {e}"))?;
            }
            counts.add_to(job);
        }
    }
    if let Some(q) = query {
        index_matching(hot, q, selected, sink, &mut counts).map_err(|e| format!("{key}: {e}"))?;
    }
    counts.add_to(job);
    job.progress.lock().unwrap().bytes_read += object.len() as u64;
    Ok(())
}

/// Lines read between progress updates (and, with a query, tested
/// against it together).
const CHUNK: u64 = 10_000;

/// Events counted since the job's progress was last updated.
#[derive(Default)]
struct Counts {
    read: u64,
    indexed: u64,
    duplicates: u64,
    outside: u64,
    not_matching: u64,
}

impl Counts {
    fn add_to(&mut self, job: &Job) {
        let c = std::mem::take(self);
        let mut p = job.progress.lock().unwrap();
        p.events_read += c.read;
        p.events_indexed += c.indexed;
        p.duplicates_skipped += c.duplicates;
        p.events_outside_range += c.outside;
        p.events_not_matching += c.not_matching;
    }
}

/// Indexes the candidates that match the query.
fn index_matching(
    hot: &HotIndex,
    query: &dyn tantivy::query::Query,
    candidates: Vec<Parsed>,
    sink: &mut Sink,
    counts: &mut Counts,
) -> Result<(), String> {
    let before = candidates.len();
    let kept = matching(hot, query, candidates).map_err(|e| format!("query failed: {e}"))?;
    counts.not_matching += (before - kept.len()) as u64;
    for event in kept {
        sink.add(event)?;
        counts.indexed += 1;
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A stored event of tenant `a`, type `t`, received now.
    fn event(hot: &HotIndex, id: &str) -> Parsed {
        let now = format_time(OffsetDateTime::now_utc());
        let line = format!(
            r#"{{"id":"{id}","tenant":"a","type":"t","received_at":"{now}","timestamp":"{now}","message":"m"}}"#
        );
        hot.schema.parse(line.as_bytes()).unwrap()
    }

    fn add(sink: &mut Sink, hot: &HotIndex, id: &str) {
        let e = event(hot, id);
        let day = e.received_at.into_utc().date();
        assert!(!sink.is_duplicate("t", day, id, id_hash(id)), "{id} is new");
        sink.select(id.to_string(), id_hash(id));
        sink.add(e).unwrap();
    }

    fn is_dup(sink: &mut Sink, id: &str) -> bool {
        sink.is_duplicate("t", OffsetDateTime::now_utc().date(), id, id_hash(id))
    }

    const HOUR: &str = "logs/tenant=a/type=t/dt=2026-11-21/hour=10";

    /// The job's own events are found after a commit (when the exact set of
    /// ids is forgotten), also once the hash set has overflowed; a new job
    /// finds an earlier job's events.
    #[test]
    fn a_job_finds_its_own_committed_events_and_an_earlier_jobs() {
        let dir = tempfile::tempdir().unwrap();
        let (hot, _) = HotIndex::open(dir.path()).unwrap();
        let mut sink = Sink::new(&hot, "a");
        sink.enter_hour(&format!("{HOUR}/0001.ndjson.zst"));
        add(&mut sink, &hot, "e1");
        assert!(is_dup(&mut sink, "e1"), "before the commit");
        sink.commit().unwrap();
        assert!(sink.seen.is_empty());
        sink.enter_hour(&format!("{HOUR}/0002.ndjson.zst"));
        assert!(is_dup(&mut sink, "e1"), "after the commit, same hour");
        assert!(!is_dup(&mut sink, "e2"));
        // Past the hash set's size, every id is looked up exactly.
        sink.hour_ids = None;
        assert!(is_dup(&mut sink, "e1"), "without the hash set");
        assert!(!is_dup(&mut sink, "e2"), "without the hash set");
        add(&mut sink, &hot, "e2");
        sink.commit().unwrap();
        drop(sink);

        let mut next = Sink::new(&hot, "a");
        next.enter_hour(&format!("{HOUR}/0001.ndjson.zst"));
        assert!(is_dup(&mut next, "e1"), "an earlier job's event");
        assert!(is_dup(&mut next, "e2"), "an earlier job's event");
        assert!(!is_dup(&mut next, "e3"));
    }

    /// An event the hot indexer commits into the live partition while the
    /// job runs is a duplicate from its next reload on.
    #[test]
    fn live_events_committed_during_a_job_are_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let (hot, _) = HotIndex::open(dir.path()).unwrap();
        let live = hot
            .partition(&PartitionKey {
                tenant: "a".into(),
                log_type: "t".into(),
                day: OffsetDateTime::now_utc().date(),
                rehydrated: false,
            })
            .unwrap();
        let mut writer: IndexWriter = live.index.writer_with_num_threads(1, 15_000_000).unwrap();
        writer.add_document(event(&hot, "live1").doc).unwrap();
        writer.commit().unwrap();
        live.reader.reload().unwrap();

        let mut sink = Sink::new(&hot, "a");
        sink.enter_hour(&format!("{HOUR}/0001.ndjson.zst"));
        assert!(is_dup(&mut sink, "live1"));
        assert!(!is_dup(&mut sink, "live2"));
        writer.add_document(event(&hot, "live2").doc).unwrap();
        writer.commit().unwrap();
        live.reader.reload().unwrap();
        assert!(
            is_dup(&mut sink, "live2"),
            "after the live partition's reload"
        );
    }
}
