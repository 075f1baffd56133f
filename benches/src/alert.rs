//! Alert rules benchmark: whether 1,000 rules keep up over a hot tier of
//! millions of events while ingest runs, and what they cost ingest.
//!
//! ```text
//! cargo build --release -p logway -p logway-bench
//! target/release/alert-bench --events 10000000 --rules 1000 --grouped 50
//! ```
//!
//! Starts the release gateway as a child (one tenant, a webhook receiver
//! served by this program; a temp data directory, or `--data DIR` to keep
//! a loaded one between runs) and loads `--events` events spread over the
//! last 7 days (the corpus of `week.rs`), waiting until search counts them
//! all. Then it runs ingest rounds of `--seconds` at `--rate` events/s
//! (events of the last minute), alternating rounds without rules and with
//! `--rules` rules: every kind (4 in 10 frequency, 2 flatline, 2 spike, 1
//! new_value, 1 any), `--grouped` of them with `group_by`, evaluated every
//! `--interval` over `--window`, all delivered to the webhook. A rule's
//! first evaluation counts its whole window (later ones what was indexed
//! since), so a round with rules starts with ingest until every rule has
//! had two and an interval passed without a missed evaluation (the
//! warm-up, reported apart), and then measures. For each
//! round it prints the acked events/s and the gateway's CPU per event; for
//! rounds with rules, the evaluations that ran, were missed (started more
//! than an interval late) or went over budget, how long one pass over all
//! rules takes (the sum of each rule's last evaluation time) against the
//! interval, the slowest rule, and the notifications delivered. Medians
//! close the run.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::bail;
use clap::Parser;
use serde_json::{Value, json};

mod common;
mod cpu;
mod week;
use common::{
    fetch_metrics, gateway_binary, machine, median, metric, proc_status_kib, spawn_gateway,
    wait_ready,
};
use week::timed_round;

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
struct Args {
    /// Events in the hot tier before the rounds.
    #[arg(long, default_value_t = 10_000_000)]
    events: u64,
    /// Rules in the rounds with rules.
    #[arg(long, default_value_t = 1000)]
    rules: usize,
    /// Rules with `group_by` among them.
    #[arg(long, default_value_t = 50)]
    grouped: usize,
    /// Each rule's evaluation interval.
    #[arg(long, default_value = "30s")]
    interval: String,
    /// Each rule's window.
    #[arg(long, default_value = "5m")]
    window: String,
    /// Seconds per ingest round.
    #[arg(long, default_value_t = 90)]
    seconds: u64,
    /// Rounds of each kind (without and with rules), alternating.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Offered ingest, events/s (0: as fast as the gateway takes them).
    #[arg(long, default_value_t = 100_000)]
    rate: u64,
    /// Load connections.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Keep the data here (a run finding it loaded skips the load).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Scatter the loaded events' times over the week (every segment then
    /// spans all of it), instead of loading the week in order as a
    /// gateway ingests it.
    #[arg(long)]
    scattered: bool,
    /// After the rounds: create the rules, warm up, stop the gateway
    /// (SIGTERM) and start it again on the same data, and time the
    /// warm-up after the restart.
    #[arg(long)]
    restart: bool,
    /// The gateway binary (default: `logway` next to this one).
    #[arg(long)]
    gateway: Option<PathBuf>,
}

/// Rule `i` of the mix.
fn rule(i: usize, grouped: bool, interval: &str, window: &str) -> Value {
    let queries = [
        "level:error".to_string(),
        format!("service:svc-{:02}", i % 20),
        "status:500".to_string(),
        format!("host:web-{:02} AND level:warn", i % 50),
        "took AND level:error".to_string(),
        format!("user.id:u{}", (i * 37) % 100_000),
    ];
    let query = queries[i % queries.len()].clone();
    let group = if i.is_multiple_of(2) {
        "service"
    } else {
        "host"
    };
    // Some fire, most do not.
    let threshold = [10, 1_000, 100_000, 1_000_000][i % 4];
    let mut r = match i % 10 {
        0..=3 => json!({"kind": "frequency", "query": query, "threshold": threshold}),
        4 | 5 => json!({"kind": "flatline", "query": query, "threshold": 1}),
        6 | 7 => json!({"kind": "spike", "query": query, "ratio": 3, "min_count": 100}),
        8 => json!({"kind": "new_value", "query": "level:error", "field": group, "lookback": "1d"}),
        _ => {
            json!({"kind": "any", "query": format!("user.id:u{}", (i * 7919) % 100_000), "max_alerts": 10})
        }
    };
    r["name"] = format!("rule-{i:04}").into();
    r["interval"] = interval.into();
    r["window"] = window.into();
    r["receivers"] = json!(["sink"]);
    if grouped {
        r["group_by"] = json!([group]);
    }
    r
}

