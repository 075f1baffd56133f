//! Rate limits at the edge, through the real server: a noisy tenant is
//! limited without hurting another, 429 carries an exact Retry-After, a
//! request over the burst is 413, and public keys are limited per client IP.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::Value;

const C_INGEST: &str = "c-public-key-0001";

fn config(dir: &std::path::Path) -> logway::Config {
    let text = format!(
        r#"
[server]
http_addr = "127.0.0.1:0"
[storage]
data_dir = "{}"
[[tenants]]
name = "a"
ingest_keys = ["{A_INGEST}"]
admin_keys = ["{A_ADMIN}"]
rate_limit = {{ events_per_sec = 2000, events_burst = 2000 }}
routes = [{{ path = "/a/slow", type = "slow_logs", rate_limit = {{ events_per_sec = 10, events_burst = 100 }} }}]
[[tenants]]
name = "b"
ingest_keys = ["{B_INGEST}"]
admin_keys = ["{B_ADMIN}"]
[[tenants]]
name = "c"
ingest_keys = ["{C_INGEST}"]
client_rate_limit = {{ events_per_sec = 100, events_burst = 100 }}
"#,
        dir.display()
    );
    logway::Config::from_toml(&text).unwrap()
}

fn batch(n: usize) -> String {
    (0..n)
        .map(|i| format!("{{\"message\":\"event {i}\"}}\n"))
        .collect()
}

/// Posts `per_request`-event batches for `duration`; returns (ok, limited, accepted events).
async fn flood(
    url: String,
    key: &'static str,
    per_request: usize,
    duration: Duration,
) -> (u32, u32, usize) {
    let client = reqwest::Client::new();
    let body = batch(per_request);
    let (mut ok, mut limited, mut events) = (0, 0, 0);
    let start = Instant::now();
    while start.elapsed() < duration {
        let r = client
            .post(format!("{url}/v1/logs/flood"))
            .bearer_auth(key)
            .header("content-type", "application/x-ndjson")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        match r.status().as_u16() {
            200 => {
                ok += 1;
                events += per_request;
            }
            429 => {
                assert!(
                    r.headers().get("retry-after").is_some(),
                    "429 without Retry-After"
                );
                let body: Value = r.json().await.unwrap();
                assert_eq!(body["error"]["code"], "rate_limited");
                assert_eq!(body["error"]["limit"], "tenant_events");
                limited += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            s => panic!("unexpected status {s}"),
        }
    }
    (ok, limited, events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_noisy_tenant_is_limited_and_its_neighbour_keeps_its_success_rate() {
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(config(dir.path())).await;
    let secs = Duration::from_secs(2);
    let start = Instant::now();
    let mut noisy = Vec::new();
    for _ in 0..4 {
        noisy.push(tokio::spawn(flood(gw.url.clone(), A_INGEST, 200, secs)));
    }
    let mut quiet = Vec::new();
    for _ in 0..2 {
        quiet.push(tokio::spawn(flood(gw.url.clone(), B_INGEST, 200, secs)));
    }
    let (mut a_ok, mut a_limited, mut a_events) = (0, 0, 0);
    for t in noisy {
        let (ok, limited, events) = t.await.unwrap();
        a_ok += ok;
        a_limited += limited;
        a_events += events;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let (mut b_ok, mut b_limited) = (0, 0);
    for t in quiet {
        let (ok, limited, _) = t.await.unwrap();
        b_ok += ok;
        b_limited += limited;
    }
    assert!(a_limited > 0, "the noisy tenant was never limited");
    assert!(a_ok > 0, "the noisy tenant still gets its share");
    // At most the burst plus the rate over the test, one batch of slack.
    let allowed = 2000.0 + 2000.0 * elapsed + 200.0;
    assert!(
        (a_events as f64) <= allowed,
        "{a_events} events accepted, limit allows {allowed:.0}"
    );
    assert!(b_ok > 10, "the quiet tenant sent {b_ok} requests");
    assert_eq!(b_limited, 0, "the quiet tenant was never limited");
    let metrics = gw.metrics().await;
    assert!(
        metrics.contains(
            r#"logway_requests_limited_total{tenant="a",type="flood",reason="tenant_events"}"#
        ),
        "{metrics}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn retry_after_says_when_the_request_would_fit_and_over_burst_is_413() {
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(config(dir.path())).await;
    let post = |n: usize| {
        gw.post("/a/slow", A_INGEST)
            .header("content-type", "application/x-ndjson")
            .body(batch(n))
            .send()
    };
    // The route allows 10 events/s with a burst of 100.
    assert_eq!(post(100).await.unwrap().status(), 200);
    let r = post(50).await.unwrap();
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (4..=5).contains(&retry),
        "50 events at 10/s fit in 5 s, got Retry-After {retry}"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["limit"], "route_events");
    // 101 events can never fit a burst of 100: 413, not 429.
    let r = post(101).await.unwrap();
    assert_eq!(r.status(), 413);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"].as_str().unwrap().contains("burst"),
        "{body}"
    );
    // The tenant-wide limit (2000) also refuses a single 2500-event batch.
    let r = gw
        .post("/v1/logs/big", A_INGEST)
        .body(batch(2500))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    gw.stop().await;
}

#[tokio::test]
async fn public_keys_are_limited_per_client_ip() {
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(config(dir.path())).await;
    let from = |ip: &str| {
        reqwest::Client::builder()
            .local_address(ip.parse::<IpAddr>().unwrap())
            .build()
            .unwrap()
    };
    let (first, second) = (from("127.0.0.1"), from("127.0.0.2"));
    let send = |client: &reqwest::Client, n: usize| {
        client
            .post(format!("{}/v1/logs/web", gw.url))
            .bearer_auth(C_INGEST)
            .body(batch(n))
            .send()
    };
    assert_eq!(send(&first, 100).await.unwrap().status(), 200);
    let r = send(&first, 100).await.unwrap();
    assert_eq!(r.status(), 429);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["limit"], "client_events");
    // Another client of the same tenant has its own allowance.
    assert_eq!(send(&second, 100).await.unwrap().status(), 200);
    gw.stop().await;
}
