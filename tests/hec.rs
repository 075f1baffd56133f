//! Splunk's HTTP Event Collector: splunk-logging (Node, /event/1.0, a
//! batch of concatenated events), splunk-handler (Python, /event) and
//! splunk-hec-handler (Python, /raw), and HEC's codes by hand.

use serde_json::{Value, json};

use crate::common::*;

fn find(body: &Value, pred: impl Fn(&Value) -> bool) -> &Value {
    body["hits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| pred(h))
        .unwrap_or_else(|| panic!("not in {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn splunk_logging_sends_a_batch_to_event_1_0() {
    let dir = tempfile::tempdir().unwrap();
    let t = compat_gateway(dir.path(), "").await;
    let mut node = std::process::Command::new("node");
    node.env("NODE_PATH", test_clients().join("node/node_modules"))
        .arg(client_script("hec_node.js"))
        .arg(&t.url)
        .arg("acme-ingest");
    let out = run_client(node).await;
    assert_eq!(out["errors"], json!([]), "{out}");
    assert_eq!(
        out["responses"],
        json!([{"text": "Success", "code": 0}]),
        "{out}"
    );
    let body = t
        .search_until(
            "acme-admin",
            &[("q", "type:node_hec"), ("from", "now-1h")],
            3,
        )
        .await;
    let placed = find(&body, |h| h["message"] == "hec-node order placed");
    assert_eq!(placed["level"], "info");
    assert_eq!(placed["host"], "node-2");
    assert_eq!(placed["fields"]["source"], "node-app");
    assert_eq!(placed["fields"]["index"], "main");
    let low = find(&body, |h| h["fields"]["message"]["sku"] == "A-7");
    assert_eq!(low["level"], "warn");
    find(&body, |h| {
        h["message"] == "hec-node payment failed" && h["level"] == "error"
    });
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_handlers_send_events_and_raw_lines() {
    let dir = tempfile::tempdir().unwrap();
    let t = compat_gateway(dir.path(), "").await;
    let port = t.url.rsplit(':').next().unwrap().to_string();
    let out = run_client(python_client(
        "hec_py.py",
        &["127.0.0.1", &port, "acme-ingest", "batch"],
    ))
    .await;
    assert_eq!(out["errors"], json!([]), "{out}");
    let body = t
        .search_until("acme-admin", &[("q", "type:py_hec"), ("from", "now-1h")], 3)
        .await;
    let offline = find(&body, |h| h["message"] == "hec-py scanner offline");
    assert_eq!(offline["fields"]["source"], "inventory.py");
    assert_eq!(offline["fields"]["index"], "main");

    // /raw: each line one event; this handler's lines are its JSON
    // envelope, read as a JSON line is.
    let out = run_client(python_client(
        "hec_py.py",
        &["127.0.0.1", &port, "acme-ingest", "raw"],
    ))
    .await;
    assert_eq!(out["errors"], json!([]), "{out}");
    let body = t
        .search_until("acme-admin", &[("q", "type:hec"), ("from", "now-1h")], 2)
        .await;
    let first = find(&body, |h| {
        h["fields"]["event"]["message"] == "hec-raw first line"
    });
    assert_eq!(first["fields"]["event"]["log_level"], "INFO");
    assert_eq!(first["fields"]["sourcetype"], "py_raw");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hec_codes_for_what_goes_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let t = compat_gateway(dir.path(), "").await;
    let post = |path: &str, token: Option<&str>, body: Vec<u8>| {
        let mut r = t
            .client
            .post(format!("{}/services/collector{path}", t.url))
            .body(body);
        if let Some(token) = token {
            r = r.header("authorization", format!("Splunk {token}"));
        }
        r.send()
    };
    let answer = |r: reqwest::Response| async move {
        let status = r.status().as_u16();
        let retry = r.headers().contains_key("retry-after");
        (status, r.json::<Value>().await.unwrap(), retry)
    };
    // Posts and reads the answer: status, body, whether it has Retry-After.
    let send = |path: &str, token: Option<&str>, body: Vec<u8>| {
        let sent = post(path, token, body);
        async move { answer(sent.await.unwrap()).await }
    };

    // Raw lines, metadata from the query, gzip.
    let r = t
        .client
        .post(format!(
            "{}/services/collector/raw?sourcetype=nginx_access&host=web-9&source=%2Fvar%2Flog%2Fa.log",
            t.url
        ))
        .header("authorization", "Splunk acme-ingest")
        .header("content-encoding", "gzip")
        .body(gzip(
            b"GET /a 200\nGET /b 404\n{\"path\":\"/c\",\"status\":500}\n{not json, \"x\":1}\n",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(answer(r).await.1, json!({"text": "Success", "code": 0}));
    let body = t
        .search_until(
            "acme-admin",
            &[("q", "type:nginx_access"), ("from", "now-1h")],
            4,
        )
        .await;
    let b = find(&body, |h| h["message"] == "GET /b 404");
    assert_eq!(b["host"], "web-9");
    assert_eq!(b["fields"]["source"], "/var/log/a.log");
    // A line that is a JSON object gives its members; one that only looks
    // like one is the message, with the same metadata.
    let c = find(&body, |h| h["fields"]["path"] == "/c");
    assert_eq!(
        (c["fields"]["status"].clone(), c["host"].clone()),
        (json!(500), json!("web-9"))
    );
    let not_json = find(&body, |h| h["message"] == "{not json, \"x\":1}");
    assert_eq!(not_json["host"], "web-9");
    assert_eq!(not_json["fields"]["source"], "/var/log/a.log");

    // `time` as a number and as a string; `fields` as indexed fields.
    let events = br#"{"time": 1764496800.25, "event": "timed", "fields": {"region": "eu"}, "sourcetype": "timed"}
{"time": "1764496801.5", "event": {"message": "timed too", "n": 2}, "sourcetype": "timed"}"#;
    let (status, body, _) = send("/event", Some("acme-ingest"), events.to_vec()).await;
    assert_eq!((status, body["code"].clone()), (200, json!(0)));
    let body = t
        .search_until(
            "acme-admin",
            &[("q", "type:timed"), ("from", "2025-01-01T00:00:00Z")],
            2,
        )
        .await;
    let timed = find(&body, |h| h["message"] == "timed");
    assert_eq!(timed["timestamp"], "2025-11-30T10:00:00.25Z");
    assert_eq!(timed["fields"]["region"], "eu");
    assert_eq!(
        find(&body, |h| h["message"] == "timed too")["fields"]["n"],
        2
    );

    // An event without `event`: code 12 at its number; the one before is
    // stored, the bad one kept as rejected.
    let events = br#"{"event": "before the bad one", "sourcetype": "mixed"}{"sourcetype": "mixed", "host": "h"}"#;
    let (status, body, _) = send("", Some("acme-ingest"), events.to_vec()).await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], 12, "{body}");
    assert_eq!(body["text"], "Event field is required");
    assert_eq!(body["invalid-event-number"], 1);
    t.search_until(
        "acme-admin",
        &[("q", "\"before the bad one\""), ("from", "now-1h")],
        1,
    )
    .await;
    t.search_until(
        "acme-admin",
        &[("q", "outcome:rejected AND type:hec"), ("from", "now-1h")],
        1,
    )
    .await;

    let (status, body, _) = send(
        "/event",
        Some("acme-ingest"),
        b"{\"event\": \"x\"} nope".to_vec(),
    )
    .await;
    assert_eq!(
        (
            status,
            body["code"].clone(),
            body["invalid-event-number"].clone()
        ),
        (400, json!(6), json!(1)),
        "{body}"
    );
    // Values that are not objects: each is an unusable event of its own,
    // and the events after them are read and stored.
    let (status, body, _) = send(
        "/event",
        Some("acme-ingest"),
        br#"[1, {"a": 2}] "str" {"event": "after the array"}"#.to_vec(),
    )
    .await;
    assert_eq!(
        (
            status,
            body["code"].clone(),
            body["invalid-event-number"].clone()
        ),
        (400, json!(6), json!(0)),
        "{body}"
    );
    t.search_until(
        "acme-admin",
        &[("q", "\"after the array\""), ("from", "now-1h")],
        1,
    )
    .await;
    let (status, body, _) =
        send("/event", Some("acme-ingest"), b"{\"event\": \"\"}".to_vec()).await;
    assert_eq!((status, body["code"].clone()), (400, json!(13)), "{body}");
    let (status, body, _) = send("/event", Some("acme-ingest"), b"  ".to_vec()).await;
    assert_eq!((status, body), (400, json!({"text": "No data", "code": 5})));
    let (status, body, _) = send("/event", None, b"{}".to_vec()).await;
    assert_eq!(
        (status, body),
        (401, json!({"text": "Token is required", "code": 2}))
    );
    let (status, body, _) = send("/event", Some("nope"), b"{}".to_vec()).await;
    assert_eq!(
        (status, body),
        (403, json!({"text": "Invalid token", "code": 4}))
    );

    // Rate limited: HEC's "Server is busy", the status HEC clients retry.
    t.post_lines(
        "/v1/logs/app",
        "slow-ingest",
        &[json!({"message": "burst"})],
    )
    .await;
    let (status, body, retry) = send(
        "/event",
        Some("slow-ingest"),
        b"{\"event\": \"over\"}".to_vec(),
    )
    .await;
    assert_eq!(
        (status, body["code"].clone(), retry),
        (503, json!(9), true),
        "{body}"
    );

    let r = t
        .client
        .get(format!("{}/services/collector/health", t.url))
        .send()
        .await
        .unwrap();
    assert_eq!(
        answer(r).await.1,
        json!({"text": "HEC is healthy", "code": 17})
    );
    t.stop().await;
}

/// A rate-limited tenant: HEC's 503 "Server is busy" with Retry-After,
/// which splunk-handler retries; the event lands once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn splunk_handler_retries_server_busy() {
    let dir = tempfile::tempdir().unwrap();
    let t = compat_gateway(dir.path(), "").await;
    let port = t.url.rsplit(':').next().unwrap().to_string();
    t.post_lines(
        "/v1/logs/app",
        "slow-ingest",
        &[json!({"message": "burst"})],
    )
    .await;
    let out = run_client(python_client(
        "hec_py.py",
        &["127.0.0.1", &port, "slow-ingest", "retry"],
    ))
    .await;
    assert_eq!(out["errors"], json!([]), "{out}");
    let limited = metric_sum(&t.metrics().await, "logway_requests_limited_total");
    assert!(limited >= 1.0, "the first attempt was not refused");
    t.search_until(
        "slow-admin",
        &[("q", "\"hec-py after a retry\""), ("from", "now-1h")],
        1,
    )
    .await;
    t.stop().await;
}
