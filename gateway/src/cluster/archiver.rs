//! The archiver role: an archive writer ([`crate::archive::writer`]) per
//! topic partition this node owns in group `{group_prefix}-archive`.
//!
//! Reading starts at the group's committed offset (the archive keeps no
//! state on the node); each round's range is a marker object in the
//! bucket, so a round a killed owner left half done is redone by the next
//! owner to the same keys (`docs/cluster.md`, "Archiver").

use std::io;
use std::sync::Arc;

use super::group::Work;
use crate::archive::config::ArchiveConfig;
use crate::archive::store::ObjectStore;
use crate::archive::writer::Writer;
use crate::telemetry::Metrics;
use crate::wal::Lsn;
use crate::wal::consumer::PartitionOffsets;

pub struct ArchiveWork {
    pub store: Arc<dyn ObjectStore>,
    pub runtime: tokio::runtime::Handle,
    pub config: ArchiveConfig,
    pub metrics: Arc<Metrics>,
}

impl Work for ArchiveWork {
    const ROLE: &'static str = "archive";
    const GROUP_OFFSET: bool = true;
    /// An idle round is cut only where the partition ends.
    const HIGH_WATERMARK: bool = true;
    type Consumer = Writer;

    /// The group's offset: what is before it is archived. Unknown (the
    /// broker did not answer) is not "from the start": the partition is
    /// not started rather than archived twice.
    fn start(&self, _p: u32, committed: Result<Option<Lsn>, String>) -> io::Result<Option<Lsn>> {
        committed.map_err(io::Error::other)
    }

    fn consumer(&self, p: u32, checkpoint: Lsn, offsets: Arc<PartitionOffsets>) -> Writer {
        Writer::for_partition(
            p,
            checkpoint,
            offsets,
            self.store.clone(),
            self.runtime.clone(),
            self.config.clone(),
            self.metrics.clone(),
        )
    }
}
