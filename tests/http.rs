//! HTTP-level behaviour of native ingest: request errors and their
//! statuses, keys and tenant isolation, CORS for browsers, connection
//! bounds and timeouts, HTTP/2; through the real server on 127.0.0.1:0.

use std::io::{Read, Write};
use std::time::Duration;

use crate::common::*;
use crate::ingest::{gateway, read_answer};

#[tokio::test]
async fn request_level_errors_have_specific_statuses_and_json_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(two_tenant_config(
        dir.path(),
        "[limits]\nmax_body_bytes = 100000\nmax_decompressed_bytes = 1000000",
    ))
    .await;
    let bomb = gzip(&vec![b'a'; 50 * 1024 * 1024]);
    let zbomb = zstd::encode_all(&vec![b'a'; 50 * 1024 * 1024][..], 19).unwrap();
    let url = |p: &str| format!("{}{p}", gw.url);
    let c = &gw.client;
    let cases: Vec<(&str, reqwest::RequestBuilder, u16, &str)> = vec![
        ("no key", c.post(url("/web")).body("x"), 401, "no_key"),
        (
            "unknown key",
            c.post(url("/web")).bearer_auth("not-a-real-key").body("x"),
            401,
            "unknown_key",
        ),
        (
            "other tenant's route",
            c.post(url("/b/app")).bearer_auth(A_INGEST).body("x"),
            403,
            "forbidden",
        ),
        (
            "unknown path",
            c.post(url("/nowhere")).bearer_auth(A_INGEST).body("x"),
            404,
            "not_found",
        ),
        (
            "bad type name",
            c.post(url("/v1/logs/Bad%20Type"))
                .bearer_auth(A_INGEST)
                .body("x"),
            400,
            "bad_request",
        ),
        (
            "too large",
            c.post(url("/web"))
                .bearer_auth(A_INGEST)
                .body(vec![b'a'; 200_000]),
            413,
            "payload_too_large",
        ),
        (
            "gzip bomb",
            c.post(url("/web"))
                .bearer_auth(A_INGEST)
                .header("content-encoding", "gzip")
                .body(bomb),
            413,
            "payload_too_large",
        ),
        (
            "zstd bomb",
            c.post(url("/web"))
                .bearer_auth(A_INGEST)
                .header("content-encoding", "zstd")
                .body(zbomb),
            413,
            "payload_too_large",
        ),
        (
            "corrupt gzip",
            c.post(url("/web"))
                .bearer_auth(A_INGEST)
                .header("content-encoding", "gzip")
                .body(b"\x1f\x8b\x08\x00garbage".to_vec()),
            400,
            "bad_request",
        ),
        (
            "unknown encoding",
            c.post(url("/web"))
                .bearer_auth(A_INGEST)
                .header("content-encoding", "br")
                .body("x"),
            415,
            "unsupported_media_type",
        ),
        (
            "unknown type",
            c.post(url("/web"))
                .bearer_auth(A_INGEST)
                .header("content-type", "application/xml")
                .body("<x/>"),
            415,
            "unsupported_media_type",
        ),
        (
            "empty body",
            c.post(url("/web")).bearer_auth(A_INGEST).body(""),
            400,
            "bad_request",
        ),
        (
            "wrong method",
            c.get(url("/web")).bearer_auth(A_INGEST),
            405,
            "method_not_allowed",
        ),
        (
            "ingest key searches",
            c.get(url("/api/v1/search")).bearer_auth(A_INGEST),
            403,
            "forbidden",
        ),
        (
            "search without key",
            c.get(url("/api/v1/search")),
            401,
            "no_key",
        ),
        (
            "limit too large",
            c.get(url("/api/v1/search?limit=999999"))
                .bearer_auth(A_ADMIN),
            400,
            "bad_request",
        ),
        (
            "bad time",
            c.get(url("/api/v1/search?from=yesterday"))
                .bearer_auth(A_ADMIN),
            400,
            "bad_request",
        ),
    ];
    for (name, req, status, code) in cases {
        let r = req.send().await.unwrap();
        assert_eq!(
            r.headers().get("content-type").unwrap(),
            "application/json",
            "{name}"
        );
        let (got, body) = read_answer(r).await;
        assert_eq!(got, status, "{name}: {body}");
        assert_eq!(body["error"]["code"], code, "{name}");
        assert!(
            body["error"]["message"].as_str().unwrap().len() > 5,
            "{name}"
        );
    }
    // Nothing above was stored.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, body) = gw.search_raw(A_ADMIN, &[("q", "")]).await;
    assert_eq!(body["total"], 0, "{body}");
    gw.stop().await;
}

