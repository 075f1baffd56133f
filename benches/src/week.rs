//! The benchmarks' event corpus: a week of web-service events (4 log
//! types, 20 services, 50 hosts, 4 levels, 100,000 user ids), loaded as
//! fast as the gateway takes it or at a set rate, and the count search
//! sees.

// Each bench program uses only some of these.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

pub const TYPES: [&str; 4] = ["web_logs", "api_logs", "mobile_logs", "worker_logs"];
pub const LEVELS: [&str; 4] = ["info", "info", "warn", "error"];
pub const BATCH: u64 = 1000;
pub const WEEK_MS: u64 = 7 * 86_400_000;

/// Where events' timestamps fall.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Spread {
    /// A fixed scatter of the week before now: any stretch of the load
    /// (so any segment of the index) holds times from all of it.
    Scattered,
    /// The week before now in order, event `i` of `total` at its share of
    /// it: a history as a gateway ingests it, each segment a stretch of time.
    Ordered { total: u64 },
    /// A scatter of the last minute (ingest while a benchmark measures).
    Recent,
}

/// One request's NDJSON: events `first..first+BATCH`, with timestamps
/// before `now_ms` as `spread` says.
pub fn body(first: u64, now_ms: u64, spread: Spread) -> String {
    let mut out = String::with_capacity(BATCH as usize * 260);
    for i in first..first + BATCH {
        let back = match spread {
            Spread::Recent => i.wrapping_mul(7919) % 60_000,
            Spread::Scattered => i.wrapping_mul(2_654_435_761) % WEEK_MS,
            Spread::Ordered { total } => {
                WEEK_MS
                    - (u128::from(i.min(total)) * u128::from(WEEK_MS) / u128::from(total.max(1)))
                        as u64
            }
        };
        let ts =
            time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(now_ms - back) * 1_000_000)
                .unwrap();
        let ts = ts
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        out.push_str(&format!(
            concat!(
                r#"{{"timestamp":"{ts}","level":"{level}","service":"svc-{svc:02}","host":"web-{host:02}","#,
                r#""request_id":"req-{req:x}","user":{{"id":"u{user}"}},"status":{status},"latency_ms":{lat},"#,
                r#""message":"request {verb} /api/items/{item} took {lat} ms"}}"#,
                "\n"
            ),
            ts = ts,
            level = LEVELS[(i % 4) as usize],
            svc = i % 20,
            host = i % 50,
            req = i / 3,
            user = i.wrapping_mul(31) % 100_000,
            status = [200, 200, 404, 500][(i % 4) as usize],
            lat = 5 + i % 300,
            verb = ["GET", "POST", "PUT", "GET"][(i % 4) as usize],
            item = i % 1000,
        ));
    }
    out
}

/// Posts events `[from, to)` over `connections` connections; returns how
/// many were accepted (or, with `stop`, until it is set: then of the last
/// minute, else as `spread` says).
#[allow(clippy::too_many_arguments)]
pub async fn load(
    client: &reqwest::Client,
    url: &str,
    from: u64,
    to: u64,
    connections: usize,
    stop: Option<Arc<AtomicBool>>,
    rate: u64,
    spread: Spread,
) -> anyhow::Result<u64> {
    let next = Arc::new(AtomicU64::new(from));
    let started = tokio::time::Instant::now();
    let accepted = Arc::new(AtomicU64::new(0));
    let now_ms = logway::now_ms() as u64;
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (client, url, next, accepted, stop) = (
            client.clone(),
            url.to_string(),
            next.clone(),
            accepted.clone(),
            stop.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                if stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed)) {
                    break;
                }
                let first = next.fetch_add(BATCH, Ordering::Relaxed);
                if stop.is_none() && first >= to {
                    break;
                }
                if rate > 0 {
                    // Paced: this batch's turn comes at its place in the
                    // offered rate.
                    let at = Duration::from_secs_f64((first - from) as f64 / rate as f64);
                    tokio::time::sleep_until(started + at).await;
                }
                let log_type = TYPES[((first / BATCH) % 4) as usize];
                let body = body(
                    first,
                    now_ms,
                    if stop.is_some() {
                        Spread::Recent
                    } else {
                        spread
                    },
                );
                // Full for a moment (503, 429): the same batch again.
                loop {
                    let r = client
                        .post(format!("{url}/v1/logs/{log_type}"))
                        .header("content-type", "application/x-ndjson")
                        .body(body.clone())
                        .send()
                        .await?;
                    match r.status().as_u16() {
                        200 => break,
                        503 | 429 => tokio::time::sleep(Duration::from_millis(50)).await,
                        _ => anyhow::bail!("load: {} {}", r.status(), r.text().await?),
                    }
                }
                accepted.fetch_add(BATCH, Ordering::Relaxed);
            }
            Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(accepted.load(Ordering::Relaxed))
}

