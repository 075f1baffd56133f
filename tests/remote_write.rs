//! Prometheus remote-write out (`[[metrics.remote_write]]`): a tenant's
//! StatsD series reach a real Prometheus started with its remote-write
//! receiver, and are read back through Prometheus's own query API with
//! the values a scrape gives. A receiver that rejects the requests (4xx)
//! and one that is not there are counted apart, and do not hold up the one
//! that works.

use std::time::{Duration, Instant};

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_series_reach_prometheus_by_remote_write() {
    let dir = tempfile::tempdir().unwrap();
    let (_prometheus, port) = start_prometheus(
        &dir.path().join("prometheus"),
        "global:\n  scrape_interval: 1m\n",
        &["--web.enable-remote-write-receiver"],
    )
    .await;
    let closed = free_port();
    let config = config_with(
        &dir.path().join("gw"),
        &format!(
            r#"{ACME_STATSD}
[[metrics.remote_write]]
url = "http://127.0.0.1:{port}/api/v1/write"
tenant = "acme"
interval = "300ms"
headers = {{ "X-Scope-OrgID" = "acme" }}
labels = {{ source = "logway", env = "default" }}

# Prometheus answers 404 here: rejected, not tried again.
[[metrics.remote_write]]
url = "http://127.0.0.1:{port}/api/v1/no-such-receiver"
tenant = "acme"
interval = "300ms"

# Nothing listens here: unavailable until the next send.
[[metrics.remote_write]]
url = "http://127.0.0.1:{closed}/api/v1/write"
tenant = "acme"
interval = "300ms"
"#
        ),
    );
    let t = TestGateway::start(config).await;
    let addr = t.gateway.statsd_addrs()[0];
    let udp = send_shop_series(addr);
    wait_shop_series(
        port,
        "shop_orders_total{env=\"prod\",source=\"logway\"}",
        "shop_checkout_count{source=\"logway\"}",
        "shop_queue{env=\"default\"}",
    )
    .await;

    // More samples later: the counter goes on from where it was.
    udp.send_to(b"shop.orders:4|c|#env:prod", addr).unwrap();
    let start = Instant::now();
    while prometheus_value(port, "shop_orders_total{env=\"prod\"}").await != Some(10.0) {
        assert!(start.elapsed() < Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let m = t.metrics().await;
    assert!(
        metric_sum(&m, "logway_remote_write_samples_total{tenant=\"acme\"}") >= 6.0,
        "{m}"
    );
    for reason in ["rejected", "unavailable"] {
        let failures =
            format!("logway_remote_write_failures_total{{tenant=\"acme\",reason=\"{reason}\"}}");
        assert!(metric_sum(&m, &failures) >= 1.0, "{reason}: {m}");
    }
    t.stop().await;
}
