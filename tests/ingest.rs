//! Ingest, typing, search, rejected lines, idempotency, field mapping,
//! metrics: each through the real server on 127.0.0.1:0 with a real HTTP
//! client. HTTP-level behaviour (errors, keys, CORS, connections) is in
//! `http.rs`.

use std::time::Duration;

use crate::common::*;
use serde_json::{Value, json};

pub async fn gateway() -> (tempfile::TempDir, TestGateway) {
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(two_tenant_config(dir.path(), "")).await;
    (dir, gw)
}

pub async fn read_answer(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}")),
    )
}

#[tokio::test]
async fn every_body_format_and_encoding_round_trips() {
    let (_dir, gw) = gateway().await;
    // (name, content type, content encoding, body, events)
    type Case = (
        &'static str,
        Option<&'static str>,
        Option<&'static str>,
        Vec<u8>,
        u64,
    );
    let cases: Vec<Case> = vec![
        (
            "object",
            Some("application/json"),
            None,
            br#"{"message":"fmt object"}"#.to_vec(),
            1,
        ),
        (
            "array",
            Some("application/json"),
            None,
            br#"[{"message":"fmt array"},{"message":"fmt array"}]"#.to_vec(),
            2,
        ),
        (
            "ndjson",
            Some("application/x-ndjson"),
            None,
            b"{\"message\":\"fmt ndjson\"}\n{\"message\":\"fmt ndjson\"}\n".to_vec(),
            2,
        ),
        (
            "text",
            Some("text/plain"),
            None,
            b"fmt text one\nfmt text two\n".to_vec(),
            2,
        ),
        (
            "gzip",
            Some("text/plain"),
            Some("gzip"),
            gzip(b"fmt gzip\n"),
            1,
        ),
        (
            "zstd",
            Some("application/x-ndjson"),
            Some("zstd"),
            zstd::encode_all(&b"{\"message\":\"fmt zstd\"}\n"[..], 3).unwrap(),
            1,
        ),
        ("none", None, None, b"fmt none\n".to_vec(), 1),
    ];
    for (name, ctype, encoding, body, n) in cases {
        let mut req = gw.post("/web", A_INGEST).body(body);
        if let Some(c) = ctype {
            req = req.header("content-type", c);
        }
        if let Some(e) = encoding {
            req = req.header("content-encoding", e);
        }
        let (status, body) = read_answer(req.send().await.unwrap()).await;
        assert_eq!(status, 200, "{name}: {body}");
        assert_eq!(body["accepted"], n, "{name}");
        let hits = gw
            .search_until(A_ADMIN, &[("q", &format!("\"fmt {name}\""))], n)
            .await;
        assert_eq!(hits["hits"][0]["type"], "web_logs", "{name}");
    }
    gw.stop().await;
}

