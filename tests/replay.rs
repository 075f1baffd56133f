//! Replay from the archive (a real S3-protocol server) into the hot tier:
//! a wiped hot tier comes back with the same events, replaying twice or
//! replaying events still hot adds nothing, a corrupt object is reported
//! and skipped, jobs are tenant-scoped, and the CLI drives it.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::{Value, json};

fn config(dir: &std::path::Path, server: &S3Server) -> logway::Config {
    two_tenant_config(
        dir,
        &format!(
            "[archive]\nmax_object_age = \"100ms\"\n{}",
            server.archive_toml()
        ),
    )
}

async fn ingest(t: &TestGateway, path: &str, key: &str, n: usize, tag: &str) {
    let body: String = (0..n)
        .map(|i| format!("{{\"message\":\"{tag} {i}\"}}\n"))
        .collect();
    let r = t
        .post(path, key)
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// Starts a replay job; returns its id.
async fn start_replay(t: &TestGateway, key: &str, body: Value) -> String {
    let r = t
        .client
        .post(format!("{}/api/v1/replay", t.url))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    let job: Value = r.json().await.unwrap();
    job["id"].as_str().unwrap().to_string()
}

/// Waits for a job to finish; returns its final progress.
async fn wait_replay(t: &TestGateway, key: &str, id: &str) -> Value {
    let start = Instant::now();
    loop {
        let p = t.get_json(&format!("/api/v1/replay/{id}"), key).await;
        if !matches!(p["state"].as_str(), Some("queued" | "running")) {
            return p;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{p}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Starts a replay and waits for it to finish; returns the final progress.
async fn replay(t: &TestGateway, key: &str, body: Value) -> Value {
    let id = start_replay(t, key, body).await;
    wait_replay(t, key, &id).await
}

fn hour_range() -> Value {
    json!({"from": "now-1h", "to": "now+1h"})
}

async fn ids(t: &TestGateway, q: &str, n: u64) -> HashSet<String> {
    let body = t
        .search_until(A_ADMIN, &[("q", q), ("limit", "1000")], n)
        .await;
    body["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_wiped_hot_tier_comes_back_by_replay_and_twice_adds_nothing() {
    let s3dir = tempfile::tempdir().unwrap();
    let server = S3Server::start(s3dir.path()).await;
    let first = tempfile::tempdir().unwrap();
    let t = TestGateway::start(config(first.path(), &server)).await;
    ingest(&t, "/mobile", A_INGEST, 50, "mobile").await;
    ingest(&t, "/web", A_INGEST, 30, "web").await;
    ingest(&t, "/b/app", B_INGEST, 20, "b").await;
    t.wait_archived(100).await;
    let mobile = ids(&t, "type:mobile_logs", 50).await;
    let web = ids(&t, "type:web_logs", 30).await;
    t.stop().await;

    // A new node: empty data directory, same archive.
    let second = tempfile::tempdir().unwrap();
    let t = TestGateway::start(config(second.path(), &server)).await;
    t.search_until(A_ADMIN, &[("q", "*")], 0).await;
    // Only what a query matches, first.
    let q = replay(&t, A_ADMIN, json!({"type": "mobile_logs", "query": "message:\"mobile 7\"", "from": "now-1h", "to": "now+1h"})).await;
    assert_eq!(q["state"], "done", "{q}");
    assert_eq!(q["events_indexed"], 1, "{q}");
    assert_eq!(q["events_not_matching"], 49, "{q}");
    let p = replay(&t, A_ADMIN, hour_range()).await;
    assert_eq!(p["state"], "done", "{p}");
    assert_eq!(p["events_indexed"], 79, "{p}");
    assert_eq!(p["duplicates_skipped"], 1, "{p}");
    assert_eq!(p["error_count"], 0, "{p}");
    assert!(p["objects_total"].as_u64().unwrap() >= 2, "{p}");
    assert_eq!(ids(&t, "type:mobile_logs", 50).await, mobile);
    assert_eq!(ids(&t, "type:web_logs", 30).await, web);
    // The same search as before the wipe.
    t.search_until(A_ADMIN, &[("q", "message:\"mobile 7\"")], 1)
        .await;
    // Tenant b's events are not a's to replay.
    t.search_until(B_ADMIN, &[("q", "*")], 0).await;
    assert!(
        second
            .path()
            .join("hot/a/mobile_logs")
            .read_dir()
            .unwrap()
            .any(|d| d
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("replay-"))
    );

    let again = replay(&t, A_ADMIN, hour_range()).await;
    assert_eq!(again["state"], "done", "{again}");
    assert_eq!(again["events_indexed"], 0, "{again}");
    assert_eq!(again["duplicates_skipped"], 80, "{again}");
    assert_eq!(ids(&t, "type:mobile_logs", 50).await.len(), 50);

    // b replays its own.
    let b = replay(
        &t,
        B_ADMIN,
        json!({"type": "app_logs", "from": "now-1h", "to": "now+1h"}),
    )
    .await;
    assert_eq!(b["events_indexed"], 20, "{b}");
    t.stop().await;
    server.stop().await;
}

#[tokio::test]
async fn replaying_hot_events_adds_nothing_and_a_corrupt_object_is_reported() {
    let s3dir = tempfile::tempdir().unwrap();
    let server = S3Server::start(s3dir.path()).await;
    let dir = tempfile::tempdir().unwrap();
    let t = TestGateway::start(config(dir.path(), &server)).await;
    ingest(&t, "/mobile", A_INGEST, 40, "still hot").await;
    t.wait_archived(40).await;
    // A corrupt object in the same hour partition.
    let archive_dir = server
        .root
        .join(S3_BUCKET)
        .join("logs/tenant=a/type=mobile_logs");
    let day = std::fs::read_dir(&archive_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let hour = std::fs::read_dir(&day)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let store = logway::archive::store::s3::S3Store::new(&server.s3_config())
        .await
        .unwrap();
    let rel = hour
        .strip_prefix(server.root.join(S3_BUCKET))
        .unwrap()
        .display()
        .to_string();
    logway::archive::store::ObjectStore::put(
        &store,
        &format!("{rel}/zz-corrupt.ndjson.zst"),
        bytes::Bytes::from_static(b"\x28\xb5\x2f\xfd garbage"),
    )
    .await
    .unwrap();

    let p = replay(
        &t,
        A_ADMIN,
        json!({"type": "mobile_logs", "from": "now-1h", "to": "now+1h"}),
    )
    .await;
    assert_eq!(p["state"], "done", "{p}");
    assert_eq!(p["events_indexed"], 0, "{p}");
    assert_eq!(p["duplicates_skipped"], 40, "{p}");
    assert_eq!(p["error_count"], 1, "{p}");
    assert!(
        p["errors"][0].as_str().unwrap().contains("zz-corrupt"),
        "{p}"
    );
    t.search_until(A_ADMIN, &[("q", "type:mobile_logs")], 40)
        .await;
    // A range with nothing in it lists nothing.
    let empty = replay(
        &t,
        A_ADMIN,
        json!({"from": "2020-01-01T00:00:00Z", "to": "2020-01-02T00:00:00Z"}),
    )
    .await;
    assert_eq!(empty["objects_total"], 0, "{empty}");

    // Jobs are tenant-scoped.
    let id = p["id"].as_str().unwrap();
    let r = t
        .client
        .get(format!("{}/api/v1/replay/{id}", t.url))
        .bearer_auth(B_ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = t
        .client
        .post(format!("{}/api/v1/replay", t.url))
        .bearer_auth(A_INGEST)
        .json(&hour_range())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = t
        .client
        .post(format!("{}/api/v1/replay", t.url))
        .bearer_auth(A_ADMIN)
        .json(&json!({"from": "now", "to": "now-1h"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // The CLI: progress on stderr, the result on stdout, non-zero because of the corrupt object.
    let url = t.url.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_logway"))
            .args([
                "replay",
                "--type",
                "mobile_logs",
                "--from",
                "now-1h",
                "--to",
                "now+1h",
                "--url",
                &url,
                "--key",
                A_ADMIN,
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("objects") && stderr.contains("1 errors"),
        "{stderr}"
    );
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["duplicates_skipped"], 40);
    t.stop().await;
    server.stop().await;
}

/// Writes archive objects by hand into a local archive under `dir`: one
/// per `(sequence, lines)`, with events of `log_type` received now.
struct HandArchive {
    store: logway::archive::store::local::LocalStore,
    now: time::OffsetDateTime,
}

impl HandArchive {
    fn new(dir: &std::path::Path) -> HandArchive {
        HandArchive {
            store: logway::archive::store::local::LocalStore::new(dir.join("archive")).unwrap(),
            now: time::OffsetDateTime::now_utc(),
        }
    }

    /// The stored event number `i`: same `i`, same id.
    fn event(&self, log_type: &str, i: u128, message: &str) -> String {
        let id = ulid::Ulid::from_parts(self.now.unix_timestamp() as u64 * 1000, i).to_string();
        let stamp = logway::event::format_time(self.now);
        format!(
            "{{\"id\":\"{id}\",\"tenant\":\"a\",\"type\":\"{log_type}\",\"received_at\":\"{stamp}\",\"timestamp\":\"{stamp}\",\"message\":\"{message}\"}}\n"
        )
    }

    async fn put(&self, log_type: &str, seq: u64, lines: &str) {
        self.put_bytes(
            log_type,
            seq,
            zstd::encode_all(lines.as_bytes(), 3).unwrap(),
        )
        .await;
    }

    /// Stores `body` as object `seq`; returns its key.
    async fn put_bytes(&self, log_type: &str, seq: u64, body: Vec<u8>) -> String {
        use logway::archive::store::ObjectStore;
        let key = logway::archive::PartitionKey::new("a", log_type, self.now).object_key(
            "logs",
            seq,
            seq + 1,
            "w",
        );
        self.store.put(&key, body.into()).await.unwrap();
        key
    }
}

/// `DELETE` cancels a running job: it stops between objects, keeps what it
/// indexed, and says `cancelled`.
#[tokio::test]
async fn a_replay_can_be_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    // Many small objects in the local archive, so the job runs a while.
    let archive = HandArchive::new(dir.path());
    for i in 0..600u64 {
        let line = archive.event("cancel_logs", i.into(), &format!("object {i}"));
        archive.put("cancel_logs", i, &line).await;
    }
    let t = TestGateway::start(two_tenant_config(dir.path(), "")).await;
    let id = start_replay(
        &t,
        A_ADMIN,
        json!({"type": "cancel_logs", "from": "now-1h", "to": "now+1h"}),
    )
    .await;
    // Cancel once it is under way.
    let started = Instant::now();
    loop {
        let p = t.get_json(&format!("/api/v1/replay/{id}"), A_ADMIN).await;
        if p["objects_done"].as_u64() > Some(0) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{p}");
    }
    let r = t
        .client
        .delete(format!("{}/api/v1/replay/{id}", t.url))
        .bearer_auth(A_ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let p = wait_replay(&t, A_ADMIN, &id).await;
    assert_eq!(p["state"], "cancelled", "{p}");
    let done = p["objects_done"].as_u64().unwrap();
    eprintln!("cancelled after {done} of 600 objects");
    assert!(done < 600, "{p}");
    assert_eq!(p["objects_total"], 600, "{p}");
    // What it indexed before stopping stays searchable.
    t.search_until(
        A_ADMIN,
        &[("q", "type:cancel_logs")],
        p["events_indexed"].as_u64().unwrap(),
    )
    .await;
    t.stop().await;
}

/// An id twice in the archive (a retried upload that overlapped another
/// object, or a copy within one object) is indexed once, and with a query
/// too.
#[tokio::test]
async fn an_id_archived_twice_is_indexed_once() {
    let dir = tempfile::tempdir().unwrap();
    let archive = HandArchive::new(dir.path());
    for log_type in ["twice_logs", "twice_query_logs"] {
        // Object 1: event 1 twice and event 2; object 2: event 2 again.
        let (one, two) = (
            archive.event(log_type, 1, "copied"),
            archive.event(log_type, 2, "copied"),
        );
        archive.put(log_type, 0, &format!("{one}{one}{two}")).await;
        archive.put(log_type, 1, &two).await;
    }
    let t = TestGateway::start(two_tenant_config(dir.path(), "")).await;
    let p = replay(
        &t,
        A_ADMIN,
        json!({"type": "twice_logs", "from": "now-1h", "to": "now+1h"}),
    )
    .await;
    assert_eq!(p["events_read"], 4, "{p}");
    assert_eq!(p["events_indexed"], 2, "{p}");
    assert_eq!(p["duplicates_skipped"], 2, "{p}");
    let p = replay(
        &t,
        A_ADMIN,
        json!({"type": "twice_query_logs", "from": "now-1h", "to": "now+1h", "query": "copied"}),
    )
    .await;
    assert_eq!(p["events_indexed"], 2, "{p}");
    assert_eq!(p["duplicates_skipped"], 2, "{p}");
    t.search_until(A_ADMIN, &[("q", "type:twice_logs")], 2)
        .await;
    let (_, body) = t
        .search_raw(A_ADMIN, &[("q", "type:twice_query_logs")])
        .await;
    assert_eq!(body["total"], 2, "{body}");
    t.stop().await;
}

/// A truncated object: the lines before the cut are replayed, the cut is
/// reported with the object's key, and the next object is replayed whole.
#[tokio::test]
async fn a_truncated_object_replays_its_lines_before_the_cut() {
    let dir = tempfile::tempdir().unwrap();
    let archive = HandArchive::new(dir.path());
    let lines: String = (0..2000u128)
        .map(|i| archive.event("cut_logs", i, &format!("line {i} of a cut object")))
        .collect();
    let whole = zstd::encode_all(lines.as_bytes(), 3).unwrap();
    let cut = archive
        .put_bytes("cut_logs", 0, whole[..whole.len() * 6 / 10].to_vec())
        .await;
    let after = archive.event("cut_logs", 5000, "the next object");
    archive.put("cut_logs", 1, &after).await;
    let t = TestGateway::start(two_tenant_config(dir.path(), "")).await;
    let p = replay(
        &t,
        A_ADMIN,
        json!({"type": "cut_logs", "from": "now-1h", "to": "now+1h"}),
    )
    .await;
    assert_eq!(p["state"], "done", "{p}");
    assert_eq!(p["objects_done"], 2, "{p}");
    assert_eq!(p["error_count"], 1, "{p}");
    let error = p["errors"][0].as_str().unwrap();
    assert!(error.contains(&cut) && error.contains("truncated"), "{p}");
    let indexed = p["events_indexed"].as_u64().unwrap();
    // The cut object's complete lines, and the next object's one.
    assert!(indexed > 500 && indexed < 2001, "{p}");
    assert_eq!(p["events_read"], indexed, "{p}");
    t.search_until(A_ADMIN, &[("q", "type:cut_logs")], indexed)
        .await;
    let (_, body) = t.search_raw(A_ADMIN, &[("q", "\"the next object\"")]).await;
    assert_eq!(body["total"], 1, "{body}");
    t.stop().await;
}
