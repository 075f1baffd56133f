//! The compat protocols against native NDJSON, same events, same
//! connections, in the same run: native `POST /v1/logs/bench` (NDJSON),
//! Elasticsearch `POST /es/_bulk` (an `index` action per event), Beats
//! (a window per batch, zlib level 3 as Filebeat sends by default, acked
//! once durable), OTLP/HTTP protobuf, Loki (snappy protobuf, JSON lines),
//! Splunk HEC (concatenated events) and the Datadog intake (a JSON
//! array); bodies in [`compat_bodies`]. GELF over HTTP carries one message
//! per request, as its clients send: it is compared with native at one
//! event per request. With `--gelf-udp-rate`, last, GELF over UDP at that
//! rate: messages sent against messages stored.
//!
//! Each round starts a fresh gateway (release build) per protocol, in a
//! rotating order, drives it for `--seconds`, and prints acked events/s,
//! ack latency and the gateway's CPU per 1M events; the end prints the
//! medians and each protocol's ratio to native (`--only` picks protocols).
//!
//! ```text
//! cargo build --release -p logway -p logway-bench
//! target/release/compat-bench --connections 8 --batch 100 --seconds 15 --rounds 3
//! target/release/compat-bench --rounds 0 --gelf-udp-rate 50000 --gelf-udp-seconds 10
//! ```

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod compat_bodies;
mod cpu;

#[derive(Parser, Clone)]
struct Args {
    /// The gateway binary (default: the release build next to this one).
    #[arg(long)]
    gateway: Option<PathBuf>,
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Events per request (native, `_bulk`) or per window (Beats).
    #[arg(long, default_value_t = 100)]
    batch: usize,
    #[arg(long, default_value_t = 15)]
    seconds: u64,
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// zlib level of Beats windows (0: plain `J` frames).
    #[arg(long, default_value_t = 3)]
    beats_compression: u32,
    /// GELF messages a second over UDP (0: skip that part).
    #[arg(long, default_value_t = 0)]
    gelf_udp_rate: u64,
    #[arg(long, default_value_t = 10)]
    gelf_udp_seconds: u64,
    /// Only these protocols (comma-separated: native, bulk, beats, otlp,
    /// loki, hec, datadog); native NDJSON always runs, as the reference.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Protocol {
    Native,
    Bulk,
    Beats,
    Otlp,
    Loki,
    Hec,
    Datadog,
    /// Native NDJSON, one event per request: GELF over HTTP's reference.
    NativeOne,
    /// GELF over HTTP: one message per request, as its clients send.
    GelfHttp,
}

const PROTOCOLS: [Protocol; 9] = [
    Protocol::Native,
    Protocol::Bulk,
    Protocol::Beats,
    Protocol::Otlp,
    Protocol::Loki,
    Protocol::Hec,
    Protocol::Datadog,
    Protocol::NativeOne,
    Protocol::GelfHttp,
];

impl Protocol {
    /// The name `--only` takes.
    fn key(self) -> &'static str {
        match self {
            Protocol::Native => "native",
            Protocol::Bulk => "bulk",
            Protocol::Beats => "beats",
            Protocol::Otlp => "otlp",
            Protocol::Loki => "loki",
            Protocol::Hec => "hec",
            Protocol::Datadog => "datadog",
            Protocol::NativeOne => "native1",
            Protocol::GelfHttp => "gelf-http",
        }
    }

    /// Events in each request (`batch` but for the one-message protocols).
    fn per_request(self, batch: usize) -> usize {
        match self {
            Protocol::NativeOne | Protocol::GelfHttp => 1,
            _ => batch,
        }
    }

    /// What its rate is compared with: native with as many events per request.
    fn reference(self) -> Protocol {
        match self {
            Protocol::NativeOne | Protocol::GelfHttp => Protocol::NativeOne,
            _ => Protocol::Native,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Protocol::Native => "native NDJSON",
            Protocol::Bulk => "_bulk",
            Protocol::Beats => "Beats",
            Protocol::Otlp => "OTLP/HTTP",
            Protocol::Loki => "Loki",
            Protocol::Hec => "Splunk HEC",
            Protocol::Datadog => "Datadog",
            Protocol::NativeOne => "native, 1/req",
            Protocol::GelfHttp => "GELF HTTP",
        }
    }

    /// An HTTP protocol's path, content type, and the status of success.
    fn http(self) -> Option<(&'static str, &'static str, u16)> {
        Some(match self {
            Protocol::Native => ("/v1/logs/bench", "application/x-ndjson", 200),
            Protocol::Bulk => ("/es/_bulk", "application/x-ndjson", 200),
            Protocol::Otlp => ("/v1/logs", "application/x-protobuf", 200),
            Protocol::Loki => ("/loki/api/v1/push", "application/x-protobuf", 204),
            Protocol::Hec => ("/services/collector/event", "application/json", 200),
            Protocol::Datadog => ("/api/v2/logs", "application/json", 202),
            Protocol::NativeOne => ("/v1/logs/bench", "application/x-ndjson", 200),
            Protocol::GelfHttp => ("/gelf", "application/json", 202),
            Protocol::Beats => return None,
        })
    }
}

