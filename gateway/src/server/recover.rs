//! Recovery: open the WAL (cutting a torn tail), the hot index, the
//! idempotency table, the filter registry and the archive store; bring the
//! idempotency table up to the WAL's end (a retry must see every earlier
//! answer before the first request); start the WAL consumers' threads.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context;

use crate::archive;
use crate::cluster::Role;
use crate::config::Config;
use crate::filter;
use crate::hot::{self, HotIndex};
use crate::pipeline::Pipeline;
use crate::pipeline::idempotency::{Idempotency, IdempotencyConsumer};
use crate::replay;
use crate::state::{Archive, Core};
use crate::telemetry::Metrics;
use crate::tenants::Policy;
use crate::wal::consumer::Driver;
use crate::wal::{Wal, WalWriterThread};

/// The threads behind the WAL, joined at shutdown in the order
/// `super::start` writes down.
pub struct Threads {
    pub wal_writer: WalWriterThread,
    /// Tells every consumer to drain what is durable and stop.
    pub consumers_stop: Arc<AtomicBool>,
    /// Hot indexer, idempotency table, archive writer (if on), in cluster
    /// mode the indexers' group member.
    pub consumers: Vec<std::thread::JoinHandle<()>>,
}

/// Opens everything the data directory holds and starts the consumers;
/// the pipeline appends to the WAL, or to `cluster_log` in cluster mode.
pub fn recover(
    config: &Config,
    metrics: Arc<Metrics>,
    cluster_log: Option<Arc<dyn crate::pipeline::Log>>,
) -> anyhow::Result<(Core, Threads)> {
    let data = &config.storage.data_dir;
    std::fs::create_dir_all(data)
        .with_context(|| format!("cannot create data directory {}", data.display()))?;
    let (wal, wal_writer) = Wal::open(&data.join("wal"), config.wal.options())
        .context("cannot open the write-ahead log")?;
    if wal.torn_bytes() > 0 {
        tracing::warn!(bytes = wal.torn_bytes(), "cut a torn write-ahead log tail");
    }
    let (hot, hot_checkpoint) =
        HotIndex::open(&data.join("hot")).context("cannot open the hot index")?;
    let (idempotency, idem_checkpoint) = Idempotency::open(
        data,
        config.idempotency.window,
        config.idempotency.max_event_ids,
        metrics.event_ids_forgotten.clone(),
        crate::now_ms(),
    )
    .context("cannot open the idempotency table")?;
    let filters = Arc::new(
        filter::Registry::open(data, &config.filters, metrics.clone())
            .context("cannot open the filter registry")?,
    );
    let chains = crate::tenants::Tenants::from_config(config).event_chains(config);
    filter::caps::check_event_routes(&filters, &chains).map_err(anyhow::Error::msg)?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut idem = Driver::new(
        IdempotencyConsumer::new(idempotency.clone(), idem_checkpoint)?,
        wal.clone(),
        stop.clone(),
    );
    // Retries must see every earlier answer before the first request.
    idem.catch_up()
        .map_err(anyhow::Error::msg)
        .context("cannot bring the idempotency table up to date")?;
    let nice = config.server.background_nice;
    let mut consumers = Vec::new();
    let indexer = hot::indexer::Indexer::new(
        hot.clone(),
        hot_checkpoint,
        config.hot.clone(),
        metrics.clone(),
    );
    if config.cluster.enabled {
        consumers.push(Driver::new(indexer, wal.clone(), stop.clone()).spawn("hot-indexer", nice)?);
    } else {
        // Events have an indexer of their own, at normal priority, so a
        // flood of logs does not hold them back (hot::indexer).
        let events = hot::indexer::Indexer::for_events(
            hot.clone(),
            hot_checkpoint,
            &config.hot,
            metrics.clone(),
        );
        consumers.push(Driver::new(events, wal.clone(), stop.clone()).spawn("hot-events", 0)?);
        let indexer = indexer.without_events();
        consumers.push(Driver::new(indexer, wal.clone(), stop.clone()).spawn("hot-indexer", nice)?);
    }
    let archive = if config.archive.enabled {
        let runtime = tokio::runtime::Handle::current();
        let store = runtime
            .block_on(archive::store::build(
                &config.archive,
                data,
                metrics.clone(),
            ))
            .context("cannot open the archive store")?;
        let status = Arc::new(archive::writer::Status::default());
        let writer = archive::writer::Writer::new(
            data,
            store.clone(),
            runtime,
            config.archive.clone(),
            metrics.clone(),
            status.clone(),
        )
        .context("cannot open the archive writer's state")?;
        tracing::info!(store = %store.describe(), "archiving");
        consumers
            .push(Driver::new(writer, wal.clone(), stop.clone()).spawn("archive-writer", nice)?);
        if config.cluster.enabled && config.cluster.roles.contains(&Role::Archiver) {
            let work = crate::cluster::archiver::ArchiveWork {
                store: store.clone(),
                runtime: tokio::runtime::Handle::current(),
                config: config.archive.clone(),
                metrics: metrics.clone(),
            };
            consumers.push(
                crate::cluster::group::start(&config.cluster, work, nice, stop.clone())
                    .context("cannot join the archivers' consumer group")?,
            );
        }
        Some(Archive { store, status })
    } else {
        None
    };
    if let Some(hooks) = crate::webhooks::Webhooks::open(
        config,
        wal.durable_lsn(),
        tokio::runtime::Handle::current(),
        metrics.clone(),
    )
    .context("cannot open the event webhooks' cursor")?
    {
        consumers.push(Driver::new(hooks, wal.clone(), stop.clone()).spawn("webhooks", nice)?);
    }
    if config.cluster.enabled && config.cluster.roles.contains(&Role::Indexer) {
        // Nothing is searched of the topic's partitions until the group
        // assigns them (what is left here of them may be stale).
        hot.set_owned(Default::default());
        let work = crate::cluster::indexer::IndexWork {
            hot: hot.clone(),
            config: config.hot.clone(),
            metrics: metrics.clone(),
        };
        consumers.push(
            crate::cluster::group::start(&config.cluster, work, nice, stop.clone())
                .context("cannot join the indexers' consumer group")?,
        );
    }
    // The idempotency table is cheap and on the ack path of retries: it
    // keeps normal priority.
    consumers.push(idem.spawn("idempotency", 0)?);
    tracing::info!(
        wal_bytes = wal.disk_bytes(),
        hot_partitions = hot.all_partitions().len(),
        idempotency_keys = idempotency.len(),
        "recovered"
    );
    // The producer compresses whole record batches: bodies go plain.
    let compress = config.wal.compress() && cluster_log.is_none();
    let log = cluster_log.unwrap_or_else(|| Arc::new(wal.clone()));
    let pipeline = Arc::new(Pipeline::new(
        Policy::from_config(config),
        log,
        idempotency,
        filters.clone(),
        metrics.clone(),
        config.limits.clone(),
        compress,
    ));
    let tail = crate::tail::Tail::new(
        wal.clone(),
        config.ui.tail_buffer_bytes,
        config.ui.tail_max_events_per_sec,
        config.ui.max_tails,
        config.server.background_nice,
    );
    let saved =
        crate::ui::saved::SavedSearches::open(data).context("cannot read the saved searches")?;
    let alerts = crate::alerts::Alerts::open(config, metrics.clone())
        .context("cannot read the alert state")?;
    let core = Core {
        config: config.clone(),
        alerts,
        pipeline,
        wal,
        hot,
        filters,
        archive,
        replays: replay::Replays::new(nice),
        metrics,
        sessions: crate::ui::session::Sessions::new(&config.ui),
        tail,
        saved,
        node_id: ulid::Ulid::generate().to_string(),
    };
    Ok((
        core,
        Threads {
            wal_writer,
            consumers_stop: stop,
            consumers,
        },
    ))
}