#[tokio::test]
async fn url_path_types_events_and_fields_are_promoted() {
    let (_dir, gw) = gateway().await;
    let event = json!({"@timestamp": "2026-01-02T03:04:05.678Z", "severity": "ERROR", "service": "checkout",
        "hostname": "web-7", "msg": "card declined", "user": {"id": 42, "plan": "pro"}, "status": 502});
    let r = gw
        .post("/mobile", A_INGEST)
        .json(&event)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body = gw.search_until(A_ADMIN, &[("q", "declined")], 1).await;
    let e = &body["hits"][0];
    assert_eq!(e["type"], "mobile_logs");
    assert_eq!(e["tenant"], "a");
    assert_eq!(e["timestamp"], "2026-01-02T03:04:05.678Z");
    assert_eq!(e["level"], "error");
    assert_eq!(e["service"], "checkout");
    assert_eq!(e["host"], "web-7");
    assert_eq!(e["message"], "card declined");
    assert_eq!(
        e["fields"],
        json!({"user": {"id": 42, "plan": "pro"}, "status": 502})
    );
    assert_eq!(e["id"].as_str().unwrap().len(), 26, "a ULID");
    for q in [
        "level:error",
        "service:checkout",
        "host:web-7",
        "user.id:42",
        "user.plan:pro",
        "status:502",
        "fields.status:[500 TO 599]",
        "type:mobile_logs",
        "timestamp:[2026-01-01T00:00:00Z TO 2026-01-03T00:00:00Z]",
        "declined AND NOT level:info",
        "NOT level:info",
        "(card OR nothing) AND service:checkout",
        "fields.user.id:*",
    ] {
        let (status, body) = gw.search_raw(A_ADMIN, &[("q", q)]).await;
        assert_eq!(
            (status, body["total"].as_u64()),
            (200, Some(1)),
            "{q}: {body}"
        );
    }
    for q in [
        "level:info",
        "user.id:43",
        "NOT declined",
        "declined AND NOT service:checkout",
        "fields.nothing:*",
    ] {
        let (_, body) = gw.search_raw(A_ADMIN, &[("q", q)]).await;
        assert_eq!(body["total"], 0, "{q}");
    }
    let (_, body) = gw
        .search_raw(A_ADMIN, &[("q", "declined"), ("type", "web_logs")])
        .await;
    assert_eq!(body["total"], 0, "type filter");
    let (_, body) = gw
        .search_raw(
            A_ADMIN,
            &[("q", "declined"), ("from", "2026-01-03T00:00:00Z")],
        )
        .await;
    assert_eq!(body["total"], 0, "from is on the event's own timestamp");
    let (status, body) = gw.search_raw(A_ADMIN, &[("q", "level:(")]).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "bad_request");
    gw.stop().await;
}

