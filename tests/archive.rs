//! The cold archive through the real server and a real S3-protocol server
//! (s3s-fs on 127.0.0.1, checking signatures): objects appear with the
//! documented keys and content, read back with a plain S3 client and with
//! `zstd -d | jq`; an S3 outage loses and duplicates nothing; kill -9 while
//! archiving leaves nothing acked missing.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::Value;

/// A plain S3 client (the SDK directly, not Logway's store).
pub async fn s3_client(server: &S3Server) -> aws_sdk_s3::Client {
    let creds =
        aws_sdk_s3::config::Credentials::new(S3_ACCESS_KEY, S3_SECRET_KEY, None, None, "test");
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let config = aws_sdk_s3::config::Builder::new()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .http_client(http)
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .credentials_provider(creds)
        .endpoint_url(server.endpoint())
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// Every archived object: key → its events (cluster mode's round markers,
/// `_rounds/…json`, are not archive objects and are left out).
pub async fn read_archive(client: &aws_sdk_s3::Client) -> HashMap<String, Vec<Value>> {
    let mut out = HashMap::new();
    let mut token = None;
    loop {
        let page = client
            .list_objects_v2()
            .bucket(S3_BUCKET)
            .set_continuation_token(token)
            .send()
            .await
            .unwrap();
        for o in page.contents() {
            let key = o.key().unwrap().to_string();
            if !key.ends_with(".ndjson.zst") {
                continue;
            }
            let body = client
                .get_object()
                .bucket(S3_BUCKET)
                .key(&key)
                .send()
                .await
                .unwrap();
            let bytes = body.body.collect().await.unwrap().into_bytes();
            let text = zstd::decode_all(&bytes[..]).unwrap();
            let events = text
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .map(|l| serde_json::from_slice(l).unwrap())
                .collect();
            out.insert(key, events);
        }
        match page.next_continuation_token() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    out
}

fn archive_config(dir: &std::path::Path, server: &S3Server, extra: &str) -> logway::Config {
    two_tenant_config(
        dir,
        &format!(
            "[archive]\nmax_object_age = \"200ms\"\n{extra}\n{}",
            server.archive_toml()
        ),
    )
}

async fn post_lines(t: &TestGateway, path: &str, key: &str, lines: &[String]) -> u16 {
    t.post(path, key)
        .header("content-type", "application/x-ndjson")
        .body(lines.join("\n"))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

#[tokio::test]
async fn acked_events_are_archived_under_documented_keys_readable_by_plain_tools() {
    let dir = tempfile::tempdir().unwrap();
    let s3dir = tempfile::tempdir().unwrap();
    let server = S3Server::start(s3dir.path()).await;
    let t = TestGateway::start(archive_config(dir.path(), &server, "")).await;
    let lines: Vec<String> = (0..50)
        .map(|i| format!("{{\"message\":\"mobile {i}\",\"level\":\"info\"}}"))
        .collect();
    assert_eq!(post_lines(&t, "/mobile", A_INGEST, &lines).await, 200);
    let lines: Vec<String> = (0..30)
        .map(|i| format!("{{\"message\":\"web {i}\"}}"))
        .collect();
    assert_eq!(post_lines(&t, "/web", A_INGEST, &lines).await, 200);
    // A batch this large is one compressed WAL frame, which the archive
    // copies as it is; a one-line batch is plain, and the archive
    // compresses it: an object may hold both kinds of frame.
    let one = vec!["{\"message\":\"web 30\"}".to_string()];
    assert_eq!(post_lines(&t, "/web", A_INGEST, &one).await, 200);
    let lines: Vec<String> = (0..20)
        .map(|i| format!("{{\"message\":\"b {i}\"}}"))
        .collect();
    assert_eq!(post_lines(&t, "/b/app", B_INGEST, &lines).await, 200);
    t.wait_archived(101).await;

    let client = s3_client(&server).await;
    let archive = read_archive(&client).await;
    let key_shape = |k: &str| -> Option<(String, String)> {
        // logs/tenant=a/type=mobile_logs/dt=2026-11-21/hour=09/{20 digits}-{20 digits}-{ulid}.ndjson.zst
        let parts: Vec<&str> = k.split('/').collect();
        assert_eq!(parts.len(), 6, "{k}");
        assert_eq!(parts[0], "logs", "{k}");
        let tenant = parts[1].strip_prefix("tenant=")?;
        let ty = parts[2].strip_prefix("type=")?;
        let dt = parts[3].strip_prefix("dt=")?;
        assert!(
            time::Date::parse(
                dt,
                time::macros::format_description!("[year]-[month]-[day]")
            )
            .is_ok(),
            "{k}"
        );
        let hour: u8 = parts[4].strip_prefix("hour=")?.parse().ok()?;
        assert!(hour < 24);
        let name = parts[5].strip_suffix(".ndjson.zst")?;
        let range: Vec<&str> = name.split('-').collect();
        assert_eq!(range.len(), 3, "{k}");
        assert!(
            range[0].len() == 20 && range[1].len() == 20 && range[0] < range[1],
            "{k}"
        );
        assert!(range[2].parse::<ulid::Ulid>().is_ok(), "{k}");
        Some((tenant.to_string(), ty.to_string()))
    };
    let mut counts: HashMap<(String, String), usize> = HashMap::new();
    let mut ids = HashSet::new();
    for (key, events) in &archive {
        let (tenant, ty) = key_shape(key).unwrap_or_else(|| panic!("bad key {key}"));
        for e in events {
            assert_eq!(e["tenant"], tenant.as_str());
            assert_eq!(e["type"], ty.as_str());
            assert!(
                ids.insert(e["id"].as_str().unwrap().to_string()),
                "duplicate {e}"
            );
        }
        *counts.entry((tenant, ty)).or_default() += events.len();
    }
    assert_eq!(counts[&("a".into(), "mobile_logs".into())], 50);
    assert_eq!(counts[&("a".into(), "web_logs".into())], 31);
    assert_eq!(counts[&("b".into(), "app_logs".into())], 20);
    // The same events search returns, byte for byte.
    let hot = t
        .search_until(A_ADMIN, &[("q", "type:mobile_logs"), ("limit", "100")], 50)
        .await;
    let hot_ids: HashSet<&str> = hot["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap())
        .collect();
    let archived_mobile: HashSet<&str> = archive
        .iter()
        .filter(|(k, _)| k.contains("type=mobile_logs"))
        .flat_map(|(_, ev)| ev.iter().map(|e| e["id"].as_str().unwrap()))
        .collect();
    assert_eq!(hot_ids, archived_mobile);

    // `zstd -d | jq` opens an object as it sits on the S3 server's disk.
    let (key, events) = archive
        .iter()
        .find(|(k, _)| k.contains("type=web_logs"))
        .unwrap();
    let file = server.root.join(S3_BUCKET).join(key);
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("zstd -d < '{}' | jq -c .message", file.display()))
        .output()
        .expect("zstd and jq are installed (.ci/run installs them)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().lines().count(),
        events.len()
    );

    let ready: Value = t
        .client
        .get(format!("{}/readyz", t.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["archive"]["store"], format!("s3://{S3_BUCKET}"));
    t.stop().await;
    server.stop().await;
}

#[tokio::test]
async fn an_s3_outage_delays_the_archive_but_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s3dir = tempfile::tempdir().unwrap();
    let server = S3Server::start(s3dir.path()).await;
    let t = TestGateway::start(archive_config(
        dir.path(),
        &server,
        "max_attempts = 2\nrequest_timeout = \"1s\"",
    ))
    .await;
    let sent = std::cell::Cell::new(0u64);
    let batch = |n: usize| -> Vec<String> {
        let base = sent.get();
        sent.set(base + n as u64);
        (0..n)
            .map(|i| format!("{{\"message\":\"outage {base} {i}\"}}"))
            .collect()
    };
    assert_eq!(post_lines(&t, "/mobile", A_INGEST, &batch(40)).await, 200);
    t.wait_archived(40).await;

    let addr = server.stop().await;
    // Acks go on while S3 is down; the archive lag shows.
    for _ in 0..10 {
        assert_eq!(post_lines(&t, "/mobile", A_INGEST, &batch(25)).await, 200);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let start = Instant::now();
    loop {
        let ready: Value = t
            .client
            .get(format!("{}/readyz", t.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if ready["archive"]["last_error"].is_string()
            && ready["archive"]["lag_bytes"].as_u64() > Some(0)
        {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{ready}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let m = t.metrics().await;
    assert!(!m.contains("logway_archive_lag_bytes 0\n"), "{m}");
    assert!(m.contains("logway_archive_upload_errors_total"), "{m}");
    // Search is not affected.
    t.search_until(A_ADMIN, &[("q", "type:mobile_logs")], sent.get())
        .await;

    let server = S3Server::start_at(s3dir.path(), addr).await;
    assert_eq!(post_lines(&t, "/mobile", A_INGEST, &batch(35)).await, 200);
    t.wait_archived(sent.get()).await;
    let archive = read_archive(&s3_client(&server).await).await;
    let mut ids = HashSet::new();
    for events in archive.values() {
        for e in events {
            assert!(
                ids.insert(e["id"].as_str().unwrap().to_string()),
                "archived twice: {e}"
            );
        }
    }
    assert_eq!(ids.len() as u64, sent.get());
    t.stop().await;
    server.stop().await;
}

#[tokio::test]
async fn kill_9_while_archiving_leaves_nothing_acked_missing() {
    let dir = tempfile::tempdir().unwrap();
    let s3dir = tempfile::tempdir().unwrap();
    let server = S3Server::start(s3dir.path()).await;
    let config = dir.path().join("logway.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nhttp_addr = \"127.0.0.1:0\"\n[storage]\ndata_dir = \"{}\"\n[archive]\nmax_object_age = \"50ms\"\n{}",
            dir.path().join("data").display(),
            server.archive_toml()
        ),
    )
    .unwrap();
    let client = reqwest::Client::new();
    let mut acked: HashSet<String> = HashSet::new();
    for round in 0..3 {
        let mut srv = spawn_server(&config);
        wait_ready(&client, &srv.url).await;
        for r in 0..15 {
            let lines: Vec<String> = (0..20)
                .map(|i| format!("{{\"message\":\"k{round} r{r} e{i}\"}}"))
                .collect();
            let resp = client
                .post(format!("{}/v1/logs/killed", srv.url))
                .header("content-type", "application/x-ndjson")
                .body(lines.join("\n"))
                .send()
                .await;
            if resp.is_ok_and(|r| r.status() == 200) {
                acked.extend(lines.iter().map(|l| {
                    serde_json::from_str::<Value>(l).unwrap()["message"]
                        .as_str()
                        .unwrap()
                        .to_string()
                }));
            }
            tokio::time::sleep(Duration::from_millis(7)).await;
        }
        srv.child.kill().unwrap(); // SIGKILL, mid-archiving
        srv.child.wait().unwrap();
    }
    // A last start archives what the killed ones left.
    let srv = spawn_server(&config);
    wait_ready(&client, &srv.url).await;
    let s3 = s3_client(&server).await;
    let start = Instant::now();
    loop {
        let archive = read_archive(&s3).await;
        let archived: HashSet<String> = archive
            .values()
            .flatten()
            .map(|e| e["message"].as_str().unwrap().to_string())
            .collect();
        if acked.is_subset(&archived) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{} acked events not archived",
            acked.difference(&archived).count()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(acked.len() >= 300, "{}", acked.len());
    server.stop().await;
}

#[tokio::test]
async fn the_default_archive_is_a_local_directory() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestGateway::start(two_tenant_config(
        dir.path(),
        "[archive]\nmax_object_age = \"100ms\"",
    ))
    .await;
    let lines: Vec<String> = (0..10)
        .map(|i| format!("{{\"message\":\"local {i}\"}}"))
        .collect();
    assert_eq!(post_lines(&t, "/web", A_INGEST, &lines).await, 200);
    t.wait_archived(10).await;
    let root = dir.path().join("archive/logs/tenant=a/type=web_logs");
    let mut files = Vec::new();
    for day in std::fs::read_dir(&root).unwrap() {
        for hour in std::fs::read_dir(day.unwrap().path()).unwrap() {
            for f in std::fs::read_dir(hour.unwrap().path()).unwrap() {
                files.push(f.unwrap().path());
            }
        }
    }
    let events: usize = files
        .iter()
        .map(|f| {
            zstd::decode_all(&std::fs::read(f).unwrap()[..])
                .unwrap()
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .count()
        })
        .sum();
    assert_eq!(events, 10);
    t.stop().await;
}
