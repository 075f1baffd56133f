//! Delivery classes (`tenants[].routes[].class`): when the WAL has no room
//! for more logs, metrics are still taken, and events until the WAL is
//! full; a flood of logs that fills the writer's queue refuses logs (503
//! with `Retry-After`) and never an event, which has a queue of its own
//! ahead of them; while the hot index is too far behind, logs are refused
//! first, metrics next, events never, and so while the machine's CPUs
//! are saturated; events (from a route, and from a
//! syslog listener of the event class) are searchable before the regular
//! commit, by an indexer of their own that the WAL's indexer, however far
//! behind, does not hold back. Nothing acknowledged is lost or indexed
//! twice.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::common::*;
use serde_json::Value;

fn config(dir: &std::path::Path, wal: &str, commit_interval: &str) -> logway::Config {
    config_limits(dir, wal, commit_interval, "")
}

fn config_limits(
    dir: &std::path::Path,
    wal: &str,
    commit_interval: &str,
    limits: &str,
) -> logway::Config {
    let text = config_text(dir, wal, commit_interval, limits, "127.0.0.1:0");
    logway::Config::from_toml(&text).expect("test config is valid")
}

fn config_text(
    dir: &std::path::Path,
    wal: &str,
    commit_interval: &str,
    limits: &str,
    addr: &str,
) -> String {
    format!(
        r#"
[server]
http_addr = "{addr}"
[storage]
data_dir = "{data}"
[wal]
{wal}
[hot]
commit_interval = "{commit_interval}"
[limits]
{limits}

[[tenants]]
name = "a"
ingest_keys = ["{A_INGEST}"]
admin_keys = ["{A_ADMIN}"]
routes = [
  {{ path = "/logs", type = "app_logs" }},
  {{ path = "/m", type = "app_metrics", class = "metric" }},
  {{ path = "/pay", type = "payments", class = "event" }},
]
"#,
        data = dir.display()
    )
}

/// ~1 KB that zstd cannot shrink much: the WAL fills after ~100 of them.
fn noisy_line(tag: &str, i: u64) -> String {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let noise: String = (0..64)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            format!("{:016x}", x)
        })
        .collect();
    format!("{{\"message\":\"{tag} {i}\",\"noise\":\"{noise}\"}}\n")
}

/// Posts numbered lines to `path` until one is refused; returns how many
/// were acknowledged and the refusal (status, Retry-After, body).
async fn post_until_refused(gw: &TestGateway, path: &str, tag: &str) -> (u64, u16, bool, Value) {
    for i in 0..10_000u64 {
        let r = gw
            .post(path, A_INGEST)
            .body(noisy_line(tag, i))
            .send()
            .await
            .unwrap();
        if r.status() != 200 {
            let status = r.status().as_u16();
            let retry_after = r.headers().contains_key("retry-after");
            return (i, status, retry_after, r.json().await.unwrap());
        }
    }
    panic!("{path}: never refused");
}

/// Posts `n` events to the event route; each must be acknowledged.
async fn post_events(gw: &TestGateway, n: u64) {
    for i in 0..n {
        let r = gw
            .post("/pay", A_INGEST)
            .body(noisy_line("event", i))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "event {i}: {}", r.text().await.unwrap());
    }
}

fn shed(metrics: &str, class: &str, reason: &str) -> f64 {
    metric_sum(
        metrics,
        &format!("logway_shed_total{{class=\"{class}\",reason=\"{reason}\"}}"),
    )
}

