//! `logway`: parse the command line, load config, set up tracing, run.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use logway::Config;

// jemalloc keeps RSS flat under many short-lived allocations on many
// threads, where glibc's per-thread arenas fragment (measured: see README).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Threads for blocking work (decoding request bodies, searches).
const MAX_BLOCKING_THREADS: usize = 16;

#[derive(Parser)]
#[command(
    name = "logway",
    version,
    about = "A WebAssembly-extensible edge ingestion gateway for logs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (embedded defaults unless --config is given).
    Serve {
        /// TOML config file; LOGWAY_* environment variables override it.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Data directory (overrides storage.data_dir).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// HTTP listen address (overrides server.http_addr).
        #[arg(long)]
        http_addr: Option<std::net::SocketAddr>,
    },
    /// Search a running gateway; prints matching events as NDJSON, newest first.
    Search {
        /// Query, e.g. 'level:error AND service:checkout'; empty matches all.
        #[arg(default_value = "")]
        query: String,
        /// Gateway URL.
        #[arg(long, default_value = "http://127.0.0.1:8080", env = "LOGWAY_URL")]
        url: String,
        /// Admin key (not needed with the embedded defaults).
        #[arg(long, env = "LOGWAY_KEY", hide_env_values = true)]
        key: Option<String>,
        /// Start: RFC 3339, epoch, `now-1h`.
        #[arg(long)]
        from: Option<String>,
        /// End (exclusive).
        #[arg(long)]
        to: Option<String>,
        /// Only this log type.
        #[arg(long = "type")]
        log_type: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Replay archived events of a time range into the hot tier; shows
    /// progress and exits non-zero if the job fails or reports errors.
    Replay {
        /// Only this log type (default: every type of the tenant).
        #[arg(long = "type")]
        log_type: Option<String>,
        /// Start of the receive-time range: RFC 3339, epoch, `now-2d`.
        #[arg(long)]
        from: String,
        /// End (exclusive).
        #[arg(long, default_value = "now")]
        to: String,
        /// Only events matching this search query.
        #[arg(long)]
        query: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Test, upload, list or delete WASM filters.
    Filter {
        #[command(subcommand)]
        command: FilterCommand,
    },
}

/// Where a running gateway is and the tenant's admin key.
#[derive(clap::Args)]
struct Remote {
    /// Gateway URL.
    #[arg(long, default_value = "http://127.0.0.1:8080", env = "LOGWAY_URL")]
    url: String,
    /// Admin key (not needed with the embedded defaults).
    #[arg(long, env = "LOGWAY_KEY", hide_env_values = true)]
    key: Option<String>,
}

#[derive(Subcommand)]
enum FilterCommand {
    /// Run a filter over events from stdin (NDJSON or text lines) without a
    /// server; prints one verdict per event as NDJSON.
    Test {
        /// The component (`cargo build --release --target wasm32-wasip2`).
        component: PathBuf,
        /// Filter config, as a route gives it: `--config fields=message`.
        #[arg(long = "config", value_parser = key_value)]
        config: Vec<(String, String)>,
        /// The log type the batch context names.
        #[arg(long = "type", default_value = "test_logs")]
        log_type: String,
    },
    /// Upload a component as the tenant's filter NAME (a new version if it exists).
    Upload {
        name: String,
        component: PathBuf,
        #[command(flatten)]
        remote: Remote,
    },
    /// List the tenant's filters with version, hash, size and stats.
    List {
        #[command(flatten)]
        remote: Remote,
    },
    /// Delete the tenant's filter NAME.
    Delete {
        name: String,
        /// Delete even while routes use it (their events become dead letters).
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        remote: Remote,
    },
}

fn key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("`{s}` is not key=value"))
}

fn main() -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .build()?
        .block_on(run(Cli::parse()))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve {
            config,
            data_dir,
            http_addr,
        } => {
            let load = || -> anyhow::Result<Config> {
                let mut c = Config::load(config.as_deref())?;
                if let Some(dir) = &data_dir {
                    c.storage.data_dir = dir.clone();
                }
                if let Some(addr) = http_addr {
                    c.server.http_addr = addr;
                }
                c.validate()?;
                Ok(c)
            };
            let first = load()?;
            let _telemetry = logway::telemetry::init_tracing(&first.telemetry)?;
            let mut gateway = logway::start(first).await?;
            let stop = shutdown_signal();
            tokio::pin!(stop);
            let mut hangup =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
            loop {
                tokio::select! {
                    _ = &mut stop => return gateway.shutdown().await,
                    result = gateway.stopped() => return result,
                    _ = hangup.recv() => {
                        // A bad file keeps the running config, loudly.
                        match load().and_then(|c| gateway.reload(&c)) {
                            Ok(()) => {}
                            Err(e) => tracing::error!(error = %format!("{e:#}"), "config reload failed; keeping the current config"),
                        }
                    }
                }
            }
        }
        Command::Search {
            query,
            url,
            key,
            from,
            to,
            log_type,
            limit,
        } => search(&url, key, query, from, to, log_type, limit).await,
        Command::Filter { command } => filter(command).await,
        Command::Replay {
            log_type,
            from,
            to,
            query,
            remote,
        } => replay(log_type, from, to, query, remote).await,
    }
}

