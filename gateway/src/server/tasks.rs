//! Periodic tasks on the async runtime, aborted at shutdown: idle client
//! IPs out of the rate limiters (and the event-id gauge), and cold
//! retention.

use std::sync::Arc;

use tokio::task::JoinHandle;

use crate::archive;
use crate::state::Core;

/// How often idle client IPs are dropped from per-client rate limiters.
const LIMITER_EVICTION_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

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
    if let Some(a) = &core.archive {
        let (store, config, metrics) = (
            a.store.clone(),
            core.config.archive.clone(),
            core.metrics.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut every = tokio::time::interval(archive::retention::EVERY);
            loop {
                every.tick().await;
                let now = time::OffsetDateTime::now_utc();
                if let Err(e) = archive::retention::enforce(&*store, &config, now, &metrics).await {
                    tracing::warn!(error = %e, "cold retention failed; will retry");
                }
            }
        }));
    }
    tasks
}
