//! The indexer role: a hot indexer ([`crate::hot::indexer`]) per topic
//! partition this node owns in group `{group_prefix}-index`.
//!
//! A partition's hot partitions live under `data/hot/kafka.{P}/`, each
//! commit carrying the offset just past the last record it holds, and its
//! checkpoint in `kafka.{P}/checkpoint.json`: reading resumes there (a
//! record a hot partition already holds is skipped, as with the WAL), or
//! from the earliest record Kafka holds when this node never indexed the
//! partition. Search answers for the partitions owned now
//! ([`crate::hot::HotIndex::set_owned`]).

use std::collections::BTreeSet;
use std::io;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::thread::JoinHandle;

use super::group::{PartitionSource, Work};
use crate::hot::HotIndex;
use crate::hot::config::HotConfig;
use crate::hot::indexer::Indexer;
use crate::telemetry::Metrics;
use crate::wal::Lsn;
use crate::wal::consumer::Driver;

pub struct IndexWork {
    pub hot: Arc<HotIndex>,
    pub config: HotConfig,
    pub metrics: Arc<Metrics>,
    /// Priority of the indexing threads.
    pub nice: i32,
}

impl Work for IndexWork {
    const ROLE: &'static str = "index";

    /// The index's own checkpoint, never the group's offset.
    fn start(&self, p: u32, _committed: Result<Option<Lsn>, String>) -> io::Result<Option<Lsn>> {
        self.hot.kafka_checkpoint(p)
    }

    fn spawn(
        &self,
        p: u32,
        checkpoint: Lsn,
        source: PartitionSource,
        stop: Arc<AtomicBool>,
    ) -> io::Result<JoinHandle<()>> {
        let indexer = Indexer::of_stream(
            self.hot.clone(),
            Some(p),
            checkpoint,
            self.config.clone(),
            self.metrics.clone(),
        );
        Driver::with_source(indexer, source, stop).spawn(&format!("index-k{p}"), self.nice)
    }

    fn owned(&self, owned: &BTreeSet<u32>) {
        self.hot.set_owned(owned.clone());
    }
}
