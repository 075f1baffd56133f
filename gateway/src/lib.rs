//! # Logway: a WebAssembly-extensible edge ingestion gateway for logs
//!
//! ## Layout (in the order an event travels)
//!
//! - [`listen`]: sockets, connection bounds and timeouts: HTTP/1.1 and
//!   HTTP/2 ([`listen::http`]), TCP syslog ([`listen::syslog`], which frames
//!   and parses with the `logway-syslog` crate and batches on its own), TLS
//!   and client certificates for both ([`listen::tls`]).
//! - [`api`]: the router. API paths (search, histogram, health, metrics)
//!   are handled there; every other path is an ingest path, and
//!   [`api::error`] is the one place errors become HTTP statuses.
//! - [`ingest`]: key → tenant ([`ingest::auth`]), URL path → log type
//!   ([`ingest::route`]), rate limits ([`ingest::limit`]), body → items
//!   ([`ingest::decode`]), retries ([`ingest::idempotency`]). Tenants,
//!   routes and limits form the [`Policy`] that a config reload swaps.
//! - [`filter`]: the route's WASM filter chain (tenant-uploaded components,
//!   sandboxed in wasmtime) keeps, drops, edits, replaces or splits the
//!   decoded events; a failing filter turns its batch into dead letters.
//! - [`event`]: an item becomes a stored event (id, promoted fields,
//!   `fields`), or a rejected event that keeps the raw bytes.
//! - [`batch`]: a request's events become one WAL record.
//! - [`wal`]: the record is fsynced (group commit); only then is the client
//!   answered.
//!   The threads below run at `server.background_nice`, after ingest.
//! - [`hot`]: the indexer reads the WAL into per-tenant, per-type, per-day
//!   tantivy partitions; search and histogram read them.
//! - [`archive`]: the archive writer, another WAL consumer, uploads every
//!   event as NDJSON + zstd objects to a local directory or S3.
//! - [`replay`]: jobs that read archived ranges back into rehydrated hot
//!   partitions.
//! - [`telemetry`]: tracing and Prometheus metrics.
//!
//! [`start`] is the single entry point used by `main` and by the tests.

pub mod api;
pub mod archive;
pub mod batch;
pub mod config;
pub mod event;
pub mod filter;
pub mod format;
pub mod hot;
pub mod ingest;
pub mod listen;
pub mod replay;
pub mod telemetry;
pub mod wal;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use api::AppState;
pub use config::Config;
use hot::HotIndex;
use ingest::auth::Tenants;
use ingest::idempotency::{Idempotency, IdempotencyConsumer};
use telemetry::Metrics;
use wal::{Wal, WalOptions};

/// What a config reload changes without a restart: tenants, keys, routes,
/// CORS origins and rate limits. Requests take the current one at start.
pub struct Policy {
    pub tenants: Tenants,
    pub limits: ingest::limit::Limiters,
}

impl Policy {
    pub fn from_config(config: &Config) -> Policy {
        Policy {
            tenants: Tenants::from_config(config),
            limits: ingest::limit::Limiters::from_config(config),
        }
    }
}

/// Everything a request needs once recovery is done.
pub struct Core {
    /// The config the gateway started with (tenants: see `policy`).
    pub config: Config,
    policy: std::sync::RwLock<Arc<Policy>>,
    pub wal: Wal,
    pub hot: Arc<HotIndex>,
    pub idempotency: Arc<Idempotency>,
    pub filters: Arc<filter::Registry>,
    /// The archive's store and writer status (`None`: archive disabled).
    pub archive: Option<Archive>,
    pub replays: replay::Replays,
    pub metrics: Arc<Metrics>,
}

/// The cold archive as the API sees it.
pub struct Archive {
    pub store: Arc<dyn archive::store::ObjectStore>,
    pub status: Arc<archive::writer::Status>,
}

impl Core {
    /// The current tenants, routes and limits.
    pub fn policy(&self) -> Arc<Policy> {
        self.policy.read().unwrap().clone()
    }
}

/// How often idle client IPs are dropped from per-client rate limiters.
const LIMITER_EVICTION_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// A running gateway.
pub struct Gateway {
    addr: SocketAddr,
    syslog_addrs: Vec<SocketAddr>,
    /// Every listener's certificate, reloaded with the config.
    tls: Vec<Arc<listen::tls::Tls>>,
    state: Arc<AppState>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Gateway {
    /// The address the HTTP listener is bound to.
    pub fn http_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The addresses of the syslog listeners, in config order.
    pub fn syslog_addrs(&self) -> &[SocketAddr] {
        &self.syslog_addrs
    }

    /// Stops accepting, finishes in-flight requests, flushes the WAL and the
    /// hot index, and returns once everything is closed.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        self.task.await.context("gateway task panicked")?
    }

    /// Resolves if the gateway stops by itself (a failed recovery).
    pub async fn stopped(&mut self) -> anyhow::Result<()> {
        (&mut self.task).await.context("gateway task panicked")?
    }

