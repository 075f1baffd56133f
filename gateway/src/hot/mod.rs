//! # Hot tier: a tantivy index per tenant, log type and UTC day
//!
//! `data/hot/{tenant}/{type}/{YYYY-MM-DD}/` is one tantivy index holding the
//! events of that tenant and type *received* that day, so retention deletes
//! whole directories and a tenant's search never opens another tenant's
//! files. The [`indexer`] fills them from the WAL; [`search`] reads them.
//!
//! ## Checkpoints
//! Each partition's tantivy commit carries a payload `{"lsn":N}`: every WAL
//! record ending at or before N that belongs to this partition is in it.
//! After committing all written partitions, the indexer writes
//! `data/hot/checkpoint.json` (`{"lsn":N}`, atomically by rename) and tells
//! the WAL. On restart it reads the WAL from that checkpoint and skips a
//! record for a partition whose payload is already past it, so an event is
//! indexed exactly once even when a crash fell between two commits.
//!
//! ## Format
//! Term dictionaries are tantivy's sstable ones (its `quickwit` feature,
//! what Quickwit runs), not its default FST: building an FST for the
//! unique terms every event brings (ids, request ids) took about a quarter
//! of indexing CPU, and replay into the hot tier ran about 20% faster
//! without it (`archive-bench`, README). `data/hot/FORMAT` says `2`; a hot
//! tier without it (FST dictionaries, an earlier build) is refused at open
//! with what to do.

pub mod config;
pub mod fields;
pub mod histogram;
pub mod indexer;
pub mod schema;
pub mod search;
pub mod since;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use tantivy::directory::MmapDirectory;
use tantivy::{Index, IndexReader, InvertedIndexReader, ReloadPolicy, Searcher};
use time::Date;

use crate::disk_format::{self, FormatError};
pub use crate::wal::Lsn;

pub use schema::HotSchema;

const CHECKPOINT_FILE: &str = "checkpoint.json";

#[derive(Debug, thiserror::Error)]
pub enum HotError {
    #[error("hot index I/O error: {0}")]
    Io(#[from] io::Error),
    #[error("tantivy: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    #[error("cannot open index directory: {0}")]
    Directory(#[from] tantivy::directory::error::OpenDirectoryError),
    #[error("unreadable hot tier: {0}")]
    Format(String),
}

/// Which partition an event belongs to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartitionKey {
    pub tenant: String,
    pub log_type: String,
    /// The day received, or for a rehydrated partition the day of the replay.
    pub day: Date,
    /// Holds events replayed from the archive (`replay-YYYY-MM-DD`), kept
    /// for `hot.rehydrated_retention` from `day`.
    pub rehydrated: bool,
    /// In cluster mode, the partition of the events topic whose records it
    /// holds (its positions are that partition's offsets, its directory is
    /// under `kafka.{P}/`); `None`: the local WAL's (positions are LSNs);
    /// [`EVENTS_STREAM`]: the WAL's event-class batches (`events.wal/`).
    pub kafka: Option<u32>,
}

impl PartitionKey {
    fn dir(&self, root: &Path) -> PathBuf {
        let name = if self.rehydrated {
            format!("{REHYDRATED_PREFIX}{}", day_name(self.day))
        } else {
            day_name(self.day)
        };
        stream_root(root, self.kafka)
            .join(&self.tenant)
            .join(&self.log_type)
            .join(name)
    }
}

/// The directory of a stream's partitions: the hot root for the WAL's,
/// `kafka.{P}` under it for a topic partition's (a dot is never in a
/// tenant id, so the names cannot meet).
fn stream_root(root: &Path, kafka: Option<u32>) -> PathBuf {
    match kafka {
        Some(EVENTS_STREAM) => root.join(EVENTS_DIR),
        Some(p) => root.join(format!("{KAFKA_PREFIX}{p}")),
        None => root.to_path_buf(),
    }
}

const KAFKA_PREFIX: &str = "kafka.";

/// The stream of the local event indexer (`indexer::Indexer::for_events`): the
/// WAL's event-class batches, indexed apart and ahead of the rest, with
/// partitions and a checkpoint of their own under [`EVENTS_DIR`]. A
/// stream number no Kafka topic partition has (they are below 2^31).
pub const EVENTS_STREAM: u32 = u32::MAX;
/// Its directory under the hot tier's root (a tenant name has no dot).
const EVENTS_DIR: &str = "events.wal";

/// Version in `data/hot/FORMAT`. 2: sstable term dictionaries (tantivy's
/// `quickwit` feature); 1, unmarked: FST term dictionaries.
const FORMAT: &str = "2";

/// Directory name prefix of rehydrated partitions.
pub const REHYDRATED_PREFIX: &str = "replay-";

pub fn day_name(day: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        day.year(),
        day.month() as u8,
        day.day()
    )
}

