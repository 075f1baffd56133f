//! OpenTelemetry logs over OTLP/HTTP (`POST /v1/logs`): the Python SDK's
//! own exporter (protobuf, gzip, its retry on 429), and the JSON encoding,
//! partial success and errors as OTLP defines them, sent by hand.

use prost::Message;
use serde_json::{Value, json};

use crate::common::*;
use logway::sources::otlp::answer::Status;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_exports_logs_found_by_their_trace_id() {
    let dir = tempfile::tempdir().unwrap();
    let t = compat_gateway(dir.path(), "").await;
    let out = run_client(python_client(
        "otel_py.py",
        &[&t.url, "acme-ingest", "logs"],
    ))
    .await;
    assert_eq!(
        out["results"],
        json!(["SUCCESS", "SUCCESS", "SUCCESS"]),
        "{out}"
    );
    let trace_id = out["trace_id"].as_str().unwrap();
    assert_eq!(trace_id.len(), 32);
    // The trace id is promoted: one query finds every log of the trace,
    // across the log types the records named.
    let q = format!("request_id:{trace_id}");
    let body = t
        .search_until("acme-admin", &[("q", &q), ("from", "now-1h")], 3)
        .await;
    let hits = body["hits"].as_array().unwrap();
    let by_message = |m: &str| {
        hits.iter()
            .find(|h| h["message"] == m)
            .unwrap_or_else(|| panic!("no `{m}` in {body}"))
    };
    let slow = by_message("otel-py cart is slow");
    assert_eq!(slow["type"], "checkout", "service.name names the type");
    assert_eq!(slow["level"], "warn");
    assert_eq!(slow["service"], "checkout");
    assert_eq!(slow["host"], "web-7");
    assert_eq!(slow["fields"]["trace_id"], trace_id);
    assert_eq!(slow["fields"]["span_id"].as_str().unwrap().len(), 16);
    assert_eq!(slow["fields"]["scope"]["name"], "shop.payments");
    assert_eq!(slow["fields"]["resource"]["deployment.environment"], "test");
    let declined = by_message("otel-py card declined");
    assert_eq!(declined["level"], "error");
    assert_eq!(declined["fields"]["amount"], 12.5);
    assert_eq!(declined["fields"]["payment.provider"], "acme-pay");
    assert_eq!(declined["fields"]["http.status_code"], 402);
    assert_eq!(declined["fields"]["event_name"], "payment.declined");
    assert_eq!(declined["fields"]["severity_number"], 17);
    let audit = by_message("otel-py audit entry");
    assert_eq!(audit["type"], "audit_logs", "logway.type names the type");
    assert_eq!(audit["level"], "info");
    // Searchable by the trace id as a field too.
    t.search_until(
        "acme-admin",
        &[("q", &format!("trace_id:{trace_id}")), ("from", "now-1h")],
        3,
    )
    .await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_export_is_retried_by_the_sdk_and_lands_once() {
    let dir = tempfile::tempdir().unwrap();
    let t = compat_gateway(dir.path(), "").await;
    // The tenant's burst (1 event) is used up: the SDK's export gets a 429
    // with Retry-After, waits and sends again.
    t.post_lines(
        "/v1/logs/app",
        "slow-ingest",
        &[json!({"message": "first"})],
    )
    .await;
    let out = run_client(python_client(
        "otel_py.py",
        &[&t.url, "slow-ingest", "retry"],
    ))
    .await;
    assert_eq!(out["results"], json!(["SUCCESS"]), "{out}");
    assert!(out["seconds"].as_f64().unwrap() >= 0.5, "no wait: {out}");
    let limited = metric_sum(&t.metrics().await, "logway_requests_limited_total");
    assert!(limited >= 1.0, "the first export was not refused");
    t.search_until(
        "slow-admin",
        &[("q", "\"otel-py after a retry\""), ("from", "now-1h")],
        1,
    )
    .await;
    t.stop().await;
}

/// An OTLP/JSON body as the spec writes it: hex ids, an integer enum,
/// 64-bit integers as strings, unknown fields (ignored).
fn json_body(message: &str) -> Value {
    json!({
        "resourceLogs": [{
            "resource": {"attributes": [
                {"key": "service.name", "value": {"stringValue": "billing"}},
                {"key": "k8s.pod.uid", "value": {"stringValue": "p-1"}}
            ]},
            "unknownResourceField": 1,
            "scopeLogs": [{
                "scope": {"name": "billing.jobs"},
                "logRecords": [{
                    "timeUnixNano": "1764496800000000000",
                    "severityNumber": 13,
                    "body": {"stringValue": message},
                    "attributes": [
                        {"key": "attempt", "value": {"intValue": "3"}},
                        {"key": "ok", "value": {"boolValue": false}}
                    ],
                    "traceId": "5b8efff798038103d269b633813fc60c",
                    "spanId": "eee19b7ec3c1b174",
                    "somethingNew": {"x": 1}
                }]
            }]
        }]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_is_answered_in_json_and_bad_records_are_a_partial_success() {
    let dir = tempfile::tempdir().unwrap();
    // Few fields per event, so that one record can be over the limit.
    let t = compat_gateway(dir.path(), "[limits]\nmax_fields_per_event = 20").await;
    let post = |body: Vec<u8>, gz: bool| {
        let r = t
            .client
            .post(format!("{}/v1/logs", t.url))
            .header("content-type", "application/json")
            .header("x-logway-key", "acme-ingest");
        let r = if gz {
            r.header("content-encoding", "gzip").body(gzip(&body))
        } else {
            r.body(body)
        };
        r.send()
    };
    let r = post(serde_json::to_vec(&json_body("json hello")).unwrap(), true)
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(r.json::<Value>().await.unwrap(), json!({}));
    let body = t
        .search_until(
            "acme-admin",
            &[
                ("q", "request_id:5b8efff798038103d269b633813fc60c"),
                ("from", "2025-01-01T00:00:00Z"),
            ],
            1,
        )
        .await;
    let hit = &body["hits"][0];
    assert_eq!(hit["type"], "billing");
    assert_eq!(hit["timestamp"], "2025-11-30T10:00:00Z");
    assert_eq!(hit["level"], "warn");
    assert_eq!(hit["fields"]["attempt"], 3);
    assert_eq!(hit["fields"]["ok"], false);
    assert_eq!(hit["fields"]["span_id"], "eee19b7ec3c1b174");
    assert_eq!(hit["fields"]["resource"]["k8s.pod.uid"], "p-1");

    // Two records, one over `limits.max_fields_per_event`: 200 with a
    // partial success naming it; it is kept as a rejected event.
    let mut two = json_body("kept record");
    let mut big = two["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0].clone();
    big["attributes"] = (0..30)
        .map(|i| json!({"key": format!("a{i}"), "value": {"intValue": i}}))
        .collect();
    two["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
        .as_array_mut()
        .unwrap()
        .push(big);
    let r = post(serde_json::to_vec(&two).unwrap(), false)
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(
        answer["partialSuccess"]["rejectedLogRecords"], "1",
        "{answer}"
    );
    assert!(
        answer["partialSuccess"]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("max_fields_per_event"),
        "{answer}"
    );
    // (The rejected one holds the words too, but no level.)
    t.search_until(
        "acme-admin",
        &[
            ("q", "\"kept record\" AND level:warn"),
            ("from", "2025-01-01T00:00:00Z"),
        ],
        1,
    )
    .await;
    t.search_until(
        "acme-admin",
        &[("q", "outcome:rejected"), ("from", "now-1h")],
        1,
    )
    .await;

    // Not JSON logs: 400 with a google.rpc.Status in JSON, not retried.
    let r = post(b"{\"resourceLogs\": 7}".to_vec(), false)
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let status: Value = r.json().await.unwrap();
    assert_eq!(status["code"], 3, "INVALID_ARGUMENT: {status}");
    assert!(
        status["message"].as_str().unwrap().contains("OTLP/JSON"),
        "{status}"
    );
    // ... and kept, as contract 2 says.
    t.search_until(
        "acme-admin",
        &[("q", "outcome:rejected"), ("from", "now-1h")],
        2,
    )
    .await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protobuf_errors_are_google_rpc_status_with_the_right_http_status() {
    let dir = tempfile::tempdir().unwrap();
    let t = compat_gateway(dir.path(), "").await;
    let post = |key: Option<&str>, content_type: &str, body: Vec<u8>| {
        let mut r = t
            .client
            .post(format!("{}/v1/logs", t.url))
            .header("content-type", content_type)
            .body(body);
        if let Some(k) = key {
            r = r.bearer_auth(k);
        }
        r.send()
    };
    let status_of = |bytes: &[u8]| Status::decode(bytes).expect("a google.rpc.Status");

    // Garbage protobuf: 400, INVALID_ARGUMENT, in protobuf.
    let r = post(
        Some("acme-ingest"),
        "application/x-protobuf",
        vec![0xff, 0xff, 0x01],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["content-type"], "application/x-protobuf");
    let s = status_of(&r.bytes().await.unwrap());
    assert_eq!(s.code, 3);
    assert!(
        s.message.contains("ExportLogsServiceRequest"),
        "{}",
        s.message
    );

    // No key: 401, UNAUTHENTICATED.
    let r = post(None, "application/x-protobuf", Vec::new())
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(status_of(&r.bytes().await.unwrap()).code, 16);

    // Not OTLP's content types: 415.
    let r = post(Some("acme-ingest"), "text/plain", b"hi".to_vec())
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    assert_eq!(status_of(&r.bytes().await.unwrap()).code, 3);

    // An empty request is a success with an empty response.
    let r = post(Some("acme-ingest"), "application/x-protobuf", Vec::new())
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.unwrap().is_empty());

    // Over the tenant's rate limit: 429, RESOURCE_EXHAUSTED, Retry-After.
    t.post_lines(
        "/v1/logs/app",
        "slow-ingest",
        &[json!({"message": "burst"})],
    )
    .await;
    let request = opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest {
        resource_logs: vec![opentelemetry_proto::tonic::logs::v1::ResourceLogs {
            scope_logs: vec![opentelemetry_proto::tonic::logs::v1::ScopeLogs {
                log_records: vec![Default::default()],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let r = post(
        Some("slow-ingest"),
        "application/x-protobuf",
        request.encode_to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(status_of(&r.bytes().await.unwrap()).code, 8);

    // GET is not an export.
    let r = t
        .client
        .get(format!("{}/v1/logs", t.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    t.stop().await;
}

/// The JS SDK's OTLP/HTTP exporter sends JSON: the same events result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_sdk_exports_logs_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let t = compat_gateway(dir.path(), "").await;
    let mut node = std::process::Command::new("node");
    node.env("NODE_PATH", test_clients().join("node/node_modules"))
        .arg(client_script("otel_node.js"))
        .arg(&t.url)
        .arg("acme-ingest");
    let out = run_client(node).await;
    assert_eq!(out["results"], json!([0]), "one batch of both: {out}");
    let body = t
        .search_until(
            "acme-admin",
            &[("q", "service:node-api"), ("from", "now-1h")],
            2,
        )
        .await;
    let hits = body["hits"].as_array().unwrap();
    let served = hits
        .iter()
        .find(|h| h["message"] == "otel-node request served")
        .unwrap_or_else(|| panic!("{body}"));
    assert_eq!(served["type"], "node-api", "service.name names the type");
    assert_eq!(served["level"], "info");
    assert_eq!(served["host"], "node-1");
    assert_eq!(served["fields"]["http.route"], "/cart");
    assert_eq!(served["fields"]["http.status_code"], 200);
    assert_eq!(served["fields"]["scope"]["name"], "api.http");
    let failed = hits
        .iter()
        .find(|h| h["message"] == "otel-node upstream failed")
        .unwrap_or_else(|| panic!("{body}"));
    assert_eq!(failed["level"], "error");
    assert_eq!(failed["fields"]["upstream"], "pricing");
    assert_eq!(failed["fields"]["retries"], 2);
    t.stop().await;
}

/// OTLP/gRPC on its own listener: the Python SDK's gRPC exporter (gzip,
/// the key in metadata); a rate limit is RESOURCE_EXHAUSTED with
/// RetryInfo, which the exporter waits out and retries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_exports_over_grpc() {
    let dir = tempfile::tempdir().unwrap();
    let t = compat_gateway(dir.path(), "[otlp]\ngrpc_addr = \"127.0.0.1:0\"").await;
    let grpc = t
        .gateway
        .otlp_grpc_addr()
        .expect("the gRPC listener")
        .to_string();
    let out = run_client(python_client(
        "otel_py.py",
        &[&grpc, "acme-ingest", "logs", "grpc"],
    ))
    .await;
    assert_eq!(
        out["results"],
        json!(["SUCCESS", "SUCCESS", "SUCCESS"]),
        "{out}"
    );
    let trace_id = out["trace_id"].as_str().unwrap();
    let body = t
        .search_until(
            "acme-admin",
            &[("q", &format!("request_id:{trace_id}")), ("from", "now-1h")],
            3,
        )
        .await;
    let declined = body["hits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["message"] == "otel-py card declined")
        .unwrap_or_else(|| panic!("{body}"));
    assert_eq!(declined["type"], "checkout");
    assert_eq!(declined["fields"]["amount"], 12.5);

    t.post_lines(
        "/v1/logs/app",
        "slow-ingest",
        &[json!({"message": "first"})],
    )
    .await;
    let out = run_client(python_client(
        "otel_py.py",
        &[&grpc, "slow-ingest", "retry", "grpc"],
    ))
    .await;
    assert_eq!(out["results"], json!(["SUCCESS"]), "{out}");
    assert!(out["seconds"].as_f64().unwrap() >= 0.5, "no wait: {out}");
    t.search_until(
        "slow-admin",
        &[("q", "\"otel-py after a retry\""), ("from", "now-1h")],
        1,
    )
    .await;
    t.stop().await;
}

/// A tenant's own field names apply to OTLP records as to JSON lines: an
/// attribute under a name tried before the built-in ones is promoted, the
/// record's severity then stays in `fields`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_field_names_apply_to_records() {
    let dir = tempfile::tempdir().unwrap();
    let tenants = r#"
[[tenants]]
name = "named"
ingest_keys = ["named-ingest"]
admin_keys = ["named-admin"]
fields = { level = ["log.severity"], service = ["component"] }
"#;
    let t = TestGateway::start(config_with(dir.path(), tenants)).await;
    let mut body = json_body("named fields");
    let record = &mut body["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0];
    record["attributes"].as_array_mut().unwrap().extend([
        json!({"key": "log.severity", "value": {"stringValue": "FATAL"}}),
        json!({"key": "component", "value": {"stringValue": "ledger"}}),
    ]);
    let r = t
        .client
        .post(format!("{}/v1/logs", t.url))
        .header("content-type", "application/json")
        .header("x-logway-key", "named-ingest")
        .body(serde_json::to_vec(&body).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let found = t
        .search_until(
            "named-admin",
            &[("q", "named"), ("from", "2025-01-01T00:00:00Z")],
            1,
        )
        .await;
    let hit = &found["hits"][0];
    assert_eq!(hit["message"], "named fields", "{found}");
    assert_eq!(hit["level"], "fatal", "{found}");
    assert_eq!(hit["service"], "ledger", "{found}");
    assert_eq!(hit["fields"]["level"], "warn", "{found}");
    assert_eq!(hit["fields"]["service"], "billing", "{found}");
    assert_eq!(hit["fields"]["attempt"], 3, "{found}");
    assert!(hit["fields"].get("log.severity").is_none(), "{found}");
    t.stop().await;
}
