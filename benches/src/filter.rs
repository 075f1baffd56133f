//! Filter benchmark: what a WASM filter costs per event, and how long an
//! instance takes to create and a new version to go live.
//!
//! Uses the gateway's own engine (same configuration and limits as `logway
//! serve`) on components built from `filters/`:
//!
//! ```text
//! CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_STRIP=true \
//!   cargo build --release --target wasm32-wasip2 -p filter-keep -p filter-apache-error -p filter-redact
//! cargo build --release -p logway-bench
//! target/release/filter-bench --filters target/wasm32-wasip2/release
//! ```
//!
//! Prints, per case, the median of `--rounds` rounds of ns/event:
//! - `call`: the `process` call alone on a prepared batch (the boundary:
//!   lowering events into the guest, the guest's work, lifting verdicts);
//! - `chain`: the whole host path of a route's chain (turning decoded events
//!   into WIT events, the call, applying the verdicts).
//!
//! End-to-end ingest with filters is measured by `ingest-bench` with the
//! configs in `benches/configs/filters-*.toml` (see the README).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use logway::config::{FilterRef, FiltersConfig};
use logway::event::FieldNames;
use logway::filter::engine::{FilterEngine, Owner, wit};
use logway::filter::{BatchInfo, Doc, Pending, Registry, chain};
use logway::telemetry::Metrics;
use serde_json::{Map, Value};

