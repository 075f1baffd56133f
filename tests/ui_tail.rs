//! The live tail (`GET /api/v1/tail`, Server-Sent Events): matching
//! durable events per tenant, its bounded buffer and rate, and its end at
//! shutdown.

use std::time::Duration;

use crate::common::*;
use serde_json::{Value, json};

/// Reads an SSE stream until `done` says enough; returns the frames as
/// (event, data).
async fn read_sse(
    resp: &mut reqwest::Response,
    mut done: impl FnMut(&[(String, String)]) -> bool,
) -> Vec<(String, String)> {
    let mut text = String::new();
    let mut frames = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !done(&frames) {
        let chunk = tokio::time::timeout_at(deadline, resp.chunk())
            .await
            .unwrap_or_else(|_| panic!("stream gave only {frames:?}"))
            .unwrap()
            .expect("the stream stays open");
        text.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = text.find("\n\n") {
            let frame: String = text.drain(..end + 2).collect();
            let mut event = String::new();
            let mut data = String::new();
            for line in frame.lines() {
                if let Some(e) = line.strip_prefix("event: ") {
                    event = e.to_string();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push_str(d);
                }
            }
            if !event.is_empty() {
                frames.push((event, data));
            }
        }
    }
    frames
}

fn tail_events(frames: &[(String, String)]) -> Vec<Value> {
    frames
        .iter()
        .filter(|(e, _)| e == "events")
        .flat_map(|(_, d)| serde_json::from_str::<Vec<Value>>(d).unwrap())
        .collect()
}

/// Opens tenant `key`'s live tail of `q`.
async fn open_tail(t: &TestGateway, key: &str, q: &str) -> reqwest::Response {
    t.client
        .get(format!("{}/api/v1/tail", t.url))
        .bearer_auth(key)
        .query(&[("q", q)])
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_tail_pushes_matching_durable_events_and_counts_what_it_had_to_skip() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestGateway::start(two_tenant_config(
        dir.path(),
        "[ui]\ntail_buffer_bytes = 4096\n",
    ))
    .await;
    let (status, bad) = t
        .get_status("/api/v1/tail", A_ADMIN, &[("q", "level:(")])
        .await;
    assert_eq!(status, 400, "{bad}");

    let mut a = open_tail(&t, A_ADMIN, "level:error AND NOT service:noise").await;
    assert_eq!(a.status(), 200);
    assert!(
        a.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut b = open_tail(&t, B_ADMIN, "*").await;
    // Give the reader a moment to start at the durable end.
    tokio::time::sleep(Duration::from_millis(300)).await;
    t.post_lines(
        "/web",
        A_INGEST,
        &[
            json!({"level": "info", "message": "not this one"}),
            json!({"level": "error", "service": "noise", "message": "nor this"}),
            json!({"level": "error", "service": "checkout", "message": "tail me"}),
        ],
    )
    .await;
    let frames = read_sse(&mut a, |f| !tail_events(f).is_empty()).await;
    let events = tail_events(&frames);
    assert_eq!(events.len(), 1, "{frames:?}");
    assert_eq!(events[0]["message"], "tail me");
    assert_eq!(events[0]["tenant"], "a");
    // Tenant b's tail sees its own event, never a's.
    let r = t
        .post("/b/app", B_INGEST)
        .header("content-type", "application/json")
        .body(r#"{"level":"error","message":"b's own"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let frames = read_sse(&mut b, |f| !tail_events(f).is_empty()).await;
    let events = tail_events(&frames);
    assert!(
        events.iter().all(|e| e["tenant"] == "b"),
        "b sees only b: {events:?}"
    );
    assert_eq!(events.last().unwrap()["message"], "b's own");

    // 60 matching events of ~300 bytes each in one batch: the 4 KiB buffer
    // takes some, the rest are counted as skipped, none is lost silently.
    let lines: Vec<Value> = (0..60)
        .map(|i| json!({"level": "error", "message": format!("burst {i} {}", "x".repeat(200))}))
        .collect();
    t.post_lines("/web", A_INGEST, &lines).await;
    let frames = read_sse(&mut a, |f| {
        let got = tail_events(f).len() as u64;
        let skipped = f
            .iter()
            .filter(|(e, _)| e == "skipped")
            .map(|(_, d)| {
                serde_json::from_str::<Value>(d).unwrap()["skipped"]
                    .as_u64()
                    .unwrap()
            })
            .max()
            .unwrap_or(0);
        got + skipped >= 60
    })
    .await;
    let got = tail_events(&frames).len();
    assert!(got > 0 && got < 60, "some fit, some did not: {got}");
    let skipped_total: u64 = frames
        .iter()
        .filter(|(e, _)| e == "skipped")
        .map(|(_, d)| {
            serde_json::from_str::<Value>(d).unwrap()["skipped"]
                .as_u64()
                .unwrap()
        })
        .max()
        .unwrap();
    assert_eq!(got as u64 + skipped_total, 60);
    drop(b);

    // Shutdown ends open tails first: the stream ends cleanly instead of
    // holding the HTTP server for its grace period (30 s).
    let stopping = tokio::spawn(t.stop());
    let end = loop {
        match tokio::time::timeout(Duration::from_secs(10), a.chunk()).await {
            Ok(Ok(Some(_))) => continue,
            other => break other,
        }
    };
    assert!(
        matches!(end, Ok(Ok(None))),
        "the tail's stream ends at shutdown: {end:?}"
    );
    stopping.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_tail_gets_at_most_its_rate_and_counts_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestGateway::start(two_tenant_config(
        dir.path(),
        "[ui]\ntail_max_events_per_sec = 10\n",
    ))
    .await;
    let mut everything = open_tail(&t, A_ADMIN, "").await;
    assert_eq!(everything.status(), 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let lines: Vec<Value> = (0..50)
        .map(|i| json!({"message": format!("fast {i}")}))
        .collect();
    t.post_lines("/web", A_INGEST, &lines).await;
    let frames = read_sse(&mut everything, |f| f.iter().any(|(e, _)| e == "skipped")).await;
    let got = tail_events(&frames);
    assert_eq!(got.len(), 10, "a second's worth: {frames:?}");
    assert_eq!(got[0]["message"], "fast 0", "the first ones, in order");
    let skipped: Value =
        serde_json::from_str(&frames.iter().find(|(e, _)| e == "skipped").unwrap().1).unwrap();
    assert_eq!(skipped["skipped"], 40);
    drop(everything);
    t.stop().await;
}