struct Outcome {
    events_per_sec: f64,
    p50: Duration,
    p99: Duration,
    cpu_per_million: f64,
}

/// The same events as `ingest-bench`'s, one JSON document each.
fn events(n: usize) -> Vec<String> {
    let services = ["checkout", "cart", "search", "auth", "payments", "catalog"];
    let levels = ["info", "info", "info", "debug", "warn", "error"];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..n)
        .map(|_| {
            let service = services[(next() % 6) as usize];
            serde_json::json!({
                "@timestamp": "2026-11-30T10:00:00.000Z",
                "log": {"level": levels[(next() % 6) as usize]},
                "service": {"name": service},
                "host": {"name": format!("{service}-{}", next() % 12)},
                "trace": {"id": format!("{:016x}", next())},
                "message": "request completed",
                "http": {"method": "GET", "path": format!("/api/v1/items/{}", next() % 100_000), "status": 200},
                "duration_ms": next() % 2_000,
            })
            .to_string()
        })
        .collect()
}

/// Request bodies (native, `_bulk`) or windows (Beats), built before the
/// load so the client spends no CPU on them.
fn payloads(protocol: Protocol, events: &[String], batch: usize, level: u32) -> Vec<Vec<u8>> {
    events
        .chunks(protocol.per_request(batch))
        .map(|chunk| match protocol {
            Protocol::GelfHttp => gelf_message(&chunk[0]),
            Protocol::Native | Protocol::NativeOne => chunk
                .iter()
                .flat_map(|e| format!("{e}\n").into_bytes())
                .collect(),
            Protocol::Bulk => chunk
                .iter()
                .flat_map(|e| format!("{{\"index\":{{\"_index\":\"bench\"}}}}\n{e}\n").into_bytes())
                .collect(),
            Protocol::Otlp => compat_bodies::otlp(chunk),
            Protocol::Loki => compat_bodies::loki(chunk),
            Protocol::Hec => compat_bodies::hec(chunk),
            Protocol::Datadog => compat_bodies::datadog(chunk),
            Protocol::Beats => {
                let mut frames = Vec::new();
                for (i, e) in chunk.iter().enumerate() {
                    frames.extend_from_slice(b"2J");
                    frames.extend_from_slice(&(i as u32 + 1).to_be_bytes());
                    frames.extend_from_slice(&(e.len() as u32).to_be_bytes());
                    frames.extend_from_slice(e.as_bytes());
                }
                let mut out = b"2W".to_vec();
                out.extend_from_slice(&(chunk.len() as u32).to_be_bytes());
                if level == 0 {
                    out.extend(frames);
                } else {
                    let mut z = flate2::write::ZlibEncoder::new(
                        Vec::new(),
                        flate2::Compression::new(level),
                    );
                    z.write_all(&frames).expect("in-memory write");
                    let z = z.finish().expect("in-memory write");
                    out.extend_from_slice(b"2C");
                    out.extend_from_slice(&(z.len() as u32).to_be_bytes());
                    out.extend(z);
                }
                out
            }
        })
        .collect()
}

struct Gateway {
    child: Child,
    url: String,
    beats: SocketAddr,
    gelf: SocketAddr,
    data: PathBuf,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

fn start(binary: &PathBuf, round: usize) -> anyhow::Result<Gateway> {
    let data = std::env::temp_dir().join(format!("logway-compat-{}-{round}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(&data)?;
    let config = data.join("bench.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\ndata_dir = \"{}\"\n[[beats]]\naddr = \"127.0.0.1:0\"\ntenant = \"default\"\ntype = \"bench\"\nunauthenticated = true\n\
             [[gelf.listeners]]\naddr = \"127.0.0.1:0\"\nprotocol = \"udp\"\ntenant = \"default\"\ntype = \"bench_udp\"\nunauthenticated = true\n",
            data.join("data").display()
        ),
    )?;
    let mut child = Command::new(binary)
        .args(["serve", "--http-addr", "127.0.0.1:0", "--config"])
        .arg(&config)
        .env("RUST_LOG", "warn,logway=info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut http, mut beats, mut gelf) = (None, None, None);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let field = |name: &str| {
                let at = line.find(name)?;
                line[at + name.len()..]
                    .split_whitespace()
                    .next()
                    .map(str::to_string)
            };
            if http.is_none() && !line.contains("beats=") && !line.contains("gelf=") {
                http = field(" addr=");
            }
            if beats.is_none() {
                beats = field("beats=");
            }
            if gelf.is_none() {
                gelf = field("gelf=");
            }
            if let (Some(h), Some(b), Some(g)) = (&http, &beats, &gelf) {
                let _ = tx.send((h.clone(), b.clone(), g.clone()));
                http = Some(String::new());
                beats = Some(String::new());
                gelf = Some(String::new());
            }
            if line.contains("ERROR") || line.contains("WARN") {
                eprintln!("gateway: {line}");
            }
        }
    });
    let (http, beats, gelf) = rx
        .recv_timeout(Duration::from_secs(60))
        .context("gateway did not log its addresses")?;
    Ok(Gateway {
        child,
        url: format!("http://{http}"),
        beats: beats.parse()?,
        gelf: gelf.parse()?,
        data,
    })
}

