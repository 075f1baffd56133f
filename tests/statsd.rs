//! StatsD over UDP: the `statsd` package, the `datadog` package's
//! DogStatsD client and node's `hot-shots` send counters, gauges, timers, sets, histograms and
//! distributions (with tags); each series becomes one point per interval,
//! searchable like any event, with the values a StatsD server computes
//! (counter sums with sample rates, gauge deltas, distinct set members,
//! timer quantiles within the sketch's 1%). Bad lines and series past the
//! bound are counted. `GET /api/v1/metrics/query` reads points back as
//! series: grouped by tags, aggregated per step.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;

fn config(dir: &std::path::Path) -> logway::Config {
    config_with(
        dir,
        r#"
[[tenants]]
name = "acme"
ingest_keys = ["statsd-ingest"]
admin_keys = ["statsd-admin"]

# A long interval: the test ends it by stopping the gateway, so every
# sample is in one interval.
[[statsd]]
addr = "127.0.0.1:0"
tenant = "acme"
unauthenticated = true
flush_interval = "1h"
quantiles = [0.5, 0.9, 0.99]

[[statsd]]
addr = "127.0.0.1:0"
tenant = "acme"
type = "few_metrics"
unauthenticated = true
flush_interval = "1h"
max_series = 2

[[statsd]]
addr = "127.0.0.1:0"
mode = "tcp"
tenant = "acme"
unauthenticated = true
flush_interval = "1h"
"#,
    )
}

/// The point of `metric` (with `env` tag, if given) among `hits`.
fn point<'a>(hits: &'a [Value], metric: &str, env: Option<&str>) -> &'a Value {
    let found: Vec<&Value> = hits
        .iter()
        .filter(|h| h["fields"]["metric"] == metric)
        .filter(|h| env.is_none_or(|e| h["fields"]["tags"]["env"] == e))
        .collect();
    assert_eq!(found.len(), 1, "{metric} {env:?}: {hits:?}");
    &found[0]["fields"]
}

fn near(v: &Value, want: f64, within: f64) -> bool {
    v.as_f64().is_some_and(|v| (v - want).abs() <= within)
}

