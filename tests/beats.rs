//! Beats (Lumberjack v2) listeners: pylogbeat and python-logstash-async's
//! Beats transport (clients in `tests/clients/`), and a raw client for
//! what they cannot do on purpose: a lost ack, kill -9, bad frames.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::*;

fn beats_config(dir: &Path, listener: &str) -> logway::Config {
    let text = format!(
        r#"
[[beats]]
addr = "127.0.0.1:0"
tenant = "a"
type = "beats"
unauthenticated = true
{listener}

[[tenants]]
name = "a"
ingest_keys = ["{A_INGEST}"]
admin_keys = ["{A_ADMIN}"]
"#
    );
    config_with(&dir.join("data"), &text)
}

async fn python(mode: &str, addr: SocketAddr) -> Value {
    let (ip, port) = (addr.ip().to_string(), addr.port().to_string());
    run_client(python_client("beats_py.py", &[mode, &ip, &port])).await
}

/// A window as a Beats client writes it: `2W`, then `J` frames, in one
/// zlib `C` frame when `compress`.
fn window(events: &[(u32, String)], compress: bool) -> Vec<u8> {
    let mut frames = Vec::new();
    for (seq, payload) in events {
        frames.extend_from_slice(b"2J");
        frames.extend_from_slice(&seq.to_be_bytes());
        frames.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        frames.extend_from_slice(payload.as_bytes());
    }
    let mut out = b"2W".to_vec();
    out.extend_from_slice(&(events.len() as u32).to_be_bytes());
    if compress {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(3));
        z.write_all(&frames).unwrap();
        let z = z.finish().unwrap();
        out.extend_from_slice(b"2C");
        out.extend_from_slice(&(z.len() as u32).to_be_bytes());
        out.extend_from_slice(&z);
    } else {
        out.extend(frames);
    }
    out
}

/// Reads acks until one for `seq` (keepalive acks of 0 come first when
/// the gateway waits); `None` if the connection ends first.
fn read_ack(stream: &mut TcpStream, seq: u32) -> Option<u32> {
    loop {
        let mut ack = [0u8; 6];
        stream.read_exact(&mut ack).ok()?;
        assert_eq!(&ack[..2], b"2A");
        let got = u32::from_be_bytes([ack[2], ack[3], ack[4], ack[5]]);
        if got == seq {
            return Some(got);
        }
        assert_eq!(got, 0, "only keepalive acks before the window's");
    }
}

fn event(id: &str, message: &str) -> String {
    json!({"@metadata": {"beat": "filebeat", "_id": id}, "message": message, "log": {"level": "warn"}})
        .to_string()
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

/// pylogbeat waits for the exact ack of its last sequence number, which
/// counts on across windows; the events are stored with Filebeat's fields
/// mapped, the type from `fields.type`, the id from `@metadata._id`.
#[tokio::test]
async fn pylogbeat_windows_are_acked_once_durable() {
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(beats_config(dir.path(), "type_field = \"fields.type\"")).await;
    let addr = gw.gateway.beats_addrs()[0];
    let out = python("pylogbeat", addr).await;
    assert_eq!(out["sent"], 50);
    let body = gw
        .search_until(A_ADMIN, &[("q", "type:app"), ("limit", "100")], 50)
        .await;
    let e = body["hits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == "pb-7")
        .unwrap_or_else(|| panic!("pb-7 by its @metadata._id: {body}"));
    assert_eq!(e["message"], "GET /cart/7 200");
    assert_eq!(e["host"], "web-7");
    assert_eq!(e["level"], "info");
    assert_eq!(e["timestamp"], "2026-11-30T09:00:07.123Z");
    assert_eq!(e["fields"]["log"]["file"]["path"], "/var/log/app.log");
    assert_eq!(e["fields"]["tags"], json!(["beats", "test"]));
    assert_eq!(e["fields"]["agent"]["type"], "filebeat");
    assert!(e["fields"].get("@metadata").is_none());
    gw.stop().await;
}

#[tokio::test]
async fn python_logstash_async_sends_through_the_beats_transport() {
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(beats_config(dir.path(), "")).await;
    let out = python("logstash-async", gw.gateway.beats_addrs()[0]).await;
    assert_eq!(out["sent"], 3);
    let body = gw
        .search_until(A_ADMIN, &[("q", "type:beats AND invoice")], 3)
        .await;
    let late = body["hits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["message"] == "invoice 2 is late")
        .unwrap_or_else(|| panic!("{body}"));
    assert_eq!(late["level"], "warning");
    gw.stop().await;
}

/// A connection that dies before its ack: the client resends the window
/// on a new one and gets its ack; each event is stored once.
#[tokio::test]
async fn a_resend_after_a_lost_ack_stores_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(beats_config(dir.path(), "")).await;
    let addr = gw.gateway.beats_addrs()[0];
    let events: Vec<(u32, String)> = (1..=5)
        .map(|i| (i, event(&format!("lost-{i}"), &format!("resent {i}"))))
        .collect();
    let bytes = window(&events, true);
    {
        let mut s = connect(addr);
        s.write_all(&bytes).unwrap();
        s.shutdown(std::net::Shutdown::Both).unwrap();
    }
    gw.search_until(A_ADMIN, &[("q", "resent")], 5).await;
    let resend = bytes.clone();
    let acked = tokio::task::spawn_blocking(move || {
        let mut s = connect(addr);
        s.write_all(&resend).unwrap();
        read_ack(&mut s, 5)
    })
    .await
    .unwrap();
    assert_eq!(acked, Some(5));
    tokio::time::sleep(Duration::from_millis(500)).await;
    gw.search_until(A_ADMIN, &[("q", "resent")], 5).await;
    gw.stop().await;
}

/// Malformed frames close the connection without an ack and store
/// nothing of their window; a window whose JSON is bad is acked and kept
/// as rejected events.
#[tokio::test]
async fn bad_frames_close_the_connection_and_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(beats_config(dir.path(), "")).await;
    let addr = gw.gateway.beats_addrs()[0];
    let good = window(&[(1, event("g1", "half sent"))], false);
    let mut huge_window = b"2W".to_vec();
    huge_window.extend_from_slice(&10_000_000u32.to_be_bytes());
    // 80 MiB of zeros: past limits.max_decompressed_bytes (64 MiB).
    let bomb = {
        let payload = format!("{{\"message\":\"{}\"}}", "0".repeat(80 << 20));
        window(&[(1, payload)], true)
    };
    let mut unknown = b"2W\0\0\0\x012X".to_vec();
    unknown.extend_from_slice(&[0; 8]);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("a truncated window", good[..good.len() - 3].to_vec()),
        ("a window of 10 million", huge_window),
        ("a compressed frame past the limit", bomb),
        ("an unknown frame type", unknown),
        ("Lumberjack v1", b"1W\0\0\0\x01".to_vec()),
    ];
    for (what, bytes) in cases {
        let closed = tokio::task::spawn_blocking(move || {
            let mut s = connect(addr);
            let _ = s.write_all(&bytes);
            let _ = s.shutdown(std::net::Shutdown::Write);
            let mut rest = Vec::new();
            let _ = s.read_to_end(&mut rest);
            rest
        })
        .await
        .unwrap();
        assert!(closed.is_empty(), "{what}: no ack, got {closed:?}");
    }
    // Bad JSON in a well-formed window: acked, kept as rejected.
    let mixed = window(
        &[(1, "{not json".to_string()), (2, event("g2", "fine"))],
        true,
    );
    let acked = tokio::task::spawn_blocking(move || {
        let mut s = connect(addr);
        s.write_all(&mixed).unwrap();
        read_ack(&mut s, 2)
    })
    .await
    .unwrap();
    assert_eq!(acked, Some(2));
    let body = gw.search_until(A_ADMIN, &[("q", "type:beats")], 2).await;
    assert!(body.to_string().contains("{not json"), "{body}");
    gw.search_until(A_ADMIN, &[("q", "outcome:rejected")], 1)
        .await;
    gw.search_until(A_ADMIN, &[("q", "\"half sent\"")], 0).await;
    gw.stop().await;
}

