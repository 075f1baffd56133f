//! Durability: an ack means fsynced. Kill -9 under load, restarts, the WAL cap.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::{Value, json};

const CONNECTIONS: usize = 16;
const EVENTS_PER_REQUEST: usize = 10;

fn write_config(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("logway.toml");
    let text = format!(
        r#"
[server]
http_addr = "127.0.0.1:0"
[storage]
data_dir = "{}"
[hot]
commit_interval = "200ms"
[search]
max_limit = 1000000
[[tenants]]
name = "a"
ingest_keys = ["{A_INGEST}"]
admin_keys = ["{A_ADMIN}"]
"#,
        dir.join("data").display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// A cheap pseudo-random number for kill timing.
fn jitter(max_ms: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    nanos % max_ms
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acked_events_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let mut server = spawn_server(&config);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    wait_ready(&client, &server.url).await;

    let url = Arc::new(RwLock::new(server.url.clone()));
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for conn in 0..CONNECTIONS {
        let (url, acked, in_flight, stop) =
            (url.clone(), acked.clone(), in_flight.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap();
            let mut seq = 0u64;
            while !stop.load(Ordering::Relaxed) {
                seq += 1;
                let ids: Vec<String> = (0..EVENTS_PER_REQUEST)
                    .map(|i| format!("a-{conn}-{seq}-{i}"))
                    .collect();
                let body: String = ids
                    .iter()
                    .map(|id| format!("{}\n", json!({"message": "conservation", "tid": id})))
                    .collect();
                let target = format!("{}/v1/logs/crash", url.read().unwrap());
                in_flight.fetch_add(1, Ordering::SeqCst);
                let result = client
                    .post(target)
                    .bearer_auth(A_INGEST)
                    .header("content-type", "application/x-ndjson")
                    .body(body)
                    .send()
                    .await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                match result {
                    Ok(r) if r.status() == 200 => acked.lock().unwrap().extend(ids),
                    _ => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        }));
    }

    let mut kills_in_flight = 0;
    for round in 0..3 {
        tokio::time::sleep(Duration::from_millis(400 + jitter(600))).await;
        let busy = in_flight.load(Ordering::SeqCst);
        server.child.kill().unwrap(); // SIGKILL
        server.child.wait().unwrap();
        if busy > 0 {
            kills_in_flight += 1;
        }
        eprintln!(
            "kill {round}: {busy} requests in flight, {} events acked so far",
            acked.lock().unwrap().len()
        );
        server = spawn_server(&config);
        *url.write().unwrap() = server.url.clone();
        wait_ready(&client, &server.url).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    assert!(
        kills_in_flight > 0,
        "no kill landed while requests were in flight; the test proved nothing"
    );

    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 1000,
        "too little traffic to be meaningful: {}",
        acked.len()
    );
    // Wait until the hot index has caught up with everything acked.
    let deadline = Instant::now() + Duration::from_secs(60);
    let body = loop {
        let r = client
            .get(format!("{}/api/v1/search", server.url))
            .bearer_auth(A_ADMIN)
            .query(&[("q", "conservation"), ("limit", "1000000")])
            .send()
            .await
            .unwrap();
        let body: Value = r.json().await.unwrap();
        if body["total"].as_u64().unwrap() as usize >= acked.len() || Instant::now() > deadline {
            break body;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut found = std::collections::HashMap::<String, usize>::new();
    for hit in body["hits"].as_array().unwrap() {
        *found
            .entry(hit["fields"]["tid"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    let missing: Vec<&String> = acked.iter().filter(|id| !found.contains_key(*id)).collect();
    let duplicates = found.values().filter(|&&n| n > 1).count();
    eprintln!(
        "acked {} events, found {} distinct ({} total hits), {} missing, {} duplicated",
        acked.len(),
        found.len(),
        body["total"],
        missing.len(),
        duplicates
    );
    assert!(
        missing.is_empty(),
        "acked but lost: {:?}",
        &missing[..missing.len().min(10)]
    );
    assert_eq!(duplicates, 0, "the hot index indexes each WAL record once");

    // A fresh write works afterwards, then SIGTERM stops the server cleanly.
    let r = client
        .post(format!("{}/v1/logs/crash", server.url))
        .bearer_auth(A_INGEST)
        .body("after the storm")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    unsafe { libc::kill(server.child.id() as i32, libc::SIGTERM) };
    let status = server.child.wait().unwrap();
    assert!(status.success(), "SIGTERM exits 0, got {status}");
}

#[tokio::test]
async fn restart_loop_keeps_every_event() {
    let dir = tempfile::tempdir().unwrap();
    for round in 1..=3u64 {
        let gw = TestGateway::start(two_tenant_config(dir.path(), "")).await;
        // Everything from earlier rounds is still there after recovery.
        gw.search_until(A_ADMIN, &[("q", "round")], (round - 1) * 50)
            .await;
        let body: String = (0..50)
            .map(|i| format!("round {round} event {i}\n"))
            .collect();
        let r = gw.post("/web", A_INGEST).body(body).send().await.unwrap();
        assert_eq!(r.status(), 200);
        gw.search_until(A_ADMIN, &[("q", "round")], round * 50)
            .await;
        gw.stop().await;
    }
}

#[tokio::test]
async fn a_full_wal_answers_503_never_a_false_ack_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let small_wal = |commit_interval: Duration| {
        let mut c = two_tenant_config(dir.path(), "");
        c.wal.max_bytes = 65536;
        c.wal.segment_bytes = 16384;
        c.hot.commit_interval = commit_interval;
        c
    };
    // The hot index does not commit (1h), so it cannot release WAL segments.
    let gw = TestGateway::start(small_wal(Duration::from_secs(3600))).await;
    let mut acked = 0;
    let mut full = None;
    for i in 0..200 {
        let line = format!("walcap {i} {}\n", "x".repeat(1000));
        let r = gw.post("/web", A_INGEST).body(line).send().await.unwrap();
        match r.status().as_u16() {
            200 => acked += 1,
            503 => {
                full = Some((
                    r.headers().get("retry-after").cloned(),
                    r.json::<Value>().await.unwrap(),
                ));
                break;
            }
            s => panic!("unexpected status {s}"),
        }
    }
    let (retry_after, body) = full.expect("the WAL filled up");
    assert!(retry_after.is_some(), "503 carries Retry-After");
    assert_eq!(body["error"]["code"], "unavailable");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("full"),
        "{body}"
    );
    assert!(acked > 10);
    gw.stop().await; // the indexer commits everything on shutdown

    let gw = TestGateway::start(small_wal(Duration::from_millis(100))).await;
    gw.search_until(A_ADMIN, &[("q", "walcap")], acked).await;
    let r = gw
        .post("/web", A_INGEST)
        .body("space is back")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "ingest resumes once consumers release space"
    );
    gw.stop().await;
}

#[tokio::test]
async fn keys_never_appear_in_the_gateway_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = spawn_server_logging(&write_config(dir.path()), "debug");
    let client = reqwest::Client::new();
    wait_ready(&client, &server.url).await;
    let url = &server.url;
    client
        .post(format!("{url}/v1/logs/x?key={A_INGEST}"))
        .body("k1")
        .send()
        .await
        .unwrap();
    client
        .post(format!("{url}/v1/logs/x"))
        .header("x-logway-key", A_INGEST)
        .body("k2")
        .send()
        .await
        .unwrap();
    client
        .post(format!("{url}/v1/logs/x"))
        .bearer_auth("wrong-key-12345678")
        .body("k3")
        .send()
        .await
        .unwrap();
    client
        .get(format!("{url}/api/v1/search?q=k1&key={A_ADMIN}"))
        .send()
        .await
        .unwrap();
    client
        .get(format!("{url}/api/v1/search"))
        .bearer_auth(A_ADMIN)
        .send()
        .await
        .unwrap();
    unsafe { libc::kill(server.child.id() as i32, libc::SIGTERM) };
    assert!(server.child.wait().unwrap().success());
    std::thread::sleep(Duration::from_millis(100));
    let log = server.log.lock().unwrap();
    assert!(
        log.iter().any(|l| l.contains("/v1/logs/x")),
        "debug logging shows requests: {log:?}"
    );
    for key in [A_INGEST, A_ADMIN, "wrong-key-12345678"] {
        assert!(
            !log.iter().any(|l| l.contains(key)),
            "a key leaked into the log"
        );
    }
}

#[tokio::test]
async fn not_ready_and_no_ingest_until_recovery_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    // A data directory whose WAL cannot be opened: recovery fails.
    std::fs::write(dir.path().join("wal"), b"not a directory").unwrap();
    let gateway = logway::start(two_tenant_config(dir.path(), ""))
        .await
        .unwrap();
    let url = format!("http://{}", gateway.http_addr());
    let client = reqwest::Client::new();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = client.get(format!("{url}/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().get("retry-after").is_some());
    let r = client
        .post(format!("{url}/web"))
        .bearer_auth(A_INGEST)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503, "no ack before recovery");
    let health = client.get(format!("{url}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200, "alive, just not ready");
    let err = gateway.shutdown().await.unwrap_err();
    assert!(format!("{err:#}").contains("write-ahead log"), "{err:#}");
}

/// The data directory deleted under a running gateway (an operator's
/// mistake, a test that cleaned up early): shutdown still finishes instead
/// of retrying commits into a directory that is gone. (Requests after the
/// deletion may still be acked: the WAL goes on writing its open segment
/// file, unlinked with the directory, as a database would.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_data_dir_fails_requests_and_shutdown_still_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let gw = TestGateway::start(two_tenant_config(&data, "")).await;
    let send = |text: String| {
        gw.post("/web", A_INGEST)
            .header("content-type", "application/x-ndjson")
            .body(format!("{{\"message\":\"{text}\"}}\n"))
            .send()
    };
    for i in 0..20 {
        assert_eq!(send(format!("before {i}")).await.unwrap().status(), 200);
    }
    gw.search_until(A_ADMIN, &[("q", "before")], 20).await;
    std::fs::remove_dir_all(&data).unwrap();
    // More events, for the indexer to fail on.
    for i in 0..20 {
        let _ = send(format!("after {i}")).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stopped = tokio::time::timeout(Duration::from_secs(30), gw.gateway.shutdown()).await;
    assert!(stopped.is_ok(), "shutdown did not finish within 30 s");
}
