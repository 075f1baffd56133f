//! A real Prometheus (Debian's `prometheus`) for the metrics tests: it
//! scrapes the tenants' exposition or receives remote-write, and is read
//! through its own query API.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::{Killed, free_port, wait_port};

/// Prometheus with `config` (its YAML) and `args`, listening on the
/// returned port once this returns; killed when the handle drops.
pub async fn start_prometheus(dir: &Path, config: &str, args: &[&str]) -> (Killed, u16) {
    let port = free_port();
    std::fs::create_dir_all(dir).unwrap();
    let yml = dir.join("prometheus.yml");
    std::fs::write(&yml, config).unwrap();
    let child = Killed(
        std::process::Command::new("prometheus")
            .arg(format!("--config.file={}", yml.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("prometheus (Debian package) is installed"),
    );
    wait_port(port).await;
    // The API answers once the TSDB is open.
    for _ in 0..200 {
        if let Ok(r) = reqwest::get(format!("http://127.0.0.1:{port}/-/ready")).await
            && r.status() == 200
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (child, port)
}

/// Prometheus's instant query `q`: the value of its only result, once it
/// has one.
pub async fn prometheus_value(port: u16, q: &str) -> Option<f64> {
    let r = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/api/v1/query"))
        .query(&[("query", q)])
        .send()
        .await
        .ok()?;
    let body: Value = r.json().await.ok()?;
    let result = body["data"]["result"].as_array()?;
    (result.len() == 1).then(|| result[0]["value"][1].as_str()?.parse().ok())?
}

/// Tenant `acme` (keys `statsd-ingest`, `statsd-admin`) and a StatsD
/// listener of it ending an interval every 200 ms: the Prometheus tests'
/// config, after which they add their own sections.
pub const ACME_STATSD: &str = r#"
[[tenants]]
name = "acme"
ingest_keys = ["statsd-ingest"]
admin_keys = ["statsd-admin"]

[[statsd]]
addr = "127.0.0.1:0"
tenant = "acme"
unauthenticated = true
flush_interval = "200ms"
"#;

/// The shop series the Prometheus tests send over UDP to a StatsD
/// listener: `shop.orders` 6 (env:prod), `shop.queue` 7, and
/// `shop.checkout` timings 1..=100 ms.
pub fn send_shop_series(addr: std::net::SocketAddr) -> std::net::UdpSocket {
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(
        b"shop.orders:3|c|#env:prod\nshop.orders:3|c|#env:prod\nshop.queue:7|g",
        addr,
    )
    .unwrap();
    let timers: String = (1..=100)
        .map(|ms| format!("shop.checkout:{ms}|ms\n"))
        .collect();
    udp.send_to(timers.as_bytes(), addr).unwrap();
    udp
}

/// Waits until Prometheus on `port` has the shop series of
/// [`send_shop_series`], read with the PromQL selectors given (`orders`,
/// `count`, `queue`), the timer's p99 within the sketch's error.
pub async fn wait_shop_series(port: u16, orders: &str, count: &str, queue: &str) {
    let start = std::time::Instant::now();
    loop {
        let o = prometheus_value(port, orders).await;
        let c = prometheus_value(port, count).await;
        let p99 = prometheus_value(port, "shop_checkout{quantile=\"0.99\"}").await;
        let q = prometheus_value(port, queue).await;
        if o == Some(6.0) && c == Some(100.0) && q == Some(7.0) {
            let p99 = p99.expect("a p99");
            assert!((p99 - 99.0).abs() <= 1.5, "p99 {p99}");
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "Prometheus has {o:?} {c:?} {q:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A tenant's Prometheus exposition, read with its admin key.
pub async fn exposition(t: &super::TestGateway, admin_key: &str) -> String {
    t.client
        .get(format!("{}/api/v1/metrics/prometheus", t.url))
        .bearer_auth(admin_key)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}