#[derive(Parser)]
struct Args {
    /// Directory holding filter_keep.wasm, filter_apache_error.wasm and filter_redact.wasm.
    #[arg(long)]
    filters: PathBuf,
    /// Apache error log (Loghub) for the parsing filter.
    #[arg(long, default_value = "../shared/data/loghub/Apache/Apache_2k.log")]
    apache_log: PathBuf,
    /// Events per batch.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Rounds per case (the median is printed).
    #[arg(long, default_value_t = 31)]
    rounds: usize,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn percentile(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// The foundation benchmark's event shape (~256 bytes of JSON).
fn json_events(n: usize) -> Vec<Map<String, Value>> {
    (0..n)
        .map(|i| {
            let level = ["info", "debug", "warn", "error"][i % 4];
            let v = serde_json::json!({
                "ts": 1_763_700_000_000u64 + i as u64,
                "level": level,
                "service": "checkout",
                "host": format!("checkout-{}", i % 12),
                "request_id": format!("{:016x}", i * 7919),
                "message": "payment provider answered slowly",
                "http": {"method": "GET", "path": format!("/api/v1/items/{}", i % 100_000), "status": 200},
                "duration_ms": i % 2000,
                "user": {"id": i % 1_000_000},
            });
            match v {
                Value::Object(m) => m,
                _ => unreachable!(),
            }
        })
        .collect()
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let read = |name: &str| {
        let p = args.filters.join(name);
        std::fs::read(&p).with_context(|| format!("{} (build the filters first)", p.display()))
    };
    let keep = read("filter_keep.wasm")?;
    let apache = read("filter_apache_error.wasm")?;
    let redact = read("filter_redact.wasm")?;
    let apache_lines: Vec<String> = std::fs::read_to_string(&args.apache_log)
        .with_context(|| args.apache_log.display().to_string())?
        .lines()
        .map(str::to_string)
        .collect();
    println!(
        "machine: {} cores; batch {} events; median of {} rounds",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        args.batch,
        args.rounds
    );

    let config = FiltersConfig::default();
    let engine = FilterEngine::new(&config)?;
    let metrics = Arc::new(Metrics::new());
    let owner = Arc::new(Owner::new("bench", "bench", metrics.clone()));
    let ctx = wit::BatchContext {
        tenant: "bench".into(),
        log_type: "bench".into(),
        route: "/bench".into(),
        received_ms: 0,
        client_ip: None,
    };

    // Instantiation (with `init`), from a prepared InstancePre.
    let (_, keep_pre) = engine.compile(&keep).map_err(anyhow::Error::msg)?;
    let mut times = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        let i = engine.instantiate(&keep_pre, &owner, &[]);
        times.push(t.elapsed());
        drop(i.map_err(|f| anyhow::anyhow!("{f}"))?);
    }
    println!(
        "instantiate + init (keep): p50 {:.1} µs, p99 {:.1} µs",
        percentile(times.clone(), 0.5).as_secs_f64() * 1e6,
        percentile(times, 0.99).as_secs_f64() * 1e6
    );

    let text: Vec<Pending> = (0..args.batch)
        .map(|i| Pending {
            line: i + 1,
            doc: Doc::Text(apache_lines[i % apache_lines.len()].clone()),
            raw: None,
            log_type: None,
        })
        .collect();
    let json: Vec<Pending> = json_events(args.batch)
        .into_iter()
        .enumerate()
        .map(|(i, m)| Pending {
            line: i + 1,
            // As from an NDJSON line: the bytes as sent come along.
            raw: Some(serde_json::to_vec(&m).unwrap()),
            doc: Doc::Object(m),
            log_type: None,
        })
        .collect();

    // The call alone.
    let (_, apache_pre) = engine.compile(&apache).map_err(anyhow::Error::msg)?;
    let (_, redact_pre) = engine.compile(&redact).map_err(anyhow::Error::msg)?;
    for (name, pre, events) in [
        ("redact (message), JSON events", &redact_pre, &json),
        ("keep, text events (Apache lines)", &keep_pre, &text),
        ("keep, JSON events (~256 B)", &keep_pre, &json),
        ("apache-error, Apache lines", &apache_pre, &text),
    ] {
        let mut instance = engine
            .instantiate(pre, &owner, &[])
            .map_err(|f| anyhow::anyhow!("{f}"))?;
        let wit_events: Vec<wit::Event> = events
            .clone()
            .iter_mut()
            .map(|ev| chain::to_wit(ev, FieldNames::builtin()))
            .collect();
        let mut per_event = Vec::new();
        for _ in 0..args.rounds {
            let t = Instant::now();
            let v = engine
                .process(&mut instance, &ctx, &wit_events)
                .map_err(|f| anyhow::anyhow!("{f}"))?;
            per_event.push(t.elapsed().as_nanos() as f64 / events.len() as f64);
            assert_eq!(v.len(), events.len());
        }
        println!("call   {name:<36} {:>7.0} ns/event", median(per_event));
    }

    // The whole chain path, through the registry as ingest uses it.
    let dir = std::env::temp_dir().join(format!("logway-filter-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let registry = Registry::open(&dir, &config, metrics.clone())?;
    let t = Instant::now();
    registry.upload("bench", "keep", &keep)?;
    let first_upload = t.elapsed();
    registry.upload("bench", "apache-error", &apache)?;
    let info = BatchInfo {
        tenant: "bench",
        log_type: "bench",
        route: "/bench",
        received_ms: 0,
        client_ip: None,
        fields: FieldNames::builtin(),
        class: Default::default(),
    };
    let step = |name: &str| FilterRef {
        name: name.into(),
        config: Vec::new(),
    };
    for (name, chain_refs, events) in [
        ("keep, text events", vec![step("keep")], &text),
        ("keep, JSON events", vec![step("keep")], &json),
        (
            "apache-error, Apache lines",
            vec![step("apache-error")],
            &text,
        ),
        (
            "keep x3, JSON events",
            vec![step("keep"), step("keep"), step("keep")],
            &json,
        ),
    ] {
        let mut per_event = Vec::new();
        for _ in 0..args.rounds {
            let input = events.clone();
            let t = Instant::now();
            let out = chain::run(&registry, &chain_refs, &info, input);
            per_event.push(t.elapsed().as_nanos() as f64 / events.len() as f64);
            assert!(out.dead.is_empty(), "{:?}", out.dead.first());
        }
        println!("chain  {name:<36} {:>7.0} ns/event", median(per_event));
    }

    // A new version going live: compile + store (fsync) + swap; then the
    // first batch on it (instantiation included).
    let mut uploads = Vec::new();
    let mut firsts = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        registry.upload("bench", "keep", &keep)?;
        uploads.push(t.elapsed());
        let t = Instant::now();
        chain::run(&registry, &[step("keep")], &info, text[..1].to_vec());
        firsts.push(t.elapsed());
    }
    println!(
        "upload (validate, compile, fsync, swap) keep: first {:.0} ms, then p50 {:.0} ms",
        first_upload.as_secs_f64() * 1e3,
        percentile(uploads, 0.5).as_secs_f64() * 1e3
    );
    println!(
        "first batch on a new version (instantiate + init + 1 event): p50 {:.2} ms",
        percentile(firsts, 0.5).as_secs_f64() * 1e3
    );
    let t = Instant::now();
    let reopened = Registry::open(&dir, &config, metrics)?;
    println!(
        "start: load {} precompiled filters in {:.1} ms",
        reopened.list("bench").len(),
        t.elapsed().as_secs_f64() * 1e3
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
