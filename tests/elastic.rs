//! The Elasticsearch API over plain HTTP: per-item answers, errors,
//! limits, ids, the handshake; the Python client's retry of a 429. The
//! shippers and client libraries themselves: `elastic_clients`.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::common::*;

pub(crate) const ES_CONFIG: &str = r#"
[elasticsearch]
addr = "127.0.0.1:0"
version = "8.15.3"
"#;

/// Tenant `a` maps `app-*` to a type and `site-*` to its `/web` route;
/// tenant `b` has no generic route (unmapped indices are refused).
pub(crate) fn es_config(dir: &Path, extra: &str) -> logway::Config {
    let text = format!(
        r#"
{ES_CONFIG}
{extra}
[[tenants]]
name = "a"
ingest_keys = ["{A_INGEST}"]
admin_keys = ["{A_ADMIN}"]
routes = [{{ path = "/web", type = "web_logs" }}]
indices = [{{ pattern = "app-*", type = "app_logs" }}, {{ pattern = "site-*", route = "/web" }}]

[[tenants]]
name = "b"
ingest_keys = ["{B_INGEST}"]
admin_keys = ["{B_ADMIN}"]
generic_route = false
"#
    );
    config_with(&dir.join("data"), &text)
}

pub(crate) fn python9(args: &[&str]) -> Command {
    python_client("es_py9.py", args)
}

pub(crate) fn es_url(gw: &TestGateway) -> String {
    format!("{}/es", gw.url)
}

pub(crate) async fn bulk(
    gw: &TestGateway,
    key: &str,
    body: &str,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let r = gw
        .client
        .post(format!("{}/_bulk", es_url(gw)))
        .header(
            "authorization",
            format!("ApiKey {}", b64(&format!("id:{key}"))),
        )
        .header("content-type", "application/x-ndjson")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.json().await.unwrap())
}

