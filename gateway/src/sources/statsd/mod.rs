//! StatsD and DogStatsD over UDP and TCP: what the `statsd` and `datadog`
//! (DogStatsD) clients, `hot-shots` and the Datadog agent's clients send.
//!
//! Each listener (`mode = "udp"`, the default, or `"tcp"`) parses
//! newline-separated lines ([`parse`]) of datagrams or of a connection's
//! stream,
//! aggregates them per series per `flush_interval` ([`aggregate`]), and at
//! the end of each interval stores one event per series that was sampled:
//! a metric-class batch (`crate::config::class`) of the listener's tenant
//! and log type, searchable like any event (`metric:api.requests`,
//! `kind:timer`, `tags.env:prod`). Over TCP a slow aggregation slows
//! the senders (TCP's flow control), nothing is lost on the way in. UDP
//! has no acknowledgement: what is lost is counted in `logway_statsd_dropped_total{listener, reason}`:
//! `bad_line` (not a metric line), `series` (past `max_series`),
//! `refused` (the pipeline refused the batch: WAL full, index behind).
//! The same points also go to the tenant's Prometheus exposition
//! (`crate::telemetry::exposition`). Lines posted over HTTP to a
//! `format = "statsd"` route are aggregated per request instead ([`http`]).

pub mod aggregate;
pub mod config;
pub mod http;
pub mod parse;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, watch};

use crate::listen::tcp::Stream;
use crate::pipeline::{Admission, Item, Meta, Pipeline};
use crate::sources::delimited::{Delimited, Frame};
use crate::telemetry::{Metrics, StatsdDropLabels};
use crate::tenants::Route;
use aggregate::{Aggregator, Dropped};
use config::StatsdConfig;

/// Intervals being stored at once; an interval past it waits.
const IN_FLIGHT: usize = 2;

/// Longest line read from a TCP connection; a longer one is dropped as a
/// bad line.
const MAX_TCP_LINE: usize = 64 * 1024;
/// TCP connections one listener serves at once; more wait to be accepted
/// (StatsD has no keys: anyone who reaches the port may connect).
const MAX_TCP_CONNECTIONS: usize = 1024;

/// A listener's bound socket.
pub enum Socket {
    Udp(UdpSocket),
    Tcp(TcpListener),
}

impl Socket {
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        match self {
            Socket::Udp(s) => s.local_addr(),
            Socket::Tcp(l) => l.local_addr(),
        }
    }
}

/// Binds the listener's socket: UDP with a large receive buffer (as
/// GELF's), or TCP.
pub async fn bind(config: &StatsdConfig) -> std::io::Result<Socket> {
    Ok(match config.mode {
        config::Mode::Udp => Socket::Udp(crate::sources::gelf::udp::bind(config.addr)?),
        config::Mode::Tcp => Socket::Tcp(TcpListener::bind(config.addr).await?),
    })
}

/// Receives until shutdown, then stores the interval in hand.
pub async fn serve(
    socket: Socket,
    config: StatsdConfig,
    route: Route,
    pipeline: Arc<Pipeline>,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    let listener = socket
        .local_addr()
        .map_or_else(|_| config.addr.to_string(), |a| a.to_string());
    let dropped = {
        let (metrics, listener) = (metrics.clone(), listener.clone());
        move |reason: &str, n: u64| count_dropped(&metrics, &listener, reason, n)
    };
    // TCP connections (accepted by the listeners' shared loop,
    // `crate::listen::tcp`) hand their lines to this loop in chunks.
    let (chunks_tx, mut chunks) = mpsc::channel::<String>(64);
    let (udp, tcp) = match socket {
        Socket::Udp(s) => (Some(s), None),
        Socket::Tcp(l) => {
            let (tx, dropped) = (chunks_tx.clone(), dropped.clone());
            let connections = crate::listen::tcp::serve(
                l,
                MAX_TCP_CONNECTIONS,
                None,
                Duration::from_secs(10),
                shutdown.clone(),
                move |stream, _, _| read_tcp(stream, tx.clone(), dropped.clone()),
            );
            (None, Some(tokio::spawn(connections)))
        }
    };
    let adm = Arc::new(pipeline.admit_listener(
        &config.tenant,
        format!("statsd:{}", config.addr),
        route,
        None,
    ));
    let mut aggregator = Aggregator::new(config.max_series, config.quantiles.clone());
    let mut storing = tokio::task::JoinSet::new();
    let interval = config.flush_interval;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut buf = vec![0u8; 65_536];
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            _ = tick.tick() => {
                while storing.len() >= IN_FLIGHT {
                    storing.join_next().await;
                }
                flush(&mut aggregator, interval, &metrics, &pipeline, &adm, &mut storing, dropped.clone());
            }
            r = recv(udp.as_ref(), &mut buf) => {
                let Ok(n) = r else { continue };
                let text = String::from_utf8_lossy(&buf[..n]);
                take(&text, &mut aggregator, &metrics, &listener, &dropped);
            }
            Some(text) = chunks.recv() => {
                take(&text, &mut aggregator, &metrics, &listener, &dropped);
            }
        }
    }
    // Connections end with their task (no handler waits for the stop).
    if let Some(connections) = tcp {
        connections.abort();
    }
    while let Ok(text) = chunks.try_recv() {
        take(&text, &mut aggregator, &metrics, &listener, &dropped);
    }
    flush(
        &mut aggregator,
        interval,
        &metrics,
        &pipeline,
        &adm,
        &mut storing,
        dropped,
    );
    while storing.join_next().await.is_some() {}
}

