//! Web UI benchmark: what the UI's calls cost over a hot tier of millions
//! of events, and what live tails cost ingest.
//!
//! ```text
//! cargo build --release -p logway -p logway-bench
//! target/release/ui-bench --events 10000000 --rounds 20 --tails 100
//! ```
//!
//! Starts the release gateway as a child (embedded defaults, a temp data
//! directory, or `--data DIR` to keep a loaded one between runs), loads
//! `--events` events of 4 log types whose timestamps spread over the last
//! 7 days (20 services, 4 levels, 100,000 user ids), and waits until
//! search counts them all. Then, `--rounds` times each, it times the calls
//! the UI makes (client-side wall time, on loopback): the newest 100 hits
//! of a term query, the histogram by level over 7 days, the top 10 values
//! of a field over the events of one level (over a million), and field
//! names. With `--paint`, Playwright for Python (`$UI_BENCH_PYTHON`, else
//! the test clients' virtualenv) opens the page in the system Chromium and
//! reports the first contentful paint and the time until the first hits
//! show. Last, ingest for `--tail-seconds` (at `--tail-rate` events/s, or
//! as fast as it goes with `--tail-rate 0`), alternating rounds with no
//! live tail and with `--tails` open tails (each reading its stream), and
//! prints the accepted events/s and the gateway's CPU per event of each.
//! Medians and p99 close each part; the gateway's peak RSS at the end.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;

mod common;
mod cpu;
mod week;
use common::{
    gateway_binary, machine, median, percentile, proc_status_kib, spawn_gateway, wait_ready,
};
use week::timed_round;

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
struct Args {
    /// Events in the hot tier.
    #[arg(long, default_value_t = 10_000_000)]
    events: u64,
    /// Times each call is made.
    #[arg(long, default_value_t = 20)]
    rounds: usize,
    /// Keep the data here (a run finding it loaded skips the load).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Open the page in Chromium and time its first paint.
    #[arg(long)]
    paint: bool,
    /// Live tails open during the second half of each tail round.
    #[arg(long, default_value_t = 100)]
    tails: usize,
    /// Seconds of ingest per tail round (0: skip the tail part).
    #[arg(long, default_value_t = 15)]
    tail_seconds: u64,
    /// Tail rounds of each kind (with and without tails), alternating.
    #[arg(long, default_value_t = 3)]
    tail_rounds: usize,
    /// Offered ingest during the tail rounds, events/s (0: as fast as the
    /// gateway takes them).
    #[arg(long, default_value_t = 100_000)]
    tail_rate: u64,
    /// Load connections.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// The gateway binary (default: `logway` next to this one).
    #[arg(long)]
    gateway: Option<PathBuf>,
}

/// Times `rounds` GETs of `path?query`; prints p50, p99 and what it got.
async fn time_call(
    client: &reqwest::Client,
    url: &str,
    name: &str,
    path: &str,
    query: &[(&str, &str)],
    rounds: usize,
    summary: impl Fn(&serde_json::Value) -> String,
) -> anyhow::Result<Duration> {
    let mut times = Vec::with_capacity(rounds);
    let mut last = serde_json::Value::Null;
    for _ in 0..rounds {
        let t = Instant::now();
        let r = client
            .get(format!("{url}{path}"))
            .query(query)
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("{name}: {} {}", r.status(), r.text().await?);
        }
        last = r.json().await?;
        times.push(t.elapsed());
    }
    times.sort();
    let p50 = percentile(&times, 0.5);
    println!(
        "{name:<44} p50 {:>7.1} ms  p99 {:>7.1} ms  ({})",
        p50.as_secs_f64() * 1000.0,
        percentile(&times, 0.99).as_secs_f64() * 1000.0,
        summary(&last)
    );
    Ok(p50)
}