/// Whole seconds of a duration such as `30s` or `1m`.
fn interval_secs(text: &str) -> anyhow::Result<u64> {
    let (n, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = n.parse()?;
    Ok(match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => bail!("--interval {text}: give seconds, minutes or hours (30s, 1m)"),
    })
}

/// A webhook receiver counting what it is posted; returns its port.
async fn sink(count: Arc<AtomicU64>) -> anyhow::Result<u16> {
    let app = axum::Router::new().fallback(move || {
        let count = count.clone();
        async move {
            count.fetch_add(1, Ordering::Relaxed);
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(port)
}

/// Creates (or deletes) the rules; returns the seconds it took.
async fn set_rules(
    client: &reqwest::Client,
    url: &str,
    args: &Args,
    on: bool,
) -> anyhow::Result<f64> {
    let t = Instant::now();
    // Grouped ones among the kinds that take `group_by`.
    let mut grouped = 0;
    for i in 0..args.rules {
        let name = format!("{url}/api/v1/alerts/rules/rule-{i:04}");
        let r = if on {
            let g = grouped < args.grouped && i % 10 < 8;
            grouped += usize::from(g);
            client
                .put(name)
                .json(&rule(i, g, &args.interval, &args.window))
                .send()
                .await?
        } else {
            client.delete(name).send().await?
        };
        if !r.status().is_success() {
            bail!("rule {i}: {} {}", r.status(), r.text().await?);
        }
    }
    Ok(t.elapsed().as_secs_f64())
}

/// What a warm-up took.
struct WarmUp {
    evaluated: usize,
    missed: f64,
    secs: f64,
    cpu: f64,
}

/// Ingest at the offered rate, in steps of 10 s, until every rule has had
/// two evaluations from now (a rule's first evaluation counts its whole
/// window unless its counts were resumed or shared; its second what was
/// indexed since) and then an interval has passed without a missed one.
async fn warm_up(
    client: &reqwest::Client,
    url: &str,
    args: &Args,
    next: &mut u64,
    pid: u32,
) -> anyhow::Result<WarmUp> {
    // Counted from here: a rule deleted and created again keeps its
    // counter.
    let per_rule = |m: &str| {
        let mut evaluations: std::collections::HashMap<String, f64> = Default::default();
        for (labels, v) in series(m, "logway_alert_evaluations_total") {
            if let Some(rule) = labels
                .split("rule=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
            {
                *evaluations.entry(rule.to_string()).or_default() += v;
            }
        }
        evaluations
    };
    let at_start = per_rule(&fetch_metrics(client, url).await?);
    let missed_at_start = metric(
        &fetch_metrics(client, url).await?,
        "logway_alert_evaluations_missed_total",
    );
    // Then until an interval passes without a missed evaluation:
    // the backlog the first pass left is worked off.
    let quiet_steps = interval_secs(&args.interval)?.div_ceil(10).max(1);
    let t = Instant::now();
    let mut cpu = 0.0;
    let (mut missed_then, mut quiet) = (missed_at_start, 0);
    let (evaluated, missed) = loop {
        let r = timed_round(client, url, *next, args.connections, args.rate, 10, pid).await?;
        *next += r.sent;
        cpu += r.cpu_per_million * r.sent as f64 / 1e6;
        let m = fetch_metrics(client, url).await?;
        let missed = metric(&m, "logway_alert_evaluations_missed_total");
        let twice = per_rule(&m)
            .iter()
            .filter(|(rule, v)| **v - at_start.get(*rule).copied().unwrap_or(0.0) >= 2.0)
            .count();
        quiet = if missed > missed_then { 0 } else { quiet + 1 };
        missed_then = missed;
        if (twice >= args.rules && quiet >= quiet_steps) || t.elapsed().as_secs() > 900 {
            break (twice, missed - missed_at_start);
        }
    };
    Ok(WarmUp {
        evaluated,
        missed,
        secs: t.elapsed().as_secs_f64(),
        cpu,
    })
}

/// A metric's series: (labels text, value).
fn series<'a>(text: &'a str, name: &str) -> Vec<(&'a str, f64)> {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with('{'))
        .filter_map(|l| {
            let (labels, v) = l.rsplit_once(' ')?;
            Some((labels, v.parse().ok()?))
        })
        .collect()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let gateway = gateway_binary(args.gateway.as_deref())?;
    let (data, temporary) = common::data_dir(args.data.as_deref(), "alert-bench");
    std::fs::create_dir_all(&data)?;
    let delivered = Arc::new(AtomicU64::new(0));
    let port = sink(delivered.clone()).await?;
    let config = data.join("alert-bench.toml");
    std::fs::write(
        &config,
        format!(
            "[alerts]\nmax_rules_per_tenant = {}\n\n[alerts.tenants.default]\nreceivers = [{{ name = \"sink\", kind = \"webhook\", url = \"http://127.0.0.1:{port}/\" }}]\n\n[[tenants]]\nname = \"default\"\n",
            args.rules.max(1)
        ),
    )?;
    let (mut child, mut url) = spawn_gateway(&gateway, &data, Some(&config)).await?;
    let mut pid = child.id();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections)
        .build()?;
    wait_ready(&client, &url).await;
    println!("machine: {}", machine());

    let spread = if args.scattered {
        week::Spread::Scattered
    } else {
        week::Spread::Ordered { total: args.events }
    };
    week::fill(&client, &url, args.events, args.connections, pid, spread).await?;
    let interval = logway::config::parse_duration(&args.interval).map_err(anyhow::Error::msg)?;

    println!(
        "\n-- ingest at {} with and without {} rules ({} grouped, every {}, window {}), {} s rounds --",
        if args.rate > 0 {
            format!("{} events/s offered", args.rate)
        } else {
            "full speed".into()
        },
        args.rules,
        args.grouped.min(args.rules),
        args.interval,
        args.window,
        args.seconds
    );
    let (mut rate_without, mut rate_with) = (Vec::new(), Vec::new());
    let (mut cpu_without, mut cpu_with) = (Vec::new(), Vec::new());
    let (mut passes, mut all_missed) = (Vec::new(), 0.0);
    let mut next = args.events;
    for round in 0..args.rounds * 2 {
        let rules_on = round % 2 == 1;
        if rules_on {
            let secs = set_rules(&client, &url, &args, true).await?;
            println!("  created {} rules in {secs:.1} s", args.rules);
            let w = warm_up(&client, &url, &args, &mut next, pid).await?;
            println!(
                "  warm-up: first two evaluations of {} rules (the first of the whole window), then an interval without a missed one, within {:.0} s of ingest at the offered rate; {} evaluations missed meanwhile; gateway CPU {:.0} s; RSS {} MiB (peak so far {} MiB)",
                w.evaluated,
                w.secs,
                w.missed,
                w.cpu,
                proc_status_kib(pid, "VmRSS:") / 1024,
                proc_status_kib(pid, "VmHWM:") / 1024
            );
        }
        let before = fetch_metrics(&client, &url).await?;
        let notified_before = delivered.load(Ordering::Relaxed);
        let round_ = timed_round(
            &client,
            &url,
            next,
            args.connections,
            args.rate,
            args.seconds,
            pid,
        )
        .await?;
        let (sent, cpu) = (round_.sent, round_.cpu_per_million);
        next += sent;
        let rate = round_.rate;
        let after = fetch_metrics(&client, &url).await?;
        let delta = |name: &str| metric(&after, name) - metric(&before, name);
        if rules_on {
            let ok = delta("logway_alert_evaluations_total{tenant=\"default\",rule=\"rule-");
            let over = series(&after, "logway_alert_evaluations_total")
                .iter()
                .filter(|(l, _)| l.contains("result=\"over_budget\""))
                .map(|(_, v)| v)
                .sum::<f64>()
                + 0.0;
            let missed = delta("logway_alert_evaluations_missed_total");
            all_missed += missed;
            let durations = series(&after, "logway_alert_evaluation_duration_seconds");
            let pass: f64 = durations.iter().map(|(_, v)| v).sum();
            let slowest = durations.iter().map(|(_, v)| *v).fold(0.0, f64::max);
            let firing = series(&after, "logway_alerts")
                .iter()
                .filter(|(l, _)| l.contains("state=\"firing\""))
                .map(|(_, v)| v)
                .sum::<f64>()
                + 0.0;
            passes.push(pass);
            // The mean last evaluation time per kind (rule i's kind is i % 10).
            let mut by_kind = [(0.0, 0u32); 5];
            for (labels, v) in &durations {
                let Some(i) = labels
                    .split("rule=\"rule-")
                    .nth(1)
                    .and_then(|r| r.get(..4))
                    .and_then(|n| n.parse::<usize>().ok())
                else {
                    continue;
                };
                let k = [0, 0, 0, 0, 1, 1, 2, 2, 3, 4][i % 10];
                by_kind[k].0 += v;
                by_kind[k].1 += 1;
            }
            let kinds = ["frequency", "flatline", "spike", "new_value", "any"]
                .iter()
                .zip(by_kind)
                .map(|(k, (sum, n))| format!("{k} {:.1} ms", sum * 1000.0 / f64::from(n.max(1))))
                .collect::<Vec<_>>()
                .join(", ");
            println!("  mean evaluation time per kind: {kinds}");
            println!(
                "round {}: {:>9}: {rate:>9.0} events/s acked, {cpu:.1} gateway CPU-s per 1M; \
                 {ok:.0} evaluations ({over:.0} over budget so far), {missed:.0} missed; \
                 one pass over all rules {pass:.2} s of the {} s interval, slowest rule {:.0} ms; \
                 {firing:.0} alerts firing, {} notifications delivered",
                round / 2 + 1,
                "rules",
                interval.as_secs(),
                slowest * 1000.0,
                delivered.load(Ordering::Relaxed) - notified_before
            );
            rate_with.push(rate);
            cpu_with.push(cpu);
            let secs = set_rules(&client, &url, &args, false).await?;
            println!("  deleted {} rules in {secs:.1} s", args.rules);
        } else {
            println!(
                "round {}: {:>9}: {rate:>9.0} events/s acked, {cpu:.1} gateway CPU-s per 1M",
                round / 2 + 1,
                "no rules"
            );
            rate_without.push(rate);
            cpu_without.push(cpu);
        }
    }
    let (a, b) = (median(rate_without), median(rate_with));
    let (ca, cb) = (median(cpu_without), median(cpu_with));
    println!(
        "median: {a:.0} events/s without rules, {b:.0} with {} rules ({:+.1}%); gateway CPU {ca:.1} against {cb:.1} s per 1M events; \
         one pass over all rules {:.2} s (median) of the {} s interval; {all_missed:.0} evaluations missed",
        args.rules,
        (b / a - 1.0) * 100.0,
        median(passes),
        interval.as_secs()
    );
    println!(
        "gateway peak RSS: {} MiB",
        proc_status_kib(pid, "VmHWM:") / 1024
    );
    if args.restart {
        println!("\n-- a restart with {} rules --", args.rules);
        set_rules(&client, &url, &args, true).await?;
        let w = warm_up(&client, &url, &args, &mut next, pid).await?;
        println!(
            "  warm-up after creating them: {:.0} s, {} evaluations missed",
            w.secs, w.missed
        );
        let t = Instant::now();
        std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()?;
        child.wait()?;
        let stopped = t.elapsed().as_secs_f64();
        (child, url) = spawn_gateway(&gateway, &data, Some(&config)).await?;
        pid = child.id();
        wait_ready(&client, &url).await;
        println!(
            "  stopped in {stopped:.1} s, started again in {:.1} s",
            t.elapsed().as_secs_f64() - stopped
        );
        let w = warm_up(&client, &url, &args, &mut next, pid).await?;
        println!(
            "  warm-up after the restart: every rule evaluated twice, then an interval without a missed one, within {:.0} s; {} evaluations missed; gateway CPU {:.0} s",
            w.secs, w.missed, w.cpu
        );
    }
    let _ = child.kill();
    let _ = child.wait();
    if temporary {
        let _ = std::fs::remove_dir_all(&data);
    }
    Ok(())
}