/// Parses newline-separated lines into the aggregator, counting them and
/// what is dropped.
fn take(
    text: &str,
    aggregator: &mut Aggregator,
    metrics: &Metrics,
    listener: &str,
    dropped: &impl Fn(&str, u64),
) {
    let (mut lines, mut bad, mut over) = (0, 0, 0);
    for l in text.split('\n').filter(|l| !l.trim().is_empty()) {
        lines += 1;
        match parse::line(l) {
            Ok(line) => {
                if aggregator.add(&line) == Err(Dropped::Series) {
                    over += 1;
                }
            }
            Err(e) => {
                tracing::debug!(listener = %listener, error = %e, "StatsD line dropped");
                bad += 1;
            }
        }
    }
    metrics.statsd_lines.inc_by(lines);
    dropped("bad_line", bad);
    dropped("series", over);
}

/// A datagram, or never (a TCP listener).
async fn recv(udp: Option<&UdpSocket>, buf: &mut [u8]) -> std::io::Result<usize> {
    match udp {
        Some(s) => s.recv(buf).await,
        None => std::future::pending().await,
    }
}

/// Reads one TCP connection: its complete lines go to the listener's loop
/// in chunks (waiting while it is busy); the last line needs no newline.
/// A line longer than [`MAX_TCP_LINE`] is dropped as a bad line.
async fn read_tcp(
    mut stream: Stream,
    chunks: mpsc::Sender<String>,
    dropped: impl Fn(&str, u64),
) -> std::io::Result<()> {
    let mut lines = Delimited::new(b'\n', MAX_TCP_LINE);
    let mut buf = vec![0u8; MAX_TCP_LINE];
    loop {
        let n = stream.read(&mut buf).await.unwrap_or(0);
        let mut frames = Vec::new();
        if n == 0 {
            frames.extend(lines.finish().map(Frame::Whole));
        } else {
            lines.push(&buf[..n], &mut frames);
        }
        let mut kept = String::new();
        let mut long = 0;
        for frame in frames {
            match frame {
                Frame::Whole(line) => {
                    kept.push_str(&String::from_utf8_lossy(&line));
                    kept.push('\n');
                }
                Frame::TooLong(_) => long += 1,
            }
        }
        dropped("bad_line", long);
        let listening = kept.is_empty() || chunks.send(kept).await.is_ok();
        if !listening || n == 0 {
            return Ok(());
        }
    }
}

/// Ends the interval: its points go to the pipeline in a task of their own
/// (built on the blocking pool), so the socket is read meanwhile.
fn flush(
    aggregator: &mut Aggregator,
    interval: Duration,
    metrics: &Metrics,
    pipeline: &Arc<Pipeline>,
    adm: &Arc<Admission>,
    storing: &mut tokio::task::JoinSet<()>,
    dropped: impl Fn(&str, u64) + Send + 'static,
) {
    let Some(points) = end_interval(aggregator, interval, metrics, &adm.tenant) else {
        return;
    };
    let (pipeline, adm) = (pipeline.clone(), adm.clone());
    storing.spawn(async move {
        let n = points.len() as u64;
        let worker = (pipeline.clone(), adm.clone());
        let built =
            tokio::task::spawn_blocking(move || build_points(&worker.0, &worker.1, points)).await;
        let stored = match built {
            Ok(built) => pipeline
                .store(&adm, built, None)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = stored {
            tracing::warn!(error = %e, points = n, "StatsD interval not stored");
            dropped("refused", n);
        }
    });
}

/// Ends an interval of `aggregator`: its points (`None` when nothing was
/// sampled), also handed to `tenant`'s Prometheus exposition.
pub fn end_interval(
    aggregator: &mut Aggregator,
    interval: Duration,
    metrics: &Metrics,
    tenant: &str,
) -> Option<Vec<Map<String, Value>>> {
    let points = aggregator.flush(interval.as_secs_f64());
    if points.is_empty() {
        return None;
    }
    metrics.statsd_series.update(tenant, &points);
    Some(points)
}

/// An interval's points as one batch of events, stamped now. Blocking
/// (the events are built): off the reactor.
pub fn build_points(
    pipeline: &Pipeline,
    adm: &Admission,
    points: Vec<Map<String, Value>>,
) -> crate::pipeline::Built {
    let now = crate::event::format_time(time::OffsetDateTime::now_utc());
    let items = points
        .into_iter()
        .enumerate()
        .map(|(i, mut p)| {
            p.insert("timestamp".into(), Value::String(now.clone()));
            (i + 1, Item::Object(p, None))
        })
        .collect();
    pipeline.build(adm, items, &Meta::now())
}

/// Counts `n` lines or points lost by `listener` (an address, or
/// `derived`) for `reason` in `logway_statsd_dropped_total`.
pub fn count_dropped(metrics: &Metrics, listener: &str, reason: &str, n: u64) {
    if n > 0 {
        metrics
            .statsd_dropped
            .get_or_create(&StatsdDropLabels {
                listener: listener.to_string(),
                reason: reason.to_string(),
            })
            .inc_by(n);
    }
}
