//! Delivery classes and StatsD, measured (`docs/performance/`):
//!
//! 1. Events while logs flood: 16 connections post 100-event log batches
//!    as fast as they are answered while one client posts single events
//!    at `--event-rate`, alternating rounds in which those events go to an
//!    event-class route and to a log-class route: each round prints the
//!    events' ack latency and how soon they are searchable (every 10th is
//!    probed), and the logs' rate and refusals.
//! 2. StatsD over UDP: `--statsd-rate` counter lines a second for
//!    `--statsd-seconds`, over `--statsd-series` names: lines received
//!    against sent, lines dropped, the gateway's CPU per line and its RSS.
//!
//! ```text
//! cargo build --release -p logway -p logway-bench
//! target/release/metrics-bench --rounds 3 --seconds 15 --statsd-rate 100000 --statsd-series 100000
//! target/release/metrics-bench --rounds 3 --statsd-rate 0 --shed-lag 16777216   # logs shed at 16 MiB of index lag
//! target/release/metrics-bench --rounds 3 --statsd-rate 0 --shed-cpu 0.9   # a third variant: events with logs shed at 90% CPU
//! ```

mod common;
mod cpu;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use common::{
    fetch_metrics, free_port, gateway_binary, machine, median, metric, percentile, proc_status_kib,
    searchable_after,
};

#[derive(Parser)]
struct Args {
    /// The gateway binary (default: the release build next to this one).
    #[arg(long)]
    gateway: Option<std::path::PathBuf>,
    /// Rounds of each class (alternating); 0 skips the classes part.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Seconds per round.
    #[arg(long, default_value_t = 15)]
    seconds: u64,
    /// Log connections.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Single events posted per second meanwhile.
    #[arg(long, default_value_t = 100)]
    event_rate: u64,
    /// `limits.shed_at_index_lag_bytes` of the gateway (default: its own).
    #[arg(long)]
    shed_lag: Option<u64>,
    /// Adds rounds of events on the event route with `limits.shed_at_cpu`
    /// at this share (and `shed_cpu_after = "1s"`).
    #[arg(long)]
    shed_cpu: Option<f64>,
    /// StatsD lines per second (0 skips the StatsD part).
    #[arg(long, default_value_t = 100_000)]
    statsd_rate: u64,
    #[arg(long, default_value_t = 10)]
    statsd_seconds: u64,
    /// Distinct counter names the lines cycle through.
    #[arg(long, default_value_t = 100_000)]
    statsd_series: u64,
}

struct Gateway {
    child: std::process::Child,
    url: String,
    statsd: std::net::SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        common::sigterm(self.child.id());
        let _ = self.child.wait();
    }
}

async fn start(
    binary: &std::path::Path,
    max_series: u64,
    shed_lag: Option<u64>,
    shed_cpu: Option<f64>,
) -> anyhow::Result<Gateway> {
    let mut limits = "[limits]\n".to_string();
    if let Some(b) = shed_lag {
        limits += &format!("shed_at_index_lag_bytes = {b}\n");
    }
    if let Some(c) = shed_cpu {
        limits += &format!("shed_at_cpu = {c}\nshed_cpu_after = \"1s\"\n");
    }
    let dir = tempfile::tempdir()?;
    let statsd: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse()?;
    let config = dir.path().join("logway.toml");
    std::fs::write(
        &config,
        format!(
            r#"
{limits}
[[tenants]]
name = "default"
routes = [
  {{ path = "/logs", type = "bench" }},
  {{ path = "/events", type = "payments", class = "event" }},
  {{ path = "/events-as-logs", type = "payments", class = "log" }},
]
[[statsd]]
addr = "{statsd}"
tenant = "default"
unauthenticated = true
max_series = {max_series}
"#
        ),
    )?;
    let (child, url) =
        common::spawn_gateway(binary, &dir.path().join("data"), Some(&config)).await?;
    let client = reqwest::Client::new();
    common::wait_ready(&client, &url).await;
    Ok(Gateway {
        child,
        url,
        statsd,
        _dir: dir,
    })
}

