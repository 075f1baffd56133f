//! `Idempotency-Key`: a retried request is answered like the original
//! without storing its events twice.
//!
//! The answer of a keyed request travels inside its WAL record (see
//! [`crate::batch`]), so it is durable exactly when the events are. This
//! table is a WAL consumer: it copies those answers into
//! `data/idempotency.log` and checkpoints, so keys outlive WAL segments and
//! restarts for the configured window.
//!
//! `idempotency.log` is NDJSON: entry lines
//! `{"tenant","key","body_hash","status","body","at_ms"}` and checkpoint lines
//! `{"checkpoint":lsn}`. On open, entries younger than the window are loaded,
//! a torn last line is ignored, and the file is rewritten with only the live
//! entries; then the WAL is read from the last checkpoint to its end before
//! the gateway accepts requests.
//!
//! Like Stripe's API, a key that is still in flight answers 409, and a key
//! reused with a different body answers 422.
//!
//! The same file and consumer keep the client-chosen event ids of
//! [`super::event_ids`]: lines `{"ids":[hash,…],"at_ms"}`.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::event_ids::EventIds;
use crate::batch::{self, IdempotencyRecord};
use crate::wal::consumer::{Consumer, Flush};
use crate::wal::{Lsn, Record};

pub const CONSUMER: &str = "idempotency";
/// WAL bytes read per step (bounds this consumer's memory).
const READ_BATCH_BYTES: usize = 4 << 20;
const FILE: &str = "idempotency.log";

type Key = (String, String);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Line {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    checkpoint: Option<Lsn>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tenant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    #[serde(default)]
    body_hash: u64,
    #[serde(default)]
    status: u16,
    #[serde(default)]
    body: String,
    #[serde(default)]
    at_ms: i64,
    /// Event-id hashes stored at `at_ms`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    ids: Vec<u64>,
}

/// Event-id hashes per line when the file is rewritten.
const IDS_PER_LINE: usize = 1000;

#[derive(Debug, Clone)]
struct Entry {
    body_hash: u64,
    status: u16,
    body: String,
    at_ms: i64,
}

/// What a keyed request should do.
pub enum Lookup {
    /// Seen before with the same body: answer this again.
    Replay { status: u16, body: String },
    /// Seen before with another body.
    Mismatch,
    /// The original is still being processed.
    InFlight,
    /// First time: go ahead; the guard frees the key if the request fails.
    New(InFlightGuard),
}

pub struct Idempotency {
    window_ms: i64,
    done: Mutex<HashMap<Key, Entry>>,
    in_flight: Mutex<HashSet<Key>>,
    path: PathBuf,
    /// Client-chosen event ids, kept in the same file.
    pub ids: Arc<EventIds>,
}

pub struct InFlightGuard {
    table: Arc<Idempotency>,
    key: Key,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.table.in_flight.lock().unwrap().remove(&self.key);
    }
}

impl InFlightGuard {
    /// Remembers the answer of a request whose events are now durable.
    pub fn complete(self, record: &IdempotencyRecord, at_ms: i64) {
        self.table.insert(self.key.0.clone(), record, at_ms);
    }
}

pub fn body_hash(body: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(body)
}

impl Idempotency {
    /// Loads the table from `data_dir`; returns it and the WAL position its
    /// consumer resumes from.
    pub fn open(
        data_dir: &Path,
        window: Duration,
        max_event_ids: usize,
        forgotten: prometheus_client::metrics::counter::Counter,
        now_ms: i64,
    ) -> io::Result<(Arc<Idempotency>, Lsn)> {
        let path = data_dir.join(FILE);
        let window_ms = window.as_millis() as i64;
        let ids = Arc::new(EventIds::new(window_ms, max_event_ids, forgotten));
        let mut done = HashMap::new();
        let mut checkpoint = 0;
        if let Ok(f) = File::open(&path) {
            for line in BufReader::new(f).lines() {
                let Ok(line) = line else { break };
                let Ok(l) = serde_json::from_str::<Line>(&line) else {
                    continue;
                };
                if let Some(c) = l.checkpoint {
                    checkpoint = c;
                } else if !l.ids.is_empty() {
                    if now_ms - l.at_ms < window_ms {
                        ids.insert(&l.ids, l.at_ms);
                    }
                } else if let (Some(tenant), Some(key)) = (l.tenant, l.key)
                    && now_ms - l.at_ms < window_ms
                {
                    done.insert(
                        (tenant, key),
                        Entry {
                            body_hash: l.body_hash,
                            status: l.status,
                            body: l.body,
                            at_ms: l.at_ms,
                        },
                    );
                }
            }
        }
        let table = Arc::new(Idempotency {
            window_ms,
            done: Mutex::new(done),
            in_flight: Mutex::new(HashSet::new()),
            path,
            ids,
        });
        table.rewrite(checkpoint)?;
        Ok((table, checkpoint))
    }

    pub fn lookup(
        self: &Arc<Self>,
        tenant: &str,
        key: &str,
        body_hash: u64,
        now_ms: i64,
    ) -> Lookup {
        let k = (tenant.to_string(), key.to_string());
        if let Some(e) = self.done.lock().unwrap().get(&k)
            && now_ms - e.at_ms < self.window_ms
        {
            return if e.body_hash == body_hash {
                Lookup::Replay {
                    status: e.status,
                    body: e.body.clone(),
                }
            } else {
                Lookup::Mismatch
            };
        }
        if !self.in_flight.lock().unwrap().insert(k.clone()) {
            return Lookup::InFlight;
        }
        Lookup::New(InFlightGuard {
            table: self.clone(),
            key: k,
        })
    }

