//! Periodic tasks on the async runtime, aborted at shutdown: idle client
//! IPs out of the rate limiters (and the event-id gauge), and cold
//! retention, a singleton job ([`Core::leads_singletons`]).

use std::sync::Arc;

use tokio::task::JoinHandle;

use crate::archive;
use crate::state::Core;

/// How often idle client IPs are dropped from per-client rate limiters.
const LIMITER_EVICTION_EVERY: std::time::Duration = std::time::Duration::from_secs(60);
/// How often a node checks whether it leads the singleton jobs.
const LEADERSHIP_CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Starts the periodic tasks.
pub fn start(core: &Arc<Core>) -> Vec<JoinHandle<()>> {
    let mut tasks = Vec::new();
    let c = core.clone();
    tasks.push(tokio::spawn(async move {
        let mut every = tokio::time::interval(LIMITER_EVICTION_EVERY);
        loop {
            every.tick().await;
            let keys = c.policy().limits.evict_idle_clients();
            c.metrics.limiter_client_keys.set(keys as i64);
            c.metrics
                .event_ids
                .set(c.pipeline.event_ids_remembered() as i64);
        }
    }));
    let c = core.clone();
    tasks.push(tokio::spawn(async move {
        let mut every = tokio::time::interval(LEADERSHIP_CHECK_EVERY);
        loop {
            every.tick().await;
            let leads = c.leads_singletons();
            c.metrics.cluster_singleton_leader.set(leads as i64);
        }
    }));
    if let Some(a) = &core.archive {
        let (store, config, metrics) = (
            a.store.clone(),
            core.config.archive.clone(),
            core.metrics.clone(),
        );
        let c = core.clone();
        tasks.push(tokio::spawn(async move {
            // Checked every second, so a node that becomes the leader
            // sweeps at once, then every `retention::EVERY`.
            let mut every = tokio::time::interval(LEADERSHIP_CHECK_EVERY);
            let mut last: Option<std::time::Instant> = None;
            loop {
                every.tick().await;
                if !c.leads_singletons()
                    || last.is_some_and(|t| t.elapsed() < archive::retention::EVERY)
                {
                    continue;
                }
                last = Some(std::time::Instant::now());
                let now = time::OffsetDateTime::now_utc();
                if let Err(e) = archive::retention::enforce(&*store, &config, now, &metrics).await {
                    tracing::warn!(error = %e, "cold retention failed; will retry");
                }
            }
        }));
    }
    tasks
}
