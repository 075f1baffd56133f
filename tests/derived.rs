//! Metrics derived from logs (`tenants[].derived_metrics`): a count of
//! the events that match, by a field's values, and the distribution of a
//! numeric field, written as points every `metrics.derived_interval`,
//! read back with `GET /api/v1/metrics/query` and exposed to Prometheus.
//! The points themselves are not counted again.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::*;

const CONFIG: &str = r#"
[metrics]
derived_interval = "200ms"

[[tenants]]
name = "acme"
ingest_keys = ["derived-ingest"]
admin_keys = ["derived-admin"]
routes = [{ path = "/web", type = "web_logs" }, { path = "/other", type = "other_logs" }]

[[tenants.derived_metrics]]
name = "web.requests"
type = "web_logs"
by = ["status"]

[[tenants.derived_metrics]]
name = "web.errors"
query = "level:error"

[[tenants.derived_metrics]]
name = "web.latency"
type = "web_logs"
field = "http.duration_ms"
by = ["service"]
"#;

async fn query(t: &TestGateway, q: &[(&str, &str)]) -> Value {
    let r = t
        .client
        .get(format!("{}/api/v1/metrics/query", t.url))
        .bearer_auth("derived-admin")
        .query(&[("from", "now-1h"), ("to", "now+1h"), ("step", "2h")])
        .query(q)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// Each series' single value, by its tags.
fn values(body: &Value) -> Vec<(Value, f64)> {
    body["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["tags"].clone(), s["points"][0][1].as_f64().unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_logs_give_request_counts_and_latency_distributions() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestGateway::start(config_with(dir.path(), CONFIG)).await;
    // 30 requests: 20 answered 200, 10 answered 500 (errors), services a
    // and b in turn, durations 1..=30 ms; and an error of another type.
    let lines: Vec<Value> = (1..=30)
        .map(|i| {
            let (status, level) = if i % 3 == 0 {
                (500, "error")
            } else {
                (200, "info")
            };
            json!({"message": format!("GET /x {i}"), "level": level, "status": status,
                   "service": if i % 2 == 0 { "a" } else { "b" },
                   "http": {"duration_ms": i}})
        })
        .collect();
    t.post_lines("/web", "derived-ingest", &lines).await;
    t.post_lines(
        "/other",
        "derived-ingest",
        &[json!({"message": "elsewhere", "level": "error"})],
    )
    .await;

    let start = Instant::now();
    let requests = loop {
        let body = query(&t, &[("metric", "web.requests"), ("by", "status")]).await;
        let total: f64 = values(&body).iter().map(|(_, v)| v).sum();
        if total >= 30.0 {
            break body;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        values(&requests),
        [
            (json!({"status": "200"}), 20.0),
            (json!({"status": "500"}), 10.0)
        ],
        "{requests}"
    );
    let start = Instant::now();
    loop {
        let errors = query(&t, &[("metric", "web.errors")]).await;
        let v: Vec<(Value, f64)> = values(&errors);
        if v == [(json!({}), 11.0)] {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "every type's errors: {errors}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let latency = query(
        &t,
        &[
            ("metric", "web.latency"),
            ("by", "service"),
            ("agg", "count"),
        ],
    )
    .await;
    assert_eq!(latency["kind"], "distribution");
    assert_eq!(
        values(&latency),
        [
            (json!({"service": "a"}), 15.0),
            (json!({"service": "b"}), 15.0)
        ],
        "{latency}"
    );
    let max = query(
        &t,
        &[("metric", "web.latency"), ("by", "service"), ("agg", "max")],
    )
    .await;
    assert_eq!(
        values(&max),
        [
            (json!({"service": "a"}), 30.0),
            (json!({"service": "b"}), 29.0)
        ]
    );

    // Prometheus sees the same counts.
    let text = exposition(&t, "derived-admin").await;
    assert!(
        text.contains("web_requests_total{status=\"500\"} 10\n"),
        "{text}"
    );
    assert!(
        text.contains("web_latency_count{service=\"a\"} 15\n"),
        "{text}"
    );

    // A while later nothing more was counted: the points written are not
    // counted themselves.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let again = query(&t, &[("metric", "web.requests"), ("by", "status")]).await;
    assert_eq!(values(&again), values(&requests), "{again}");
    t.stop().await;
}
