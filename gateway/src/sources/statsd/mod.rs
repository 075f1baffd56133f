//! StatsD and DogStatsD over UDP: what the `statsd` and `datadog`
//! (DogStatsD) clients, `hot-shots` and the Datadog agent's clients send.
//!
//! Each listener parses datagrams of newline-separated lines ([`parse`]),
//! aggregates them per series per `flush_interval` ([`aggregate`]), and at
//! the end of each interval stores one event per series that was sampled:
//! a metric-class batch (`crate::config::class`) of the listener's tenant
//! and log type, searchable like any event (`metric:api.requests`,
//! `kind:timer`, `tags.env:prod`). UDP has no acknowledgement: what is
//! lost is counted in `logway_statsd_dropped_total{listener, reason}`:
//! `bad_line` (not a metric line), `series` (past `max_series`),
//! `refused` (the pipeline refused the batch: WAL full, index behind).
//! The same points also go to the tenant's Prometheus exposition
//! (`crate::telemetry::exposition`).

pub mod aggregate;
pub mod config;
pub mod parse;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::net::UdpSocket;
use tokio::sync::watch;

use crate::pipeline::{Admission, Item, Meta, Pipeline};
use crate::telemetry::{Metrics, StatsdDropLabels};
use crate::tenants::Route;
use aggregate::{Aggregator, Dropped};
use config::StatsdConfig;

/// Intervals being stored at once; an interval past it waits.
const IN_FLIGHT: usize = 2;

/// Binds a UDP socket with a large receive buffer (as GELF's).
pub fn bind(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    crate::sources::gelf::udp::bind(addr)
}

/// Receives until shutdown, then stores the interval in hand.
pub async fn serve(
    socket: UdpSocket,
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
            r = socket.recv_from(&mut buf) => {
                let Ok((n, _)) = r else { continue };
                let text = String::from_utf8_lossy(&buf[..n]);
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
        }
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
