//! Loki's push API: winston-loki (snappy protobuf), python-logging-loki
//! (JSON, both formats; it requires exactly 204), and the JSON format's
//! corners and errors by hand.

use serde_json::{Value, json};

use crate::common::*;

fn find<'a>(body: &'a Value, message: &str) -> &'a Value {
    body["hits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| {
            h["message"]
                .as_str()
                .is_some_and(|m| m.starts_with(message))
        })
        .unwrap_or_else(|| panic!("no `{message}` in {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn winston_loki_pushes_snappy_protobuf() {
    let dir = tempfile::tempdir().unwrap();
    let t = compat_gateway(dir.path(), "").await;
    let mut node = std::process::Command::new("node");
    node.env("NODE_PATH", test_clients().join("node/node_modules"))
        .arg(client_script("loki_node.js"))
        .arg(&t.url)
        .arg("acme-ingest");
    let out = run_client(node).await;
    assert_eq!(out["errors"], json!([]), "{out}");
    // The `job` label names the type; labels are fields, `service_name`
    // is the service, `level` the level.
    let body = t
        .search_until(
            "acme-admin",
            &[("q", "type:winston_app"), ("from", "now-1h")],
            2,
        )
        .await;
    let hello = find(&body, "winston-loki hello");
    assert_eq!(hello["level"], "info");
    assert_eq!(hello["service"], "cart");
    assert_eq!(hello["fields"]["route"], "checkout");
    assert_eq!(hello["fields"]["job"], "winston_app");
    assert!(
        hello["message"]
            .as_str()
            .unwrap()
            .contains("\"user\":\"ana\""),
        "{hello}"
    );
    assert_eq!(find(&body, "winston-loki payment failed")["level"], "error");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_logging_loki_gets_its_204_in_both_formats() {
    let dir = tempfile::tempdir().unwrap();
    let t = compat_gateway(dir.path(), "").await;
    for version in ["1", "0"] {
        let out = run_client(python_client(
            "loki_py.py",
            &[&t.url, "acme-ingest", version],
        ))
        .await;
        assert_eq!(out["errors"], json!([]), "version {version}: {out}");
        let q = format!("type:py_loki AND \"v{version}\"");
        let body = t
            .search_until("acme-admin", &[("q", &q), ("from", "now-1h")], 2)
            .await;
        let low = find(&body, &format!("loki-py v{version} low balance"));
        assert_eq!(low["level"], "warning", "{low}");
        assert_eq!(low["fields"]["logger"], "billing");
        assert_eq!(low["fields"]["env"], "test");
        let declined = find(&body, &format!("loki-py v{version} card declined"));
        assert_eq!(declined["level"], "error");
        assert_eq!(declined["fields"]["provider"], "acme-pay");
    }
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_pushes_their_corners_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let t = compat_gateway(dir.path(), "").await;
    let push = |key: &str, body: Value| {
        t.post("/loki/api/v1/push", key)
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .body(gzip(&serde_json::to_vec(&body).unwrap()))
            .send()
    };
    // Three-element values with structured metadata, a JSON line (read as
    // the native path reads one), nanosecond timestamps.
    let r = push(
        "acme-ingest",
        json!({"streams": [{
            "stream": {"service_name": "api", "detected_level": "warn", "env": "prod"},
            "values": [
                ["1764496800123456789", "plain line", {"trace_id": "t-1"}],
                ["1764496801000000000", "{\"message\":\"json line\",\"status\":503}"]
            ]
        }]}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 204);
    let body = t
        .search_until(
            "acme-admin",
            &[("q", "type:api"), ("from", "2025-01-01T00:00:00Z")],
            2,
        )
        .await;
    let plain = find(&body, "plain line");
    assert_eq!(plain["timestamp"], "2025-11-30T10:00:00.123456789Z");
    assert_eq!(plain["level"], "warn");
    assert_eq!(plain["service"], "api");
    assert_eq!(plain["fields"]["env"], "prod");
    assert_eq!(plain["request_id"], "t-1", "metadata trace_id is promoted");
    let json_line = find(&body, "json line");
    assert_eq!(json_line["fields"]["status"], 503);

    // A bad value: the good one is stored, the bad one kept as rejected,
    // and the push answered 400 (clients do not retry it).
    let r = push(
        "acme-ingest",
        json!({"streams": [{"stream": {"job": "mixed"}, "values": [
            ["1764496800000000000", "good entry"],
            ["yesterday", "bad entry"]
        ]}]}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    let text = r.text().await.unwrap();
    assert!(text.contains("1 of 2 entries rejected"), "{text}");
    t.search_until(
        "acme-admin",
        &[("q", "\"good entry\""), ("from", "2025-01-01T00:00:00Z")],
        1,
    )
    .await;
    t.search_until(
        "acme-admin",
        &[("q", "type:mixed AND outcome:rejected"), ("from", "now-1h")],
        1,
    )
    .await;

    // Not a push at all: 400 in plain text, kept nothing to keep.
    let r = push("acme-ingest", json!({"streams": 5})).await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("Loki JSON push"));

    // X-Scope-OrgID must be the key's tenant.
    let r = t
        .post("/loki/api/v1/push", "acme-ingest")
        .header("x-scope-orgid", "globex")
        .header("content-type", "application/json")
        .body(r#"{"streams":[]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = t
        .post("/loki/api/v1/push", "acme-ingest")
        .header("x-scope-orgid", "acme")
        .header("content-type", "application/json")
        .body(r#"{"streams":[]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);

    // Rate limited: 429 with Retry-After (Promtail and Alloy retry it).
    t.post_lines(
        "/v1/logs/app",
        "slow-ingest",
        &[json!({"message": "burst"})],
    )
    .await;
    let r = push(
        "slow-ingest",
        json!({"streams": [{"stream": {"job": "x"}, "values": [["1764496800000000000", "over"]]}]}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));

    // Protobuf that is not snappy: 400.
    let r = t
        .post("/loki/api/v1/push", "acme-ingest")
        .header("content-type", "application/x-protobuf")
        .body(vec![0xff; 16])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = t
        .client
        .get(format!("{}/ready", t.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    t.stop().await;
}
