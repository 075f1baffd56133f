//! Archive and replay benchmark: how fast the archive writer empties the
//! WAL into a store, and how fast a replay job brings archived events back
//! into the hot tier, for the local directory and an S3 server on loopback
//! (s3s-fs, in this process, checking signatures).
//!
//! ```text
//! cargo build --release -p logway-bench
//! target/release/archive-bench --events 1000000
//! ```
//!
//! The WAL is filled first (the foundation benchmark's events, ~410 bytes
//! once stored, 100 per record); then the writer runs alone and is timed until everything is
//! uploaded; then a replay of the whole range into an empty hot tier is
//! timed. Prints events/s and MB/s (uncompressed event bytes).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

mod cpu;
use clap::Parser;
use logway::archive::store::{self, ObjectStore};
use logway::archive::writer::{Status, Writer};
use logway::batch::{self, BatchHeader};
use logway::config::ArchiveConfig;
use logway::event::EventContext;
use logway::hot::HotIndex;
use logway::replay::{JobState, ReplayRequest, Replays};
use logway::telemetry::Metrics;
use logway::wal::consumer::Driver;
use logway::wal::{Wal, WalOptions};
use time::OffsetDateTime;

// The gateway's allocator, so the replay runs as it does in `logway serve`.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
struct Args {
    /// Events written to the WAL, archived, then replayed.
    #[arg(long, default_value_t = 1_000_000)]
    events: usize,
    /// Only this store: `local` or `s3`.
    #[arg(long)]
    only: Option<String>,
}

const PER_RECORD: usize = 100;

