//! WASM filters through the real server, with real components built from
//! `filters/`: upload, attach to a route by config, post real data, search
//! the result; the sandbox's limits; tenant isolation; restart; hot swap.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

const LOGHUB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/loghub");

/// Two tenants: `a` with routes running filters, `b` with a keep-all route
/// and a route naming a filter only `a` has.
fn config(dir: &std::path::Path) -> logway::Config {
    let text = format!(
        r#"
[server]
http_addr = "127.0.0.1:0"
[storage]
data_dir = "{dir}"
[hot]
commit_interval = "100ms"
[filters]
max_batch_time = "1s"
max_memory_bytes = 33554432
[[tenants]]
name = "a"
ingest_keys = ["{A_INGEST}"]
admin_keys = ["{A_ADMIN}"]
routes = [
  {{ path = "/apache", type = "apache_error", filters = [{{ name = "apache-error" }}] }},
  {{ path = "/ssh", type = "sshd", filters = [{{ name = "openssh", config = {{ year = 2017 }} }}, {{ name = "redact", config = {{ fields = "message" }} }}] }},
  {{ path = "/browser", type = "browser_logs", filters = [{{ name = "user-agent" }}, {{ name = "sample", config = {{ rate = 1 }} }}] }},
  {{ path = "/debug", type = "debug_logs", filters = [{{ name = "sample", config = {{ rate = 10, field = "request_id" }} }}] }},
  {{ path = "/hostile", type = "hostile", filters = [{{ name = "hostile" }}] }},
  {{ path = "/swap", type = "swap", filters = [{{ name = "swap" }}] }},
]
[[tenants]]
name = "b"
ingest_keys = ["{B_INGEST}"]
admin_keys = ["{B_ADMIN}"]
routes = [
  {{ path = "/b/keep", type = "kept", filters = [{{ name = "keep" }}] }},
  {{ path = "/b/apache", type = "apache_error", filters = [{{ name = "apache-error" }}] }},
]
"#,
        dir = dir.display()
    );
    logway::Config::from_toml(&text).unwrap()
}

async fn upload_ok(t: &TestGateway, key: &str, name: &str, wasm_name: &str) -> Value {
    let (status, body) = upload_filter(t, key, name, filter_wasm(wasm_name)).await;
    assert!(
        status == 201 || status == 200,
        "upload {name}: {status} {body}"
    );
    body
}

async fn post_text(t: &TestGateway, path: &str, key: &str, body: String) -> (u16, Value) {
    let r = t
        .post(path, key)
        .header("content-type", "text/plain")
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn post_json(t: &TestGateway, path: &str, key: &str, body: String) -> (u16, Value) {
    let r = t
        .post(path, key)
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn apache_error_filter_parses_every_loghub_line_into_searchable_fields() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestGateway::start(config(dir.path())).await;
    let meta = upload_ok(&t, A_ADMIN, "apache-error", "apache-error").await;
    assert_eq!(meta["version"], 1);
    assert_eq!(meta["used_by"], serde_json::json!(["/apache"]));

    let log = std::fs::read_to_string(format!("{LOGHUB}/Apache/Apache_2k.log")).unwrap();
    let csv =
        std::fs::read_to_string(format!("{LOGHUB}/Apache/Apache_2k.log_structured.csv")).unwrap();
    let levels: Vec<&str> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(2).unwrap())
        .collect();
    let errors = levels.iter().filter(|l| **l == "error").count() as u64;
    let notices = levels.iter().filter(|l| **l == "notice").count() as u64;
    assert!(errors > 0 && notices > 0);

    let (status, answer) = post_text(&t, "/apache", A_INGEST, log.clone()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], 2000);
    assert!(answer.get("dead_lettered").is_none(), "{answer}");

    let all = t
        .search_until(A_ADMIN, &[("q", "type:apache_error"), ("limit", "1")], 2000)
        .await;
    let hit = &all["hits"][0];
    assert!(hit["fields"]["apache_time"].is_string(), "{hit}");
    t.search_until(A_ADMIN, &[("q", "level:error")], errors)
        .await;
    t.search_until(A_ADMIN, &[("q", "level:notice")], notices)
        .await;
    // The event time comes from the line, not from when it was received.
    t.search_until(
        A_ADMIN,
        &[
            (
                "q",
                "message:\"workerEnv.init() ok /etc/httpd/conf/workers2.properties\"",
            ),
            ("from", "2005-12-04T04:47:44Z"),
            ("to", "2005-12-04T04:47:45Z"),
        ],
        1,
    )
    .await;
    let m = t.metrics().await;
    assert!(metric_sum(&m, "logway_filter_batches_total{") >= 1.0, "{m}");
    t.stop().await;
}

