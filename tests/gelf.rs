//! GELF: graypy over UDP (zlib, chunked), TCP (NUL frames) and HTTP
//! (`/gelf`, a zlib body under `Content-Encoding: gzip,deflate`); UDP's
//! losses counted.

use serde_json::Value;

use crate::common::*;

fn config(dir: &std::path::Path) -> logway::Config {
    config_with(
        dir,
        r#"
[[tenants]]
name = "acme"
ingest_keys = ["gelf-ingest"]
admin_keys = ["gelf-admin"]

[[gelf.listeners]]
addr = "127.0.0.1:0"
protocol = "udp"
tenant = "acme"
type = "gelf_udp"
unauthenticated = true
chunk_timeout = "500ms"

[[gelf.listeners]]
addr = "127.0.0.1:0"
protocol = "tcp"
tenant = "acme"
type = "gelf_tcp"
unauthenticated = true
"#,
    )
}

fn find<'a>(body: &'a Value, prefix: &str) -> &'a Value {
    body["hits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["message"].as_str().is_some_and(|m| m.starts_with(prefix)))
        .unwrap_or_else(|| panic!("no `{prefix}` in {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graypy_over_udp_tcp_and_http() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestGateway::start(config(dir.path())).await;
    let addrs = t.gateway.gelf_addrs().to_vec();
    let http_port = t.url.rsplit(':').next().unwrap().to_string();
    for (mode, port, log_type) in [
        ("udp", addrs[0].port().to_string(), "gelf_udp"),
        ("tcp", addrs[1].port().to_string(), "gelf_tcp"),
        ("http", http_port, "gelf"),
    ] {
        let out = run_client(python_client(
            "gelf_py.py",
            &[mode, "127.0.0.1", &port, "gelf-ingest"],
        ))
        .await;
        let big_len = out["big_len"].as_u64().unwrap() as usize;
        let q = format!("type:{log_type}");
        let body = t
            .search_until("gelf-admin", &[("q", &q), ("from", "now-1h")], 2)
            .await;
        let full = find(&body, &format!("gelf-{mode} disk almost full"));
        assert_eq!(full["level"], "warning", "{mode}: {full}");
        assert_eq!(full["fields"]["user"], "ana");
        assert_eq!(full["fields"]["order_id"], 42);
        assert_eq!(full["fields"]["facility"], format!("gelf.{mode}"));
        assert!(full["host"].is_string(), "{full}");
        let big = find(&body, &format!("gelf-{mode} big payload"));
        assert_eq!(big["level"], "err");
        assert_eq!(
            big["message"].as_str().unwrap().len(),
            format!("gelf-{mode} big payload ").len() + big_len,
            "{mode}: the chunked message whole"
        );
    }
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_losses_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestGateway::start(config(dir.path())).await;
    let udp = t.gateway.gelf_addrs()[0];
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let chunk = |id: u8, seq: u8, count: u8, data: &[u8]| {
        let mut c = vec![0x1e, 0x0f, id, 1, 2, 3, 4, 5, 6, 7, seq, count];
        c.extend_from_slice(data);
        c
    };
    // One chunk of two: never completed.
    socket
        .send_to(&chunk(1, 0, 2, b"{\"short_message\":"), udp)
        .unwrap();
    // A count over 128.
    socket.send_to(&chunk(2, 0, 200, b"{}"), udp).unwrap();
    // A message in two chunks, out of order, and a plain one that is not
    // JSON (kept as a rejected event).
    socket
        .send_to(&chunk(3, 1, 2, b"\"two chunks\"}"), udp)
        .unwrap();
    socket
        .send_to(&chunk(3, 0, 2, b"{\"short_message\":"), udp)
        .unwrap();
    socket.send_to(b"not gelf", udp).unwrap();
    t.search_until(
        "gelf-admin",
        &[("q", "\"two chunks\""), ("from", "now-1h")],
        1,
    )
    .await;
    t.search_until(
        "gelf-admin",
        &[
            ("q", "type:gelf_udp AND outcome:rejected"),
            ("from", "now-1h"),
        ],
        1,
    )
    .await;
    let dropped = |reason: &str| {
        format!("logway_gelf_dropped_total{{listener=\"{udp}\",reason=\"{reason}\"}}")
    };
    let mut metrics = String::new();
    for _ in 0..50 {
        metrics = t.metrics().await;
        if metric_sum(&metrics, &dropped("incomplete")) >= 1.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        metric_sum(&metrics, &dropped("incomplete")),
        1.0,
        "{metrics}"
    );
    assert_eq!(metric_sum(&metrics, &dropped("bad_chunk")), 1.0);
    t.stop().await;
}
