//! Ingest, typing, search, errors, isolation, CORS, idempotency, metrics:
//! each through the real server on 127.0.0.1:0 with a real HTTP client.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

async fn gateway() -> (tempfile::TempDir, TestGateway) {
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(two_tenant_config(dir.path(), "")).await;
    (dir, gw)
}

async fn read_answer(r: reqwest::Response) -> (u16, Value) {
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
async fn request_level_errors_have_specific_statuses_and_json_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(two_tenant_config(
        dir.path(),
        "[limits]\nmax_body_bytes = 100000\nmax_decompressed_bytes = 1000000",
    ))
    .await;
    let bomb = gzip(&vec![b'a'; 50 * 1024 * 1024]);
    let zbomb = zstd::encode_all(&vec![b'a'; 50 * 1024 * 1024][..], 19).unwrap();
    let url = |p: &str| format!("{}{p}", gw.url);
    let c = &gw.client;
    let cases: Vec<(&str, reqwest::RequestBuilder, u16, &str)> = vec![
        ("no key", c.post(url("/web")).body("x"), 401, "no_key"),
        (
            "unknown key",
            c.post(url("/web")).bearer_auth("not-a-real-key").body("x"),
            401,
            "unknown_key",
        ),
        (
            "other tenant's route",
            c.post(url("/b/app")).bearer_auth(A_INGEST).body("x"),
            403,
            "forbidden",
        ),
        (
            "unknown path",
            c.post(url("/nowhere")).bearer_auth(A_INGEST).body("x"),
            404,
            "not_found",
        ),
        (
            "bad type name",
            c.post(url("/v1/logs/Bad%20Type"))
                .bearer_auth(A_INGEST)
                .body("x"),
            400,
            "bad_request",
        ),
        (
            "too large",
            c.post(url("/web"))
                .bearer_auth(A_INGEST)
                .body(vec![b'a'; 200_000]),
            413,
            "payload_too_large",
        ),
        (
            "gzip bomb",
            c.post(url("/web"))
                .bearer_auth(A_INGEST)
                .header("content-encoding", "gzip")
                .body(bomb),
            413,
            "payload_too_large",
        ),
        (
            "zstd bomb",
            c.post(url("/web"))
                .bearer_auth(A_INGEST)
                .header("content-encoding", "zstd")
                .body(zbomb),
            413,
            "payload_too_large",
        ),
        (
            "corrupt gzip",
            c.post(url("/web"))
                .bearer_auth(A_INGEST)
                .header("content-encoding", "gzip")
                .body(b"\x1f\x8b\x08\x00garbage".to_vec()),
            400,
            "bad_request",
        ),
        (
            "unknown encoding",
            c.post(url("/web"))
                .bearer_auth(A_INGEST)
                .header("content-encoding", "br")
                .body("x"),
            415,
            "unsupported_media_type",
        ),
        (
            "unknown type",
            c.post(url("/web"))
                .bearer_auth(A_INGEST)
                .header("content-type", "application/xml")
                .body("<x/>"),
            415,
            "unsupported_media_type",
        ),
        (
            "empty body",
            c.post(url("/web")).bearer_auth(A_INGEST).body(""),
            400,
            "bad_request",
        ),
        (
            "wrong method",
            c.get(url("/web")).bearer_auth(A_INGEST),
            405,
            "method_not_allowed",
        ),
        (
            "ingest key searches",
            c.get(url("/api/v1/search")).bearer_auth(A_INGEST),
            403,
            "forbidden",
        ),
        (
            "search without key",
            c.get(url("/api/v1/search")),
            401,
            "no_key",
        ),
        (
            "limit too large",
            c.get(url("/api/v1/search?limit=999999"))
                .bearer_auth(A_ADMIN),
            400,
            "bad_request",
        ),
        (
            "bad time",
            c.get(url("/api/v1/search?from=yesterday"))
                .bearer_auth(A_ADMIN),
            400,
            "bad_request",
        ),
    ];
    for (name, req, status, code) in cases {
        let r = req.send().await.unwrap();
        assert_eq!(
            r.headers().get("content-type").unwrap(),
            "application/json",
            "{name}"
        );
        let (got, body) = read_answer(r).await;
        assert_eq!(got, status, "{name}: {body}");
        assert_eq!(body["error"]["code"], code, "{name}");
        assert!(
            body["error"]["message"].as_str().unwrap().len() > 5,
            "{name}"
        );
    }
    // Nothing above was stored.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, body) = gw.search_raw(A_ADMIN, &[("q", "")]).await;
    assert_eq!(body["total"], 0, "{body}");
    gw.stop().await;
}