async fn run(
    args: &Args,
    binary: &PathBuf,
    protocol: Protocol,
    payloads: Arc<Vec<Vec<u8>>>,
    round: usize,
) -> anyhow::Result<Outcome> {
    let gw = start(binary, round)?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections)
        .build()?;
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let cpu_start = cpu::seconds_of(gw.child.id());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for conn in 0..args.connections {
        let (client, stop, acked, payloads) = (
            client.clone(),
            stop.clone(),
            acked.clone(),
            payloads.clone(),
        );
        let (url, beats, batch) = (
            gw.url.clone(),
            gw.beats,
            protocol.per_request(args.batch) as u64,
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut beats_conn = None;
            let mut i = conn;
            while !stop.load(Ordering::Relaxed) {
                let body = payloads[i % payloads.len()].clone();
                i += 1;
                let t = Instant::now();
                let ok = match protocol.http() {
                    Some((path, ctype, success)) => {
                        let r = client
                            .post(format!("{url}{path}"))
                            .header("content-type", ctype)
                            .body(body)
                            .send()
                            .await;
                        match r {
                            Ok(r) if r.status() == success => {
                                if protocol == Protocol::Bulk {
                                    let text = r.text().await.unwrap_or_default();
                                    text.contains("\"errors\":false")
                                } else {
                                    // Read the answer, as a client does.
                                    r.bytes().await.is_ok()
                                }
                            }
                            _ => false,
                        }
                    }
                    None => {
                        if beats_conn.is_none() {
                            beats_conn = tokio::net::TcpStream::connect(beats).await.ok();
                        }
                        let Some(s) = beats_conn.as_mut() else {
                            continue;
                        };
                        let mut ack = [0u8; 6];
                        let mut ok = s.write_all(&body).await.is_ok();
                        while ok {
                            ok = s.read_exact(&mut ack).await.is_ok();
                            if ok && ack[2..] != [0, 0, 0, 0] {
                                break;
                            }
                        }
                        if !ok {
                            beats_conn = None;
                        }
                        ok
                    }
                };
                if ok {
                    latencies.push(t.elapsed());
                    acked.fetch_add(batch, Ordering::Relaxed);
                }
            }
            latencies
        }));
    }
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let secs = started.elapsed().as_secs_f64();
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await?);
    }
    latencies.sort();
    let total = acked.load(Ordering::Relaxed) as f64;
    // CPU of the load itself (the index catches up later in every variant).
    let cpu = cpu::seconds_of(gw.child.id()) - cpu_start;
    if total == 0.0 {
        bail!("{}: nothing was acked", protocol.name());
    }
    Ok(Outcome {
        events_per_sec: total / secs,
        p50: pct(&latencies, 0.5),
        p99: pct(&latencies, 0.99),
        cpu_per_million: cpu * 1e6 / total,
    })
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// GELF over UDP at `rate` messages a second for `seconds`: how many of
/// the messages sent were stored, and what the gateway counted as dropped.
/// A bench event as a GELF message: `short_message`, the other members
/// as `_` fields.
fn gelf_message(event: &str) -> Vec<u8> {
    let Ok(serde_json::Value::Object(m)) = serde_json::from_str(event) else {
        unreachable!("bench events are objects")
    };
    let mut g = serde_json::Map::new();
    g.insert("version".into(), "1.1".into());
    g.insert("host".into(), "bench".into());
    for (k, v) in m {
        match k.as_str() {
            "message" => g.insert("short_message".into(), v),
            _ => g.insert(format!("_{}", k.trim_start_matches('@')), v),
        };
    }
    serde_json::to_vec(&g).expect("JSON")
}