/// Opens `tails` live tails that read and discard their streams.
async fn open_tails(
    url: &str,
    tails: usize,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<u64>> {
    let client = reqwest::Client::new();
    (0..tails)
        .map(|i| {
            let (client, url, stop) = (client.clone(), url.to_string(), stop.clone());
            tokio::spawn(async move {
                // Different queries, as different people watch different things.
                let q = ["level:error", "service:svc-03", "status:500", "*"][i % 4];
                let Ok(mut r) = client
                    .get(format!("{url}/api/v1/tail"))
                    .query(&[("q", q)])
                    .send()
                    .await
                else {
                    return 0;
                };
                let mut bytes = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    match tokio::time::timeout(Duration::from_millis(200), r.chunk()).await {
                        Ok(Ok(Some(c))) => bytes += c.len() as u64,
                        Ok(_) => break,
                        Err(_) => {}
                    }
                }
                bytes
            })
        })
        .collect()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let gateway = gateway_binary(args.gateway.as_deref())?;
    let (data, temporary) = common::data_dir(args.data.as_deref(), "ui-bench");
    let (mut child, url) = spawn_gateway(&gateway, &data, None).await?;
    let pid = child.id();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections)
        .build()?;
    wait_ready(&client, &url).await;
    println!("machine: {}", machine());

    week::fill(
        &client,
        &url,
        args.events,
        args.connections,
        pid,
        week::Spread::Scattered,
    )
    .await?;

    println!(
        "\n-- the UI's calls over {} events, {} rounds each --",
        args.events, args.rounds
    );
    let r = args.rounds;
    let week = [("from", "now-7d"), ("to", "now")];
    let hits = |v: &serde_json::Value| format!("total {}", v["total"]);
    let with = |extra: &[(&'static str, &'static str)]| -> Vec<(&'static str, &'static str)> {
        week.iter().chain(extra).copied().collect()
    };
    time_call(
        &client,
        &url,
        "newest 100, term `service:svc-03` (7 d)",
        "/api/v1/search",
        &with(&[("q", "service:svc-03"), ("limit", "100")]),
        r,
        hits,
    )
    .await?;
    time_call(
        &client,
        &url,
        "newest 100, word `took` in message (7 d)",
        "/api/v1/search",
        &with(&[("q", "took"), ("limit", "100")]),
        r,
        hits,
    )
    .await?;
    time_call(
        &client,
        &url,
        "newest 100, rare term `user.id:u4242`",
        "/api/v1/search",
        &with(&[("q", "user.id:u4242"), ("limit", "100")]),
        r,
        hits,
    )
    .await?;
    let buckets = |v: &serde_json::Value| {
        let b = v["buckets"].as_array().map(Vec::len).unwrap_or(0);
        let sum: u64 = v["buckets"]
            .as_array()
            .map(|a| a.iter().filter_map(|b| b["count"].as_u64()).sum())
            .unwrap_or(0);
        format!("{b} buckets, {sum} events")
    };
    time_call(
        &client,
        &url,
        "histogram by level, everything (7 d)",
        "/api/v1/histogram",
        &with(&[("q", "*"), ("by", "level")]),
        r,
        buckets,
    )
    .await?;
    time_call(
        &client,
        &url,
        "histogram by level, `service:svc-03` (7 d)",
        "/api/v1/histogram",
        &with(&[("q", "service:svc-03"), ("by", "level")]),
        r,
        buckets,
    )
    .await?;
    let values =
        |v: &serde_json::Value| format!("over {} events, top {}", v["total"], v["values"][0]);
    time_call(
        &client,
        &url,
        "top 10 `service` over `level:error` (7 d)",
        "/api/v1/fields/values",
        &with(&[("field", "service"), ("q", "level:error")]),
        r,
        values,
    )
    .await?;
    time_call(
        &client,
        &url,
        "top 10 `user.id` over `level:error` (7 d)",
        "/api/v1/fields/values",
        &with(&[("field", "user.id"), ("q", "level:error")]),
        r,
        values,
    )
    .await?;
    time_call(
        &client,
        &url,
        "field names of `web_logs`",
        "/api/v1/fields",
        &[("type", "web_logs")],
        r,
        |v| {
            format!(
                "{} names",
                v["fields"].as_array().map(Vec::len).unwrap_or(0)
            )
        },
    )
    .await?;

    if args.paint {
        paint(&url)?;
    }

    if args.tail_seconds > 0 && args.tails > 0 {
        println!(
            "\n-- ingest ({}) with and without {} live tails, {} s rounds, alternating --",
            if args.tail_rate > 0 {
                format!("offered at {} events/s", args.tail_rate)
            } else {
                "as fast as it goes".to_string()
            },
            args.tails,
            args.tail_seconds
        );
        let mut without = Vec::new();
        let mut with_tails = Vec::new();
        let (mut cpu_without, mut cpu_with) = (Vec::new(), Vec::new());
        let mut next = args.events;
        for round in 0..args.tail_rounds * 2 {
            let tails_on = round % 2 == 1;
            let stop = Arc::new(AtomicBool::new(false));
            let tails = if tails_on {
                let t = open_tails(&url, args.tails, stop.clone()).await;
                tokio::time::sleep(Duration::from_millis(500)).await;
                t
            } else {
                Vec::new()
            };
            let r = timed_round(
                &client,
                &url,
                next,
                args.connections,
                args.tail_rate,
                args.tail_seconds,
                pid,
            )
            .await?;
            let (sent, rate, per_event) = (r.sent, r.rate, r.cpu_per_million);
            next += sent;
            stop.store(true, Ordering::Relaxed);
            let mut streamed = 0;
            for t in tails {
                streamed += t.await?;
            }
            println!(
                "round {}: {:>13}: {rate:>9.0} events/s acked, {per_event:.1} gateway CPU-s per 1M{}",
                round / 2 + 1,
                if tails_on {
                    format!("{} tails", args.tails)
                } else {
                    "no tails".to_string()
                },
                if tails_on {
                    format!(", {:.1} MB streamed to the tails", streamed as f64 / 1e6)
                } else {
                    String::new()
                }
            );
            if tails_on {
                with_tails.push(rate);
                cpu_with.push(per_event);
            } else {
                without.push(rate);
                cpu_without.push(per_event);
            }
        }
        let (a, b) = (median(without), median(with_tails));
        let (ca, cb) = (median(cpu_without), median(cpu_with));
        println!(
            "median: {a:.0} events/s without tails, {b:.0} with {}: {:.1}% of ingest; \
             gateway CPU {ca:.1} against {cb:.1} s per 1M events (+{:.1}%)",
            args.tails,
            (a - b) / a * 100.0,
            (cb - ca) / ca * 100.0
        );
    }

    println!(
        "gateway peak RSS: {} MiB",
        proc_status_kib(pid, "VmHWM:") / 1024
    );
    let _ = std::process::Command::new("kill")
        .arg(pid.to_string())
        .status();
    let _ = child.wait();
    if temporary {
        let _ = std::fs::remove_dir_all(&data);
    }
    Ok(())
}

/// First paint and first hits of the page, from Chromium via Playwright.
fn paint(url: &str) -> anyhow::Result<()> {
    let python = std::env::var_os("UI_BENCH_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/logway-clients/venv/bin/python")
        });
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("ui_paint.py");
    let out = std::process::Command::new(&python)
        .arg(&script)
        .arg(url)
        .output()
        .with_context(|| {
            format!(
                "running {} (install playwright there, or set UI_BENCH_PYTHON)",
                python.display()
            )
        })?;
    if !out.status.success() {
        bail!(
            "{}: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    print!("\n{}", String::from_utf8_lossy(&out.stdout));
    Ok(())
}