#[tokio::test]
async fn a_chain_parses_openssh_then_redacts_and_a_sampler_drops() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestGateway::start(config(dir.path())).await;
    for f in ["openssh", "redact", "user-agent", "sample"] {
        upload_ok(&t, A_ADMIN, f, f).await;
    }
    let log = std::fs::read_to_string(format!("{LOGHUB}/OpenSSH/OpenSSH_2k.log")).unwrap();
    let (status, answer) = post_text(&t, "/ssh", A_INGEST, log).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], 2000);
    let body = t
        .search_until(
            A_ADMIN,
            &[
                ("q", "type:sshd AND fields.process:sshd"),
                ("limit", "2000"),
            ],
            2000,
        )
        .await;
    // openssh extracted the source IP into a field; redact then masked it in the message.
    let with_ip: Vec<&Value> = body["hits"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["fields"]["source_ip"].is_string())
        .collect();
    assert!(with_ip.len() > 500, "{}", with_ip.len());
    for h in &with_ip {
        let ip = h["fields"]["source_ip"].as_str().unwrap();
        let msg = h["message"].as_str().unwrap();
        assert!(!msg.contains(ip), "{msg} still holds {ip}");
        assert!(msg.contains("[REDACTED]"), "{msg}");
    }
    assert_eq!(with_ip[0]["host"], "LabSZ");

    // user-agent enriches browser events.
    let ua = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1";
    let (status, answer) = post_json(
        &t,
        "/browser",
        A_INGEST,
        format!("{{\"message\":\"click\",\"user_agent\":\"{ua}\"}}\n"),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let body = t
        .search_until(A_ADMIN, &[("q", "type:browser_logs")], 1)
        .await;
    let parsed = &body["hits"][0]["fields"]["ua"];
    assert_eq!(parsed["device"], "mobile", "{parsed}");
    assert_eq!(parsed["os"], "iOS", "{parsed}");

    // sample keeps about 1 in 10 request ids, and all events of a request id together.
    let lines: String = (0..2000)
        .map(|i| {
            format!(
                "{{\"message\":\"debug {i}\",\"level\":\"debug\",\"request_id\":\"r{}\"}}\n",
                i / 2
            )
        })
        .collect();
    let (status, answer) = post_json(&t, "/debug", A_INGEST, lines).await;
    assert_eq!(status, 200, "{answer}");
    let dropped = answer["dropped"].as_u64().unwrap();
    let kept = 2000 - dropped;
    assert!((100..=300).contains(&kept) && kept % 2 == 0, "kept {kept}");
    t.search_until(A_ADMIN, &[("q", "type:debug_logs")], kept)
        .await;
    let m = t.metrics().await;
    assert_eq!(
        metric_sum(&m, "logway_filter_events_dropped_total{"),
        dropped as f64,
        "{m}"
    );
    t.stop().await;
}

