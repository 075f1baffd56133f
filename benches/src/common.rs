//! What several benchmark programs need: starting the gateway, reading its
//! metrics.

// Each bench program uses only some of these.
#![allow(dead_code)]

/// Sum of the samples of every series whose line starts with `prefix`.
pub fn metric(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The gateway's `/metrics` text.
pub async fn fetch_metrics(client: &reqwest::Client, url: &str) -> anyhow::Result<String> {
    Ok(client
        .get(format!("{url}/metrics"))
        .send()
        .await?
        .text()
        .await?)
}

/// Starts the `logway` binary at `gateway` on 127.0.0.1:0 over `data`
/// (with `config` if given); returns the child and its URL once it has
/// logged its address. Its warnings and errors are echoed.
pub async fn spawn_gateway(
    gateway: &std::path::Path,
    data: &std::path::Path,
    config: Option<&std::path::Path>,
) -> anyhow::Result<(std::process::Child, String)> {
    spawn_node(gateway, data, config, "127.0.0.1:0", &[]).await
}

/// [`spawn_gateway`] listening on `addr`, with `env` (e.g. a cluster
/// node's `LOGWAY_CLUSTER__PEERS`).
pub async fn spawn_node(
    gateway: &std::path::Path,
    data: &std::path::Path,
    config: Option<&std::path::Path>,
    addr: &str,
    env: &[(String, String)],
) -> anyhow::Result<(std::process::Child, String)> {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    use anyhow::Context;

    let mut command = Command::new(gateway);
    command
        .args(["serve", "--http-addr", addr, "--data-dir"])
        .arg(data);
    if let Some(config) = config {
        command.arg("--config").arg(config);
    }
    let mut child = command
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("RUST_LOG", "warn,logway=info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", gateway.display()))?;
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(i) = line.find("addr=") {
                // Only the first send matters; later ones fail harmlessly.
                let _ = tx.send(
                    line[i + 5..]
                        .split_whitespace()
                        .next()
                        .unwrap_or("")
                        .to_string(),
                );
            }
            if line.contains("ERROR") || line.contains("WARN") {
                eprintln!("gateway: {line}");
            }
        }
    });
    let addr = rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .context("gateway did not log its address")?;
    Ok((child, format!("http://{addr}")))
}

/// Waits (up to 10 s) until the gateway at `url` is ready.
pub async fn wait_ready(client: &reqwest::Client, url: &str) {
    for _ in 0..500 {
        if client
            .get(format!("{url}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The `p` quantile (0..=1) of sorted durations.
pub fn percentile(sorted: &[std::time::Duration], p: f64) -> std::time::Duration {
    if sorted.is_empty() {
        return std::time::Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// A `/proc/<pid>/status` field in KiB (`VmHWM:`: peak RSS).
pub fn proc_status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// Cores and CPU model, for the report's header.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    format!("{cores} cores, {cpu}")
}

/// The gateway binary: `--gateway`, else `logway` next to this bench.
pub fn gateway_binary(arg: Option<&std::path::Path>) -> anyhow::Result<std::path::PathBuf> {
    let gateway = match arg {
        Some(p) => p.to_path_buf(),
        None => std::env::current_exe()?.with_file_name("logway"),
    };
    if !gateway.exists() {
        anyhow::bail!(
            "{} not found: cargo build --release -p logway",
            gateway.display()
        );
    }
    Ok(gateway)
}

/// The median (the upper one of an even count).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The data directory: `arg`, kept; else a temporary one named after the
/// bench (`true`: remove it at the end).
pub fn data_dir(arg: Option<&std::path::Path>, bench: &str) -> (std::path::PathBuf, bool) {
    match arg {
        Some(d) => (d.to_path_buf(), false),
        None => (
            std::env::temp_dir().join(format!("logway-{bench}-{}", std::process::id())),
            true,
        ),
    }
}

/// A port free on loopback now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on loopback")
}

/// Asks process `pid` to stop (SIGTERM).
pub fn sigterm(pid: u32) {
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
}

/// How long after `since` a search on the gateway at `url` first finds
/// the event holding `token`, asking every `poll`; `None` after `give_up`.
pub async fn searchable_after(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    since: std::time::Instant,
    give_up: std::time::Duration,
    poll: std::time::Duration,
) -> Option<std::time::Duration> {
    loop {
        let r = client
            .get(format!("{url}/api/v1/search"))
            .query(&[("q", token), ("limit", "1")])
            .send()
            .await;
        if let Ok(r) = r
            && let Ok(v) = r.json::<serde_json::Value>().await
            && v["total"].as_u64() == Some(1)
        {
            return Some(since.elapsed());
        }
        if since.elapsed() > give_up {
            return None;
        }
        tokio::time::sleep(poll).await;
    }
}
