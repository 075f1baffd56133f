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

use super::group::Work;
use crate::hot::HotIndex;
use crate::hot::config::HotConfig;
use crate::hot::indexer::Indexer;
use crate::telemetry::Metrics;
use crate::wal::Lsn;
use crate::wal::consumer::PartitionOffsets;

pub struct IndexWork {
    pub hot: Arc<HotIndex>,
    pub config: HotConfig,
    pub metrics: Arc<Metrics>,
}

impl Work for IndexWork {
    const ROLE: &'static str = "index";
    type Consumer = Indexer;

    /// The index's own checkpoint, never the group's offset.
    fn start(&self, p: u32, _committed: Result<Option<Lsn>, String>) -> io::Result<Option<Lsn>> {
        Ok(self.hot.kafka_checkpoint(p))
    }

    fn consumer(&self, p: u32, checkpoint: Lsn, _offsets: Arc<PartitionOffsets>) -> Indexer {
        Indexer::of_stream(
            self.hot.clone(),
            Some(p),
            checkpoint,
            self.config.clone(),
            self.metrics.clone(),
        )
    }

    fn owned(&self, owned: &BTreeSet<u32>) {
        self.hot.set_owned(owned.clone());
    }
}
