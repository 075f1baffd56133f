//! A job's run: list the objects of its range, read each as a stream of
//! lines, select the events in range (and matching its query), skip
//! duplicates, index the rest.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tantivy::IndexWriter;

use super::rehydrate::{Rehydrate, id_hash};
use super::{COMMIT_EVERY, Job, JobState, set_state};
use crate::archive::store::{ObjectMeta, ObjectStore};
use crate::archive::{day_prefix, type_prefix};
use crate::hot::HotIndex;
use crate::hot::schema::Parsed;

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

pub(super) fn run(
    job: &Job,
    store: &dyn ObjectStore,
    prefix: &str,
    hot: &HotIndex,
    runtime: &tokio::runtime::Handle,
) {
    *job.started.lock().unwrap() = Some(Instant::now());
    set_state(job, JobState::Running);
    let objects = match plan(job, store, prefix, runtime) {
        Ok(o) => o,
        Err(e) => {
            job.error(format!("listing the archive failed: {e}"));
            set_state(job, JobState::Failed);
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
            set_state(job, JobState::Failed);
            return;
        }
    };
    let mut target = Rehydrate::new(hot, &job.tenant);
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
        target.enter_hour(&object.key);
        let read = replay_object(job, &object.key, &bytes, hot, query.as_deref(), &mut target);
        job.progress.lock().unwrap().objects_done += 1;
        if let Err(e) = read {
            job.error(e);
            set_state(job, JobState::Failed);
            return;
        }
        if target.pending >= COMMIT_EVERY
            && let Err(e) = target.commit()
        {
            job.error(e);
            set_state(job, JobState::Failed);
            return;
        }
    }
    if let Err(e) = target.commit() {
        job.error(e);
        set_state(job, JobState::Failed);
        return;
    }
    let cancelled = job.cancel.load(Ordering::Acquire);
    set_state(
        job,
        if cancelled {
            JobState::Cancelled
        } else {
            JobState::Done
        },
    );
    let p = job.progress();
    tracing::info!(id = %p.id, tenant = %p.tenant, state = ?p.state, objects = p.objects_done, indexed = p.events_indexed, duplicates = p.duplicates_skipped, errors = p.error_count, "replay finished");
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
    target: &mut Rehydrate,
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
            if target.is_duplicate(&event.log_type, received.date(), &event.id, hash) {
                counts.duplicates += 1;
            } else if query.is_some() {
                target.select(event.id.clone(), hash);
                selected.push(event);
            } else {
                target.select(std::mem::take(&mut event.id), hash);
                target.add(event)?;
                counts.indexed += 1;
            }
        }
        if counts.read % CHUNK == 0 {
            if let Some(q) = query {
                index_matching(hot, q, std::mem::take(&mut selected), target, &mut counts)
                    .map_err(|e| format!("{key}: {e}"))?;
            }
            counts.add_to(job);
        }
    }
    if let Some(q) = query {
        index_matching(hot, q, selected, target, &mut counts).map_err(|e| format!("{key}: {e}"))?;
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
    target: &mut Rehydrate,
    counts: &mut Counts,
) -> Result<(), String> {
    let before = candidates.len();
    let kept = matching(hot, query, candidates).map_err(|e| format!("query failed: {e}"))?;
    counts.not_matching += (before - kept.len()) as u64;
    for event in kept {
        target.add(event)?;
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
