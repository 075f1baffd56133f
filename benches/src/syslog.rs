//! TCP syslog benchmark: Logway against rsyslog on the same machine, in the
//! same run, with the same lines.
//!
//! Sends N RFC 3164 lines of 196 bytes (newline framing) over 1 and 8
//! connections as fast as the receiver reads them, and times until every
//! line is durable (Logway: `logway_events_received_total`, counted after
//! the WAL fsync, every line parsed into fields) or written (rsyslog: lines
//! in its output file; imtcp → omfile with `sync="on"`, then without).
//! The lines have the variety of real service logs (see [`lines`]).
//!
//! Every receiver starts after `--settle` seconds (default 10) of quiet.
//! On the VMs we measure on, filling memory the kernel freed a moment ago
//! (the previous receiver's deleted files) is several times faster than
//! filling memory left alone for a while (`dd` of 400 MB into a new file:
//! 1.3-1.6 s, 0.22-0.25 s right after deleting one that size). Without the
//! pause each receiver's speed depended on what ran before it: rsyslog's
//! unsynced run inherited its synced run's pages (8 connections: 633k and
//! 651k lines/s with no pause, 547k and 503k after 12 s).
//!
//! ```text
//! apt-get install rsyslog
//! cargo build --release -p logway -p logway-bench
//! target/release/syslog-bench --lines 1000000
//! # two builds of Logway, one after the other in each round, no rsyslog:
//! target/release/syslog-bench --connections 8 --no-rsyslog --gateway old/logway,new/logway
//! ```

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

mod common;
use clap::Parser;
use common::{fetch_metrics, free_port, metric};
use tokio::io::AsyncWriteExt;

#[derive(Parser)]
struct Args {
    /// Lines per measurement.
    #[arg(long, default_value_t = 1_000_000)]
    lines: usize,
    /// Connection counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,8")]
    connections: Vec<usize>,
    /// Logway binaries to measure, in this order in every round (default:
    /// `logway` next to this program). Give two to compare builds in the
    /// same run.
    #[arg(long, value_delimiter = ',')]
    gateway: Vec<PathBuf>,
    /// Measure Logway only (for comparing builds quickly).
    #[arg(long)]
    no_rsyslog: bool,
    /// Skip Logway (rsyslog only).
    #[arg(long)]
    no_logway: bool,
    /// Write the lines to this file and exit (to look at them, or at how
    /// well they compress).
    #[arg(long)]
    write_lines: Option<PathBuf>,
    /// Seconds of quiet before each receiver starts (see the module doc).
    #[arg(long, default_value_t = 10)]
    settle: u64,
    #[arg(long, default_value = "/usr/sbin/rsyslogd")]
    rsyslogd: PathBuf,
    /// `server.background_nice` values to measure Logway with (the hot
    /// indexer's and archive writer's CPU priority; 10 is the default).
    #[arg(long, value_delimiter = ',', default_value = "10")]
    background_nice: Vec<i32>,
}

const LINE_BYTES: usize = 196;

