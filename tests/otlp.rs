//! The gateway's own traces go to an OTLP/HTTP collector when the standard
//! OTEL_EXPORTER_OTLP_ENDPOINT variable is set: a real exporter talking to
//! a real HTTP receiver started here.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use axum::body::Bytes;
use axum::routing::post;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_spans_are_exported_over_otlp_http() {
    // A minimal OTLP/HTTP collector: it records what arrives at /v1/traces.
    let received: Arc<Mutex<Vec<Bytes>>> = Arc::default();
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        post(move |body: Bytes| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push(body);
                (
                    [("content-type", "application/x-protobuf")],
                    Vec::<u8>::new(),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("logway.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nhttp_addr = \"127.0.0.1:0\"\n[storage]\ndata_dir = \"{}\"\n[[tenants]]\nname = \"traced-tenant\"\ningest_keys = [\"{A_INGEST}\"]\nroutes = [{{ path = \"/web\", type = \"web_logs\" }}]\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let mut server = spawn_server_with(
        &config,
        "info",
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", &collector)],
    );
    let client = reqwest::Client::new();
    wait_ready(&client, &server.url).await;
    let r = client
        .post(format!("{}/web", server.url))
        .bearer_auth(A_INGEST)
        .body("one\ntwo\nthree")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // SIGTERM flushes the batch exporter before exit.
    unsafe { libc::kill(server.child.id() as i32, libc::SIGTERM) };
    assert!(server.child.wait().unwrap().success());
    let mut bodies = Vec::new();
    for _ in 0..100 {
        bodies = received.lock().unwrap().clone();
        if !bodies.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!bodies.is_empty(), "the collector received no traces");
    let all: Vec<u8> = bodies.iter().flat_map(|b| b.iter().copied()).collect();
    let has = |needle: &[u8]| all.windows(needle.len()).any(|w| w == needle);
    assert!(has(b"ingest"), "an `ingest` span");
    assert!(
        has(b"traced-tenant") && has(b"web_logs"),
        "with tenant and log type"
    );
    assert!(has(b"logway"), "service name");
    assert!(!has(A_INGEST.as_bytes()), "never the key");
}