/// Waits until the gateway has received `lines` StatsD lines; its metrics
/// then.
async fn wait_lines(t: &TestGateway, lines: f64) -> String {
    let start = Instant::now();
    loop {
        let m = t.metrics().await;
        if metric_sum(&m, "logway_statsd_lines_total") >= lines {
            return m;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{m}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Stops the gateway, which ends the interval in hand (its points are
/// stored), starts it again over `dir`, and returns it with the `n`
/// points of type `metrics` it finds (one per series).
async fn points_after_restart(
    t: TestGateway,
    dir: &std::path::Path,
    n: usize,
) -> (TestGateway, Vec<Value>) {
    t.stop().await;
    let t = TestGateway::start(config(dir)).await;
    let body = t
        .search_until(
            "statsd-admin",
            &[("q", "type:metrics"), ("limit", "100")],
            n as u64,
        )
        .await;
    let hits = body["hits"].as_array().unwrap().clone();
    assert_eq!(hits.len(), n, "one point per series: {body}");
    (t, hits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statsd_and_dogstatsd_clients_become_one_point_per_series_and_interval() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestGateway::start(config(dir.path())).await;
    let addrs = t.gateway.statsd_addrs().to_vec();
    let port = addrs[0].port().to_string();
    let out = run_client(python_client(
        "statsd_py.py",
        &["statsd", "127.0.0.1", &port],
    ))
    .await;
    assert_eq!(out["sent"], 215);
    let out = run_client(python_client(
        "statsd_py.py",
        &["dogstatsd", "127.0.0.1", &port],
    ))
    .await;
    assert_eq!(out["sent"], 106);
    // A sampled counter, a bad line; five series for a listener of two.
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(b"shop.orders:5|c|@0.5\nnot a metric\n", addrs[0])
        .unwrap();
    udp.send_to(b"a:1|c\nb:1|c\nc:1|c\nd:1|c\na:1|c\ne:1|c", addrs[1])
        .unwrap();

    let metrics = wait_lines(&t, 215.0 + 106.0 + 2.0 + 6.0).await;
    let dropped = |reason: &str| {
        metric_sum(
            &metrics,
            &format!(
                "logway_statsd_dropped_total{{listener=\"{}\",reason=\"{reason}\"}}",
                addrs[if reason == "series" { 1 } else { 0 }]
            ),
        )
    };
    assert_eq!(dropped("bad_line"), 1.0, "{metrics}");
    assert_eq!(dropped("series"), 3.0, "c, d and e: {metrics}");
    let (t, hits) = points_after_restart(t, dir.path(), 9).await;

    let orders = point(&hits, "shop.orders", None);
    assert_eq!(orders["kind"], "counter");
    assert_eq!(orders["value"], 20.0, "10 x 1, and 5 sampled at 0.5");
    assert_eq!(
        point(&hits, "shop.queue", None)["value"],
        25.0,
        "40, then -15"
    );
    assert_eq!(point(&hits, "shop.users", None)["value"], 2, "ann and bob");
    let checkout = point(&hits, "shop.checkout", None);
    assert_eq!(checkout["kind"], "timer");
    assert_eq!(checkout["count"], 200.0);
    assert_eq!(checkout["sum"], 20100.0);
    assert_eq!(
        (checkout["min"].as_f64(), checkout["max"].as_f64()),
        (Some(1.0), Some(200.0))
    );
    assert!(near(&checkout["p50"], 100.0, 2.0), "{checkout}");
    assert!(near(&checkout["p99"], 198.0, 3.0), "{checkout}");

    for env in ["prod", "dev"] {
        let hits_point = point(&hits, "api.hits", Some(env));
        assert_eq!(hits_point["value"], 3.0);
        assert_eq!(hits_point["tags"]["route"], "/pay");
    }
    let latency = point(&hits, "api.latency", Some("prod"));
    assert_eq!(latency["kind"], "histogram");
    assert_eq!(latency["count"], 100.0);
    assert!(near(&latency["p90"], 90.0, 1.5), "{latency}");
    let size = point(&hits, "api.size", None);
    assert_eq!(
        (size["kind"].as_str(), size["sum"].as_f64()),
        (Some("distribution"), Some(60.0))
    );
    assert_eq!(point(&hits, "api.conns", None)["value"], 7.0);

    // Points are events: a tag and a metric name are searchable.
    let (status, body) = t
        .search_raw(
            "statsd-admin",
            &[("q", "tags.env:prod AND metric:\"api.hits\"")],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["total"], 1, "{body}");
    // The bounded listener kept its first two series.
    let body = t
        .search_until("statsd-admin", &[("q", "type:few_metrics")], 2)
        .await;
    let names: std::collections::BTreeSet<&str> = body["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["fields"]["metric"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b"].into());
    t.stop().await;
}

/// `GET /api/v1/metrics/query` with `query`: (status, body).
async fn metrics_query(t: &TestGateway, query: &[(&str, String)]) -> (u16, Value) {
    let r = t
        .client
        .get(format!("{}/api/v1/metrics/query", t.url))
        .bearer_auth("statsd-admin")
        .query(query)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn points_are_read_back_as_series_grouped_by_tags_and_aggregated_per_step() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(
        dir.path(),
        r#"
[[tenants]]
name = "acme"
ingest_keys = ["statsd-ingest"]
admin_keys = ["statsd-admin"]
routes = [{ path = "/points", type = "metrics", class = "metric" }]
"#,
    );
    let t = TestGateway::start(config).await;
    // Points as a StatsD listener writes them, posted with their times:
    // from a minute boundary half an hour ago, one every 10 s.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let base = (now - 1800) / 60 * 60;
    let at = |s: i64| {
        time::OffsetDateTime::from_unix_timestamp(base + s)
            .unwrap()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let mut lines = Vec::new();
    for i in 0..12i64 {
        for (env, value) in [("prod", i), ("dev", 1)] {
            lines.push(
                serde_json::json!({"timestamp": at(i * 10), "metric": "api.hits", "kind": "counter",
                "value": value as f64, "tags": {"env": env, "route": "/pay"}}),
            );
        }
    }
    // A name that contains the other's words: never mixed in.
    lines.push(serde_json::json!({"timestamp": at(0), "metric": "api.hits.total", "kind": "counter", "value": 1000.0}));
    for (s, count, sum, min, max, avg, p99) in [
        (0, 10.0, 100.0, 1.0, 20.0, 10.0, 19.0),
        (10, 30.0, 600.0, 2.0, 50.0, 20.0, 45.0),
    ] {
        lines.push(
            serde_json::json!({"timestamp": at(s), "metric": "api.latency", "kind": "timer",
            "count": count, "sum": sum, "min": min, "max": max, "avg": avg, "p99": p99}),
        );
    }
    for (s, v) in [(0, 5.0), (30, 8.0), (90, 3.0)] {
        lines.push(serde_json::json!({"timestamp": at(s), "metric": "queue.depth", "kind": "gauge", "value": v}));
    }
    let n = lines.len() as u64;
    t.post_lines("/points", "statsd-ingest", &lines).await;
    t.search_until(
        "statsd-admin",
        &[("q", "type:metrics"), ("from", "now-2h")],
        n,
    )
    .await;

    let range = |step: &str| -> Vec<(&'static str, String)> {
        vec![("from", at(0)), ("to", at(120)), ("step", step.to_string())]
    };
    let q = |extra: &[(&'static str, &str)], step: &str| -> Vec<(&'static str, String)> {
        let mut v = range(step);
        v.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        v
    };
    let ms = |s: i64| (base + s) * 1000;

    // Counters: summed per step, one series per `by` tag.
    let (status, body) =
        metrics_query(&t, &q(&[("metric", "api.hits"), ("by", "env")], "1m")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["kind"], "counter");
    assert_eq!(body["agg"], "sum", "a counter's default");
    assert_eq!(
        body["series"],
        serde_json::json!([
            {"tags": {"env": "dev"}, "points": [[ms(0), 6.0], [ms(60), 6.0]]},
            {"tags": {"env": "prod"}, "points": [[ms(0), 15.0], [ms(60), 51.0]]},
        ]),
        "{body}"
    );
    let (_, body) = metrics_query(
        &t,
        &q(
            &[
                ("metric", "api.hits"),
                ("tags", "env:prod"),
                ("agg", "rate"),
            ],
            "1m",
        ),
    )
    .await;
    assert_eq!(
        body["series"][0]["points"],
        serde_json::json!([[ms(0), 0.25], [ms(60), 0.85]]),
        "{body}"
    );

    // Timers: weighted average, count, max; a quantile per interval, or
    // the largest of them when a step holds several (and it says so).
    let tg = &t;
    let latency = |agg: &'static str, step: &'static str| {
        let q = q(&[("metric", "api.latency"), ("agg", agg)], step);
        async move { metrics_query(tg, &q).await.1 }
    };
    assert_eq!(
        latency("avg", "1m").await["series"][0]["points"],
        serde_json::json!([[ms(0), 17.5]])
    );
    assert_eq!(
        latency("count", "1m").await["series"][0]["points"],
        serde_json::json!([[ms(0), 40.0]])
    );
    assert_eq!(
        latency("max", "1m").await["series"][0]["points"],
        serde_json::json!([[ms(0), 50.0]])
    );
    let body = latency("p99", "10s").await;
    assert_eq!(
        body["series"][0]["points"],
        serde_json::json!([[ms(0), 19.0], [ms(10), 45.0]])
    );
    assert!(body.get("quantile_of_steps").is_none(), "{body}");
    let body = latency("p99", "1m").await;
    assert_eq!(
        body["series"][0]["points"],
        serde_json::json!([[ms(0), 45.0]])
    );
    assert!(body["quantile_of_steps"].is_string(), "{body}");

    // Gauges: the last value of each step.
    let (_, body) = metrics_query(&t, &q(&[("metric", "queue.depth")], "1m")).await;
    assert_eq!(body["agg"], "last");
    assert_eq!(
        body["series"][0]["points"],
        serde_json::json!([[ms(0), 8.0], [ms(60), 3.0]])
    );

    // Clear refusals.
    for (query, says) in [
        (
            q(&[("metric", "queue.depth"), ("agg", "rate")], "1m"),
            "for counters",
        ),
        (
            q(&[("metric", "queue.depth"), ("agg", "p99")], "1m"),
            "for timers",
        ),
        (
            q(&[("metric", "api.hits"), ("agg", "median")], "1m"),
            "one of sum",
        ),
        (q(&[("metric", "api.hits")], "1ms"), "more than"),
        (range("1m"), "metric"),
    ] {
        let (status, body) = metrics_query(&t, &query).await;
        assert_eq!(status, 400, "{query:?}: {body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(says),
            "{query:?}: {body}"
        );
    }
    t.stop().await;
}

/// The `statsd` package's TCP client over one connection; a line longer
/// than the listener reads is dropped alone, the next one is taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statsd_over_tcp_takes_every_line_of_a_connection() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let t = TestGateway::start(config(dir.path())).await;
    let tcp = t.gateway.statsd_addrs()[2];
    let port = tcp.port().to_string();
    let out = run_client(python_client(
        "statsd_py.py",
        &["statsd-tcp", "127.0.0.1", &port],
    ))
    .await;
    assert_eq!(out["sent"], 215);
    let mut raw = std::net::TcpStream::connect(tcp).unwrap();
    let long = format!("shop.long:{}|c", "9".repeat(100_000));
    raw.write_all(format!("{long}\nshop.tcp:1|c\nshop.tcp:2|c").as_bytes())
        .unwrap();
    drop(raw);
    let metrics = wait_lines(&t, 215.0 + 2.0).await;
    let bad = format!("logway_statsd_dropped_total{{listener=\"{tcp}\",reason=\"bad_line\"}}");
    assert_eq!(metric_sum(&metrics, &bad), 1.0, "{metrics}");
    let (t, hits) = points_after_restart(t, dir.path(), 5).await;
    let value = |m: &str, f: &str| point(&hits, m, None)[f].as_f64();
    assert_eq!(value("shop.orders", "value"), Some(10.0));
    assert_eq!(value("shop.queue", "value"), Some(25.0));
    assert_eq!(value("shop.checkout", "count"), Some(200.0));
    assert_eq!(value("shop.users", "value"), Some(2.0));
    assert_eq!(
        value("shop.tcp", "value"),
        Some(3.0),
        "the last line needs no newline"
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_a_tenants_statsd_series() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(&dir.path().join("gw"), ACME_STATSD);
    let t = TestGateway::start(config).await;
    let addr = t.gateway.statsd_addrs()[0];
    send_shop_series(addr);

    // The exposition, as the tenant's admin key reads it.
    let url = format!("{}/api/v1/metrics/prometheus", t.url);
    let start = Instant::now();
    let text = loop {
        let r = t
            .client
            .get(&url)
            .bearer_auth("statsd-admin")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain; version=0.0.4")
        );
        let text = r.text().await.unwrap();
        if text.contains("shop_checkout_count 100")
            && text.contains("shop_orders_total{env=\"prod\"} 6")
        {
            break text;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        text.contains("# TYPE shop_orders_total counter\n"),
        "{text}"
    );
    assert!(
        text.contains("# TYPE shop_queue gauge\nshop_queue 7\n"),
        "{text}"
    );
    assert!(text.contains("# TYPE shop_checkout summary\n"), "{text}");
    let r = t.client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401, "no key, no series");

    // A real Prometheus scrapes it with the admin key.
    let http = t.url.trim_start_matches("http://").to_string();
    let scrape = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: logway\n    metrics_path: /api/v1/metrics/prometheus\n    authorization:\n      credentials: statsd-admin\n    static_configs:\n      - targets: ['{http}']\n"
    );
    let (_prometheus, port) = start_prometheus(&dir.path().join("prometheus"), &scrape, &[]).await;
    wait_shop_series(
        port,
        "shop_orders_total{env=\"prod\",job=\"logway\"}",
        "shop_checkout_count",
        "shop_queue",
    )
    .await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_shots_from_node_sends_counters_gauges_timings_and_histograms() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestGateway::start(config(dir.path())).await;
    let port = t.gateway.statsd_addrs()[0].port().to_string();
    let mut node = std::process::Command::new("node");
    node.env("NODE_PATH", test_clients().join("node/node_modules"))
        .arg(client_script("statsd_node.js"))
        .args(["127.0.0.1", &port]);
    let out = run_client(node).await;
    assert_eq!(out["errors"], serde_json::json!([]), "{out}");
    assert_eq!(out["sent"], 12);
    wait_lines(&t, 12.0).await;
    let (t, hits) = points_after_restart(t, dir.path(), 4).await;
    let orders = point(&hits, "node.orders", Some("prod"));
    assert_eq!(
        (orders["kind"].as_str(), orders["value"].as_f64()),
        (Some("counter"), Some(10.0))
    );
    assert_eq!(orders["tags"]["app"], "shop", "hot-shots' global tags");
    assert_eq!(point(&hits, "node.queue", None)["value"], 12.0);
    let checkout = point(&hits, "node.checkout", None);
    assert_eq!(
        (checkout["count"].as_f64(), checkout["sum"].as_f64()),
        (Some(5.0), Some(150.0))
    );
    let size = point(&hits, "node.size", Some("prod"));
    assert_eq!(
        (size["kind"].as_str(), size["sum"].as_f64()),
        (Some("histogram"), Some(300.0))
    );
    t.stop().await;
}