    /// Applies a new config's tenants, keys, routes, CORS origins and rate
    /// limits to new requests (in-flight ones finish under the old ones),
    /// and reads TLS certificates and keys again for new connections. Other
    /// settings take effect at the next start.
    pub fn reload(&self, config: &Config) -> anyhow::Result<()> {
        config.validate()?;
        for tls in &self.tls {
            tls.reload().with_context(|| {
                format!(
                    "keeping the current certificate of {}",
                    tls.cert_file().display()
                )
            })?;
        }
        let core = self
            .state
            .core
            .get()
            .context("not ready yet: nothing to reload")?;
        *core.policy.write().unwrap() = Arc::new(Policy::from_config(config));
        tracing::info!(
            tenants = config.tenants.len(),
            "config reloaded: tenants, keys, routes and rate limits"
        );
        Ok(())
    }
}

struct Threads {
    wal_writer: wal::WalWriterThread,
    indexer: std::thread::JoinHandle<()>,
    idempotency: std::thread::JoinHandle<()>,
    indexer_stop: Arc<AtomicBool>,
    archive: Option<std::thread::JoinHandle<()>>,
    archive_stop: Arc<AtomicBool>,
}

/// Opens the WAL (cutting a torn tail), the hot index and the idempotency
/// table, and starts their threads.
fn recover(config: &Config, metrics: Arc<Metrics>) -> anyhow::Result<(Core, Threads)> {
    let data = &config.storage.data_dir;
    std::fs::create_dir_all(data)
        .with_context(|| format!("cannot create data directory {}", data.display()))?;
    let (wal, wal_writer) = Wal::open(
        &data.join("wal"),
        WalOptions {
            max_bytes: config.wal.max_bytes,
            segment_bytes: config.wal.segment_bytes,
            queue_len: config.wal.queue_len,
        },
    )
    .context("cannot open the write-ahead log")?;
    if wal.torn_bytes() > 0 {
        tracing::warn!(bytes = wal.torn_bytes(), "cut a torn write-ahead log tail");
    }
    let (hot, hot_checkpoint) =
        HotIndex::open(&data.join("hot")).context("cannot open the hot index")?;
    let (idempotency, idem_checkpoint) =
        Idempotency::open(data, config.idempotency.window, now_ms())
            .context("cannot open the idempotency table")?;
    let filters = Arc::new(
        filter::Registry::open(data, &config.filters, metrics.clone())
            .context("cannot open the filter registry")?,
    );
    let mut idem_consumer =
        IdempotencyConsumer::new(idempotency.clone(), wal.clone(), idem_checkpoint)?;
    // Retries must see every earlier answer before the first request.
    while idem_consumer.step()? {}
    let indexer_stop = Arc::new(AtomicBool::new(false));
    let indexer = hot::indexer::Indexer::new(
        hot.clone(),
        wal.clone(),
        hot_checkpoint,
        config.hot.clone(),
        metrics.clone(),
        indexer_stop.clone(),
    );
    let nice = config.server.background_nice;
    let indexer = std::thread::Builder::new()
        .name("hot-indexer".into())
        .spawn(move || {
            lower_thread_priority(nice);
            indexer.run()
        })?;
    let archive_stop = Arc::new(AtomicBool::new(false));
    let (archive, archive_thread) = if config.archive.enabled {
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
            wal.clone(),
            store.clone(),
            runtime,
            config.archive.clone(),
            metrics.clone(),
            status.clone(),
            archive_stop.clone(),
        )
        .context("cannot open the archive writer's state")?;
        tracing::info!(store = %store.describe(), "archiving");
        let thread = std::thread::Builder::new()
            .name("archive-writer".into())
            .spawn(move || {
                lower_thread_priority(nice);
                writer.run()
            })?;
        (Some(Archive { store, status }), Some(thread))
    } else {
        (None, None)
    };
    let idempotency_thread = std::thread::Builder::new()
        .name("idempotency".into())
        .spawn(move || idem_consumer.run())?;
    tracing::info!(
        wal_bytes = wal.disk_bytes(),
        hot_partitions = hot.all_partitions().len(),
        idempotency_keys = idempotency.len(),
        "recovered"
    );
    let core = Core {
        policy: std::sync::RwLock::new(Arc::new(Policy::from_config(config))),
        config: config.clone(),
        wal,
        hot,
        idempotency,
        filters,
        archive,
        replays: replay::Replays::new(nice),
        metrics,
    };
    Ok((
        core,
        Threads {
            wal_writer,
            indexer,
            idempotency: idempotency_thread,
            indexer_stop,
            archive: archive_thread,
            archive_stop,
        },
    ))
}

