//! Datadog's logs intake: the official Python client's
//! `LogsApi.submit_log` (gzip, `DD-API-KEY`), and the Agent's corners by
//! hand (its `{}` connectivity check, zstd, the v1 path with the key in
//! it, errors).

use serde_json::{Value, json};

use crate::common::*;

fn find<'a>(body: &'a Value, message: &str) -> &'a Value {
    body["hits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["message"] == message)
        .unwrap_or_else(|| panic!("no `{message}` in {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_client_submits_logs() {
    let dir = tempfile::tempdir().unwrap();
    let t = compat_gateway(dir.path(), "").await;
    let out = run_client(python_client("dd_py.py", &[&t.url, "acme-ingest"])).await;
    assert_eq!(out["response"], json!({}), "{out}");
    // `ddsource` names the type.
    let body = t
        .search_until("acme-admin", &[("q", "type:nginx"), ("from", "now-1h")], 2)
        .await;
    let cart = find(&body, "dd-py GET /cart 200");
    assert_eq!(cart["level"], "info");
    assert_eq!(cart["host"], "web-3");
    assert_eq!(cart["service"], "shop");
    assert_eq!(cart["fields"]["tags"]["env"], "prod");
    assert_eq!(cart["fields"]["tags"]["version"], "1.4");
    assert_eq!(
        cart["fields"]["tags"]["team"], "checkout",
        "the query's ddtags"
    );
    assert_eq!(cart["fields"]["http_status"], 200);
    assert_eq!(find(&body, "dd-py GET /pay 502")["level"], "error");
    // A JSON message is read as a JSON line is.
    let body = t
        .search_until(
            "acme-admin",
            &[("q", "type:payments"), ("from", "now-1h")],
            1,
        )
        .await;
    let charge = find(&body, "dd-py charge captured");
    assert_eq!(charge["fields"]["amount"], 42);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_requests_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let t = compat_gateway(dir.path(), "").await;
    let post = |path: &str, key: &str, encoding: Option<&str>, body: Vec<u8>| {
        let mut r = t
            .client
            .post(format!("{}{path}", t.url))
            .header("content-type", "application/json")
            .body(body);
        if !key.is_empty() {
            r = r.header("dd-api-key", key);
        }
        if let Some(e) = encoding {
            r = r.header("content-encoding", e);
        }
        r.send()
    };
    // The Agent's connectivity check.
    let r = post("/api/v2/logs", "acme-ingest", None, b"{}".to_vec())
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({}));
    // What recent Agents send: zstd, millisecond timestamps.
    let items = json!([{"message": "agent line", "status": "warn", "timestamp": 1764496800250i64,
                        "hostname": "h1", "service": "agent-svc", "ddsource": "agent_src"}]);
    let zstd = zstd::encode_all(&serde_json::to_vec(&items).unwrap()[..], 1).unwrap();
    let r = post("/api/v2/logs", "acme-ingest", Some("zstd"), zstd)
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let body = t
        .search_until(
            "acme-admin",
            &[("q", "type:agent_src"), ("from", "2025-01-01T00:00:00Z")],
            1,
        )
        .await;
    let line = find(&body, "agent line");
    assert_eq!(line["timestamp"], "2025-11-30T10:00:00.25Z");
    assert_eq!(line["level"], "warn");
    // The v1 path with the key in it (older agents).
    let r = post(
        "/v1/input/acme-ingest",
        "",
        None,
        br#"[{"message":"v1 line"}]"#.to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 202);
    t.search_until(
        "acme-admin",
        &[("q", "type:datadog AND \"v1 line\""), ("from", "now-1h")],
        1,
    )
    .await;

    // An item that is not an object: kept as rejected, the rest stored, 400.
    let r = post(
        "/api/v2/logs",
        "acme-ingest",
        None,
        br#"[{"message":"fine item"}, 7]"#.to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    let errors: Value = r.json().await.unwrap();
    assert!(
        errors["errors"][0]
            .as_str()
            .unwrap()
            .contains("1 of 2 items"),
        "{errors}"
    );
    t.search_until(
        "acme-admin",
        &[("q", "\"fine item\""), ("from", "now-1h")],
        1,
    )
    .await;
    t.search_until(
        "acme-admin",
        &[("q", "outcome:rejected"), ("from", "now-1h")],
        1,
    )
    .await;
    let r = post("/api/v2/logs", "acme-ingest", None, b"not json".to_vec())
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = post("/api/v2/logs", "", None, b"[]".to_vec())
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = post("/api/v2/logs", "wrong", None, b"[]".to_vec())
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Rate limited: 429 with Retry-After, which the Agent retries.
    t.post_lines(
        "/v1/logs/app",
        "slow-ingest",
        &[json!({"message": "burst"})],
    )
    .await;
    let r = post(
        "/api/v2/logs",
        "slow-ingest",
        None,
        br#"[{"message":"over"}]"#.to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    t.stop().await;
}

/// With its retries on, the Python client waits out a 429 and sends again;
/// the item lands once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_client_retries_a_rate_limit() {
    let dir = tempfile::tempdir().unwrap();
    let t = compat_gateway(dir.path(), "").await;
    t.post_lines(
        "/v1/logs/app",
        "slow-ingest",
        &[json!({"message": "burst"})],
    )
    .await;
    let out = run_client(python_client("dd_py.py", &[&t.url, "slow-ingest", "retry"])).await;
    assert_eq!(out["response"], json!({}), "{out}");
    let limited = metric_sum(&t.metrics().await, "logway_requests_limited_total");
    assert!(limited >= 1.0, "the first attempt was not refused");
    t.search_until(
        "slow-admin",
        &[("q", "type:retried"), ("from", "now-1h")],
        1,
    )
    .await;
    t.stop().await;
}
