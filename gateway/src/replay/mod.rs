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
//! counted as a duplicate (how, cheaply: [`rehydrate::Rehydrate`]). A corrupt or truncated
//! object, or a line that is not an event, is reported in the job's
//! `errors` and the job goes on; the lines before a break count.
//! Jobs run one at a time (each writes rehydrated partitions); later ones
//! wait in `queued`.

mod rehydrate;
mod run;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::archive::store::ObjectStore;
use crate::event::format_time;
use crate::hot::HotIndex;

/// Events indexed between commits (each commit makes them searchable and
/// lets the job forget their ids).
const COMMIT_EVERY: u64 = 100_000;
/// Finished jobs remembered for `GET`.
const KEEP_FINISHED: usize = 100;
/// Errors listed per job (all are counted).
const MAX_ERRORS: usize = 100;

/// What a job replays.
#[derive(Debug, Clone)]
pub struct ReplayRequest {
    pub log_type: Option<String>,
    pub from: OffsetDateTime,
    pub to: OffsetDateTime,
    /// Only events matching this search query (the search syntax).
    pub query: Option<String>,
}

/// Where a job is: `queued` → `running` → `done`, `failed` or `cancelled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting for the job before it (jobs run one at a time).
    Queued,
    Running,
    /// Finished (its `errors` list what it could not read).
    Done,
    Failed,
    Cancelled,
}

impl JobState {
    /// Queued or running: not finished yet.
    pub fn is_active(self) -> bool {
        matches!(self, JobState::Queued | JobState::Running)
    }
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
    pub state: JobState,
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
            if p.state == JobState::Running {
                p.elapsed_ms = (secs * 1000.0) as u64;
            }
            let secs = (p.elapsed_ms as f64 / 1000.0).max(1e-3);
            p.events_per_sec = (p.events_read as f64 / secs).round();
            if p.state == JobState::Running && p.objects_done > 0 {
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
                state: JobState::Queued,
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
                .filter(|j| !j.progress().state.is_active())
                .count();
            if finished >= KEEP_FINISHED
                && let Some(i) = jobs.iter().position(|j| !j.progress().state.is_active())
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
                crate::background::lower_thread_priority(nice);
                let _running = gate.lock().unwrap_or_else(|e| e.into_inner());
                run::run(&j, &*store, &prefix, &hot, &runtime);
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

fn set_state(job: &Job, state: JobState) {
    let mut p = job.progress.lock().unwrap();
    p.state = state;
    if !state.is_active()
        && let Some(start) = *job.started.lock().unwrap()
    {
        p.elapsed_ms = start.elapsed().as_millis() as u64;
    }
}
