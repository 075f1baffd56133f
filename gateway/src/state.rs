//! What request handlers share: the [`Core`] of a recovered gateway, and
//! the [`AppState`] that holds it once recovery is done.

use std::sync::{Arc, OnceLock};

use crate::archive;
use crate::config::Config;
use crate::error::ApiError;
use crate::filter;
use crate::hot::HotIndex;
use crate::pipeline::Pipeline;
use crate::replay;
use crate::telemetry::Metrics;
use crate::tenants::Policy;
use crate::wal::Wal;

/// Everything a request needs once recovery is done.
pub struct Core {
    /// The config the gateway started with (tenants: see [`Core::policy`]).
    pub config: Config,
    /// The only way into the WAL.
    pub pipeline: Arc<Pipeline>,
    /// The WAL, for its gauges (sources write through the pipeline).
    pub wal: Wal,
    pub hot: Arc<HotIndex>,
    pub filters: Arc<filter::Registry>,
    /// The archive's store and writer status (`None`: archive disabled).
    pub archive: Option<Archive>,
    pub replays: replay::Replays,
    pub metrics: Arc<Metrics>,
    /// The web UI's signed-in sessions.
    pub sessions: crate::ui::session::Sessions,
    /// Saved searches per tenant.
    pub saved: crate::ui::saved::SavedSearches,
    /// Open live tails and their reader.
    pub tail: crate::tail::Tail,
    /// Alert rules, their states and their receivers.
    pub alerts: Arc<crate::alerts::Alerts>,
    /// This run of the node (a ULID): a searcher recognises itself among
    /// its peers by it.
    pub node_id: String,
}

/// The cold archive as the API sees it.
pub struct Archive {
    pub store: Arc<dyn archive::store::ObjectStore>,
    pub status: Arc<archive::writer::Status>,
}

/// Alert rules may name a saved search.
impl crate::alerts::SavedQueries for Core {
    fn saved_query(&self, tenant: &str, id: &str) -> Option<(String, Option<String>)> {
        self.saved
            .list(tenant)
            .into_iter()
            .find(|s| s.id == id)
            .map(|s| (s.query, s.log_type))
    }
}

impl Core {
    /// The current tenants, routes and limits.
    pub fn policy(&self) -> Arc<Policy> {
        self.pipeline.policy()
    }

    /// Whether this node runs the singleton jobs (the archive's retention
    /// sweep): a single node always; in cluster mode the node whose
    /// indexer owns partition 0 of `{group_prefix}-index`, so the group's
    /// assignment is the election (a node without the indexer role never
    /// leads). While partition 0 changes hands two nodes may both lead
    /// for a moment, or none: the jobs are idempotent and periodic.
    pub fn leads_singletons(&self) -> bool {
        !self.config.cluster.enabled || self.hot.owned().is_some_and(|o| o.contains(&0))
    }
}

/// Shared by every handler. `core` is set once recovery is done; until
/// then `/readyz` and ingest answer 503.
pub struct AppState {
    pub core: OnceLock<Arc<Core>>,
    pub metrics: Arc<Metrics>,
}

impl AppState {
    /// The core, or 503 while recovering.
    pub fn core(&self) -> Result<&Arc<Core>, ApiError> {
        self.core.get().ok_or_else(|| {
            ApiError::Unavailable("recovering the write-ahead log; not ready yet".into())
        })
    }
}