#[tokio::test]
async fn metrics_and_events_are_taken_when_the_wal_has_no_room_for_logs() {
    let dir = tempfile::tempdir().unwrap();
    let wal = "max_bytes = 200000\nsegment_bytes = 16384";
    // The hot index does not commit (1 h), so the WAL is not trimmed.
    let gw = TestGateway::start(config(dir.path(), wal, "1h")).await;

    let (logs, status, retry_after, body) = post_until_refused(&gw, "/logs", "log").await;
    assert_eq!(status, 503, "{body}");
    assert!(retry_after, "503 carries Retry-After");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("full"),
        "{body}"
    );
    assert!(logs > 20, "logs fill 80% of the WAL first ({logs} taken)");

    // Metrics have 80-90%, events all of it.
    let (metrics, status, _, body) = post_until_refused(&gw, "/m", "metric").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        metrics > 5,
        "metrics are taken past the logs' share ({metrics})"
    );
    let (events, status, _, body) = post_until_refused(&gw, "/pay", "event").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        events > 5,
        "events are taken past the metrics' share ({events})"
    );
    let r = gw
        .post("/logs", A_INGEST)
        .body("still full")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503, "logs are still refused");

    let m = gw.metrics().await;
    assert!(shed(&m, "log", "wal_full") >= 2.0, "{m}");
    assert_eq!(shed(&m, "metric", "wal_full"), 1.0, "{m}");
    assert_eq!(shed(&m, "event", "wal_full"), 1.0, "{m}");
    gw.stop().await; // the index commits everything at the stop

    // Every acknowledged one of each class is there after a restart.
    let gw = TestGateway::start(config(dir.path(), wal, "100ms")).await;
    for (q, n) in [
        ("type:app_logs", logs),
        ("type:app_metrics", metrics),
        ("type:payments", events),
    ] {
        gw.search_until(A_ADMIN, &[("q", q)], n).await;
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_of_logs_never_refuses_an_event() {
    let dir = tempfile::tempdir().unwrap();
    // One log batch may wait for the writer at a time.
    let gw = Arc::new(TestGateway::start(config(dir.path(), "queue_len = 1", "100ms")).await);

    // 16 connections post 16 KB log batches as fast as they are answered.
    let stop = Arc::new(AtomicBool::new(false));
    let (acked, refused) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut flood = Vec::new();
    for c in 0..16u64 {
        let (gw, stop, acked, refused) = (gw.clone(), stop.clone(), acked.clone(), refused.clone());
        flood.push(tokio::spawn(async move {
            let mut i = c * 1_000_000;
            while !stop.load(Ordering::Relaxed) {
                let body: String = (0..16).map(|k| noisy_line("flood", i + k)).collect();
                i += 16;
                let r = gw.post("/logs", A_INGEST).body(body).send().await.unwrap();
                match r.status().as_u16() {
                    200 => acked.fetch_add(16, Ordering::Relaxed),
                    503 => {
                        assert!(r.headers().contains_key("retry-after"));
                        refused.fetch_add(1, Ordering::Relaxed)
                    }
                    s => panic!("log batch answered {s}"),
                };
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Meanwhile 200 events, one after another: every one is acknowledged.
    for i in 0..200u64 {
        let r = gw
            .post("/pay", A_INGEST)
            .body(format!(
                "{{\"message\":\"payment {i} captured\",\"seq\":{i}}}"
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "event {i}: {}", r.text().await.unwrap());
    }
    stop.store(true, Ordering::Relaxed);
    for t in flood {
        t.await.unwrap();
    }
    let m = gw.metrics().await;
    assert!(
        refused.load(Ordering::Relaxed) > 0 && shed(&m, "log", "queue_full") > 0.0,
        "the flood filled the log queue (refused {}): {m}",
        refused.load(Ordering::Relaxed)
    );
    assert_eq!(shed(&m, "event", "queue_full"), 0.0, "{m}");
    gw.search_until(A_ADMIN, &[("q", "type:payments")], 200)
        .await;
    gw.search_until(
        A_ADMIN,
        &[("q", "type:app_logs")],
        acked.load(Ordering::Relaxed),
    )
    .await;
    Arc::try_unwrap(gw).ok().unwrap().stop().await;
}

#[tokio::test]
async fn while_the_index_is_behind_logs_are_refused_first_and_events_never() {
    let dir = tempfile::tempdir().unwrap();
    let limits = "shed_at_index_lag_bytes = 60000";
    // The hot index does not commit (1 h): its lag is every byte written.
    let gw = TestGateway::start(config_limits(dir.path(), "", "1h", limits)).await;

    let (logs, status, retry_after, body) = post_until_refused(&gw, "/logs", "log").await;
    assert_eq!(status, 503, "{body}");
    assert!(retry_after, "503 carries Retry-After");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("hot index") && message.contains("behind"),
        "{body}"
    );
    assert!(logs > 20, "{logs} logs taken");
    // Metrics up to twice the bound, then refused too; events still taken.
    let (metrics, status, _, body) = post_until_refused(&gw, "/m", "metric").await;
    assert_eq!(status, 503, "{body}");
    assert!(metrics > 20, "{metrics} metrics taken");
    post_events(&gw, 50).await;
    // The WAL's indexer commits nothing for an hour; the events' own
    // indexer has them searchable meanwhile.
    gw.search_until(A_ADMIN, &[("q", "type:payments")], 50)
        .await;
    assert!(
        dir.path().join("hot/events.wal/a/payments").is_dir(),
        "in the events stream's partitions"
    );
    let m = gw.metrics().await;
    assert_eq!(shed(&m, "log", "index_lag"), 1.0, "{m}");
    assert_eq!(shed(&m, "metric", "index_lag"), 1.0, "{m}");
    assert_eq!(shed(&m, "event", "index_lag"), 0.0, "{m}");
    gw.stop().await;

    let gw = TestGateway::start(config_limits(dir.path(), "", "100ms", limits)).await;
    for (q, n) in [
        ("type:app_logs", logs),
        ("type:app_metrics", metrics),
        ("type:payments", 50),
    ] {
        gw.search_until(A_ADMIN, &[("q", q)], n).await;
    }
    // Caught up: logs are taken again.
    let r = gw
        .post("/logs", A_INGEST)
        .body("caught up")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    gw.stop().await;
}

/// Spins every CPU of the machine until the returned flag is set.
fn burn_cpus() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let n = std::thread::available_parallelism().map_or(2, |n| n.get());
    for _ in 0..n {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut x = 0u64;
            while !stop.load(Ordering::Relaxed) {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        });
    }
    stop
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_cpus_are_saturated_logs_are_refused_first_and_events_never() {
    let dir = tempfile::tempdir().unwrap();
    let limits = "shed_at_cpu = 0.6\nshed_cpu_after = \"300ms\"";
    let gw = TestGateway::start(config_limits(dir.path(), "", "100ms", limits)).await;
    let stop = burn_cpus();
    let (_, status, retry_after, body) = post_until_refused(&gw, "/logs", "log").await;
    assert_eq!(status, 503, "{body}");
    assert!(retry_after, "503 carries Retry-After");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("limits.shed_at_cpu"), "{body}");
    // Metrics after twice as long; events are still taken.
    let (_, status, _, body) = post_until_refused(&gw, "/m", "metric").await;
    assert_eq!(status, 503, "{body}");
    post_events(&gw, 20).await;
    let m = gw.metrics().await;
    stop.store(true, Ordering::Relaxed);
    assert_eq!(shed(&m, "log", "cpu"), 1.0, "{m}");
    assert_eq!(shed(&m, "metric", "cpu"), 1.0, "{m}");
    assert_eq!(shed(&m, "event", "cpu"), 0.0, "{m}");
    assert!(metric_sum(&m, "logway_cpu_busy_permille") >= 600.0, "{m}");
    gw.search_until(A_ADMIN, &[("q", "type:payments")], 20)
        .await;
    gw.stop().await;
}

/// The total of a search for `q` (tenant a) on the node at `url`.
async fn total(client: &reqwest::Client, url: &str, q: &str) -> u64 {
    let r = client
        .get(format!("{url}/api/v1/search"))
        .bearer_auth(A_ADMIN)
        .query(&[("q", q), ("limit", "10")])
        .send()
        .await
        .unwrap();
    r.json::<Value>().await.unwrap()["total"].as_u64().unwrap()
}

/// Waits until a search for `q` on the node at `url` finds something.
async fn wait_found(client: &reqwest::Client, url: &str, q: &str, within: Duration) {
    let start = std::time::Instant::now();
    while total(client, url, q).await == 0 {
        assert!(start.elapsed() < within, "`{q}` is not searchable");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn events_are_searchable_before_the_regular_commit_and_indexed_once_after_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let port = free_port();
    // A syslog listener of the event class, as a route of it.
    let syslog_port = free_port();
    let file = |commit: &str| {
        let path = dir.path().join(format!("logway-{commit}.toml"));
        let text = config_text(
            &dir.path().join("data"),
            "",
            commit,
            "",
            &format!("127.0.0.1:{port}"),
        ) + &format!(
            "[[syslog]]\naddr = \"127.0.0.1:{syslog_port}\"\ntenant = \"a\"\ntype = \"pay_syslog\"\nunauthenticated = true\nclass = \"event\"\n"
        );
        std::fs::write(&path, text).unwrap();
        path
    };
    // Regular commits every 30 s; event partitions after 100 ms.
    let server = spawn_server(&file("30s"));
    wait_ready(&client, &server.url).await;
    let post = |path: &'static str, body: &'static str| {
        let (client, url) = (client.clone(), server.url.clone());
        async move {
            let r = client
                .post(format!("{url}{path}"))
                .bearer_auth(A_INGEST)
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
    };
    post("/logs", "slowlog one").await;
    post("/pay", "fastevent one").await;
    logger(syslog_port, &["fastsyslog one"]);
    wait_found(&client, &server.url, "fastevent", Duration::from_secs(10)).await;
    wait_found(&client, &server.url, "fastsyslog", Duration::from_secs(10)).await;
    assert_eq!(
        total(&client, &server.url, "slowlog").await,
        0,
        "the log waits for the regular commit"
    );
    // kill -9 before the regular commit: the restart reads the WAL from
    // before both, indexes the log and skips the event its partition holds.
    drop(server);
    let server = spawn_server(&file("100ms"));
    wait_ready(&client, &server.url).await;
    wait_found(&client, &server.url, "slowlog", Duration::from_secs(20)).await;
    assert_eq!(
        total(&client, &server.url, "fastevent").await,
        1,
        "indexed once"
    );
    assert_eq!(total(&client, &server.url, "slowlog").await, 1);
    assert_eq!(total(&client, &server.url, "fastsyslog").await, 1);
}