#[tokio::test]
async fn keys_arrive_by_header_query_or_bearer_and_tenants_are_isolated() {
    let (_dir, gw) = gateway().await;
    let c = &gw.client;
    let r = c
        .post(format!("{}/web?key={A_INGEST}", gw.url))
        .body("via query")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .post(format!("{}/web", gw.url))
        .header("x-logway-key", A_INGEST)
        .body("via header")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = gw
        .post("/b/app", B_INGEST)
        .body("secret of b")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    gw.search_until(A_ADMIN, &[("q", "via")], 2).await;
    gw.search_until(B_ADMIN, &[("q", "secret")], 1).await;
    // Each tenant sees only its own events, even when asking for the other's type.
    let (_, body) = gw.search_raw(A_ADMIN, &[("q", "secret")]).await;
    assert_eq!(body["total"], 0);
    let (_, body) = gw
        .search_raw(A_ADMIN, &[("q", ""), ("type", "app_logs")])
        .await;
    assert_eq!(body["total"], 0);
    let (_, body) = gw.search_raw(B_ADMIN, &[("q", "via")]).await;
    assert_eq!(body["total"], 0);
    assert_eq!(
        gw.histogram_total(B_ADMIN, "via").await,
        0,
        "histogram is tenant-scoped too"
    );
    assert_eq!(gw.histogram_total(A_ADMIN, "via").await, 2);
    gw.stop().await;
}

#[tokio::test]
async fn cors_preflight_and_beacon_style_posts() {
    let (_dir, gw) = gateway().await;
    let c = &gw.client;
    let r = c
        .request(reqwest::Method::OPTIONS, format!("{}/web", gw.url))
        .header("origin", "https://app.a.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://app.a.example"
    );
    assert!(
        r.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    let r = c
        .request(reqwest::Method::OPTIONS, format!("{}/web", gw.url))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // What navigator.sendBeacon sends: text/plain NDJSON, key in the query.
    let r = c
        .post(format!("{}/web?key={A_INGEST}", gw.url))
        .header("origin", "https://app.a.example")
        .header("content-type", "text/plain;charset=UTF-8")
        .body("{\"message\":\"beacon one\",\"level\":\"info\"}\n{\"message\":\"beacon two\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://app.a.example"
    );
    let body = gw.search_until(A_ADMIN, &[("q", "beacon")], 2).await;
    assert!(
        body["hits"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["level"] == "info"),
        "JSON lines in text/plain are parsed"
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_half_sent_header_is_closed_after_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = two_tenant_config(dir.path(), "");
    config.server.header_read_timeout = Duration::from_secs(1);
    let gw = TestGateway::start(config).await;
    let addr = gw.gateway.http_addr();
    let result = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(b"POST /web HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let start = std::time::Instant::now();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        (start.elapsed(), buf)
    })
    .await
    .unwrap();
    assert!(
        result.0 < Duration::from_secs(5),
        "closed after {:?}",
        result.0
    );
    gw.stop().await;
}

#[tokio::test]
async fn the_connection_cap_holds_new_connections_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = two_tenant_config(dir.path(), "");
    config.server.max_connections = 1;
    let gw = TestGateway::start(config).await;
    let addr = gw.gateway.http_addr();
    // One idle keep-alive connection takes the only slot.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut held = tokio::net::TcpStream::connect(addr).await.unwrap();
    held.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 512];
    let n = held.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let blocked = client.get(format!("{}/healthz", gw.url)).send().await;
    assert!(
        blocked.is_err(),
        "a second connection is not served while the cap is reached"
    );
    drop(held);
    let ok = client.get(format!("{}/healthz", gw.url)).send().await;
    let ok = match ok {
        Ok(r) => r,
        Err(_) => {
            tokio::time::sleep(Duration::from_millis(200)).await;
            client
                .get(format!("{}/healthz", gw.url))
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(ok.status(), 200);
    gw.stop().await;
}

#[tokio::test]
async fn http2_with_prior_knowledge_ingests_and_searches() {
    let (_dir, gw) = gateway().await;
    let url = gw.url.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("curl")
            .args([
                "-sS",
                "--http2-prior-knowledge",
                "-w",
                "\n%{http_version}",
                "-H",
            ])
            .arg(format!("authorization: Bearer {A_INGEST}"))
            .args([
                "--data-binary",
                "over h2c",
                "-H",
                "content-type: text/plain",
            ])
            .arg(format!("{url}/web"))
            .output()
            .expect("curl is installed")
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("\"accepted\":1") && text.trim_end().ends_with('2'),
        "{text}"
    );
    gw.search_until(A_ADMIN, &[("q", "h2c")], 1).await;
    gw.stop().await;
}