pub fn parse_day(name: &str) -> Option<Date> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(name, fmt).ok()
}

/// One open partition.
pub struct Partition {
    pub key: PartitionKey,
    pub dir: PathBuf,
    pub index: Index,
    pub reader: IndexReader,
    /// WAL position of the last commit, as read at open.
    pub committed_lsn: Lsn,
    /// Its events carry `_lsn` (false for a partition created by a build
    /// before the column existed).
    pub has_lsn: bool,
    /// Every event of a WAL record ending at or before this position is
    /// in the reader's searchers from now on (set after each reload).
    visible_lsn: AtomicU64,
    /// Its segments' `_lsn` columns, for [`since::collect`].
    pub lsn_columns: since::Columns,
}

impl Partition {
    /// Whether a reader can take what was indexed after a WAL position:
    /// the indexer's partitions since `_lsn` exists (replay writes
    /// rehydrated ones without positions).
    pub fn counts_lsn(&self) -> bool {
        self.has_lsn && !self.key.rehydrated
    }

    /// The position up to which a searcher taken after this call holds
    /// every event (read it before taking the searcher).
    pub fn visible_lsn(&self) -> Lsn {
        self.visible_lsn.load(Ordering::Acquire)
    }

    /// Called by the indexer after reloading the reader at `lsn`.
    pub(crate) fn set_visible_lsn(&self, lsn: Lsn) {
        self.visible_lsn.store(lsn, Ordering::Release);
    }
}

/// The set of partitions, shared by the indexer and searches.
pub struct HotIndex {
    root: PathBuf,
    pub schema: HotSchema,
    partitions: RwLock<BTreeMap<PartitionKey, Arc<Partition>>>,
    /// In cluster mode, the topic partitions this node indexes now: only
    /// their hot partitions are searched (another node answers for the
    /// rest, and what is left here of a partition it gave away is stale).
    /// `None`: a single node, every partition is searched.
    owned: RwLock<Option<BTreeSet<u32>>>,
    /// Each topic partition's indexer checkpoint, as last written (read
    /// from `kafka.{P}/checkpoint.json` at open).
    kafka_checkpoints: RwLock<BTreeMap<u32, Lsn>>,
}

impl HotIndex {
    /// Opens every partition under `root`; returns the index and the WAL
    /// position the indexer resumes from.
    pub fn open(root: &Path) -> Result<(Arc<HotIndex>, Lsn), HotError> {
        fs::create_dir_all(root)?;
        check_format(root)?;
        let hot = HotIndex {
            root: root.to_path_buf(),
            schema: HotSchema::new(),
            partitions: RwLock::new(BTreeMap::new()),
            owned: RwLock::new(None),
            kafka_checkpoints: RwLock::default(),
        };
        hot.open_stream(None)?;
        for name in subdirs(root)? {
            let stream = match name.strip_prefix(KAFKA_PREFIX) {
                Some(p) => p.parse().ok(),
                None => (name == EVENTS_DIR).then_some(EVENTS_STREAM),
            };
            if let Some(p) = stream {
                hot.open_stream(Some(p))?;
                let stream = stream_root(root, Some(p));
                if stream.join(CHECKPOINT_FILE).exists() {
                    let lsn = read_checkpoint(&stream)?;
                    hot.kafka_checkpoints.write().unwrap().insert(p, lsn);
                }
            }
        }
        let checkpoint = read_checkpoint(root)?;
        Ok((Arc::new(hot), checkpoint))
    }