#[tokio::test]
async fn keys_arrive_by_header_query_or_bearer_and_tenants_are_isolated() {
    let (_dir, gw) = gateway().await;
    let c = &gw.client;
    let r = c
        .post(format!("{}/web?key={A_INGEST}", gw.url))
        .body("via query")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .post(format!("{}/web", gw.url))
        .header("x-logway-key", A_INGEST)
        .body("via header")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = gw
        .post("/b/app", B_INGEST)
        .body("secret of b")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    gw.search_until(A_ADMIN, &[("q", "via")], 2).await;
    gw.search_until(B_ADMIN, &[("q", "secret")], 1).await;
    // Each tenant sees only its own events, even when asking for the other's type.
    let (_, body) = gw.search_raw(A_ADMIN, &[("q", "secret")]).await;
    assert_eq!(body["total"], 0);
    let (_, body) = gw
        .search_raw(A_ADMIN, &[("q", ""), ("type", "app_logs")])
        .await;
    assert_eq!(body["total"], 0);
    let (_, body) = gw.search_raw(B_ADMIN, &[("q", "via")]).await;
    assert_eq!(body["total"], 0);
    assert_eq!(
        gw.histogram_total(B_ADMIN, "via").await,
        0,
        "histogram is tenant-scoped too"
    );
    assert_eq!(gw.histogram_total(A_ADMIN, "via").await, 2);
    gw.stop().await;
}

#[tokio::test]
async fn cors_preflight_and_beacon_style_posts() {
    let (_dir, gw) = gateway().await;
    let c = &gw.client;
    let r = c
        .request(reqwest::Method::OPTIONS, format!("{}/web", gw.url))
        .header("origin", "https://app.a.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://app.a.example"
    );
    assert!(
        r.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    let r = c
        .request(reqwest::Method::OPTIONS, format!("{}/web", gw.url))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // What navigator.sendBeacon sends: text/plain NDJSON, key in the query.
    let r = c
        .post(format!("{}/web?key={A_INGEST}", gw.url))
        .header("origin", "https://app.a.example")
        .header("content-type", "text/plain;charset=UTF-8")
        .body("{\"message\":\"beacon one\",\"level\":\"info\"}\n{\"message\":\"beacon two\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://app.a.example"
    );
    let body = gw.search_until(A_ADMIN, &[("q", "beacon")], 2).await;
    assert!(
        body["hits"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["level"] == "info"),
        "JSON lines in text/plain are parsed"
    );
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
async fn a_half_sent_header_is_closed_after_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = two_tenant_config(dir.path(), "");
    config.server.header_read_timeout = Duration::from_secs(1);
    let gw = TestGateway::start(config).await;
    let addr = gw.gateway.http_addr();
    let result = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(b"POST /web HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let start = std::time::Instant::now();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        (start.elapsed(), buf)
    })
    .await
    .unwrap();
    assert!(
        result.0 < Duration::from_secs(5),
        "closed after {:?}",
        result.0
    );
    gw.stop().await;
}

#[tokio::test]
async fn the_connection_cap_holds_new_connections_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = two_tenant_config(dir.path(), "");
    config.server.max_connections = 1;
    let gw = TestGateway::start(config).await;
    let addr = gw.gateway.http_addr();
    // One idle keep-alive connection takes the only slot.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut held = tokio::net::TcpStream::connect(addr).await.unwrap();
    held.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 512];
    let n = held.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let blocked = client.get(format!("{}/healthz", gw.url)).send().await;
    assert!(
        blocked.is_err(),
        "a second connection is not served while the cap is reached"
    );
    drop(held);
    let ok = client.get(format!("{}/healthz", gw.url)).send().await;
    let ok = match ok {
        Ok(r) => r,
        Err(_) => {
            tokio::time::sleep(Duration::from_millis(200)).await;
            client
                .get(format!("{}/healthz", gw.url))
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(ok.status(), 200);
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

#[tokio::test]
async fn http2_with_prior_knowledge_ingests_and_searches() {
    let (_dir, gw) = gateway().await;
    let url = gw.url.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("curl")
            .args([
                "-sS",
                "--http2-prior-knowledge",
                "-w",
                "\n%{http_version}",
                "-H",
            ])
            .arg(format!("authorization: Bearer {A_INGEST}"))
            .args([
                "--data-binary",
                "over h2c",
                "-H",
                "content-type: text/plain",
            ])
            .arg(format!("{url}/web"))
            .output()
            .expect("curl is installed")
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("\"accepted\":1") && text.trim_end().ends_with('2'),
        "{text}"
    );
    gw.search_until(A_ADMIN, &[("q", "h2c")], 1).await;
    gw.stop().await;
}