/// Binds the listener, then recovers in the background (`/readyz` answers
/// 503 until done) and serves.
pub async fn start(config: Config) -> anyhow::Result<Gateway> {
    config.validate()?;
    let listener = TcpListener::bind(config.server.http_addr)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.http_addr))?;
    let addr = listener.local_addr()?;
    let http_tls = config
        .server
        .tls
        .as_ref()
        .map(|files| listen::tls::Tls::new(files, &[b"h2", b"http/1.1"], files.require_client_cert))
        .transpose()?;
    let mut tls_all: Vec<Arc<listen::tls::Tls>> = http_tls.iter().cloned().collect();
    let mut syslog_listeners = Vec::new();
    for l in &config.syslog {
        let bound = TcpListener::bind(l.addr)
            .await
            .with_context(|| format!("cannot listen for syslog on {}", l.addr))?;
        let tls = l
            .tls
            .as_ref()
            .map(|files| listen::tls::Tls::new(files, &[], true))
            .transpose()?;
        tls_all.extend(tls.iter().cloned());
        syslog_listeners.push((bound, l.clone(), tls));
    }
    let syslog_addrs = syslog_listeners
        .iter()
        .map(|(l, _, _)| l.local_addr())
        .collect::<std::io::Result<Vec<_>>>()?;
    let metrics = Arc::new(Metrics::new());
    let state = Arc::new(AppState {
        core: std::sync::OnceLock::new(),
        metrics: metrics.clone(),
    });
    let state_handle = state.clone();
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let server = tokio::spawn(listen::http::serve(
        listener,
        api::router(state.clone()),
        config.server.clone(),
        http_tls.clone(),
        shutdown_rx.clone(),
    ));
    tracing::info!(%addr, data_dir = %config.storage.data_dir.display(), "listening");
    let task = tokio::spawn(async move {
        let recovered = {
            let metrics = metrics.clone();
            tokio::task::spawn_blocking(move || recover(&config, metrics)).await?
        };
        // On failure the listener keeps answering 503 until the process exits.
        let (core, threads) = recovered?;
        let core = Arc::new(core);
        let _ = state.core.set(core.clone());
        tracing::info!("ready");
        let evictor = {
            let core = core.clone();
            tokio::spawn(async move {
                let mut every = tokio::time::interval(LIMITER_EVICTION_EVERY);
                loop {
                    every.tick().await;
                    let keys = core.policy().limits.evict_idle_clients();
                    core.metrics.limiter_client_keys.set(keys as i64);
                }
            })
        };
        let cold_retention = core.archive.as_ref().map(|a| {
            let (store, config, metrics) = (
                a.store.clone(),
                core.config.archive.clone(),
                core.metrics.clone(),
            );
            tokio::spawn(async move {
                let mut every = tokio::time::interval(archive::retention::EVERY);
                loop {
                    every.tick().await;
                    let now = time::OffsetDateTime::now_utc();
                    if let Err(e) =
                        archive::retention::enforce(&*store, &config, now, &metrics).await
                    {
                        tracing::warn!(error = %e, "cold retention failed; will retry");
                    }
                }
            })
        });
        let mut rx = shutdown_rx;
        let syslog: Vec<_> = syslog_listeners
            .into_iter()
            .map(|(listener, cfg, tls)| {
                tracing::info!(addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), tenant = %cfg.tenant, "syslog listening");
                tokio::spawn(listen::syslog::serve(listener, cfg, core.clone(), tls, rx.clone()))
            })
            .collect();
        let _ = rx.wait_for(|&stop| stop).await;
        tracing::info!("shutting down: no new connections, finishing in-flight requests");
        server.await?;
        evictor.abort();
        if let Some(r) = cold_retention {
            r.abort();
        }
        for s in syslog {
            let _ = s.await;
        }
        core.wal.close().await;
        tokio::task::spawn_blocking(move || {
            threads.wal_writer.join();
            // Both consumers drain what is durable at once.
            threads.indexer_stop.store(true, Ordering::Release);
            threads.archive_stop.store(true, Ordering::Release);
            let _ = threads.indexer.join();
            let _ = threads.idempotency.join();
            if let Some(a) = threads.archive {
                let _ = a.join();
            }
        })
        .await?;
        tracing::info!("stopped");
        Ok(())
    });
    Ok(Gateway {
        addr,
        syslog_addrs,
        tls: tls_all,
        state: state_handle,
        shutdown: shutdown_tx,
        task,
    })
}

/// Lowers the calling thread's CPU priority to `nice` (Linux; threads it
/// starts afterwards, such as tantivy's indexing and merge threads,
/// inherit it). Elsewhere, or if refused, the thread keeps its priority.
pub fn lower_thread_priority(nice: i32) {
    #[cfg(target_os = "linux")]
    if nice > 0 {
        // SAFETY: plain syscalls on the calling thread's own id.
        let refused = unsafe {
            let tid = libc::gettid() as libc::id_t;
            libc::setpriority(libc::PRIO_PROCESS, tid, nice) != 0
        };
        if refused {
            tracing::warn!(nice, error = %std::io::Error::last_os_error(), "cannot lower the priority of a background thread");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}