pub(crate) fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// One item per action, in order, each with its own status; bad documents
/// and an update's body are kept as rejected events.
#[tokio::test]
async fn bulk_answers_every_action_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(es_config(dir.path(), "")).await;
    let body = [
        r#"{"index":{"_index":"app-1","_id":"k1"}}"#,
        r#"{"message":"first","level":"info"}"#,
        r#"{"index":{"_index":"app-1","_type":"_doc"}}"#,
        r#"{"message": broken"#,
        r#"{"create":{"_index":"app-1","_id":"k1"}}"#,
        r#"{"message":"same id again"}"#,
        r#"{"delete":{"_index":"app-1","_id":"k1"}}"#,
        r#"{"update":{"_index":"app-1","_id":"k1"}}"#,
        r#"{"doc":{"message":"changed"}}"#,
        r#"{"index":{}}"#,
        r#"{"message":"no index"}"#,
        r#"{"index":{"_index":"site-1"}}"#,
        r#"{"message":"to the web route"}"#,
        r#"{"index":{"_index":"app-1"}}"#,
        r#"[1,2]"#,
        r#"{"index":{"_index":"2026.11.30"}}"#,
        r#"{"message":"no type in this name"}"#,
        "",
    ]
    .join("\n");
    let r = gw
        .client
        .post(format!("{}/_bulk", es_url(&gw)))
        .header(
            "authorization",
            format!("ApiKey {}", b64(&format!("x:{A_INGEST}"))),
        )
        .header(
            "content-type",
            "application/vnd.elasticsearch+x-ndjson; compatible-with=9",
        )
        .header("content-encoding", "gzip")
        .body(gzip(body.as_bytes()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-elastic-product"], "Elasticsearch");
    let text = r.text().await.unwrap();
    assert!(
        text.starts_with(r#"{"took":"#) && text.contains(r#","errors":true,"items":["#),
        "{text}"
    );
    let answer: Value = serde_json::from_str(&text).unwrap();
    let items = answer["items"].as_array().unwrap();
    let got: Vec<(String, u64)> = items
        .iter()
        .map(|i| {
            let (op, v) = i.as_object().unwrap().iter().next().unwrap();
            (op.clone(), v["status"].as_u64().unwrap())
        })
        .collect();
    let want = [
        ("index", 201),
        ("index", 400),
        ("create", 409),
        ("delete", 400),
        ("update", 400),
        ("index", 400),
        ("index", 201),
        ("index", 400),
        ("index", 400),
    ];
    let want: Vec<(String, u64)> = want.iter().map(|(o, s)| (o.to_string(), *s)).collect();
    assert_eq!(got, want, "{text}");
    assert_eq!(items[0]["index"]["_id"], "k1");
    assert_eq!(
        items[1]["index"]["error"]["type"],
        "document_parsing_exception"
    );
    assert_eq!(
        items[5]["index"]["error"]["type"],
        "action_request_validation_exception"
    );
    assert_eq!(
        items[6]["index"]["_id"].as_str().unwrap().len(),
        26,
        "a new ULID"
    );
    assert_eq!(
        items[8]["index"]["error"]["type"],
        "invalid_index_name_exception"
    );
    gw.search_until(
        A_ADMIN,
        &[("q", "type:app_logs AND NOT outcome:rejected")],
        1,
    )
    .await;
    gw.search_until(A_ADMIN, &[("q", "type:web_logs")], 1).await;
    // The broken document, the update's body and the array: kept.
    let rejected = gw
        .search_until(A_ADMIN, &[("q", "outcome:rejected"), ("limit", "10")], 3)
        .await;
    let text = rejected.to_string();
    assert!(
        text.contains("broken") && text.contains("changed") && text.contains("[1,2]"),
        "{text}"
    );

    // Filebeat's and Logstash's filter_path: only what they read.
    let r = gw
        .client
        .post(format!(
            "{}/_bulk?filter_path=errors,items.*.error,items.*.status",
            es_url(&gw)
        ))
        .basic_auth("a", Some(A_INGEST))
        .header("content-type", "application/json")
        .body("{\"create\":{\"_index\":\"app-1\"}}\n{\"message\":\"filtered answer\"}\n")
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    assert_eq!(
        text,
        r#"{"errors":false,"items":[{"create":{"status":201}}]}"#
    );

    // A tenant without a generic route: an unmapped index is refused.
    let (status, _, answer) = bulk(
        &gw,
        B_INGEST,
        "{\"index\":{\"_index\":\"whatever\"}}\n{\"message\":\"m\"}\n",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(answer["items"][0]["index"]["status"], 404);
    assert_eq!(
        answer["items"][0]["index"]["error"]["type"],
        "index_not_found_exception"
    );
    gw.stop().await;
}

/// Whole-request refusals in Elasticsearch's error shape, and nothing lost:
/// a malformed request's lines are kept as rejected events.
#[tokio::test]
async fn bad_requests_get_elasticsearch_errors() {
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(es_config(dir.path(), "")).await;
    let (status, headers, answer) = bulk(
        &gw,
        A_INGEST,
        "{\"index\":{\"_index\":\"app-m\"}}\n{\"message\":\"kept anyway\"}\nthis is no action\n{\"x\":1}\n",
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(headers["x-elastic-product"], "Elasticsearch");
    assert_eq!(answer["status"], 400);
    assert_eq!(answer["error"]["type"], "illegal_argument_exception");
    assert!(
        answer["error"]["reason"]
            .as_str()
            .unwrap()
            .contains("line 3"),
        "{answer}"
    );
    let kept = gw
        .search_until(
            A_ADMIN,
            &[("q", "type:elasticsearch AND outcome:rejected")],
            4,
        )
        .await;
    assert!(kept.to_string().contains("this is no action"));

    // The body ends where a source line should be: that action alone fails.
    let (status, _, answer) = bulk(
        &gw,
        A_INGEST,
        "{\"index\":{\"_index\":\"app-m\"}}\n{\"message\":\"has a source\"}\n{\"index\":{\"_index\":\"app-m\"}}\n",
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["items"][0]["index"]["status"], 201, "{answer}");
    assert_eq!(answer["items"][1]["index"]["status"], 400, "{answer}");
    assert_eq!(
        answer["items"][1]["index"]["error"]["type"],
        "action_request_validation_exception"
    );

    let (status, _, answer) = bulk(&gw, A_INGEST, "\n\n").await;
    assert_eq!(status, 400);
    assert_eq!(
        answer["error"]["type"],
        "action_request_validation_exception"
    );

    let r = gw
        .client
        .post(format!("{}/_bulk", es_url(&gw)))
        .body("{\"index\":{}}\n{}\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("Basic")
    );
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["error"]["type"], "security_exception");

    let r = gw
        .client
        .post(format!("{}/_bulk", es_url(&gw)))
        .basic_auth("a", Some(A_INGEST))
        .header("content-type", "text/plain")
        .body("{\"index\":{}}\n{}\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 406);

    let r = gw
        .client
        .get(format!("{}/app-1/_search", es_url(&gw)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let answer: Value = r.json().await.unwrap();
    assert!(
        answer["error"]["reason"]
            .as_str()
            .unwrap()
            .contains("/api/v1/search")
    );
    gw.stop().await;
}

/// Over the tenant's rate limit a bulk is refused whole (429 +
/// `Retry-After`, nothing stored); the Python client's `streaming_bulk`
/// backs off, retries, and every document is stored once.
#[tokio::test]
async fn a_rate_limited_bulk_is_retried_by_the_client() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = es_config(dir.path(), "");
    config.tenants[0].rate_limit = Some(logway::config::RateLimitConfig {
        events_per_sec: Some(2),
        events_burst: Some(10),
        ..Default::default()
    });
    let gw = TestGateway::start(config).await;
    let docs: String = (0..10)
        .map(|i| {
            format!("{{\"index\":{{\"_index\":\"burst-logs\"}}}}\n{{\"message\":\"burst {i}\"}}\n")
        })
        .collect();
    let (status, _, _) = bulk(&gw, A_INGEST, &docs).await;
    assert_eq!(status, 200);
    let (status, headers, answer) = bulk(&gw, A_INGEST, &docs).await;
    assert_eq!(status, 429, "{answer}");
    assert!(headers.contains_key("retry-after"));
    assert_eq!(answer["error"]["type"], "es_rejected_execution_exception");
    let out = run_client(python9(&[&es_url(&gw), A_INGEST, "retry"])).await;
    assert_eq!(out["ok"], 10, "{out}");
    gw.search_until(A_ADMIN, &[("q", "type:retry-logs")], 10)
        .await;
    gw.search_until(A_ADMIN, &[("q", "type:burst-logs")], 10)
        .await;
    let limited = metric_sum(&gw.metrics().await, "logway_requests_limited_total{");
    assert!(
        limited >= 2.0,
        "the client was refused before it got through: {limited}"
    );
    gw.stop().await;
}

/// Ids outlive a restart: a resend after it answers `noop` (index) and
/// 409 (create), and stores nothing.
#[tokio::test]
async fn ids_are_remembered_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let docs: String = (0..3)
        .map(|i| format!("{{\"index\":{{\"_index\":\"app-r\",\"_id\":\"r{i}\"}}}}\n{{\"message\":\"r {i}\"}}\n"))
        .collect();
    let gw = TestGateway::start(es_config(dir.path(), "")).await;
    let (status, _, answer) = bulk(&gw, A_INGEST, &docs).await;
    assert_eq!(
        (status, &answer["errors"]),
        (200, &json!(false)),
        "{answer}"
    );
    gw.search_until(A_ADMIN, &[("q", "type:app_logs")], 3).await;
    gw.stop().await;

    let gw = TestGateway::start(es_config(dir.path(), "")).await;
    let (_, _, answer) = bulk(&gw, A_INGEST, &docs).await;
    for item in answer["items"].as_array().unwrap() {
        assert_eq!(item["index"]["status"], 200, "{answer}");
        assert_eq!(item["index"]["result"], "noop", "{answer}");
    }
    let create = "{\"create\":{\"_index\":\"app-r\",\"_id\":\"r1\"}}\n{\"message\":\"r 1\"}\n";
    let (_, _, answer) = bulk(&gw, A_INGEST, create).await;
    assert_eq!(answer["items"][0]["create"]["status"], 409, "{answer}");
    // Another type's id space is its own.
    let other = "{\"create\":{\"_index\":\"other\",\"_id\":\"r1\"}}\n{\"message\":\"r 1\"}\n";
    let (_, _, answer) = bulk(&gw, A_INGEST, other).await;
    assert_eq!(answer["items"][0]["create"]["status"], 201, "{answer}");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    gw.search_until(A_ADMIN, &[("q", "type:app_logs")], 3).await;
    gw.stop().await;
}

/// What Filebeat, Logstash, Vector and rsyslog ask before they send.
#[tokio::test]
async fn the_handshake_answers_what_clients_check() {
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(es_config(dir.path(), "")).await;
    let base = es_url(&gw);
    let info: Value = gw
        .client
        .get(&base)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["version"]["number"], "8.15.3");
    assert_eq!(info["version"]["build_flavor"], "default");
    assert_eq!(info["tagline"], "You Know, for Search");
    let license: Value = gw
        .client
        .get(format!("{base}/_license?human=false"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(license["license"]["status"], "active");
    for (method, path) in [
        ("HEAD", "/"),
        ("GET", "/_cluster/health"),
        ("GET", "/_cat/health"),
        ("GET", "/_xpack"),
        ("GET", "/_nodes/http"),
        ("HEAD", "/_index_template/filebeat-8.15.3"),
        ("PUT", "/_index_template/filebeat-8.15.3"),
        ("GET", "/_ilm/policy/filebeat"),
        ("PUT", "/_ilm/policy/filebeat"),
        ("GET", "/_data_stream/filebeat-8.15.3"),
        ("PUT", "/_ingest/pipeline/p1"),
        ("HEAD", "/logstash"),
        ("PUT", "/%3Clogstash-%7Bnow%2Fd%7D-000001%3E"),
        ("POST", "/app-1/_refresh"),
    ] {
        let r = gw
            .client
            .request(method.parse().unwrap(), format!("{base}{path}"))
            .header("content-type", "application/json")
            .body(if method == "PUT" { "{}" } else { "" })
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{method} {path}");
        assert_eq!(
            r.headers()["x-elastic-product"],
            "Elasticsearch",
            "{method} {path}"
        );
    }
    // The prefix is the API's: no tenant route may take it.
    let err = logway::Config::from_toml(
        "[[tenants]]\nname = \"t\"\nroutes = [{ path = \"/es/x\", type = \"x\" }]\n",
    )
    .unwrap_err();
    assert!(err.to_string().contains("Elasticsearch"), "{err}");
    gw.stop().await;
}
