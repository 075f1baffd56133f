//! TCP syslog benchmark: Logway against rsyslog on the same machine, in the
//! same run, with the same lines.
//!
//! Sends N RFC 3164 lines of 196 bytes (newline framing) over 1 and 8
//! connections as fast as the receiver reads them, and times until every
//! line is durable (Logway: `logway_events_received_total`, counted after
//! the WAL fsync, every line parsed into fields) or written (rsyslog: lines
//! in its output file; imtcp → omfile with `sync="on"`, then without).
//!
//! ```text
//! apt-get install rsyslog
//! cargo build --release -p logway -p logway-bench
//! target/release/syslog-bench --lines 1000000
//! ```

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

mod common;
use clap::Parser;
use common::{fetch_metrics, metric};
use tokio::io::AsyncWriteExt;

#[derive(Parser)]
struct Args {
    /// Lines per measurement.
    #[arg(long, default_value_t = 1_000_000)]
    lines: usize,
    /// Connection counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,8")]
    connections: Vec<usize>,
    #[arg(long)]
    gateway: Option<PathBuf>,
    #[arg(long, default_value = "/usr/sbin/rsyslogd")]
    rsyslogd: PathBuf,
    /// `server.background_nice` values to measure Logway with (the hot
    /// indexer's and archive writer's CPU priority; 10 is the default).
    #[arg(long, value_delimiter = ',', default_value = "10")]
    background_nice: Vec<i32>,
}

const LINE_BYTES: usize = 196;

fn lines(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n * LINE_BYTES);
    for i in 0..n {
        let head = format!(
            "<13>Nov 21 10:00:00 host-{} app[{}]: request {i} served ",
            i % 16,
            1000 + i % 7
        );
        let mut line = head.into_bytes();
        line.resize(LINE_BYTES - 1, b'x');
        line.push(b'\n');
        out.extend_from_slice(&line);
    }
    out
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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
    let gateway = args
        .gateway
        .clone()
        .unwrap_or_else(|| std::env::current_exe().unwrap().with_file_name("logway"));
    if !args.rsyslogd.exists() {
        bail!(
            "{} not found: apt-get install rsyslog",
            args.rsyslogd.display()
        );
    }
    let data = lines(args.lines);
    println!(
        "{} lines of {LINE_BYTES} bytes, RFC 3164, newline framing",
        args.lines
    );
    for &conns in &args.connections {
        let mut results = Vec::new();
        let mut names: Vec<String> = args
            .background_nice
            .iter()
            .map(|n| format!("logway nice={n}"))
            .collect();
        names.extend([
            "rsyslog sync=on".to_string(),
            "rsyslog sync=off".to_string(),
        ]);
        for name in &names {
            let name = name.as_str();
            let dir = tempfile_dir(name)?;
            let mut target = match name.strip_prefix("logway nice=") {
                Some(nice) => start_logway(&gateway, &dir, nice.parse()?)?,
                None if name == "rsyslog sync=on" => start_rsyslog(&args.rsyslogd, &dir, true)?,
                None => start_rsyslog(&args.rsyslogd, &dir, false)?,
            };
            let rate = measure(&mut target, &data, args.lines, conns)
                .await
                .with_context(|| name.to_string());
            stop(target);
            let _ = std::fs::remove_dir_all(&dir);
            let rate = rate?;
            println!("{conns} connection(s)  {name:<18} {rate:>10.0} lines/s");
            results.push(rate);
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