    /// Opens the partitions of one stream (the WAL's or a topic partition's).
    fn open_stream(&self, kafka: Option<u32>) -> Result<(), HotError> {
        let root = stream_root(&self.root, kafka);
        for tenant in subdirs(&root)? {
            if tenant.contains('.') {
                continue; // a stream directory, not a tenant
            }
            for log_type in subdirs(&root.join(&tenant))? {
                for day in subdirs(&root.join(&tenant).join(&log_type))? {
                    let (name, rehydrated) = match day.strip_prefix(REHYDRATED_PREFIX) {
                        Some(rest) => (rest, true),
                        None => (day.as_str(), false),
                    };
                    let Some(day) = parse_day(name) else { continue };
                    let key = PartitionKey {
                        tenant: tenant.clone(),
                        log_type: log_type.clone(),
                        day,
                        rehydrated,
                        kafka,
                    };
                    match self.open_partition(&key, false) {
                        Ok(p) => {
                            self.partitions.write().unwrap().insert(key, Arc::new(p));
                        }
                        Err(e) => {
                            tracing::error!(dir = %key.dir(&self.root).display(), error = %e, "cannot open hot partition; leaving it alone");
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Where the indexer of topic partition `p` resumes: the offset its
    /// last checkpoint names, `None` if this node never indexed it.
    pub fn kafka_checkpoint(&self, p: u32) -> Option<Lsn> {
        self.kafka_checkpoints.read().unwrap().get(&p).copied()
    }

    /// Cluster mode: from now on only the partitions of these topic
    /// partitions (and the WAL's) are searched.
    pub fn set_owned(&self, owned: BTreeSet<u32>) {
        *self.owned.write().unwrap() = Some(owned);
    }

    /// The topic partitions this node indexes now (`None`: not in cluster mode).
    pub fn owned(&self) -> Option<BTreeSet<u32>> {
        self.owned.read().unwrap().clone()
    }

    /// Whether a search on this node answers for the partition.
    fn searched(&self, key: &PartitionKey, owned: Option<&BTreeSet<u32>>) -> bool {
        match (key.kafka, owned) {
            (Some(p), Some(owned)) => owned.contains(&p),
            _ => true,
        }
    }

    fn open_partition(&self, key: &PartitionKey, create: bool) -> Result<Partition, HotError> {
        let dir = key.dir(&self.root);
        if create {
            fs::create_dir_all(&dir)?;
        }
        let directory = MmapDirectory::open(&dir)?;
        let exists = Index::exists(&directory).map_err(tantivy::TantivyError::from)?;
        let (index, has_lsn) = if exists {
            let index = Index::open(directory)?;
            let has_lsn = if index.schema() == self.schema.schema {
                true
            } else if index.schema() == self.schema.before_lsn {
                false
            } else {
                return Err(HotError::Format(format!(
                    "{} has a schema this build does not know",
                    dir.display()
                )));
            };
            (index, has_lsn)
        } else {
            (
                Index::create(directory, self.schema.schema.clone(), Default::default())?,
                true,
            )
        };
        let committed_lsn = index
            .load_metas()?
            .payload
            .and_then(|p| serde_json::from_str::<serde_json::Value>(&p).ok())
            .and_then(|v| v["lsn"].as_u64())
            .unwrap_or(0);
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(Partition {
            key: key.clone(),
            dir,
            index,
            reader,
            committed_lsn,
            has_lsn,
            visible_lsn: AtomicU64::new(committed_lsn),
            lsn_columns: Default::default(),
        })
    }

    /// The partition for `key`, created if needed.
    pub fn partition(&self, key: &PartitionKey) -> Result<Arc<Partition>, HotError> {
        if let Some(p) = self.partitions.read().unwrap().get(key) {
            return Ok(p.clone());
        }
        let p = Arc::new(self.open_partition(key, true)?);
        self.partitions
            .write()
            .unwrap()
            .insert(key.clone(), p.clone());
        Ok(p)
    }

    /// A tenant's partitions that this node answers for, optionally of one type.
    pub fn partitions_of(&self, tenant: &str, log_type: Option<&str>) -> Vec<Arc<Partition>> {
        let owned = self.owned.read().unwrap();
        self.partitions
            .read()
            .unwrap()
            .values()
            .filter(|p| p.key.tenant == tenant && log_type.is_none_or(|t| p.key.log_type == t))
            .filter(|p| self.searched(&p.key, owned.as_ref()))
            .cloned()
            .collect()
    }

    /// The ids held by these searchers' segments, ready for many lookups.
    pub fn id_lookup<'s>(&self, searchers: impl IntoIterator<Item = &'s Searcher>) -> IdLookup {
        IdLookup {
            terms: searchers
                .into_iter()
                .flat_map(|s| s.segment_readers())
                .filter_map(|segment| segment.inverted_index(self.schema.id).ok())
                .collect(),
        }
    }

    /// The partition of `key` if it exists (never creates one).
    pub fn existing(&self, key: &PartitionKey) -> Option<Arc<Partition>> {
        self.partitions.read().unwrap().get(key).cloned()
    }

    pub fn all_partitions(&self) -> Vec<Arc<Partition>> {
        self.partitions.read().unwrap().values().cloned().collect()
    }

    /// Forgets a partition and deletes its directory (searches that hold it
    /// finish on their open files).
    pub fn delete_partition(&self, key: &PartitionKey) -> io::Result<()> {
        let removed = self.partitions.write().unwrap().remove(key);
        if let Some(p) = removed {
            fs::remove_dir_all(&p.dir)?;
        }
        Ok(())
    }

    /// Writes a stream's checkpoint: `checkpoint.json` in its directory.
    pub fn write_checkpoint(&self, kafka: Option<u32>, lsn: Lsn) -> io::Result<()> {
        let root = stream_root(&self.root, kafka);
        fs::create_dir_all(&root)?;
        let path = root.join(CHECKPOINT_FILE);
        let tmp = root.join("checkpoint.json.tmp");
        fs::write(&tmp, format!("{{\"lsn\":{lsn}}}\n"))?;
        fs::File::open(&tmp)?.sync_all()?;
        fs::rename(&tmp, &path)?;
        fs::File::open(&root)?.sync_all()?;
        if let Some(p) = kafka {
            self.kafka_checkpoints.write().unwrap().insert(p, lsn);
        }
        Ok(())
    }
}

/// Refuses partitions of another format; marks a new hot tier.
fn check_format(root: &Path) -> Result<(), HotError> {
    disk_format::check(
        root,
        FORMAT,
        &[],
        !subdirs(root)?.is_empty(),
        "holds partitions of hot format 1 (an earlier build, whose term dictionaries this build cannot read); move the directory away: the indexer rebuilds from what the WAL still holds, and `logway replay` brings older events back from the archive",
    )
    .map_err(|e| match e {
        FormatError::Io(e) => HotError::Io(e),
        FormatError::Refused(m) => HotError::Format(m),
    })
}

fn read_checkpoint(root: &Path) -> io::Result<Lsn> {
    match fs::read_to_string(root.join(CHECKPOINT_FILE)) {
        Ok(text) => Ok(serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["lsn"].as_u64())
            .unwrap_or(0)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e),
    }
}

fn subdirs(dir: &Path) -> io::Result<Vec<String>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir()
            && let Ok(name) = entry.file_name().into_string()
        {
            out.push(name);
        }
    }
    Ok(out)
}

/// The `id` terms of a fixed set of segments: each segment's dictionary is
/// opened once, so a lookup is one term-dictionary probe per segment.
pub struct IdLookup {
    terms: Vec<Arc<InvertedIndexReader>>,
}

impl IdLookup {
    pub fn contains(&self, id: &str) -> bool {
        self.terms
            .iter()
            .any(|t| matches!(t.terms().term_ord(id.as_bytes()), Ok(Some(_))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A partition written before `_lsn` existed opens with its own schema
    /// and is known to have no positions; a new one has them.
    #[test]
    fn partitions_from_before_lsn_open_without_positions() {
        let dir = tempfile::tempdir().unwrap();
        let schema = HotSchema::new();
        let old = dir.path().join("acme/app_logs/2026-11-20");
        fs::create_dir_all(&old).unwrap();
        let index = Index::create(
            MmapDirectory::open(&old).unwrap(),
            schema.before_lsn.clone(),
            Default::default(),
        )
        .unwrap();
        let mut writer = index.writer_with_num_threads(1, 15_000_000).unwrap();
        let line = br#"{"id":"a","timestamp":"2026-11-20T10:00:00Z","received_at":"2026-11-20T10:00:00Z","type":"app_logs","message":"old"}"#;
        writer.add_document(schema.document(line).unwrap()).unwrap();
        writer.commit().unwrap();
        drop((writer, index));
        fs::write(dir.path().join(disk_format::FILE), "2\n").unwrap();

        let (hot, _) = HotIndex::open(dir.path()).unwrap();
        let [p] = &hot.partitions_of("acme", None)[..] else {
            panic!("one partition")
        };
        assert!(!p.has_lsn && !p.counts_lsn());
        assert_eq!(p.reader.searcher().num_docs(), 1);
        let day = time::macros::date!(2026 - 11 - 21);
        let new = hot
            .partition(&PartitionKey {
                tenant: "acme".into(),
                log_type: "app_logs".into(),
                day,
                rehydrated: false,
                kafka: None,
            })
            .unwrap();
        assert!(new.has_lsn && new.counts_lsn());
        drop(hot);
        // Both open again as they were.
        let (hot, _) = HotIndex::open(dir.path()).unwrap();
        let lsn: Vec<bool> = hot
            .partitions_of("acme", None)
            .iter()
            .map(|p| p.has_lsn)
            .collect();
        assert_eq!(lsn, [false, true]);
    }

    /// A new hot tier is marked; one with partitions but no `FORMAT` (an
    /// earlier build's FST dictionaries), or another version, is refused
    /// with what to do.
    #[test]
    fn hot_tier_of_another_format_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(HotIndex::open(dir.path()).unwrap());
        assert_eq!(
            fs::read_to_string(dir.path().join(disk_format::FILE)).unwrap(),
            "2\n"
        );
        drop(HotIndex::open(dir.path()).unwrap());

        let old = tempfile::tempdir().unwrap();
        fs::create_dir_all(old.path().join("acme/app_logs/2026-11-20")).unwrap();
        let err = HotIndex::open(old.path()).err().unwrap().to_string();
        assert!(
            err.contains("hot format 1") && err.contains("move the directory away"),
            "{err}"
        );
        assert!(!old.path().join(disk_format::FILE).exists());

        fs::write(dir.path().join(disk_format::FILE), "3\n").unwrap();
        let err = HotIndex::open(dir.path()).err().unwrap().to_string();
        assert!(
            err.contains("says format 3, this build reads format 2"),
            "{err}"
        );
    }

    #[test]
    fn topic_partitions_have_their_own_directories_checkpoints_and_search_scope() {
        let dir = tempfile::tempdir().unwrap();
        let day = time::macros::date!(2026 - 12 - 02);
        let key = |kafka| PartitionKey {
            tenant: "acme".into(),
            log_type: "app_logs".into(),
            day,
            rehydrated: false,
            kafka,
        };
        {
            let (hot, _) = HotIndex::open(dir.path()).unwrap();
            for k in [None, Some(0), Some(7)] {
                hot.partition(&key(k)).unwrap();
            }
            hot.write_checkpoint(Some(7), 42).unwrap();
            hot.write_checkpoint(None, 9).unwrap();
        }
        assert!(dir.path().join("kafka.7/acme/app_logs/2026-12-02").is_dir());
        let (hot, wal_checkpoint) = HotIndex::open(dir.path()).unwrap();
        assert_eq!(wal_checkpoint, 9);
        assert_eq!(hot.kafka_checkpoint(7), Some(42));
        assert_eq!(hot.kafka_checkpoint(0), None, "never checkpointed");
        let streams = |hot: &HotIndex| -> Vec<Option<u32>> {
            hot.partitions_of("acme", None)
                .iter()
                .map(|p| p.key.kafka)
                .collect()
        };
        // A single node searches everything; a cluster node its WAL's and
        // the topic partitions it owns.
        assert_eq!(streams(&hot), vec![None, Some(0), Some(7)]);
        hot.set_owned([7].into());
        assert_eq!(streams(&hot), vec![None, Some(7)]);
        assert_eq!(hot.all_partitions().len(), 3);
    }
}
