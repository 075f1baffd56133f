//! The `[hot]` section: commits, indexing memory, retention.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::config::value::{de_duration, de_duration_map};

pub const DEFAULT_HOT_COMMIT_INTERVAL: Duration = Duration::from_millis(500);
pub const DEFAULT_HOT_EVENT_COMMIT_INTERVAL: Duration = Duration::from_millis(100);
pub const DEFAULT_HOT_WRITER_MEMORY_BYTES: usize = 64 * 1024 * 1024;
pub const DEFAULT_HOT_RETENTION: Duration = Duration::from_secs(7 * 86_400);
pub const DEFAULT_HOT_REHYDRATED_RETENTION: Duration = Duration::from_secs(3 * 86_400);

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HotConfig {
    /// How often new events are committed (made searchable).
    #[serde(deserialize_with = "de_duration")]
    pub commit_interval: Duration,
    /// How soon the partitions holding new event-class documents are
    /// committed (only those; the checkpoint moves at the regular commit).
    #[serde(deserialize_with = "de_duration")]
    pub event_commit_interval: Duration,
    /// Indexing memory of one partition writer (all its threads).
    pub writer_memory_bytes: usize,
    /// Indexing threads of one partition writer; 0: one per core, at most 4.
    /// They share the work when cores are idle (catching up after a burst);
    /// under full load they compete with ingest for the same cores.
    pub indexing_threads: usize,
    /// Default hot retention, counted from the day an event was received.
    #[serde(deserialize_with = "de_duration")]
    pub retention: Duration,
    /// Hot retention per log type, overriding `retention`.
    #[serde(deserialize_with = "de_duration_map")]
    pub retention_by_type: BTreeMap<String, Duration>,
    /// How long events replayed from the archive stay, from the replay day.
    #[serde(deserialize_with = "de_duration")]
    pub rehydrated_retention: Duration,
    /// Tenants' own defaults (`tenants[].hot_retention`), filled at load.
    #[serde(skip)]
    pub tenant_retention: BTreeMap<String, Duration>,
}

impl Default for HotConfig {
    fn default() -> Self {
        HotConfig {
            commit_interval: DEFAULT_HOT_COMMIT_INTERVAL,
            event_commit_interval: DEFAULT_HOT_EVENT_COMMIT_INTERVAL,
            writer_memory_bytes: DEFAULT_HOT_WRITER_MEMORY_BYTES,
            indexing_threads: 0,
            retention: DEFAULT_HOT_RETENTION,
            retention_by_type: BTreeMap::new(),
            rehydrated_retention: DEFAULT_HOT_REHYDRATED_RETENTION,
            tenant_retention: BTreeMap::new(),
        }
    }
}

impl HotConfig {
    /// `indexing_threads`, with 0 resolved.
    pub fn threads(&self) -> usize {
        match self.indexing_threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get().min(4)),
            n => n,
        }
    }

    /// A type's retention, else the tenant's default, else `retention`.
    pub fn retention_for(&self, tenant: &str, log_type: &str) -> Duration {
        self.retention_by_type
            .get(log_type)
            .or_else(|| self.tenant_retention.get(tenant))
            .copied()
            .unwrap_or(self.retention)
    }
}

pub const DEFAULT_SEARCH_MAX_LIMIT: usize = 10_000;

/// The `[search]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SearchConfig {
    /// Largest `limit` a search may ask for.
    pub max_limit: usize,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            max_limit: DEFAULT_SEARCH_MAX_LIMIT,
        }
    }
}
