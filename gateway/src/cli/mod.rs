//! The `logway` command: `serve` runs a gateway; `search`, `replay` and
//! `filter upload|list|delete` talk to a running one ([`client`]), as do
//! `alert …` ([`alerts`]); `filter test` runs a filter locally.

mod alerts;
mod client;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::Config;

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
    /// List, apply, delete, mute or test alert rules.
    Alert {
        #[command(subcommand)]
        command: alerts::AlertCommand,
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

/// Parses the command line and runs it on a multi-threaded runtime.
pub fn main() -> anyhow::Result<()> {
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
            let _telemetry = crate::telemetry::init_tracing(&first.telemetry)?;
            let mut gateway = crate::server::start(first).await?;
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
        } => client::search(&url, key, query, from, to, log_type, limit).await,
        Command::Filter {
            command:
                FilterCommand::Test {
                    component,
                    config,
                    log_type,
                },
        } => filter_test(component, config, log_type).await,
        Command::Filter { command } => client::filter(command).await,
        Command::Alert { command } => alerts::run(command).await,
        Command::Replay {
            log_type,
            from,
            to,
            query,
            remote,
        } => client::replay(log_type, from, to, query, remote).await,
    }
}

/// `logway filter test`: a filter over events from stdin, no server.
async fn filter_test(
    component: PathBuf,
    config: Vec<(String, String)>,
    log_type: String,
) -> anyhow::Result<()> {
    let wasm = std::fs::read(&component)
        .with_context(|| format!("cannot read {}", component.display()))?;
    let summary = tokio::task::spawn_blocking(move || {
        let stdin = std::io::stdin().lock();
        let stdout = std::io::stdout().lock();
        crate::filter::local::run(&wasm, &config, &log_type, stdin, stdout)
    })
    .await??;
    eprintln!(
        "{} events: {} kept, {} dropped, {} changed",
        summary.events, summary.kept, summary.dropped, summary.changed
    );
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