/// Each hostile mode: the batch becomes dead letters with a reason naming
/// the limit, the instance is replaced, and tenant b's traffic is unharmed.
#[tokio::test]
async fn hostile_filters_become_dead_letters_without_hurting_other_tenants() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestGateway::start(config(dir.path())).await;
    upload_ok(&t, A_ADMIN, "hostile", "hostile").await;
    upload_ok(&t, B_ADMIN, "keep", "keep").await;

    // Tenant b sends all along.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let b_traffic = {
        let (client, url, stop) = (t.client.clone(), t.url.clone(), stop.clone());
        tokio::spawn(async move {
            let (mut ok, mut failed) = (0u64, 0u64);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = client
                    .post(format!("{url}/b/keep"))
                    .bearer_auth(B_INGEST)
                    .header("content-type", "application/x-ndjson")
                    .body("{\"message\":\"b is fine\"}\n".repeat(50))
                    .send()
                    .await
                    .unwrap();
                if r.status() == 200 {
                    ok += 1;
                } else {
                    failed += 1;
                }
            }
            (ok, failed)
        })
    };

    let modes = [
        ("alloc", "memory cap"),
        ("loop", "CPU deadline"),
        ("panic", "hostile guest panics on purpose"),
        ("huge", "output too large"),
        ("wrong-count", "malformed output"),
        ("host-loop", "CPU deadline"),
    ];
    for (i, (mode, reason)) in modes.iter().enumerate() {
        let (status, answer) =
            post_text(&t, "/hostile", A_INGEST, format!("{mode}\nsecond line\n")).await;
        assert_eq!(status, 200, "{mode}: {answer}");
        assert_eq!(answer["dead_lettered"], 2, "{mode}: {answer}");
        let why = answer["errors"][0]["reason"].as_str().unwrap();
        assert!(
            why.contains("filter `hostile`") && why.contains(reason),
            "{mode}: {why}"
        );
        // A fresh instance serves the next batch.
        let (status, answer) = post_text(&t, "/hostile", A_INGEST, format!("fine {i}\n")).await;
        assert_eq!(status, 200, "{answer}");
        assert!(answer.get("dead_lettered").is_none(), "{mode}: {answer}");
        let body = t
            .search_until(A_ADMIN, &[("q", &format!("message:\"fine {i}\""))], 1)
            .await;
        assert_eq!(
            body["hits"][0]["fields"]["batches"], 1,
            "{mode}: instance not recycled"
        );
    }
    // The dead letters are stored and searchable, with the raw line and the filter's name.
    let body = t
        .search_until(
            A_ADMIN,
            &[("q", "outcome:dead_letter AND message:\"second line\"")],
            modes.len() as u64,
        )
        .await;
    assert_eq!(body["hits"][0]["fields"]["filter"], "hostile");
    t.search_until(
        A_ADMIN,
        &[("q", "outcome:dead_letter AND message:panic")],
        1,
    )
    .await;

    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ok, failed) = b_traffic.await.unwrap();
    assert_eq!(failed, 0);
    assert!(ok > 0);
    let m = t.metrics().await;
    for kind in ["memory", "cpu", "trap", "output"] {
        assert!(
            m.contains(&format!(
                "logway_filter_failures_total{{tenant=\"a\",filter=\"hostile\",reason=\"{kind}\"}}"
            )),
            "{kind}: {m}"
        );
    }
    assert!(
        metric_sum(&m, "logway_filter_host_calls_ignored_total{tenant=\"a\"") > 0.0,
        "{m}"
    );
    // The API shows the failures and the last one.
    let r: Value = t.get_json("/api/v1/filters/hostile", A_ADMIN).await;
    assert_eq!(r["stats"]["failures"], modes.len());
    assert!(
        r["stats"]["last_error"]["reason"]
            .as_str()
            .unwrap()
            .contains("CPU deadline"),
        "{r}"
    );
    t.stop().await;
}

#[tokio::test]
async fn tenants_cannot_see_use_or_delete_each_others_filters() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestGateway::start(config(dir.path())).await;
    upload_ok(&t, A_ADMIN, "apache-error", "apache-error").await;
    let get = |key: &'static str, path: &str| {
        t.client
            .get(format!("{}{path}", t.url))
            .bearer_auth(key)
            .send()
    };
    let list: Value = get(B_ADMIN, "/api/v1/filters")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["filters"], serde_json::json!([]));
    assert_eq!(
        get(B_ADMIN, "/api/v1/filters/apache-error")
            .await
            .unwrap()
            .status(),
        404
    );
    let r = t
        .client
        .delete(format!("{}/api/v1/filters/apache-error?force=true", t.url))
        .bearer_auth(B_ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // Ingest keys do not administer filters.
    assert_eq!(
        get(A_INGEST, "/api/v1/filters").await.unwrap().status(),
        403
    );
    // b's route naming `apache-error` does not reach a's filter: dead letters.
    let (status, answer) = post_text(
        &t,
        "/b/apache",
        B_INGEST,
        "[Sun Dec 04 04:47:44 2005] [notice] hi\n".into(),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["dead_lettered"], 1);
    assert!(
        answer["errors"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("not uploaded"),
        "{answer}"
    );
    let list: Value = get(A_ADMIN, "/api/v1/filters")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["filters"][0]["name"], "apache-error");
    assert_eq!(list["filters"][0]["stats"]["batches"], 0);
    // a may not delete a filter its route uses, unless forced.
    let del = |q: &'static str| {
        t.client
            .delete(format!("{}/api/v1/filters/apache-error{q}", t.url))
            .bearer_auth(A_ADMIN)
            .send()
    };
    let r = del("").await.unwrap();
    assert_eq!(r.status(), 409);
    assert!(r.text().await.unwrap().contains("/apache"));
    assert_eq!(del("?force=true").await.unwrap().status(), 204);
    assert_eq!(
        get(A_ADMIN, "/api/v1/filters/apache-error")
            .await
            .unwrap()
            .status(),
        404
    );
    t.stop().await;
}