#[tokio::test]
async fn request_id_correlates_events_across_types_and_newest_comes_first() {
    let (_dir, gw) = gateway().await;
    gw.post("/web", A_INGEST)
        .json(&json!({"message": "clicked pay", "ts": "2026-03-01T10:00:00Z"}))
        .header("x-request-id", "req-77")
        .send()
        .await
        .unwrap();
    gw.post("/mobile", A_INGEST)
        .json(&json!({"message": "api call", "RequestKey": "req-77", "ts": "2026-03-01T10:00:01Z"}))
        .send()
        .await
        .unwrap();
    gw.post("/mobile", A_INGEST)
        .json(&json!({"message": "other", "request_id": "req-78"}))
        .send()
        .await
        .unwrap();
    let body = gw
        .search_until(A_ADMIN, &[("q", "request_id:req-77")], 2)
        .await;
    let types: Vec<_> = body["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["type"].clone())
        .collect();
    assert_eq!(
        types,
        vec![json!("mobile_logs"), json!("web_logs")],
        "newest first"
    );
    let body = gw
        .search_until(A_ADMIN, &[("q", ""), ("limit", "1")], 3)
        .await;
    assert_eq!(body["hits"].as_array().unwrap().len(), 1, "limit");
    gw.stop().await;
}

#[tokio::test]
async fn bad_lines_are_reported_per_line_and_kept_as_rejected_events() {
    let (_dir, gw) = gateway().await;
    let nested = format!(
        "{}{}",
        "{\"a\":".repeat(200),
        "1".to_string() + &"}".repeat(200)
    );
    let body = format!(
        "{{\"message\":\"good one\"}}\n{{oops\n[1,2]\n{nested}\n{{\"message\":\"good two\"}}\n"
    );
    let r = gw
        .post("/web", A_INGEST)
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .unwrap();
    let (status, answer) = read_answer(r).await;
    assert_eq!(status, 200, "partial success: {answer}");
    assert_eq!(answer["accepted"], 2);
    assert_eq!(answer["rejected"], 3);
    let lines: Vec<u64> = answer["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, vec![2, 3, 4]);
    assert!(
        answer["errors"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("invalid JSON")
    );
    let rejected = gw
        .search_until(A_ADMIN, &[("q", "outcome:rejected")], 3)
        .await;
    let raws: Vec<&str> = rejected["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["message"].as_str().unwrap())
        .collect();
    assert!(
        raws.contains(&"{oops") && raws.contains(&"[1,2]"),
        "{raws:?}"
    );
    assert!(
        rejected["hits"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["reason"].is_string())
    );
    gw.search_until(A_ADMIN, &[("q", "good")], 2).await;

    // Invalid UTF-8 in a text body: kept as base64.
    let r = gw
        .post("/web", A_INGEST)
        .header("content-type", "text/plain")
        .body(vec![b'o', b'k', b'\n', 0xff, 0xfe, b'\n'])
        .send()
        .await
        .unwrap();
    let (status, answer) = read_answer(r).await;
    assert_eq!(
        (
            status,
            answer["accepted"].as_u64(),
            answer["rejected"].as_u64()
        ),
        (200, Some(1), Some(1))
    );
    let body = gw
        .search_until(A_ADMIN, &[("q", "fields.raw_base64:*")], 1)
        .await;
    assert_eq!(body["hits"][0]["fields"]["raw_base64"], "//4=");

    // Every line bad: 400, and the lines are still kept.
    let r = gw
        .post("/web", A_INGEST)
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    let (status, answer) = read_answer(r).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["rejected"], 1);
    gw.search_until(A_ADMIN, &[("q", "outcome:rejected")], 5)
        .await;
    let metrics = gw.metrics().await;
    // {oops, the 200-deep nesting (serde_json's recursion limit) and {nope.
    assert!(
        metrics.contains(
            r#"logway_events_rejected_total{tenant="a",type="web_logs",reason="invalid_json"} 3"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"logway_events_rejected_total{tenant="a",type="web_logs",reason="not_object"} 1"#
        ),
        "{metrics}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_line_over_the_limit_is_rejected_with_its_prefix_kept() {
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(two_tenant_config(dir.path(), "[limits]\nmax_line_bytes = 1048576\nmax_body_bytes = 20000000\nmax_decompressed_bytes = 20000000")).await;
    let mut body = b"short line\n".to_vec();
    body.extend(std::iter::repeat_n(b'x', 10 * 1024 * 1024));
    body.push(b'\n');
    let r = gw
        .post("/web", A_INGEST)
        .header("content-type", "text/plain")
        .body(body)
        .send()
        .await
        .unwrap();
    let (status, answer) = read_answer(r).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (answer["accepted"].as_u64(), answer["rejected"].as_u64()),
        (Some(1), Some(1))
    );
    assert!(
        answer["errors"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("max_line_bytes")
    );
    let body = gw
        .search_until(A_ADMIN, &[("q", "outcome:rejected")], 1)
        .await;
    let e = &body["hits"][0];
    assert_eq!(e["fields"]["raw_bytes"], 10 * 1024 * 1024);
    assert_eq!(e["fields"]["raw_truncated"], true);
    assert_eq!(e["message"].as_str().unwrap().len(), 1024 * 1024);
    gw.stop().await;
}

#[tokio::test]
async fn idempotency_key_retries_store_once_even_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(two_tenant_config(dir.path(), "")).await;
    let send = |gw: &TestGateway, body: &'static str| {
        gw.post("/mobile", A_INGEST)
            .header("idempotency-key", "batch-0001")
            .header("content-type", "application/x-ndjson")
            .body(body)
            .send()
    };
    let body = "{\"message\":\"retry me\"}\n{\"message\":\"retry me too\"}\n";
    let first = send(&gw, body).await.unwrap();
    assert_eq!(first.status(), 200);
    let first_text = first.text().await.unwrap();
    let again = send(&gw, body).await.unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.text().await.unwrap(), first_text);
    let other = send(&gw, "{\"message\":\"different\"}").await.unwrap();
    assert_eq!(other.status(), 422);
    gw.search_until(A_ADMIN, &[("q", "retry")], 2).await;
    // The same key is per tenant: tenant b may use it freely.
    let r = gw
        .post("/b/app", B_INGEST)
        .header("idempotency-key", "batch-0001")
        .body("b line")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("idempotent-replayed").is_none());
    gw.stop().await;

    let config = two_tenant_config(dir.path(), "");
    let gw = TestGateway::start(config).await;
    let after = send(&gw, body).await.unwrap();
    assert_eq!(after.status(), 200);
    assert_eq!(after.headers()["idempotent-replayed"], "true");
    tokio::time::sleep(Duration::from_millis(300)).await;
    gw.search_until(A_ADMIN, &[("q", "retry")], 2).await;
    gw.stop().await;
}

