//! StatsD lines posted over HTTP to a metric-class route with
//! `format = "statsd"`: the lines of a request become one point per
//! series once durable (acknowledged only then), a bad line is rejected
//! with its number and kept, the points reach the series API and the
//! tenant's Prometheus exposition, and a wrong Content-Type or a route
//! without the metric class is refused with the reason.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;

const ROUTES: &str = r#"
[[tenants]]
name = "acme"
ingest_keys = ["statsd-ingest"]
admin_keys = ["statsd-admin"]
routes = [{ path = "/statsd", type = "app_metrics", class = "metric", format = "statsd" }]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statsd_lines_posted_over_http_become_durable_points() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestGateway::start(config_with(dir.path(), ROUTES)).await;
    let body = "shop.orders:3|c|#env:prod\nshop.orders:4|c|@0.5|#env:prod\nnot a metric\nshop.lat:10|ms\nshop.lat:30|ms\n";
    let r = t
        .post("/statsd", "statsd-ingest")
        .header("content-type", "text/plain")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["accepted"], 2, "two series: {answer}");
    assert_eq!(answer["rejected"], 1, "{answer}");
    assert_eq!(answer["errors"][0]["line"], 3, "{answer}");
    assert!(
        answer["errors"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("not a StatsD line"),
        "{answer}"
    );

    let r = t
        .post("/statsd", "statsd-ingest")
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    assert!(r.text().await.unwrap().contains("text/plain"));

    // The points and the rejected line, searchable.
    let found = t
        .search_until(
            "statsd-admin",
            &[("q", "type:app_metrics"), ("limit", "10")],
            3,
        )
        .await;
    let hits = found["hits"].as_array().unwrap();
    let point = |name: &str| {
        hits.iter()
            .find(|h| h["fields"]["metric"] == name)
            .unwrap_or_else(|| panic!("{name}: {found}"))["fields"]
            .clone()
    };
    assert_eq!(point("shop.orders")["value"], 11.0, "3 + 4 sampled at 0.5");
    assert_eq!(point("shop.orders")["tags"]["env"], "prod");
    assert_eq!(point("shop.lat")["count"], 2.0);
    assert_eq!(
        point("shop.lat")["max"].as_f64().map(f64::round),
        Some(30.0)
    );
    let rejected = t
        .search_until(
            "statsd-admin",
            &[("q", "outcome:rejected AND message:\"not a metric\"")],
            1,
        )
        .await;
    assert_eq!(rejected["total"], 1, "the bad line is kept: {rejected}");

    // The tenant's Prometheus exposition has them too.
    let start = Instant::now();
    loop {
        let text = exposition(&t, "statsd-admin").await;
        if text.contains("shop_orders_total{env=\"prod\"} 11") && text.contains("shop_lat_count 2")
        {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    t.stop().await;

    // A route of `statsd` format must be of the metric class.
    let text = ROUTES.replace(", class = \"metric\"", "");
    let err = logway::Config::from_toml(&format!(
        "[storage]\ndata_dir = \"{}\"\n{text}",
        dir.path().display()
    ))
    .unwrap_err();
    assert!(err.to_string().contains("class = \"metric\""), "{err}");
}