#[tokio::test]
async fn uploads_are_checked_against_the_world() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.filters.max_upload_bytes = 8 * 1024 * 1024;
    let t = TestGateway::start(c).await;
    let cases: [(&str, Vec<u8>, u16, &str); 4] = [
        ("text", b"hello".to_vec(), 400, "not a WebAssembly binary"),
        (
            "core-module",
            b"\0asm\x01\0\0\0".to_vec(),
            400,
            "not a valid WebAssembly component",
        ),
        (
            "empty-component",
            b"\0asm\x0d\0\x01\0".to_vec(),
            400,
            "does not export",
        ),
        (
            "too-big",
            vec![0u8; 9 * 1024 * 1024],
            413,
            "filters.max_upload_bytes",
        ),
    ];
    for (name, bytes, status, message) in cases {
        let (got, body) = upload_filter(&t, A_ADMIN, name, bytes).await;
        assert_eq!(got, status, "{name}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains(message)
                || body.to_string().contains(message),
            "{name}: {body}"
        );
    }
    let (got, body) = upload_filter(&t, A_ADMIN, "Bad Name", filter_wasm("keep")).await;
    assert_eq!(got, 400, "{body}");
    t.stop().await;
}

#[tokio::test]
async fn uploaded_filters_and_route_chains_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestGateway::start(config(dir.path())).await;
    upload_ok(&t, A_ADMIN, "apache-error", "apache-error").await;
    let second = upload_ok(&t, A_ADMIN, "apache-error", "apache-error").await;
    assert_eq!(second["version"], 2);
    t.stop().await;

    let t = TestGateway::start(config(dir.path())).await;
    let one: Value = t.get_json("/api/v1/filters/apache-error", A_ADMIN).await;
    assert_eq!(one["version"], 2, "{one}");
    assert_eq!(one["sha256"], second["sha256"]);
    let (status, answer) = post_text(
        &t,
        "/apache",
        A_INGEST,
        "[Sun Dec 04 04:47:44 2005] [error] after restart\n".into(),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let body = t
        .search_until(
            A_ADMIN,
            &[("q", "level:error AND message:\"after restart\"")],
            1,
        )
        .await;
    assert_eq!(body["hits"][0]["timestamp"], "2005-12-04T04:47:44Z");
    t.stop().await;
}

/// Swapping a filter under load: no request fails, no event is lost, and
/// each event went through exactly one version (v1 `keep` leaves no mark,
/// v2 `hostile` in its normal mode adds `batches`).
#[tokio::test]
async fn hot_swap_under_load_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestGateway::start(config(dir.path())).await;
    upload_ok(&t, A_ADMIN, "swap", "keep").await;
    let senders: Vec<_> = (0..4)
        .map(|s| {
            let (client, url) = (t.client.clone(), t.url.clone());
            tokio::spawn(async move {
                let mut sent = 0u64;
                for r in 0..40 {
                    let body: String = (0..25)
                        .map(|i| format!("{{\"message\":\"swap s{s} r{r} e{i}\"}}\n"))
                        .collect();
                    let resp = client
                        .post(format!("{url}/swap"))
                        .bearer_auth(A_INGEST)
                        .header("content-type", "application/x-ndjson")
                        .body(body)
                        .send()
                        .await
                        .unwrap();
                    let status = resp.status();
                    let answer: Value = resp.json().await.unwrap();
                    assert_eq!(status, 200, "{answer}");
                    assert!(answer.get("dead_lettered").is_none(), "{answer}");
                    sent += 25;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                sent
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let v2 = upload_ok(&t, A_ADMIN, "swap", "hostile").await;
    assert_eq!(v2["version"], 2);
    let mut sent = 0;
    for s in senders {
        sent += s.await.unwrap();
    }
    let all = t
        .search_until(A_ADMIN, &[("q", "type:swap"), ("limit", "1")], sent)
        .await;
    assert_eq!(all["total"], sent);
    let v2_events = t
        .histogram_total(A_ADMIN, "type:swap AND fields.batches:>=1")
        .await;
    let v1_events = t
        .histogram_total(A_ADMIN, "type:swap AND NOT fields.batches:>=1")
        .await;
    assert_eq!(v1_events + v2_events, sent);
    assert!(
        v1_events > 0 && v2_events > 0,
        "v1 {v1_events}, v2 {v2_events}"
    );
    t.stop().await;
}

#[tokio::test]
async fn the_command_line_tests_uploads_lists_and_deletes_filters() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("apache.wasm");
    std::fs::write(&wasm, filter_wasm("apache-error")).unwrap();
    let logway = env!("CARGO_BIN_EXE_logway");

    // `filter test`: no server, one verdict per line.
    let mut child = std::process::Command::new(logway)
        .args(["filter", "test"])
        .arg(&wasm)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(b"[Sun Dec 04 04:47:44 2005] [error] mod_jk child init 1 -2\nnot apache\n")
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["line"], 1);
    assert_eq!(lines[0]["verdict"], "edits");
    let edits = lines[0]["edits"].as_array().unwrap();
    assert!(
        edits.contains(&serde_json::json!({"set": "level", "value": "error"})),
        "{edits:?}"
    );
    assert!(
        lines[1]["edits"].to_string().contains("parse_error"),
        "{}",
        lines[1]
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("2 events"));

    // upload / list / delete against a running gateway.
    let t = TestGateway::start(config(dir.path())).await;
    let url = t.url.clone();
    let run = move |args: Vec<String>| {
        let url = url.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                std::process::Command::new(logway)
                    .arg("filter")
                    .args(&args)
                    .args(["--url", &url, "--key", A_ADMIN])
                    .output()
                    .unwrap()
            })
            .await
            .unwrap()
        }
    };
    let wasm_arg = wasm.display().to_string();
    let out = run(vec!["upload".into(), "apache-error".into(), wasm_arg]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(meta["version"], 1);
    let out = run(vec!["list".into()]).await;
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list["filters"][0]["name"], "apache-error");
    let out = run(vec!["delete".into(), "apache-error".into()]).await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("409"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(vec![
        "delete".into(),
        "apache-error".into(),
        "--force".into(),
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    t.stop().await;
}

/// A filter can move events to another log type: they land in that type's
/// partition, the rest stay in the route's, rejected lines too.
#[tokio::test]
async fn set_type_moves_events_to_another_log_type() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestGateway::start(config(dir.path())).await;
    upload_ok(&t, A_ADMIN, "hostile", "hostile").await;
    let body = "plain one\nretype audit\nplain two\nretype audit\nretype security\n";
    let (status, answer) = post_text(&t, "/hostile", A_INGEST, body.into()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], 5);
    t.search_until(A_ADMIN, &[("q", "message:retype"), ("type", "audit")], 2)
        .await;
    t.search_until(A_ADMIN, &[("q", "*"), ("type", "security")], 1)
        .await;
    let plain = t
        .search_until(A_ADMIN, &[("q", "message:plain"), ("type", "hostile")], 2)
        .await;
    assert_eq!(plain["hits"][0]["type"], "hostile");
    let m = t.metrics().await;
    assert!(
        m.contains("logway_events_indexed_total{tenant=\"a\",type=\"audit\"} 2"),
        "{m}"
    );
    t.stop().await;
}