/// N RFC 3164 lines of `LINE_BYTES` bytes with the variety of real service
/// logs (request lines, sshd, job workers: varying numbers, addresses,
/// users, hex ids), from a fixed seed. Content matters to Logway, which
/// compresses its WAL batches: a run of one repeated byte would flatter it.
fn lines(n: usize) -> Vec<u8> {
    const USERS: [&str; 8] = [
        "alice",
        "bob",
        "carol",
        "deploy",
        "root",
        "svc-orders",
        "mallory",
        "ci",
    ];
    const PATHS: [&str; 6] = [
        "orders",
        "carts",
        "users",
        "search",
        "checkout",
        "inventory",
    ];
    const WORDS: [&str; 12] = [
        "cache",
        "miss",
        "retry",
        "upstream",
        "region=eu-west-1",
        "pool",
        "tls",
        "gzip",
        "shard",
        "ok",
        "slow",
        "warm",
    ];
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        // xorshift64*
        rng ^= rng >> 12;
        rng ^= rng << 25;
        rng ^= rng >> 27;
        rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let mut out = Vec::with_capacity(n * LINE_BYTES);
    for i in 0..n {
        let r = next();
        let ip = format!("10.{}.{}.{}", r % 4, (r >> 8) % 256, (r >> 16) % 256);
        let user = USERS[(r >> 24) as usize % USERS.len()];
        let (app, message) = match (r >> 32) % 4 {
            0 => (
                "api",
                format!(
                    "GET /api/v1/{}/{} {} {}ms bytes={} user={user} client={ip} trace={:016x}",
                    PATHS[(r >> 36) as usize % PATHS.len()],
                    (r >> 40) % 100_000,
                    [200, 200, 200, 201, 204, 304, 404, 500][(r >> 44) as usize % 8],
                    (r >> 48) % 900,
                    (r >> 20) % 60_000,
                    next()
                ),
            ),
            1 => (
                "sshd",
                format!(
                    "Accepted publickey for {user} from {ip} port {} ssh2: ED25519 SHA256:{:016x}{:08x}",
                    1024 + (r >> 36) % 60_000,
                    next(),
                    next() as u32
                ),
            ),
            2 => (
                "worker",
                format!(
                    "job {:08x}-{:04x} finished in {} ms queue={} attempts={} owner={user}",
                    next() as u32,
                    (r >> 40) as u16,
                    (r >> 20) % 5000,
                    (r >> 36) % 64,
                    1 + (r >> 44) % 3
                ),
            ),
            _ => (
                "proxy",
                format!(
                    "connection from {ip} closed after {} requests, {} KiB sent, {} KiB received",
                    (r >> 36) % 500,
                    (r >> 20) % 10_000,
                    (r >> 44) % 2_000
                ),
            ),
        };
        let mut line = format!(
            "<{}>Nov 21 10:{:02}:{:02} host-{} {app}[{}]: {message}",
            8 + r % 8,
            (i / 60_000) % 60,
            (i / 1000) % 60,
            i % 16,
            1000 + i % 7
        )
        .into_bytes();
        while line.len() < LINE_BYTES - 1 {
            line.push(b' ');
            line.extend_from_slice(WORDS[(next() % WORDS.len() as u64) as usize].as_bytes());
        }
        line.truncate(LINE_BYTES - 1);
        line.push(b'\n');
        out.extend_from_slice(&line);
    }
    out
}

async fn wait_port(port: u16) -> anyhow::Result<()> {
    for _ in 0..500 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("nothing listens on port {port}")
}

