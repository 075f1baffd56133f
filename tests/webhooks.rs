//! Event webhooks (`tenants[].routes[].webhook`): an event-class route's
//! events are pushed to an HTTP receiver once durable, in order, at most
//! `max_events` a request; a receiver that is down gets them when it is
//! back; a receiver that never answers is given up after
//! `give_up_after` (counted) without holding the others for longer; a
//! restart sends nothing twice (the cursor is durable); logs are not
//! pushed.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::alerts::Receiver;
use crate::common::*;

fn config(dir: &std::path::Path, port: u16, closed: u16) -> logway::Config {
    config_with(
        dir,
        &format!(
            r#"
[[tenants]]
name = "shop"
ingest_keys = ["shop-ingest"]
admin_keys = ["shop-admin"]
routes = [
  {{ path = "/pay", type = "payments", class = "event", webhook = {{ url = "http://127.0.0.1:{port}/hook", max_events = 2 }} }},
  {{ path = "/refunds", type = "refunds", class = "event", webhook = {{ url = "http://127.0.0.1:{closed}/hook", give_up_after = "1s" }} }},
  {{ path = "/logs", type = "shop_logs" }},
]
"#
        ),
    )
}

async fn post(t: &TestGateway, path: &str, line: &str) {
    let r = t
        .post(path, "shop-ingest")
        .header("content-type", "text/plain")
        .body(line.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{path}");
}

/// The messages of every event the receiver got, in order, once there are
/// `n`; checks each request's shape.
async fn pushed(receiver: &Receiver, n: usize) -> Vec<String> {
    let start = Instant::now();
    loop {
        let bodies = receiver.bodies();
        let mut messages = Vec::new();
        for b in &bodies {
            assert_eq!(b["tenant"], "shop", "{b}");
            assert_eq!(b["type"], "payments", "{b}");
            let events = b["events"].as_array().unwrap();
            assert!(!events.is_empty() && events.len() <= 2, "max_events: {b}");
            for e in events {
                assert!(e["id"].as_str().is_some_and(|id| !id.is_empty()), "{e}");
                messages.push(e["message"].as_str().unwrap().to_string());
            }
        }
        if messages.len() >= n {
            return messages;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{} of {n} events pushed: {bodies:?}",
            messages.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_routes_push_their_events_to_a_webhook_once_durable() {
    let dir = tempfile::tempdir().unwrap();
    let (port, closed) = (free_port(), free_port());
    let t = TestGateway::start(config(dir.path(), port, closed)).await;

    // The receiver is down: the events are acknowledged all the same.
    for i in 1..=3 {
        post(&t, "/pay", &format!("payment {i} captured")).await;
    }
    post(&t, "/refunds", "refund 1 issued").await;
    post(&t, "/logs", "a log line").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let receiver = Receiver::start(port).await;
    let got = pushed(&receiver, 3).await;
    assert_eq!(
        got,
        [
            "payment 1 captured",
            "payment 2 captured",
            "payment 3 captured"
        ]
    );

    // The refund's receiver never answers: given up after 1 s.
    let start = Instant::now();
    loop {
        let m = t.metrics().await;
        let abandoned = metric_sum(
            &m,
            "logway_event_webhook_events_total{tenant=\"shop\",route=\"/refunds\",outcome=\"abandoned\"}",
        );
        let delivered = metric_sum(
            &m,
            "logway_event_webhook_events_total{tenant=\"shop\",route=\"/pay\",outcome=\"delivered\"}",
        );
        if abandoned == 1.0 && delivered == 3.0 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{m}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Pushed after the give-up, so nothing waits on the refund any more.
    post(&t, "/pay", "payment 4 captured").await;
    assert_eq!(pushed(&receiver, 4).await.len(), 4);

    // A restart sends nothing twice.
    t.stop().await;
    let t = TestGateway::start(config(dir.path(), port, closed)).await;
    post(&t, "/pay", "payment 5 captured").await;
    let got = pushed(&receiver, 5).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        receiver
            .bodies()
            .iter()
            .map(|b| b["events"].as_array().unwrap().len())
            .sum::<usize>(),
        5
    );
    assert_eq!(got.last().map(String::as_str), Some("payment 5 captured"));
    let body: Value = t
        .search_until("shop-admin", &[("q", "type:refunds")], 1)
        .await;
    assert_eq!(body["total"], 1, "the abandoned event stays stored: {body}");
    t.stop().await;
}