/// A config reload changes a route's chain for new requests, no restart.
#[tokio::test]
async fn a_reload_changes_a_routes_filter_chain() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestGateway::start(config(dir.path())).await;
    upload_ok(&t, A_ADMIN, "apache-error", "apache-error").await;
    let line = |n: u32| format!("[Sun Dec 04 04:47:44 2005] [error] reload check {n}\n");
    post_text(&t, "/apache", A_INGEST, line(1)).await;

    let mut without = config(dir.path());
    let route = without.tenants[0]
        .routes
        .iter_mut()
        .find(|r| r.path == "/apache")
        .unwrap();
    route.filters.clear();
    t.gateway.reload(&without).unwrap();
    post_text(&t, "/apache", A_INGEST, line(2)).await;

    t.gateway.reload(&config(dir.path())).unwrap();
    post_text(&t, "/apache", A_INGEST, line(3)).await;

    let parsed = t
        .search_until(A_ADMIN, &[("q", "level:error AND message:reload")], 2)
        .await;
    let mut messages: Vec<&str> = parsed["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["message"].as_str().unwrap())
        .collect();
    messages.sort();
    assert_eq!(messages, ["reload check 1", "reload check 3"]);
    t.search_until(A_ADMIN, &[("q", "message:\"[error] reload check 2\"")], 1)
        .await;
    t.stop().await;
}

/// With room for only two instances, a third filter still runs: idle
/// instances of the others give their slots back.
#[tokio::test]
async fn idle_instances_give_back_their_slots_when_the_pool_is_full() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.filters.max_instances = 2;
    let t = TestGateway::start(c).await;
    upload_ok(&t, A_ADMIN, "apache-error", "apache-error").await;
    upload_ok(&t, A_ADMIN, "hostile", "hostile").await;
    upload_ok(&t, A_ADMIN, "swap", "keep").await;
    for round in 0..2 {
        for path in ["/apache", "/hostile", "/swap"] {
            let (status, answer) =
                post_text(&t, path, A_INGEST, format!("slot check {round}\n")).await;
            assert_eq!(status, 200, "{path}: {answer}");
            assert!(answer.get("dead_lettered").is_none(), "{path}: {answer}");
        }
    }
    t.stop().await;
}