    fn insert(&self, tenant: String, r: &IdempotencyRecord, at_ms: i64) {
        self.done.lock().unwrap().insert(
            (tenant, r.key.clone()),
            Entry {
                body_hash: r.body_hash,
                status: r.status,
                body: r.body.clone(),
                at_ms,
            },
        );
    }

    pub fn len(&self) -> usize {
        self.done.lock().unwrap().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Rewrites the file with the live entries and a checkpoint, atomically.
    fn rewrite(&self, checkpoint: Lsn) -> io::Result<()> {
        let tmp = self.path.with_extension("log.tmp");
        let mut out = io::BufWriter::new(File::create(&tmp)?);
        for ((tenant, key), e) in self.done.lock().unwrap().iter() {
            let line = Line {
                checkpoint: None,
                tenant: Some(tenant.clone()),
                key: Some(key.clone()),
                body_hash: e.body_hash,
                status: e.status,
                body: e.body.clone(),
                at_ms: e.at_ms,
                ids: Vec::new(),
            };
            serde_json::to_writer(&mut out, &line)?;
            out.write_all(b"\n")?;
        }
        let live = self.ids.live();
        for run in live.chunk_by(|a, b| a.1 == b.1) {
            for part in run.chunks(IDS_PER_LINE) {
                let line = Line {
                    checkpoint: None,
                    at_ms: part[0].1,
                    ids: part.iter().map(|(h, _)| *h).collect(),
                    ..checkpoint_line(0)
                };
                serde_json::to_writer(&mut out, &line)?;
                out.write_all(b"\n")?;
            }
        }
        serde_json::to_writer(&mut out, &checkpoint_line(checkpoint))?;
        out.write_all(b"\n")?;
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }

    /// Drops entries older than the window from memory.
    fn expire(&self, now_ms: i64) {
        self.done
            .lock()
            .unwrap()
            .retain(|_, e| now_ms - e.at_ms < self.window_ms);
    }
}

fn checkpoint_line(lsn: Lsn) -> Line {
    Line {
        checkpoint: Some(lsn),
        tenant: None,
        key: None,
        body_hash: 0,
        status: 0,
        body: String::new(),
        at_ms: 0,
        ids: Vec::new(),
    }
}

/// The WAL consumer that makes answers durable beyond the WAL.
pub struct IdempotencyConsumer {
    table: Arc<Idempotency>,
    file: File,
    /// Entry lines not yet written.
    out: Vec<u8>,
    checkpoint: Lsn,
}

impl IdempotencyConsumer {
    /// Appends to the table's file from `checkpoint` (what
    /// [`Idempotency::open`] read).
    pub fn new(table: Arc<Idempotency>, checkpoint: Lsn) -> io::Result<Self> {
        let file = OpenOptions::new().append(true).open(&table.path)?;
        Ok(IdempotencyConsumer {
            table,
            file,
            out: Vec::new(),
            checkpoint,
        })
    }
}

impl Consumer for IdempotencyConsumer {
    const NAME: &'static str = CONSUMER;
    const READ_BYTES: usize = READ_BATCH_BYTES;

    fn checkpoint(&self) -> Lsn {
        self.checkpoint
    }

    /// Takes the answer a keyed request's batch carries (its header only).
    fn consume(&mut self, record: Record) -> Result<(), String> {
        let header = batch::decode_header(&record.payload)?;
        if let Some(r) = &header.idempotency {
            self.table
                .insert(header.tenant.clone(), r, header.received_ms);
            let line = Line {
                checkpoint: None,
                tenant: Some(header.tenant.clone()),
                key: Some(r.key.clone()),
                body_hash: r.body_hash,
                status: r.status,
                body: r.body.clone(),
                at_ms: header.received_ms,
                ids: Vec::new(),
            };
            serde_json::to_writer(&mut self.out, &line).map_err(|e| e.to_string())?;
            self.out.push(b'\n');
        }
        if !header.event_ids.is_empty() {
            self.table.ids.insert(&header.event_ids, header.received_ms);
            let line = Line {
                checkpoint: None,
                at_ms: header.received_ms,
                ids: header.event_ids,
                ..checkpoint_line(0)
            };
            serde_json::to_writer(&mut self.out, &line).map_err(|e| e.to_string())?;
            self.out.push(b'\n');
        }
        Ok(())
    }

    /// Writes the answers read and a checkpoint line, then fsyncs. With no
    /// keyed record in range, the WAL alone still holds nothing we need:
    /// the in-memory checkpoint moves on, and the file's is refreshed at the
    /// next keyed record or restart.
    fn flush(&mut self, at: &Flush) -> Result<Option<Lsn>, String> {
        if !self.out.is_empty() {
            let mut out = std::mem::take(&mut self.out);
            serde_json::to_writer(&mut out, &checkpoint_line(at.position))
                .map_err(|e| e.to_string())?;
            out.push(b'\n');
            let written = self
                .file
                .write_all(&out)
                .and_then(|()| self.file.sync_data());
            if let Err(e) = written {
                // Kept for the next try (a torn line is skipped at load).
                self.out = out;
                return Err(format!("idempotency table write failed: {e}"));
            }
        }
        if at.position == self.checkpoint {
            return Ok(None);
        }
        self.checkpoint = at.position;
        Ok(Some(at.position))
    }

    fn pending(&self) -> bool {
        !self.out.is_empty()
    }

    fn housekeeping(&mut self) {
        self.table.expire(crate::now_ms());
        self.table.ids.expire(crate::now_ms());
    }
}