fn log_body(n: usize, round: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "{{\"level\":\"info\",\"service\":\"svc-{}\",\"message\":\"request {i} of round {round} served\",\"http\":{{\"status\":200,\"path\":\"/api/items/{}\"}},\"duration_ms\":{}}}\n",
                i % 8,
                i * 7919 % 100_000,
                i % 500
            )
        })
        .collect()
}

/// One round: what the events and the logs got.
struct Round {
    event_acks: Vec<Duration>,
    event_failures: u64,
    searchable: Vec<Duration>,
    logs_acked: u64,
    logs_refused: u64,
    log_acks: Vec<Duration>,
    secs: f64,
}

async fn round(gw: &Gateway, path: &str, args: &Args, round: usize) -> anyhow::Result<Round> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections + 4)
        .build()?;
    let stop = Arc::new(AtomicBool::new(false));
    let (acked, refused) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let body = Arc::new(log_body(100, round));
    let mut flood = Vec::new();
    for _ in 0..args.connections {
        let (client, url, stop, acked, refused, body) = (
            client.clone(),
            gw.url.clone(),
            stop.clone(),
            acked.clone(),
            refused.clone(),
            body.clone(),
        );
        flood.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                match client
                    .post(format!("{url}/logs"))
                    .header("content-type", "application/x-ndjson")
                    .body(body.as_bytes().to_vec())
                    .send()
                    .await
                {
                    Ok(r) if r.status() == 200 => {
                        latencies.push(t.elapsed());
                        acked.fetch_add(100, Ordering::Relaxed);
                    }
                    _ => {
                        refused.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            latencies
        }));
    }
    let started = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / args.event_rate.max(1) as f64);
    let mut next = Instant::now();
    let (mut event_acks, mut event_failures, mut probes) = (Vec::new(), 0u64, Vec::new());
    let mut i = 0u64;
    while started.elapsed() < Duration::from_secs(args.seconds) {
        next += interval;
        tokio::time::sleep_until(next.into()).await;
        i += 1;
        let token = format!("pay{round}x{i}x{}", std::process::id());
        let t = Instant::now();
        let ok = client
            .post(format!("{}{path}", gw.url))
            .body(format!(
                "{{\"message\":\"{token} captured\",\"amount\":42}}"
            ))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200);
        if !ok {
            event_failures += 1;
            continue;
        }
        event_acks.push(t.elapsed());
        if i.is_multiple_of(10) {
            let (client, url) = (client.clone(), gw.url.clone());
            probes.push(tokio::spawn(async move {
                let (give_up, poll) = (Duration::from_secs(60), Duration::from_millis(5));
                searchable_after(&client, &url, &token, t, give_up, poll).await
            }));
        }
    }
    let secs = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let mut log_acks = Vec::new();
    for f in flood {
        log_acks.extend(f.await?);
    }
    let mut searchable = Vec::new();
    for p in probes {
        searchable.extend(p.await?);
    }
    event_acks.sort();
    searchable.sort();
    log_acks.sort();
    Ok(Round {
        event_acks,
        event_failures,
        searchable,
        logs_acked: acked.load(Ordering::Relaxed),
        logs_refused: refused.load(Ordering::Relaxed),
        log_acks,
        secs,
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn statsd(binary: &std::path::Path, args: &Args) -> anyhow::Result<()> {
    let gw = start(binary, args.statsd_series.max(1), None, None).await?;
    let pid = gw.child.id();
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
    let lines_per_datagram = 10u64;
    let total = args.statsd_rate * args.statsd_seconds;
    let cpu_start = cpu::seconds_of(pid);
    let started = Instant::now();
    let mut sent = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    let mut datagram = String::new();
    while sent < total {
        tick.tick().await;
        let due = ((started.elapsed().as_secs_f64() * args.statsd_rate as f64) as u64).min(total);
        while sent < due {
            datagram.clear();
            for _ in 0..lines_per_datagram.min(due - sent) {
                let series = sent % args.statsd_series.max(1);
                datagram.push_str(&format!("bench.requests.{series}:1|c|#env:prod\n"));
                sent += 1;
            }
            socket.send_to(datagram.as_bytes(), gw.statsd).await?;
        }
    }
    let send_secs = started.elapsed().as_secs_f64();
    let client = reqwest::Client::new();
    let (mut received, mut last_change) = (0.0, Instant::now());
    while last_change.elapsed() < Duration::from_secs(2) && (received as u64) < sent {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = metric(
            &fetch_metrics(&client, &gw.url).await?,
            "logway_statsd_lines_total",
        );
        if now != received {
            received = now;
            last_change = Instant::now();
        }
    }
    let cpu = cpu::seconds_of(pid) - cpu_start;
    let m = fetch_metrics(&client, &gw.url).await?;
    let dropped = metric(&m, "logway_statsd_dropped_total") + 0.0;
    println!(
        "StatsD UDP: {sent} lines ({} series, {lines_per_datagram} a datagram) sent in {send_secs:.1} s ({:.0}/s), {received:.0} received, {:.0} lost ({:.3}%), {dropped:.0} counted as dropped; gateway CPU {cpu:.1} s = {:.2} µs per line; RSS {:.0} MiB (peak {:.0} MiB)",
        args.statsd_series,
        sent as f64 / send_secs,
        sent as f64 - received,
        (sent as f64 - received) / sent as f64 * 100.0,
        cpu / sent as f64 * 1e6,
        proc_status_kib(pid, "VmRSS:") as f64 / 1024.0,
        proc_status_kib(pid, "VmHWM:") as f64 / 1024.0,
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let binary = gateway_binary(args.gateway.as_deref())?;
    println!("machine: {}", machine());
    let mut by_class: Vec<(&str, &str, Option<f64>, Vec<Round>)> = vec![
        ("event route", "/events", None, Vec::new()),
        ("log route", "/events-as-logs", None, Vec::new()),
    ];
    if args.shed_cpu.is_some() {
        by_class.push((
            "event route, logs shed for CPU",
            "/events",
            args.shed_cpu,
            Vec::new(),
        ));
    }
    for r in 0..args.rounds {
        for (name, path, shed_cpu, rounds) in by_class.iter_mut() {
            let gw = start(&binary, 1000, args.shed_lag, *shed_cpu).await?;
            let x = round(&gw, path, &args, r).await?;
            println!(
                "round {r}, events on the {name}: {} acked, {} failed; ack p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; searchable p50 {:.0} ms, p99 {:.0} ms ({} probes) | logs meanwhile: {:.0} events/s acked, {} requests refused, ack p99 {:.1} ms",
                x.event_acks.len(),
                x.event_failures,
                ms(percentile(&x.event_acks, 0.5)),
                ms(percentile(&x.event_acks, 0.99)),
                ms(x.event_acks.last().copied().unwrap_or_default()),
                ms(percentile(&x.searchable, 0.5)),
                ms(percentile(&x.searchable, 0.99)),
                x.searchable.len(),
                x.logs_acked as f64 / x.secs,
                x.logs_refused,
                ms(percentile(&x.log_acks, 0.99)),
            );
            rounds.push(x);
        }
    }
    if args.rounds > 0 {
        for (name, _, _, rounds) in &by_class {
            let med = |f: &dyn Fn(&Round) -> f64| median(rounds.iter().map(f).collect());
            println!(
                "median, events on the {name}: ack p99 {:.1} ms, searchable p50 {:.0} ms, p99 {:.0} ms; logs {:.0} events/s",
                med(&|x| ms(percentile(&x.event_acks, 0.99))),
                med(&|x| ms(percentile(&x.searchable, 0.5))),
                med(&|x| ms(percentile(&x.searchable, 0.99))),
                med(&|x| x.logs_acked as f64 / x.secs),
            );
        }
    }
    if args.statsd_rate > 0 {
        statsd(&binary, &args).await?;
    }
    Ok(())
}