pub async fn total(client: &reqwest::Client, url: &str) -> anyhow::Result<u64> {
    let v: serde_json::Value = client
        .get(format!("{url}/api/v1/search"))
        .query(&[
            ("q", "*"),
            ("limit", "0"),
            ("from", "now-8d"),
            ("to", "now+1h"),
        ])
        .send()
        .await?
        .json()
        .await?;
    Ok(v["total"].as_u64().unwrap_or(0))
}

/// What one timed round of ingest did.
pub struct Round {
    pub sent: u64,
    /// Acked events per second.
    pub rate: f64,
    /// The gateway's CPU-seconds per 1M events.
    pub cpu_per_million: f64,
}

/// Posts events from `first` on for `seconds` (at `rate` events/s, 0: as
/// fast as they are taken) and measures the gateway (process `pid`).
pub async fn timed_round(
    client: &reqwest::Client,
    url: &str,
    first: u64,
    connections: usize,
    rate: u64,
    seconds: u64,
    pid: u32,
) -> anyhow::Result<Round> {
    let stop = Arc::new(AtomicBool::new(false));
    let timer = {
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(seconds)).await;
            stop.store(true, Ordering::Relaxed);
        })
    };
    let t = std::time::Instant::now();
    let cpu = crate::cpu::seconds_of(pid);
    let sent = load(
        client,
        url,
        first,
        u64::MAX,
        connections,
        Some(stop),
        rate,
        Spread::Recent,
    )
    .await?;
    let secs = t.elapsed().as_secs_f64();
    let cpu = crate::cpu::seconds_of(pid) - cpu;
    timer.await?;
    Ok(Round {
        sent,
        rate: sent as f64 / secs,
        cpu_per_million: cpu / sent.max(1) as f64 * 1e6,
    })
}

/// Loads what the gateway (process `pid`) lacks of `events` events, then
/// waits until search counts them all; prints both steps.
pub async fn fill(
    client: &reqwest::Client,
    url: &str,
    events: u64,
    connections: usize,
    pid: u32,
    spread: Spread,
) -> anyhow::Result<()> {
    let have = total(client, url).await?;
    if have < events {
        let t = std::time::Instant::now();
        let cpu = crate::cpu::seconds_of(pid);
        let sent = load(client, url, have, events, connections, None, 0, spread).await?;
        let secs = t.elapsed().as_secs_f64();
        println!(
            "loaded {sent} events in {secs:.1} s ({:.0} events/s acked, {:.1} CPU-s per 1M at ingest)",
            sent as f64 / secs,
            (crate::cpu::seconds_of(pid) - cpu) / sent as f64 * 1e6
        );
    }
    let t = std::time::Instant::now();
    loop {
        let n = total(client, url).await?;
        if n >= events {
            println!(
                "searchable: {n} events, {:.1} s after the load",
                t.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        if t.elapsed() > Duration::from_secs(3600) {
            anyhow::bail!("only {n} of {events} events searchable after an hour");
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}