async fn gelf_udp(binary: &PathBuf, rate: u64, seconds: u64) -> anyhow::Result<()> {
    let gw = start(binary, usize::MAX)?;
    let messages: Vec<Vec<u8>> = events(1000).iter().map(|e| gelf_message(e)).collect();
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
    let total = rate * seconds;
    let started = Instant::now();
    let mut sent = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    while sent < total {
        tick.tick().await;
        let due = (started.elapsed().as_secs_f64() * rate as f64) as u64;
        while sent < due.min(total) {
            socket
                .send_to(&messages[(sent % 1000) as usize], gw.gelf)
                .await?;
            sent += 1;
        }
    }
    let send_secs = started.elapsed().as_secs_f64();
    // Stored: what the gateway counts as received, once it stops growing.
    let client = reqwest::Client::new();
    let metric = |text: &str, prefix: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let (mut stored, mut dropped, mut last_change) = (0.0, 0.0, Instant::now());
    while last_change.elapsed() < Duration::from_secs(3) && (stored as u64) < sent {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let text = client
            .get(format!("{}/metrics", gw.url))
            .send()
            .await?
            .text()
            .await?;
        let now = metric(
            &text,
            "logway_events_received_total{tenant=\"default\",type=\"bench_udp\"}",
        );
        // (+ 0.0: an empty sum is -0.0.)
        dropped = metric(&text, "logway_gelf_dropped_total") + 0.0;
        if now != stored {
            stored = now;
            last_change = Instant::now();
        }
    }
    println!(
        "GELF UDP: {sent} messages sent in {send_secs:.1} s ({:.0}/s), {stored:.0} stored, {:.0} lost ({:.3}%), {dropped:.0} counted as dropped by the gateway",
        sent as f64 / send_secs,
        sent as f64 - stored,
        (sent as f64 - stored) / sent as f64 * 100.0
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let binary = match &args.gateway {
        Some(p) => p.clone(),
        None => std::env::current_exe()?.with_file_name("logway"),
    };
    if !binary.exists() {
        bail!(
            "{} not found: cargo build --release -p logway",
            binary.display()
        );
    }
    if let Some(bad) = args
        .only
        .iter()
        .find(|o| !PROTOCOLS.iter().any(|p| p.key() == o.as_str()))
    {
        bail!("--only: unknown protocol `{bad}`");
    }
    let protocols: Vec<Protocol> = PROTOCOLS
        .into_iter()
        .filter(|p| {
            // A protocol's reference runs with it.
            args.only.is_empty()
                || *p == Protocol::Native
                || PROTOCOLS.iter().any(|q| {
                    (*q == *p || q.reference() == *p) && args.only.iter().any(|o| o == q.key())
                })
        })
        .collect();
    let events = events(args.batch * 64);
    println!(
        "load: {} connections, {} events per request/window (~{} B/event), {} s per run, {} rounds, Beats zlib level {}",
        args.connections,
        args.batch,
        events.iter().map(String::len).sum::<usize>() / events.len(),
        args.seconds,
        args.rounds,
        args.beats_compression
    );
    let mut results: Vec<(Protocol, Outcome)> = Vec::new();
    for round in 0..args.rounds {
        for k in 0..protocols.len() {
            let protocol = protocols[(round + k) % protocols.len()];
            let payloads = Arc::new(payloads(
                protocol,
                &events,
                args.batch,
                args.beats_compression,
            ));
            let o = run(&args, &binary, protocol, payloads, round).await?;
            println!(
                "round {} {:>14}: {:>9.0} events/s acked, ack p50 {:.1} ms p99 {:.1} ms, gateway CPU {:.1} s per 1M events (load only)",
                round + 1,
                protocol.name(),
                o.events_per_sec,
                ms(o.p50),
                ms(o.p99),
                o.cpu_per_million
            );
            results.push((protocol, o));
        }
    }
    let of = |p: Protocol, f: fn(&Outcome) -> f64| {
        median(
            results
                .iter()
                .filter(|r| r.0 == p)
                .map(|r| f(&r.1))
                .collect(),
        )
    };
    if args.rounds == 0 {
        if args.gelf_udp_rate > 0 {
            gelf_udp(&binary, args.gelf_udp_rate, args.gelf_udp_seconds).await?;
        }
        return Ok(());
    }
    println!("medians of {} rounds:", args.rounds);
    for p in protocols {
        let rate = of(p, |o| o.events_per_sec);
        let reference = p.reference();
        println!(
            "{:>14}: {:>9.0} events/s ({:.2}x {}), ack p99 {:.1} ms, {:.1} CPU-s per 1M events",
            p.name(),
            rate,
            rate / of(reference, |o| o.events_per_sec),
            reference.name(),
            of(p, |o| ms(o.p99)),
            of(p, |o| o.cpu_per_million)
        );
    }
    if args.gelf_udp_rate > 0 {
        gelf_udp(&binary, args.gelf_udp_rate, args.gelf_udp_seconds).await?;
    }
    Ok(())
}