fn event(i: usize, ctx: &EventContext) -> Vec<u8> {
    let services = ["checkout", "cart", "search", "auth", "payments"];
    let level = ["info", "debug", "warn", "error"][i % 4];
    let v = serde_json::json!({
        "level": level,
        "service": services[i % services.len()],
        "host": format!("{}-{}", services[i % services.len()], i % 12),
        "request_id": format!("{:016x}", (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
        "message": "payment provider answered slowly",
        "http": {"method": "GET", "path": format!("/api/v1/items/{}", i % 100_000), "status": 200},
        "duration_ms": i % 2000,
        "user": {"id": i % 1_000_000},
    });
    let serde_json::Value::Object(m) = v else {
        unreachable!()
    };
    logway::event::from_object(m, ctx, None)
}

async fn fill_wal(wal: &Wal, n: usize) -> u64 {
    let now = OffsetDateTime::now_utc();
    let ctx = EventContext::new("bench", "bench_logs", now, None, 1000);
    let mut bytes = 0u64;
    let mut pending = Vec::new();
    for r in 0..n.div_ceil(PER_RECORD) {
        let events: Vec<Vec<u8>> = (0..PER_RECORD.min(n - r * PER_RECORD))
            .map(|i| event(r * PER_RECORD + i, &ctx))
            .collect();
        bytes += events.iter().map(|e| e.len() as u64 + 1).sum::<u64>();
        let header = BatchHeader::new(
            "bench",
            "bench_logs",
            (now.unix_timestamp_nanos() / 1_000_000) as i64,
            events.len(),
            Vec::new(),
            None,
        );
        let payload = batch::encode(&header, &events, true);
        pending.push(wal.append(payload));
        if pending.len() >= 64 {
            for p in pending.drain(..) {
                p.await.expect("WAL append");
            }
        }
    }
    for p in pending {
        p.await.expect("WAL append");
    }
    bytes
}

async fn run_case(name: &str, store: Arc<dyn ObjectStore>, args: &Args) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!(
        "logway-archive-bench-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let (wal, wal_thread) = Wal::open(
        &dir.join("wal"),
        WalOptions {
            max_bytes: 16 << 30,
            segment_bytes: 64 << 20,
            queue_len: 4096,
            event_queue_len: 1024,
            log_share: 1.0,
            metric_share: 1.0,
        },
    )?;
    let bytes = fill_wal(&wal, args.events).await;
    let metrics = Arc::new(Metrics::new());
    let status = Arc::new(Status::default());
    let stop = Arc::new(AtomicBool::new(false));
    // The last, partial round goes up soon after the rest.
    let config = ArchiveConfig {
        max_object_age: Duration::from_millis(100),
        ..ArchiveConfig::default()
    };
    let writer = Writer::new(
        &dir,
        store.clone(),
        tokio::runtime::Handle::current(),
        config.clone(),
        metrics.clone(),
        status.clone(),
    )?;
    let writer = Driver::new(writer, wal.clone(), stop.clone());
    let target = wal.durable_lsn();
    let start = Instant::now();
    let cpu_start = cpu::process_seconds();
    // Once everything is uploaded, the writer is told to stop.
    let run = tokio::task::spawn_blocking(move || writer.run());
    while status.checkpoint.load(Ordering::Relaxed) < target {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = start.elapsed();
    stop.store(true, Ordering::Release);
    run.await?;
    let cpu_used = cpu::process_seconds() - cpu_start;
    anyhow::ensure!(
        status.checkpoint.load(Ordering::Relaxed) >= target,
        "the writer stopped before archiving everything"
    );
    let objects = store.list("logs/").await?;
    let compressed: u64 = objects.iter().map(|o| o.size).sum();
    println!(
        "archive -> {name:<5}: {:>9.0} events/s, {:>6.1} MB/s in ({:.1} MB -> {:.1} MB zstd, {} objects) in {:.2} s, CPU {:.2} s per 1M events",
        args.events as f64 / took.as_secs_f64(),
        bytes as f64 / 1e6 / took.as_secs_f64(),
        bytes as f64 / 1e6,
        compressed as f64 / 1e6,
        objects.len(),
        took.as_secs_f64(),
        cpu_used / args.events as f64 * 1e6
    );
    wal.close().await;
    wal_thread.join();

    // Replay everything into an empty hot tier.
    let (hot, _) = HotIndex::open(&dir.join("hot-replayed"))?;
    let replays = Replays::default();
    let now = OffsetDateTime::now_utc();
    let job = replays.start(
        "bench",
        ReplayRequest {
            log_type: None,
            from: now - time::Duration::hours(2),
            to: now + time::Duration::hours(1),
            query: None,
        },
        store.clone(),
        config.prefix.clone(),
        hot,
    )?;
    let start = Instant::now();
    let cpu_start = cpu::process_seconds();
    loop {
        let p = job.progress();
        if !p.state.is_active() {
            anyhow::ensure!(
                p.state == JobState::Done && p.error_count == 0,
                "replay: {p:?}"
            );
            anyhow::ensure!(
                p.events_indexed as usize == args.events,
                "replay indexed {} of {}",
                p.events_indexed,
                args.events
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = start.elapsed();
    let cpu = cpu::process_seconds() - cpu_start;
    println!(
        "replay <- {name:<5}: {:>9.0} events/s, {:>6.1} MB/s out, in {:.2} s; CPU {:.2} s = {:.1} µs/event, {:.2} cores",
        args.events as f64 / took.as_secs_f64(),
        bytes as f64 / 1e6 / took.as_secs_f64(),
        took.as_secs_f64(),
        cpu,
        cpu * 1e6 / args.events as f64,
        cpu / took.as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    println!(
        "machine: {} cores; {} events (the foundation benchmark's shape), {PER_RECORD} per WAL record",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        args.events
    );
    let metrics = Arc::new(Metrics::new());
    if args.only.as_deref().is_none_or(|o| o == "local") {
        let dir =
            std::env::temp_dir().join(format!("logway-archive-bench-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let config = ArchiveConfig {
            local_dir: Some(dir.clone()),
            ..ArchiveConfig::default()
        };
        let store = store::build(&config, &dir, metrics.clone()).await?;
        run_case("local", store, &args).await?;
        let _ = std::fs::remove_dir_all(&dir);
    }
    if args.only.as_deref().is_none_or(|o| o == "s3") {
        let (endpoint, root, server) = s3_server().await?;
        let config = ArchiveConfig {
            s3: Some(logway::config::S3Config {
                bucket: "bench".into(),
                region: "us-east-1".into(),
                endpoint_url: Some(endpoint),
                force_path_style: true,
                access_key_id: Some("bench-access".into()),
                secret_access_key: Some(logway::config::Secret("bench-secret-0001".into())),
                checksums: logway::config::S3Checksums::WhenSupported,
                multipart_threshold_bytes: 16 << 20,
                multipart_part_bytes: 8 << 20,
            }),
            ..ArchiveConfig::default()
        };
        let store = store::build(&config, &root, metrics).await?;
        run_case("s3", store, &args).await?;
        server.abort();
        let _ = std::fs::remove_dir_all(&root);
    }
    Ok(())
}

/// s3s-fs on 127.0.0.1:0 over a temp directory, with SigV4 checks.
async fn s3_server() -> anyhow::Result<(String, std::path::PathBuf, tokio::task::JoinHandle<()>)> {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let root = std::env::temp_dir().join(format!("logway-archive-bench-s3-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("bench"))?;
    let fs = s3s_fs::FileSystem::new(&root).map_err(|e| anyhow::anyhow!("s3s-fs: {e:?}"))?;
    let mut builder = s3s::service::S3ServiceBuilder::new(fs);
    builder.set_auth(s3s::auth::SimpleAuth::from_single(
        "bench-access",
        "bench-secret-0001",
    ));
    let service = builder.build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let endpoint = format!("http://{}", listener.local_addr()?);
    let task = tokio::spawn(async move {
        let http = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        while let Ok((socket, _)) = listener.accept().await {
            let conn = http
                .serve_connection(TokioIo::new(socket), service.clone())
                .into_owned();
            tokio::spawn(async move {
                let _ = conn.await;
            });
        }
    });
    Ok((endpoint, root, task))
}