/// kill -9 of the gateway while a client streams windows: every event it
/// got an ack for is searchable after the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_beats_stream_loses_no_acked_event() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("logway.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[server]
http_addr = "127.0.0.1:0"
[storage]
data_dir = "{data}"
[hot]
commit_interval = "200ms"
[search]
max_limit = 100000
[[beats]]
addr = "127.0.0.1:0"
tenant = "a"
type = "stream"
unauthenticated = true
[[tenants]]
name = "a"
ingest_keys = ["{A_INGEST}"]
admin_keys = ["{A_ADMIN}"]
"#,
            data = dir.path().join("data").display()
        ),
    )
    .unwrap();
    let mut server = spawn_server(&config);
    let client = reqwest::Client::new();
    wait_ready(&client, &server.url).await;
    let addr = beats_addr(&server).await;
    let (tx, rx) = std::sync::mpsc::channel();
    let streamer = std::thread::spawn(move || {
        let mut acked = Vec::new();
        let Ok(mut s) = TcpStream::connect(addr) else {
            return acked;
        };
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        for w in 0..150u32 {
            let ids: Vec<String> = (0..50).map(|i| format!("k-{w}-{i}")).collect();
            let events: Vec<(u32, String)> = ids
                .iter()
                .enumerate()
                .map(|(i, id)| (i as u32 + 1, event(id, "stream")))
                .collect();
            if s.write_all(&window(&events, w % 2 == 0)).is_err() {
                break;
            }
            match read_ack(&mut s, 50) {
                Some(_) => acked.extend(ids),
                None => break,
            }
            if w == 20 {
                let _ = tx.send(());
            }
        }
        acked
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("20 windows acked");
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let acked = streamer.join().unwrap();
    assert!(acked.len() >= 21 * 50, "{} acked", acked.len());

    let server = spawn_server(&config);
    wait_ready(&client, &server.url).await;
    let mut stored = HashSet::new();
    for _ in 0..300 {
        let body: Value = client
            .get(format!("{}/api/v1/search", server.url))
            .bearer_auth(A_ADMIN)
            .query(&[("q", "type:stream"), ("limit", "100000")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        stored = body["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect();
        if acked.iter().all(|id| stored.contains(id)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let lost: Vec<&String> = acked.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(
        lost.is_empty(),
        "{} acked events lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
}

/// The Beats listener's address, from the server's log.
async fn beats_addr(server: &Server) -> SocketAddr {
    for _ in 0..200 {
        let found = server.log.lock().unwrap().iter().find_map(|l| {
            let at = l.find("beats=")?;
            l[at + 6..].split_whitespace().next()?.parse().ok()
        });
        if let Some(addr) = found {
            return addr;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server never logged its Beats address");
}
