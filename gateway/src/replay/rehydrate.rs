//! Where a job's events go, and which are already hot: the job's
//! rehydrated partitions and its duplicate checks.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tantivy::{IndexWriter, Searcher};
use time::OffsetDateTime;

use crate::hot::schema::Parsed;
use crate::hot::{HotIndex, IdLookup, Partition, PartitionKey};

const WRITER_MEMORY: usize = 128 * 1024 * 1024;
/// Ids of one hour partition a job remembers as hashes: a set of at most
/// 4M slots of 9 bytes (36 MB; 54 MB while it grows from 2M slots). Past
/// it, each id costs an exact lookup.
const HOUR_IDS_MAX: usize = 3_500_000;

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
pub(super) struct Rehydrate<'a> {
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
    pub(super) pending: u64,
}

impl<'a> Rehydrate<'a> {
    pub(super) fn new(hot: &'a HotIndex, tenant: &'a str) -> Rehydrate<'a> {
        Rehydrate {
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
                kafka: None,
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
    pub(super) fn enter_hour(&mut self, object_key: &str) {
        let hour = object_key.rsplit_once('/').map_or("", |(dir, _)| dir);
        if hour != self.hour {
            self.hour = hour.to_string();
            self.hour_ids = Some(HashSet::new());
        }
    }

    /// Remembers a selected event's id (indexed, or about to be tested
    /// against the query).
    pub(super) fn select(&mut self, id: String, hash: u64) {
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
    pub(super) fn add(&mut self, event: Parsed) -> Result<(), String> {
        self.writer(&event.log_type)?
            .add_document(event.doc)
            .map_err(|e| format!("indexing failed: {e}"))?;
        self.pending += 1;
        Ok(())
    }

    /// `hash` is [`id_hash`] of `id`, which [`Rehydrate::select`] takes too.
    pub(super) fn is_duplicate(
        &mut self,
        log_type: &str,
        received: time::Date,
        id: &str,
        hash: u64,
    ) -> bool {
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

    pub(super) fn commit(&mut self) -> Result<(), String> {
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
    pub(super) fn new(hot: &HotIndex, partition: Arc<Partition>) -> PartitionIds {
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
pub(super) fn id_hash(id: &str) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault};
    BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stored event of tenant `a`, type `t`, received now.
    fn event(hot: &HotIndex, id: &str) -> Parsed {
        let now = crate::event::format_time(OffsetDateTime::now_utc());
        let line = format!(
            r#"{{"id":"{id}","tenant":"a","type":"t","received_at":"{now}","timestamp":"{now}","message":"m"}}"#
        );
        hot.schema.parse(line.as_bytes()).unwrap()
    }

    fn add(target: &mut Rehydrate, hot: &HotIndex, id: &str) {
        let e = event(hot, id);
        let day = e.received_at.into_utc().date();
        assert!(
            !target.is_duplicate("t", day, id, id_hash(id)),
            "{id} is new"
        );
        target.select(id.to_string(), id_hash(id));
        target.add(e).unwrap();
    }

    fn is_dup(target: &mut Rehydrate, id: &str) -> bool {
        target.is_duplicate("t", OffsetDateTime::now_utc().date(), id, id_hash(id))
    }

    const HOUR: &str = "logs/tenant=a/type=t/dt=2026-11-21/hour=10";

    /// The job's own events are found after a commit (when the exact set of
    /// ids is forgotten), also once the hash set has overflowed; a new job
    /// finds an earlier job's events.
    #[test]
    fn a_job_finds_its_own_committed_events_and_an_earlier_jobs() {
        let dir = tempfile::tempdir().unwrap();
        let (hot, _) = HotIndex::open(dir.path()).unwrap();
        let mut target = Rehydrate::new(&hot, "a");
        target.enter_hour(&format!("{HOUR}/0001.ndjson.zst"));
        add(&mut target, &hot, "e1");
        assert!(is_dup(&mut target, "e1"), "before the commit");
        target.commit().unwrap();
        assert!(target.seen.is_empty());
        target.enter_hour(&format!("{HOUR}/0002.ndjson.zst"));
        assert!(is_dup(&mut target, "e1"), "after the commit, same hour");
        assert!(!is_dup(&mut target, "e2"));
        // Past the hash set's size, every id is looked up exactly.
        target.hour_ids = None;
        assert!(is_dup(&mut target, "e1"), "without the hash set");
        assert!(!is_dup(&mut target, "e2"), "without the hash set");
        add(&mut target, &hot, "e2");
        target.commit().unwrap();
        drop(target);

        let mut next = Rehydrate::new(&hot, "a");
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
                kafka: None,
            })
            .unwrap();
        let mut writer: IndexWriter = live.index.writer_with_num_threads(1, 15_000_000).unwrap();
        writer.add_document(event(&hot, "live1").doc).unwrap();
        writer.commit().unwrap();
        live.reader.reload().unwrap();

        let mut target = Rehydrate::new(&hot, "a");
        target.enter_hour(&format!("{HOUR}/0001.ndjson.zst"));
        assert!(is_dup(&mut target, "live1"));
        assert!(!is_dup(&mut target, "live2"));
        writer.add_document(event(&hot, "live2").doc).unwrap();
        writer.commit().unwrap();
        live.reader.reload().unwrap();
        assert!(
            is_dup(&mut target, "live2"),
            "after the live partition's reload"
        );
    }
}
