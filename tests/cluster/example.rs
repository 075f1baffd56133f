//! The cluster example users start from (`deploy/cluster/`): the node
//! config its docker-compose file gives every node runs two nodes here,
//! against the test broker and S3-protocol server instead of Kafka and
//! MinIO, with only what compose sets differently given in the
//! environment (addresses, directories, peers, keys, credentials).
//! Events posted to either node are found by a search on the other, and
//! the archive holds each once.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use super::{broker_and_bucket, lines};
use crate::common::*;

/// Starts a node from the example's config, listening on `port`.
fn start_node(dir: &Path, port: u16, brokers: &str, s3: &S3Server, peers: &[u16]) -> Server {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/cluster/logway.toml");
    let peers: Vec<String> = peers
        .iter()
        .map(|p| format!("\"http://127.0.0.1:{p}\""))
        .collect();
    let env = [
        ("LOGWAY_SERVER__HTTP_ADDR", format!("127.0.0.1:{port}")),
        ("LOGWAY_STORAGE__DATA_DIR", dir.display().to_string()),
        ("LOGWAY_CLUSTER__BROKERS", brokers.to_string()),
        ("LOGWAY_CLUSTER__PEERS", format!("[{}]", peers.join(","))),
        ("LOGWAY_ARCHIVE__S3__ENDPOINT_URL", s3.endpoint()),
        // Rounds cut sooner than the example's minute, so the test is short.
        ("LOGWAY_ARCHIVE__MAX_OBJECT_AGE", "1s".to_string()),
        (
            "LOGWAY_TENANTS__0__INGEST_KEYS",
            format!("[\"{A_INGEST}\"]"),
        ),
        ("LOGWAY_TENANTS__0__ADMIN_KEYS", format!("[\"{A_ADMIN}\"]")),
        ("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY.to_string()),
        ("AWS_SECRET_ACCESS_KEY", S3_SECRET_KEY.to_string()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    spawn_server_with(&example, "info", &env)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_docker_compose_example_config_runs_a_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, s3) = broker_and_bucket(dir.path()).await;
    let client = reqwest::Client::new();
    let ports = [free_port(), free_port()];
    let nodes: Vec<Server> = ports
        .iter()
        .enumerate()
        .map(|(i, &port)| {
            start_node(
                &dir.path().join(format!("node{i}")),
                port,
                &broker.addr(),
                &s3,
                &ports,
            )
        })
        .collect();
    for n in &nodes {
        wait_ready(&client, &n.url).await;
    }

    // 100 events, half through each node, on the example's `/logs` route.
    for (i, n) in nodes.iter().enumerate() {
        for r in 0..5u64 {
            let from = i as u64 * 50 + r * 10;
            let resp = client
                .post(format!("{}/logs", n.url))
                .bearer_auth(A_INGEST)
                .header("content-type", "application/x-ndjson")
                .body(lines(from, 10))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
        }
    }
    let want: BTreeSet<u64> = (0..100).collect();

    // A search on either node finds all of them once, nothing missing.
    for n in &nodes {
        let start = Instant::now();
        loop {
            let body = super::search_a(
                &client,
                &n.url,
                &[("q", "type:app_logs".into()), ("limit", "1000".into())],
            )
            .await;
            let seqs: Vec<u64> = body["hits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["fields"]["seq"].as_u64().unwrap())
                .collect();
            let found: BTreeSet<u64> = seqs.iter().copied().collect();
            if found == want && seqs.len() == 100 && body["partial"] == false {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(90),
                "{}: {} hits, partial {}, missing {}",
                n.url,
                seqs.len(),
                body["partial"],
                body["missing_partitions"]
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    // The archive, in the example's bucket: every event once.
    let s3_client = crate::archive::s3_client(&s3).await;
    let start = Instant::now();
    loop {
        let mut seen = Vec::new();
        for events in crate::archive::read_archive(&s3_client).await.values() {
            seen.extend(events.iter().map(|e| e["fields"]["seq"].as_u64().unwrap()));
        }
        let distinct: BTreeSet<u64> = seen.iter().copied().collect();
        assert_eq!(distinct.len(), seen.len(), "an event archived twice");
        if distinct == want {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "archive holds {} of 100 events",
            distinct.len()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    drop(nodes);
}
