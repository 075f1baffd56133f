//! Start-up, recovery, background work and shutdown: [`start`] is the one
//! entry point `main` and the tests call.
//!
//! ## Start-up
//! 1. Validate the config; bind the HTTP listener, the Elasticsearch
//!    API's own listener if configured, and every syslog and Beats listener (a port
//!    in use fails the start at once); load TLS.
//! 2. Serve HTTP at once: `/healthz` answers, `/readyz` and ingest answer
//!    503 + `Retry-After` until recovery is done.
//! 3. Recover on the blocking pool ([`recover`]): WAL, hot index,
//!    idempotency table (brought up to the WAL's end), filters, archive;
//!    start the WAL consumers' threads.
//! 4. Ready: the core is published, the periodic tasks ([`tasks`]), the
//!    alert evaluator and deliveries (`crate::alerts`), and the syslog and
//!    Beats listeners start.
//!
//! ## Shutdown, in this order
//! 1. End the live tails' streams. Stop accepting: the HTTP listeners finish in-flight requests
//!    (within `listen::http::SHUTDOWN_GRACE`) and closes idle
//!    connections; syslog connections stop reading and make durable what
//!    they had read; Beats connections finish the window they are storing
//!    (and ack it) and close.
//! 2. Abort the periodic tasks; stop the alert evaluator (it writes the
//!    alert state) and the alert deliveries (what they had not delivered
//!    stays queued in that state for the next start).
//! 3. Close the WAL: the writer makes everything queued durable, then
//!    stops; later appends fail (there are none left).
//! 4. Tell the WAL consumers to stop, together: each drains what is
//!    durable, flushes (commit, upload, write) and ends, or gives up after
//!    repeated failures (`crate::wal::consumer`), leaving the rest in the
//!    WAL for the next start.

pub mod config;
pub mod recover;
pub mod router;
pub mod tasks;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::listen::{self, tls::Tls};
use crate::sources;
use crate::state::AppState;
use crate::telemetry::Metrics;
use crate::tenants::Policy;

/// A running gateway.
pub struct Gateway {
    addr: SocketAddr,
    elastic_addr: Option<SocketAddr>,
    syslog_addrs: Vec<SocketAddr>,
    beats_addrs: Vec<SocketAddr>,
    gelf_addrs: Vec<SocketAddr>,
    statsd_addrs: Vec<SocketAddr>,
    grpc_addr: Option<SocketAddr>,
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

    /// The address of the Elasticsearch API's own listener, if any.
    pub fn elastic_addr(&self) -> Option<SocketAddr> {
        self.elastic_addr
    }

    /// The addresses of the Beats listeners, in config order.
    pub fn beats_addrs(&self) -> &[SocketAddr] {
        &self.beats_addrs
    }

    /// The address of the OTLP/gRPC listener, if configured.
    pub fn otlp_grpc_addr(&self) -> Option<SocketAddr> {
        self.grpc_addr
    }

    /// The addresses of the GELF listeners, in config order.
    pub fn gelf_addrs(&self) -> &[SocketAddr] {
        &self.gelf_addrs
    }

    /// The addresses of the StatsD listeners, in config order.
    pub fn statsd_addrs(&self) -> &[SocketAddr] {
        &self.statsd_addrs
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
        let policy = Policy::from_config(config);
        let chains = policy.tenants.event_chains(config);
        crate::filter::caps::check_event_routes(&core.filters, &chains)
            .map_err(anyhow::Error::msg)
            .context("keeping the current routes")?;
        core.pipeline.set_policy(policy);
        tracing::info!(
            tenants = config.tenants.len(),
            "config reloaded: tenants, keys, routes and rate limits"
        );
        Ok(())
    }
}

/// A GELF listener's bound socket.
enum GelfSocket {
    Udp(tokio::net::UdpSocket),
    Tcp(TcpListener, Option<Arc<Tls>>),
}

/// Binds a stream protocol's listener (syslog, Beats) and loads its TLS;
/// with a client CA, a certificate is required.
async fn bind_stream(
    addr: SocketAddr,
    tls: Option<&crate::listen::tls::TlsConfig>,
    what: &str,
    all: &mut Vec<Arc<Tls>>,
) -> anyhow::Result<(TcpListener, Option<Arc<Tls>>)> {
    let bound = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen for {what} on {addr}"))?;
    let tls = tls.map(|files| Tls::new(files, &[], true)).transpose()?;
    all.extend(tls.iter().cloned());
    Ok((bound, tls))
}