async fn replay(
    log_type: Option<String>,
    from: String,
    to: String,
    query: Option<String>,
    remote: Remote,
) -> anyhow::Result<()> {
    use std::io::Write;
    let client = reqwest::Client::new();
    let base = format!("{}/api/v1/replay", remote.url.trim_end_matches('/'));
    let send = |req| call(req, remote.key.as_deref(), &remote.url);
    let job = send(
        client
            .post(&base)
            .json(&serde_json::json!({"type": log_type, "from": from, "to": to, "query": query})),
    )
    .await?;
    let id = job["id"]
        .as_str()
        .context("no job id in the answer")?
        .to_string();
    eprintln!("replay job {id}");
    let progress = loop {
        let p = send(client.get(format!("{base}/{id}"))).await?;
        let (done, total) = (
            p["objects_done"].as_u64().unwrap_or(0),
            p["objects_total"].as_u64().unwrap_or(0),
        );
        let width = 30;
        let filled = (done * width).checked_div(total).unwrap_or(0).min(width) as usize;
        eprint!(
            "\r[{}{}] {done}/{total} objects, {} events indexed, {} duplicates, {}/s{}   ",
            "#".repeat(filled),
            "-".repeat(width as usize - filled),
            p["events_indexed"],
            p["duplicates_skipped"],
            p["events_per_sec"],
            p["eta_seconds"]
                .as_f64()
                .map(|e| format!(", ETA {e:.0}s"))
                .unwrap_or_default(),
        );
        let _ = std::io::stderr().flush();
        if !matches!(p["state"].as_str(), Some("queued" | "running")) {
            eprintln!();
            break p;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    };
    println!("{}", serde_json::to_string_pretty(&progress)?);
    match progress["state"].as_str() {
        Some("done") if progress["error_count"].as_u64() == Some(0) => Ok(()),
        Some("done") => bail!("replay finished with {} errors", progress["error_count"]),
        other => bail!("replay {}", other.unwrap_or("ended in an unknown state")),
    }
}

async fn filter(command: FilterCommand) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let (req, remote) = match command {
        FilterCommand::Test {
            component,
            config,
            log_type,
        } => {
            let wasm = std::fs::read(&component)
                .with_context(|| format!("cannot read {}", component.display()))?;
            let summary = tokio::task::spawn_blocking(move || {
                let stdin = std::io::stdin().lock();
                let stdout = std::io::stdout().lock();
                logway::filter::local::run(&wasm, &config, &log_type, stdin, stdout)
            })
            .await??;
            eprintln!(
                "{} events: {} kept, {} dropped, {} changed",
                summary.events, summary.kept, summary.dropped, summary.changed
            );
            return Ok(());
        }
        FilterCommand::Upload {
            name,
            component,
            remote,
        } => {
            let wasm = std::fs::read(&component)
                .with_context(|| format!("cannot read {}", component.display()))?;
            let url = format!("{}/api/v1/filters/{name}", remote.url.trim_end_matches('/'));
            (client.put(url).body(wasm), remote)
        }
        FilterCommand::List { remote } => {
            let url = format!("{}/api/v1/filters", remote.url.trim_end_matches('/'));
            (client.get(url), remote)
        }
        FilterCommand::Delete {
            name,
            force,
            remote,
        } => {
            let url = format!("{}/api/v1/filters/{name}", remote.url.trim_end_matches('/'));
            let req = client.delete(url).query(&[("force", force)]);
            (req, remote)
        }
    };
    let body = call(req, remote.key.as_deref(), &remote.url).await?;
    if !body.is_null() {
        println!("{}", serde_json::to_string_pretty(&body)?);
    }
    Ok(())
}

/// Sends a request to a running gateway (with the key, if any): its JSON
/// answer (`null` when empty), or an error with the gateway's message.
async fn call(
    req: reqwest::RequestBuilder,
    key: Option<&str>,
    url: &str,
) -> anyhow::Result<serde_json::Value> {
    let req = match key {
        Some(k) => req.bearer_auth(k),
        None => req,
    };
    let resp = req
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = resp.status();
    let text = resp.text().await?;
    let body: serde_json::Value = if text.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(&text).context("the gateway answered something that is not JSON")?
    };
    if !status.is_success() {
        bail!(
            "{status}: {}",
            body["error"]["message"].as_str().unwrap_or(&text)
        );
    }
    Ok(body)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

async fn search(
    url: &str,
    key: Option<String>,
    query: String,
    from: Option<String>,
    to: Option<String>,
    log_type: Option<String>,
    limit: usize,
) -> anyhow::Result<()> {
    let mut params = vec![("q", query), ("limit", limit.to_string())];
    params.extend(from.map(|v| ("from", v)));
    params.extend(to.map(|v| ("to", v)));
    params.extend(log_type.map(|v| ("type", v)));
    let req = reqwest::Client::new()
        .get(format!("{}/api/v1/search", url.trim_end_matches('/')))
        .query(&params);
    let body = call(req, key.as_deref(), url).await?;
    let mut out = std::io::stdout().lock();
    use std::io::Write;
    for hit in body["hits"].as_array().into_iter().flatten() {
        writeln!(out, "{hit}")?;
    }
    eprintln!(
        "{} of {} matching events",
        body["hits"].as_array().map_or(0, |h| h.len()),
        body["total"]
    );
    Ok(())
}
