//! Ingest benchmark: a load generator against the real `logway` binary.
//!
//! Starts the gateway (release build) as a child process on a temp data
//! directory, drives N connections that POST NDJSON batches of realistic
//! ~256-byte events, and prints accepted events/s, MB/s, ack latency
//! percentiles, the hot index's sustained rate and lag, the time until an
//! acked event is searchable, and the gateway's peak RSS.
//!
//! ```text
//! cargo build --release -p logway -p logway-bench
//! target/release/ingest-bench --connections 16 --batch 100 --seconds 20
//! target/release/ingest-bench --rate 600      # fixed request rate, for latency at a given load
//! target/release/ingest-bench --config benches/configs/filters-one.toml --path /bench \
//!     --upload redact=target/wasm32-wasip2/release/filter_redact.wasm   # with a WASM filter
//! target/release/ingest-bench --config cluster.toml --ack-only --cpu-of $BROKER_PID
//!     # cluster mode's gateway role: acked into Kafka, the broker's CPU too
//! target/release/ingest-bench --config cluster-all.toml --nodes 3 --cpu-of $BROKER_PID
//!     # three nodes of every role: connections spread over them, CPU per node
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

mod common;
mod cpu;
use clap::Parser;
use common::{
    fetch_metrics, free_port, gateway_binary, machine, metric, percentile, proc_status_kib,
    searchable_after, sigterm, spawn_gateway, spawn_node, wait_ready,
};

#[derive(Parser, Clone)]
struct Args {
    /// The gateway binary (default: the release build next to this one).
    #[arg(long)]
    gateway: Option<PathBuf>,
    /// Concurrent connections.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Events per request.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Load duration.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Total requests per second (0 = as fast as the gateway answers).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Gzip request bodies.
    #[arg(long)]
    gzip: bool,
    /// Config file for the gateway (default: embedded defaults), e.g. to
    /// measure the cost of rate limits.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Path the load is posted to (a route of the config, e.g. one running filters).
    #[arg(long, default_value = "/v1/logs/bench")]
    path: String,
    /// Upload a WASM filter before the load: `--upload redact=filter_redact.wasm`.
    #[arg(long, value_parser = name_file)]
    upload: Vec<(String, PathBuf)>,
    /// Measure what is acknowledged only: no visibility probe, no wait
    /// for the index (cluster mode's gateway role indexes nothing).
    #[arg(long)]
    ack_only: bool,
    /// Also report the CPU another process (a Kafka broker) used during
    /// the load.
    #[arg(long)]
    cpu_of: Option<u32>,
    /// Cluster mode (a `--config` with `[cluster]`): start this many nodes,
    /// each asking the others in a search (`cluster.peers`), and spread
    /// the connections over them. CPU and memory are given per node.
    #[arg(long, default_value_t = 1)]
    nodes: usize,
}

fn name_file(s: &str) -> Result<(String, PathBuf), String> {
    s.split_once('=')
        .map(|(n, f)| (n.to_string(), PathBuf::from(f)))
        .ok_or_else(|| format!("`{s}` is not name=file"))
}

const SERVICES: &[&str] = &[
    "checkout", "cart", "search", "auth", "payments", "catalog", "shipping", "profile",
];
const LEVELS: &[&str] = &[
    "info", "info", "info", "info", "debug", "debug", "warn", "error",
];
const MESSAGES: &[&str] = &[
    "request completed",
    "cache miss for product listing",
    "user session refreshed",
    "payment provider answered slowly",
    "inventory reservation failed, retrying",
    "rendered page from template",
    "upstream connection reset by peer",
    "feature flag evaluated",
];

/// A small deterministic generator, so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

const STATUSES: &[u16] = &[200, 200, 200, 201, 404, 500];

fn event(rng: &mut Rng, ts_ms: u64) -> String {
    let service = rng.pick(SERVICES);
    let status = STATUSES[(rng.next() % STATUSES.len() as u64) as usize];
    serde_json::json!({
        "ts": ts_ms,
        "level": rng.pick(LEVELS),
        "service": service,
        "host": format!("{service}-{}", rng.next() % 12),
        "request_id": format!("{:016x}", rng.next()),
        "message": rng.pick(MESSAGES),
        "http": {"method": "GET", "path": format!("/api/v1/items/{}", rng.next() % 100_000), "status": status},
        "duration_ms": rng.next() % 2_000,
        "user": {"id": rng.next() % 1_000_000},
    })
    .to_string()
}