#[tokio::test]
async fn health_readiness_and_metric_names() {
    let (_dir, gw) = gateway().await;
    gw.post("/web", A_INGEST)
        .body("count me")
        .send()
        .await
        .unwrap();
    let r = gw
        .post("/web", A_INGEST)
        .header("content-type", "application/x-ndjson")
        .body("{bad")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    gw.search_until(A_ADMIN, &[("q", "count")], 1).await;
    let r: Value = gw
        .client
        .get(format!("{}/healthz", gw.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["status"], "ok");
    let r: Value = gw
        .client
        .get(format!("{}/readyz", gw.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["ready"], true);
    let metrics = gw.metrics().await;
    // The documented names (README, "Metrics") are a contract.
    for name in [
        "logway_events_received_total{tenant=\"a\",type=\"web_logs\"} 1",
        "logway_events_indexed_total{tenant=\"a\",type=\"web_logs\"} 2",
        "logway_ingest_bytes_total{tenant=\"a\",type=\"web_logs\"} 12",
        "logway_http_requests_total{endpoint=\"ingest\",status=\"200\"} 1",
        "logway_http_request_duration_seconds_bucket",
        "logway_wal_bytes ",
        "logway_wal_torn_bytes ",
        "logway_hot_index_lag_bytes ",
        "logway_hot_partitions_deleted_total ",
        "logway_limiter_client_keys ",
        "logway_idempotent_replays_total ",
        "logway_events_rejected_total{tenant=\"a\",type=\"web_logs\",reason=\"invalid_json\"} 1",
    ] {
        assert!(metrics.contains(name), "missing {name} in\n{metrics}");
    }
    assert!(!metrics.contains(A_INGEST) && !metrics.contains(A_ADMIN));
    gw.stop().await;
}

/// A tenant's and a route's `fields` put a service's own names for the
/// promoted fields first; ECS's dotted names are built in.
#[tokio::test]
async fn field_mapping_promotes_a_services_own_names() {
    let dir = tempfile::tempdir().unwrap();
    let tenants = format!(
        r#"
[[tenants]]
name = "a"
ingest_keys = ["{A_INGEST}"]
admin_keys = ["{A_ADMIN}"]
fields = {{ level = ["Level"], service = ["ServiceKey"] }}
routes = [
  {{ path = "/svc", type = "svc_logs", fields = {{ message = ["Title"], service = ["Svc"] }} }},
  {{ path = "/plain", type = "plain_logs" }},
]
"#
    );
    let gw = TestGateway::start(config_with(dir.path(), &tenants)).await;
    let post = |path: &'static str, body: Value| {
        gw.post(path, A_INGEST)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
    };
    // The route's names for message and service; the tenant's for level.
    let r = post(
        "/svc",
        json!({"Level": "ERROR", "Svc": "billing", "ServiceKey": "not-this-one",
               "Title": "card declined", "amount": 3}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    // A route without its own names takes the tenant's.
    let r = post(
        "/plain",
        json!({"Level": "Warn", "ServiceKey": "cart", "message": "basket full"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    // ECS names, flat and nested, are built in.
    let r = post(
        "/v1/logs/ecs_logs",
        json!({"log": {"level": "INFO", "logger": "db"}, "service.name": "api",
               "host": {"name": "h1"}, "message": "connected"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);

    let hits = gw
        .search_until(A_ADMIN, &[("q", "level:error AND service:billing")], 1)
        .await;
    let e = &hits["hits"][0];
    assert_eq!(e["message"], "card declined");
    assert_eq!(
        e["fields"],
        json!({"amount": 3, "ServiceKey": "not-this-one"})
    );
    let hits = gw
        .search_until(A_ADMIN, &[("q", "level:warn AND service:cart")], 1)
        .await;
    assert_eq!(hits["hits"][0]["type"], "plain_logs");
    assert!(hits["hits"][0].get("fields").is_none(), "{hits}");
    let hits = gw
        .search_until(
            A_ADMIN,
            &[("q", "level:info AND service:api AND host:h1")],
            1,
        )
        .await;
    assert_eq!(hits["hits"][0]["fields"], json!({"log": {"logger": "db"}}));
    gw.stop().await;
}