/// Binds the listeners, then recovers in the background (`/readyz`
/// answers 503 until done) and serves.
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
        .map(|files| Tls::new(files, &[b"h2", b"http/1.1"], files.require_client_cert))
        .transpose()?;
    let mut tls_all: Vec<Arc<Tls>> = http_tls.iter().cloned().collect();
    let elastic_listener = match config.elasticsearch.addr {
        Some(addr) => {
            let bound = TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen for the Elasticsearch API on {addr}"))?;
            let tls = config
                .elasticsearch
                .tls
                .as_ref()
                .map(|files| Tls::new(files, &[b"h2", b"http/1.1"], files.require_client_cert))
                .transpose()?;
            tls_all.extend(tls.iter().cloned());
            Some((bound, tls))
        }
        None => None,
    };
    let elastic_addr = elastic_listener
        .as_ref()
        .map(|(l, _)| l.local_addr())
        .transpose()?;
    let grpc_listener = match config.otlp.grpc_addr {
        Some(addr) => {
            let bound = TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen for OTLP/gRPC on {addr}"))?;
            let tls = config
                .otlp
                .grpc_tls
                .as_ref()
                .map(|files| Tls::new(files, &[b"h2"], files.require_client_cert))
                .transpose()?;
            tls_all.extend(tls.iter().cloned());
            Some((bound, tls))
        }
        None => None,
    };
    let grpc_addr = grpc_listener
        .as_ref()
        .map(|(l, _)| l.local_addr())
        .transpose()?;
    let mut syslog_listeners = Vec::new();
    for l in &config.syslog {
        let (bound, tls) = bind_stream(l.addr, l.tls.as_ref(), "syslog", &mut tls_all).await?;
        syslog_listeners.push((bound, l.clone(), tls));
    }
    let mut beats_listeners = Vec::new();
    for l in &config.beats {
        let (bound, tls) = bind_stream(l.addr, l.tls.as_ref(), "Beats", &mut tls_all).await?;
        beats_listeners.push((bound, l.clone(), tls));
    }
    let mut gelf_listeners = Vec::new();
    for l in &config.gelf.listeners {
        let bound = match l.protocol {
            sources::gelf::config::Transport::Udp => GelfSocket::Udp(
                sources::gelf::udp::bind(l.addr)
                    .with_context(|| format!("cannot listen for GELF on udp {}", l.addr))?,
            ),
            sources::gelf::config::Transport::Tcp => {
                let (bound, tls) =
                    bind_stream(l.addr, l.tls.as_ref(), "GELF", &mut tls_all).await?;
                GelfSocket::Tcp(bound, tls)
            }
        };
        gelf_listeners.push((bound, l.clone()));
    }
    let gelf_addrs = gelf_listeners
        .iter()
        .map(|(b, _)| match b {
            GelfSocket::Udp(s) => s.local_addr(),
            GelfSocket::Tcp(l, _) => l.local_addr(),
        })
        .collect::<std::io::Result<Vec<_>>>()?;
    let mut statsd_sockets = Vec::new();
    for s in &config.statsd {
        let socket = sources::statsd::bind(s)
            .await
            .with_context(|| format!("cannot listen for StatsD on {:?} {}", s.mode, s.addr))?;
        statsd_sockets.push((socket, s.clone()));
    }
    let statsd_addrs = statsd_sockets
        .iter()
        .map(|(s, _)| s.local_addr())
        .collect::<std::io::Result<Vec<_>>>()?;
    let beats_addrs = beats_listeners
        .iter()
        .map(|(l, _, _)| l.local_addr())
        .collect::<std::io::Result<Vec<_>>>()?;
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
        router::router(state.clone(), &config),
        config.server.max_connections,
        config.server.header_read_timeout,
        http_tls.clone(),
        shutdown_rx.clone(),
    ));
    tracing::info!(%addr, data_dir = %config.storage.data_dir.display(), "listening");
    let elastic_server = elastic_listener.map(|(listener, tls)| {
        if let Some(a) = elastic_addr {
            // Not `addr=`: tests read the HTTP address from the first one.
            tracing::info!(elasticsearch = %a, "listening for the Elasticsearch API");
        }
        tokio::spawn(listen::http::serve(
            listener,
            router::elastic_router(state.clone(), &config),
            config.server.max_connections,
            config.server.header_read_timeout,
            tls,
            shutdown_rx.clone(),
        ))
    });
    let grpc_server = grpc_listener.map(|(listener, tls)| {
        if let Some(a) = grpc_addr {
            // Not `addr=`: tests read the HTTP address from the first one.
            tracing::info!(otlp_grpc = %a, "listening for OTLP/gRPC");
        }
        tokio::spawn(listen::http::serve(
            listener,
            sources::otlp::grpc::router(state.clone(), config.limits.max_decompressed_bytes),
            config.server.max_connections,
            config.server.header_read_timeout,
            tls,
            shutdown_rx.clone(),
        ))
    });
    let gelf_local = gelf_addrs.clone();
    let statsd_local = statsd_addrs.clone();
    let task = tokio::spawn(async move {
        // Cluster mode: the events topic is the log (crate::cluster).
        let cluster_log: Option<Arc<dyn crate::pipeline::Log>> = if config.cluster.enabled {
            Some(Arc::new(
                crate::cluster::KafkaLog::connect(&config.cluster, metrics.clone()).await?,
            ))
        } else {
            None
        };
        let recovered = {
            let metrics = metrics.clone();
            let config = config.clone();
            tokio::task::spawn_blocking(move || recover::recover(&config, metrics, cluster_log))
                .await?
        };
        // On failure the listener keeps answering 503 until the process exits.
        let (core, threads) = recovered?;
        let core = Arc::new(core);
        let _ = state.core.set(core.clone());
        tracing::info!("ready");
        let periodic = tasks::start(&core);
        let _derived = crate::derived::start(
            &config,
            core.wal.clone(),
            core.pipeline.clone(),
            metrics.clone(),
            tokio::runtime::Handle::current(),
        )?;
        let alerts = crate::alerts::start(
            &core.alerts,
            core.hot.clone(),
            core.clone(),
            config.server.background_nice,
        )?;
        let mut rx = shutdown_rx;
        let syslog: Vec<_> = syslog_listeners
            .into_iter()
            .map(|(listener, cfg, tls)| {
                tracing::info!(addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), tenant = %cfg.tenant, "syslog listening");
                let route = cfg.route(&config.tenants);
                tokio::spawn(sources::syslog::serve(
                    listener,
                    cfg,
                    route,
                    core.pipeline.clone(),
                    tls,
                    rx.clone(),
                ))
            })
            .collect();
        let beats: Vec<_> = beats_listeners
            .into_iter()
            .map(|(listener, cfg, tls)| {
                let bound = listener
                    .local_addr()
                    .map(|a| a.to_string())
                    .unwrap_or_default();
                // Not `addr=`: tests read the HTTP address from the first one.
                tracing::info!(beats = %bound, tenant = %cfg.tenant, "Beats listening");
                tokio::spawn(sources::beats::serve(
                    listener,
                    cfg,
                    config.tenants.clone(),
                    core.pipeline.clone(),
                    tls,
                    rx.clone(),
                ))
            })
            .collect();
        let kafka: Vec<_> = config
            .kafka_sources
            .iter()
            .map(|cfg| {
                let route = cfg.route(&config.tenants);
                tokio::spawn(sources::kafka::run(
                    cfg.clone(),
                    route,
                    core.pipeline.clone(),
                    rx.clone(),
                ))
            })
            .collect();
        let gelf: Vec<_> = gelf_listeners
            .into_iter()
            .zip(gelf_local)
            .map(|((bound, cfg), local)| {
                let route = cfg.route(&config.tenants);
                let max = config.gelf.max_message_bytes;
                // Not `addr=`: tests read the HTTP address from the first one.
                tracing::info!(gelf = %local, protocol = ?cfg.protocol, tenant = %cfg.tenant, "GELF listening");
                match bound {
                    GelfSocket::Udp(socket) => tokio::spawn(sources::gelf::udp::serve(
                        socket,
                        cfg,
                        route,
                        core.pipeline.clone(),
                        max,
                        metrics.clone(),
                        rx.clone(),
                    )),
                    GelfSocket::Tcp(listener, tls) => tokio::spawn(sources::gelf::tcp::serve(
                        listener,
                        cfg,
                        route,
                        core.pipeline.clone(),
                        max,
                        tls,
                        rx.clone(),
                    )),
                }
            })
            .collect();
        let statsd: Vec<_> = statsd_sockets
            .into_iter()
            .zip(statsd_local)
            .map(|((socket, cfg), local)| {
                let route = cfg.route(&config.tenants);
                tracing::info!(statsd = %local, tenant = %cfg.tenant, "StatsD listening");
                tokio::spawn(sources::statsd::serve(
                    socket,
                    cfg,
                    route,
                    core.pipeline.clone(),
                    metrics.clone(),
                    rx.clone(),
                ))
            })
            .collect();
        crate::telemetry::remote_write::spawn(&config.metrics.remote_write, &metrics, &rx);
        let _ = rx.wait_for(|&stop| stop).await;
        // The shutdown order of the module docs; open live tails end
        // first so their streams do not hold the HTTP server.
        core.tail.close();
        tracing::info!("shutting down: no new connections, finishing in-flight requests");
        server.await?;
        if let Some(es) = elastic_server {
            es.await?;
        }
        if let Some(g) = grpc_server {
            g.await?;
        }
        for s in syslog
            .into_iter()
            .chain(beats)
            .chain(gelf)
            .chain(kafka)
            .chain(statsd)
        {
            let _ = s.await;
        }
        for t in periodic {
            t.abort();
        }
        alerts.stop().await;
        core.wal.close().await;
        tokio::task::spawn_blocking(move || {
            threads.wal_writer.join();
            threads.consumers_stop.store(true, Ordering::Release);
            for c in threads.consumers {
                let _ = c.join();
            }
        })
        .await?;
        tracing::info!("stopped");
        Ok(())
    });
    Ok(Gateway {
        addr,
        elastic_addr,
        syslog_addrs,
        beats_addrs,
        gelf_addrs,
        statsd_addrs,
        grpc_addr,
        tls: tls_all,
        state: state_handle,
        shutdown: shutdown_tx,
        task,
    })
}