/// Sends `data` (whole lines) split over `conns` connections.
async fn send(port: u16, data: &[u8], conns: usize) -> anyhow::Result<()> {
    let per = data.len() / LINE_BYTES / conns * LINE_BYTES;
    let mut tasks = Vec::new();
    for c in 0..conns {
        let end = if c + 1 == conns {
            data.len()
        } else {
            (c + 1) * per
        };
        let part = data[c * per..end].to_vec();
        tasks.push(tokio::spawn(async move {
            let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
            s.write_all(&part).await?;
            s.shutdown().await?;
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// How to start one receiver in a fresh directory.
type Starter = Box<dyn Fn(&Path) -> anyhow::Result<Target>>;

struct Target {
    child: Child,
    port: u16,
    progress: Progress,
}

/// How to tell how many lines a receiver has made durable.
enum Progress {
    /// Logway: its `logway_events_received_total` at this HTTP address.
    Metrics(String),
    /// rsyslog: newlines in its output file.
    File(LineCounter),
}

fn start_logway(bin: &Path, dir: &Path, nice: i32) -> anyhow::Result<Target> {
    let port = free_port();
    let http = free_port();
    let config = dir.join("logway.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nhttp_addr = \"127.0.0.1:{http}\"\nbackground_nice = {nice}\n[storage]\ndata_dir = \"{}\"\n[[syslog]]\naddr = \"127.0.0.1:{port}\"\ntenant = \"default\"\ntype = \"syslog\"\nunauthenticated = true\n",
            dir.join("data").display()
        ),
    )?;
    let child = Command::new(bin)
        .args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    Ok(Target {
        child,
        port,
        progress: Progress::Metrics(format!("http://127.0.0.1:{http}")),
    })
}

fn start_rsyslog(bin: &Path, dir: &Path, sync: bool) -> anyhow::Result<Target> {
    let port = free_port();
    let out = dir.join("out.log");
    let config = dir.join("rsyslog.conf");
    std::fs::write(
        &config,
        format!(
            "global(workDirectory=\"{dir}\")\nmodule(load=\"imtcp\")\ninput(type=\"imtcp\" port=\"{port}\" ruleset=\"bench\")\nruleset(name=\"bench\") {{ action(type=\"omfile\" file=\"{out}\" sync=\"{sync}\") }}\n",
            dir = dir.display(),
            out = out.display(),
            sync = if sync { "on" } else { "off" },
        ),
    )?;
    let child = Command::new(bin)
        .arg("-n")
        .arg("-f")
        .arg(&config)
        .arg("-i")
        .arg(dir.join("rsyslogd.pid"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    Ok(Target {
        child,
        port,
        progress: Progress::File(LineCounter {
            path: out,
            offset: 0,
            count: 0,
        }),
    })
}

/// Newlines in a file, read incrementally.
struct LineCounter {
    path: PathBuf,
    offset: u64,
    count: usize,
}

impl LineCounter {
    fn poll(&mut self) -> usize {
        use std::io::{Read, Seek, SeekFrom};
        if let Ok(mut f) = std::fs::File::open(&self.path)
            && f.seek(SeekFrom::Start(self.offset)).is_ok()
        {
            let mut buf = Vec::new();
            if let Ok(n) = f.read_to_end(&mut buf) {
                self.offset += n as u64;
                self.count += buf.iter().filter(|&&b| b == b'\n').count();
            }
        }
        self.count
    }
}

async fn measure(target: &mut Target, data: &[u8], n: usize, conns: usize) -> anyhow::Result<f64> {
    wait_port(target.port).await?;
    let client = reqwest::Client::new();
    let start = Instant::now();
    send(target.port, data, conns).await?;
    loop {
        let done = match &mut target.progress {
            Progress::Metrics(url) => metric(
                &fetch_metrics(&client, url).await?,
                "logway_events_received_total",
            ) as usize,
            Progress::File(counter) => counter.poll(),
        };
        if done >= n {
            break;
        }
        if start.elapsed() > Duration::from_secs(300) {
            bail!("only {done} of {n} lines arrived");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

fn stop(mut t: Target) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(t.child.id().to_string())
        .status();
    let _ = t.child.wait();
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let data = lines(args.lines);
    if let Some(path) = &args.write_lines {
        std::fs::write(path, &data)?;
        return Ok(());
    }
    let gateways = if args.gateway.is_empty() {
        vec![std::env::current_exe()?.with_file_name("logway")]
    } else {
        args.gateway.clone()
    };
    if !args.no_rsyslog && !args.rsyslogd.exists() {
        bail!(
            "{} not found: apt-get install rsyslog",
            args.rsyslogd.display()
        );
    }
    println!(
        "{} lines of {LINE_BYTES} bytes, RFC 3164, newline framing",
        args.lines
    );
    for &conns in &args.connections {
        let mut results = Vec::new();
        let mut runs: Vec<(String, Starter)> = Vec::new();
        for (i, gateway) in gateways.iter().enumerate().filter(|_| !args.no_logway) {
            let build = if gateways.len() > 1 {
                format!("[{i}]")
            } else {
                String::new()
            };
            for &nice in &args.background_nice {
                let gateway = gateway.clone();
                runs.push((
                    format!("logway{build} nice={nice}"),
                    Box::new(move |dir| start_logway(&gateway, dir, nice)),
                ));
            }
        }
        if !args.no_rsyslog {
            for sync in [true, false] {
                let bin = args.rsyslogd.clone();
                runs.push((
                    format!("rsyslog sync={}", if sync { "on" } else { "off" }),
                    Box::new(move |dir| start_rsyslog(&bin, dir, sync)),
                ));
            }
        }
        let names: Vec<&str> = runs.iter().map(|(name, _)| name.as_str()).collect();
        for (name, start) in &runs {
            tokio::time::sleep(Duration::from_secs(args.settle)).await;
            let dir = tempfile_dir(name)?;
            let mut target = start(&dir)?;
            let rate = measure(&mut target, &data, args.lines, conns)
                .await
                .with_context(|| name.to_string());
            stop(target);
            let _ = std::fs::remove_dir_all(&dir);
            let rate = rate?;
            println!("{conns} connection(s)  {name:<18} {rate:>10.0} lines/s");
            results.push(rate);
        }
        if args.no_rsyslog {
            continue;
        }
        let (durable, top) = (results[results.len() - 2], results[results.len() - 1]);
        for (name, rate) in names.iter().zip(&results) {
            if name.starts_with("logway") {
                println!(
                    "{conns} connection(s)  {name} / rsyslog sync=on = {:.2}x, / rsyslog sync=off = {:.2}x",
                    rate / durable,
                    rate / top
                );
            }
        }
    }
    Ok(())
}

fn tempfile_dir(name: &str) -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "logway-syslog-bench-{}-{}",
        std::process::id(),
        name.replace([' ', '='], "-")
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