fn bodies(count: usize, batch: usize, gzip: bool) -> (Vec<Vec<u8>>, usize) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let mut total_event_bytes = 0;
    let out = (0..count)
        .map(|_| {
            let mut body = String::new();
            for _ in 0..batch {
                let e = event(&mut rng, now);
                total_event_bytes += e.len();
                body.push_str(&e);
                body.push('\n');
            }
            if gzip {
                use std::io::Write;
                let mut enc =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                enc.write_all(body.as_bytes()).expect("in-memory write");
                enc.finish().expect("in-memory write")
            } else {
                body.into_bytes()
            }
        })
        .collect();
    (out, total_event_bytes / (count * batch))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let gateway = gateway_binary(args.gateway.as_deref())?;
    let data = std::env::temp_dir().join(format!("logway-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let mut children = Vec::new();
    let mut urls = Vec::new();
    if args.nodes <= 1 {
        let (child, url) = spawn_gateway(&gateway, &data, args.config.as_deref()).await?;
        children.push(child);
        urls.push(url);
    } else {
        let ports: Vec<u16> = (0..args.nodes).map(|_| free_port()).collect();
        let peers: Vec<String> = ports
            .iter()
            .map(|p| format!("\"http://127.0.0.1:{p}\""))
            .collect();
        let env = [(
            "LOGWAY_CLUSTER__PEERS".to_string(),
            format!("[{}]", peers.join(",")),
        )];
        for (i, port) in ports.iter().enumerate() {
            let (child, url) = spawn_node(
                &gateway,
                &data.join(format!("node{i}")),
                args.config.as_deref(),
                &format!("127.0.0.1:{port}"),
                &env,
            )
            .await?;
            children.push(child);
            urls.push(url);
        }
    }
    let url = urls[0].clone();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections)
        .build()?;
    for u in &urls {
        wait_ready(&client, u).await;
    }
    // Cluster mode: until the nodes have shared the partitions out.
    wait_settled(&client, &url).await?;

    for (name, file) in &args.upload {
        let wasm = std::fs::read(file).with_context(|| file.display().to_string())?;
        let r = client
            .put(format!("{url}/api/v1/filters/{name}"))
            .body(wasm)
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("uploading {name}: {} {}", r.status(), r.text().await?);
        }
    }

    let (bodies, event_bytes) = bodies(64, args.batch, args.gzip);
    let bodies = Arc::new(bodies);
    let stop = Arc::new(AtomicBool::new(false));
    let accepted = Arc::new(AtomicU64::new(0));
    let sent_bytes = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    println!("machine: {}", machine());
    println!(
        "load: {} connections, {} events/request (~{} B/event), {} s, rate {}{}",
        args.connections,
        args.batch,
        event_bytes,
        args.seconds,
        if args.rate == 0 {
            "unlimited".to_string()
        } else {
            format!("{} req/s", args.rate)
        },
        if args.gzip { ", gzip" } else { "" }
    );

    // The gateway's CPU from here to the end of the drain: ingest, index
    // (catch-up included) and archive, per event.
    let pids: Vec<u32> = children.iter().map(|c| c.id()).collect();
    let cpu_start: Vec<f64> = pids.iter().map(|&p| cpu::seconds_of(p)).collect();
    let other_cpu_start = args.cpu_of.map(cpu::seconds_of);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for conn in 0..args.connections {
        let (client, url, bodies, stop) = (
            client.clone(),
            urls[conn % urls.len()].clone(),
            bodies.clone(),
            stop.clone(),
        );
        let (accepted, sent_bytes, failures) =
            (accepted.clone(), sent_bytes.clone(), failures.clone());
        let (batch, gzip) = (args.batch as u64, args.gzip);
        let path = args.path.clone();
        let interval = (args.rate > 0)
            .then(|| Duration::from_secs_f64(args.connections as f64 / args.rate as f64));
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut i = conn;
            let mut next = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                if let Some(interval) = interval {
                    next += interval;
                    tokio::time::sleep_until(next.into()).await;
                }
                let body = bodies[i % bodies.len()].clone();
                i += 1;
                let len = body.len() as u64;
                let mut req = client
                    .post(format!("{url}{path}"))
                    .header("content-type", "application/x-ndjson")
                    .body(body);
                if gzip {
                    req = req.header("content-encoding", "gzip");
                }
                let t = Instant::now();
                match req.send().await {
                    Ok(r) if r.status() == 200 => {
                        latencies.push(t.elapsed());
                        accepted.fetch_add(batch, Ordering::Relaxed);
                        sent_bytes.fetch_add(len, Ordering::Relaxed);
                    }
                    _ => {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            latencies
        }));
    }

    // Visibility probe: post one uniquely tagged event every 500 ms and time
    // until search returns it.
    let probe = {
        let (client, url, stop) = (client.clone(), url.clone(), stop.clone());
        let ack_only = args.ack_only;
        tokio::spawn(async move {
            let mut visible = Vec::new();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) && !ack_only {
                n += 1;
                let token = format!("probe{n}x{}", std::process::id());
                let t = Instant::now();
                let ok = client
                    .post(format!("{url}/v1/logs/probe"))
                    .body(token.clone())
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200);
                if ok {
                    let found = searchable_after(
                        &client,
                        &url,
                        &token,
                        t,
                        Duration::from_secs(30),
                        Duration::from_millis(10),
                    )
                    .await;
                    visible.extend(found);
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            visible
        })
    };

    // Sample the indexed counter and RSS once a second.
    let mut indexed_samples = Vec::new();
    let mut peak_rss_kib = 0;
    // Anonymous memory (heap), apart from file pages tantivy maps.
    let mut peak_anon_kib = 0;
    // The index's lag (WAL bytes not yet committed), once a second.
    let mut lag_samples = Vec::new();
    // Events acknowledged and not yet indexed, once a second.
    let mut lag_events = Vec::new();
    let mut peak_rss_each = vec![0; pids.len()];
    while started.elapsed() < Duration::from_secs(args.seconds) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (mut indexed, mut lag) = (0.0, 0.0);
        for u in &urls {
            let m = fetch_metrics(&client, u).await?;
            indexed += metric(&m, "logway_events_indexed_total");
            lag += metric(&m, "logway_hot_index_lag_bytes");
        }
        indexed_samples.push((started.elapsed(), indexed));
        lag_samples.push(lag);
        lag_events.push(accepted.load(Ordering::Relaxed) as f64 - indexed);
        let rss: Vec<u64> = pids.iter().map(|&p| proc_status_kib(p, "VmRSS:")).collect();
        for (peak, now) in peak_rss_each.iter_mut().zip(&rss) {
            *peak = (*peak).max(*now);
        }
        peak_rss_kib = peak_rss_kib.max(rss.iter().sum());
        peak_anon_kib =
            peak_anon_kib.max(pids.iter().map(|&p| proc_status_kib(p, "RssAnon:")).sum());
    }
    stop.store(true, Ordering::Relaxed);
    // The catch-up is timed from here, the moment the load stops.
    let drain_start = Instant::now();
    let load_time = started.elapsed();
    let mut latencies: Vec<Duration> = Vec::new();
    for t in tasks {
        latencies.extend(t.await?);
    }
    latencies.sort();

    // How long until search returns every acked event, from the end of the
    // load: by what search counts, not by the indexer's own counter.
    let total_accepted = accepted.load(Ordering::Relaxed) as f64;
    let mut final_lag;
    loop {
        let mut m = String::new();
        for u in &urls {
            m.push_str(&fetch_metrics(&client, u).await?);
        }
        let indexed = client
            .get(format!("{url}/api/v1/search"))
            .query(&[("q", "type:bench"), ("limit", "1")])
            .send()
            .await?
            .json::<serde_json::Value>()
            .await?["total"]
            .as_f64()
            .unwrap_or(0.0);
        final_lag = metric(&m, "logway_hot_index_lag_bytes");
        peak_anon_kib =
            peak_anon_kib.max(pids.iter().map(|&p| proc_status_kib(p, "RssAnon:")).sum());
        let failed_batches = metric(&m, "logway_filter_failures_total");
        if failed_batches > 0.0 {
            bail!("{failed_batches} batches failed in a filter (dead letters): not a valid run");
        }
        if args.ack_only
            || indexed >= total_accepted
            || drain_start.elapsed() > Duration::from_secs(120)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let drain = drain_start.elapsed();
    let cpu_each: Vec<f64> = pids
        .iter()
        .zip(&cpu_start)
        .map(|(&p, start)| cpu::seconds_of(p) - start)
        .collect();
    let cpu: f64 = cpu_each.iter().sum();
    let other_cpu = args
        .cpu_of
        .zip(other_cpu_start)
        .map(|(p, start)| cpu::seconds_of(p) - start);
    let mut visible = probe.await?;
    visible.sort();
    for (peak, &p) in peak_rss_each.iter_mut().zip(&pids) {
        *peak = (*peak).max(proc_status_kib(p, "VmHWM:"));
    }
    if pids.len() == 1 {
        peak_rss_kib = peak_rss_kib.max(peak_rss_each[0]);
    }

    let secs = load_time.as_secs_f64();
    let steady: Vec<_> = indexed_samples.iter().skip(2).collect();
    let index_rate = match (steady.first(), steady.last()) {
        (Some(a), Some(b)) if b.0 > a.0 => (b.1 - a.1) / (b.0 - a.0).as_secs_f64(),
        _ => 0.0,
    };
    println!(
        "accepted:     {:.0} events/s ({} events, {} failed requests)",
        total_accepted / secs,
        total_accepted,
        failures.load(Ordering::Relaxed)
    );
    println!(
        "throughput:   {:.1} MB/s of request bodies",
        sent_bytes.load(Ordering::Relaxed) as f64 / secs / 1e6
    );
    println!(
        "ack latency:  p50 {:.1} ms, p99 {:.1} ms, p99.9 {:.1} ms, max {:.1} ms ({} requests)",
        ms(percentile(&latencies, 0.50)),
        ms(percentile(&latencies, 0.99)),
        ms(percentile(&latencies, 0.999)),
        ms(latencies.last().copied().unwrap_or_default()),
        latencies.len()
    );
    println!(
        "indexed:      {index_rate:.0} events/s during load (after 2 s warm-up); every acked event searchable {:.1} s after the load stopped; lag then {final_lag} bytes",
        drain.as_secs_f64()
    );
    let lag_mb = |i: usize| lag_samples.get(i).copied().unwrap_or(0.0) / 1e6;
    println!(
        "index lag:    {:.1} MB at 2 s, {:.1} MB at the end of the load, max {:.1} MB (WAL bytes not yet committed, sampled once a second)",
        lag_mb(1),
        lag_mb(lag_samples.len().saturating_sub(1)),
        lag_samples.iter().copied().fold(0.0, f64::max) / 1e6
    );
    let lag_at = |i: usize| lag_events.get(i).copied().unwrap_or(0.0);
    println!(
        "index lag:    {:.0} events at 2 s, {:.0} at the end of the load, max {:.0} (acknowledged, not yet indexed, sampled once a second)",
        lag_at(1),
        lag_at(lag_events.len().saturating_sub(1)),
        lag_events.iter().copied().fold(0.0, f64::max)
    );
    println!(
        "searchable:   p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms after the ack ({} probes during load)",
        ms(percentile(&visible, 0.5)),
        ms(percentile(&visible, 0.99)),
        ms(visible.last().copied().unwrap_or_default()),
        visible.len()
    );
    println!(
        "gateway CPU:  {cpu:.1} s during the load and the drain = {:.2} CPU-seconds per 1M events ({:.2} cores on average)",
        cpu * 1e6 / total_accepted.max(1.0),
        cpu / (secs + drain.as_secs_f64())
    );
    if pids.len() > 1 {
        for (i, (c, rss)) in cpu_each.iter().zip(&peak_rss_each).enumerate() {
            println!(
                "node {i}:       CPU {c:.1} s = {:.2} CPU-seconds per 1M events of the cluster; peak RSS {:.0} MiB",
                c * 1e6 / total_accepted.max(1.0),
                *rss as f64 / 1024.0
            );
        }
    }
    if let (Some(p), Some(c)) = (args.cpu_of, other_cpu) {
        println!(
            "process {p} CPU: {c:.1} s during the load = {:.2} CPU-seconds per 1M events",
            c * 1e6 / total_accepted.max(1.0)
        );
    }
    println!(
        "gateway RSS:  peak {:.0} MiB (anonymous memory, sampled during the load and the drain: peak {:.0} MiB)",
        peak_rss_kib as f64 / 1024.0,
        peak_anon_kib as f64 / 1024.0
    );

    for &p in &pids {
        sigterm(p);
    }
    let mut failed = None;
    for mut child in children {
        let status = child.wait()?;
        if !status.success() {
            failed = Some(status);
        }
    }
    let _ = std::fs::remove_dir_all(&data);
    if let Some(status) = failed {
        bail!("gateway exited with {status}");
    }
    Ok(())
}

/// Waits (up to 60 s) until a search on the node at `url` covers every
/// topic partition: in cluster mode, the nodes have shared them out.
async fn wait_settled(client: &reqwest::Client, url: &str) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        let v: serde_json::Value = client
            .get(format!("{url}/api/v1/search"))
            .query(&[("q", "*"), ("limit", "1")])
            .send()
            .await?
            .json()
            .await?;
        // (`partial` is absent on a single node and without the searcher role.)
        if v["partial"] != true {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(60) {
            bail!("the cluster did not cover every partition within 60 s: {v}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
