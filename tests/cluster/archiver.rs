//! The archiver role's round markers: a round another owner began (its
//! marker is in the bucket) is cut at exactly the marker's end, so its
//! objects get the keys they had; markers the group's offset has passed
//! are deleted.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::{broker_and_bucket, lines};
use crate::common::*;

const MARKED_END: u64 = 3;

fn marker(p: u32, start: u64) -> String {
    format!("logs/_rounds/k{p}/{start:020}.json")
}

/// Every key in the bucket.
async fn keys(s3: &aws_sdk_s3::Client) -> BTreeSet<String> {
    let page = s3.list_objects_v2().bucket(S3_BUCKET).send().await.unwrap();
    page.contents()
        .iter()
        .map(|o| o.key().unwrap().to_string())
        .collect()
}

/// The archive's events, `seq` → how many times archived.
async fn archived(s3: &aws_sdk_s3::Client) -> Vec<u64> {
    let objects = crate::archive::read_archive(s3).await;
    let mut seqs: Vec<u64> = objects
        .values()
        .flatten()
        .map(|e| e["fields"]["seq"].as_u64().unwrap())
        .collect();
    seqs.sort();
    seqs
}

async fn wait_archived(s3: &aws_sdk_s3::Client, want: &[u64]) {
    let start = Instant::now();
    loop {
        let got = archived(s3).await;
        if got == want {
            return;
        }
        assert!(
            got.len() <= want.len() && start.elapsed() < Duration::from_secs(60),
            "archived {} events ({} distinct), want {} once",
            got.len(),
            got.iter().collect::<BTreeSet<_>>().len(),
            want.len()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Requests `range` of four events each (seqs `4r..4r+4`), each acked.
async fn post_requests(gw: &TestGateway, range: std::ops::Range<u64>) {
    for r in range {
        gw.post("/mobile", A_INGEST)
            .header("content-type", "application/x-ndjson")
            .body(lines(r * 4, 4))
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_archiver_redoes_a_marked_round_to_the_same_keys_and_deletes_passed_markers() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, s3) = broker_and_bucket(dir.path()).await;
    let s3_client = crate::archive::s3_client(&s3).await;
    // An owner before this node began the first round of both partitions
    // and died: its markers say where those rounds end.
    for p in 0..2 {
        s3_client
            .put_object()
            .bucket(S3_BUCKET)
            .key(marker(p, 0))
            .body(format!("{{\"end\":{MARKED_END}}}\n").into_bytes().into())
            .send()
            .await
            .unwrap();
    }
    let config = two_tenant_config(
        &dir.path().join("node"),
        &format!(
            r#"
[cluster]
enabled = true
brokers = "{}"
topic = "events"
partitions = 2
replication_factor = 1
partitions_per_stream = 2
roles = ["gateway", "archiver"]
[archive]
max_object_age = "300ms"
{}"#,
            broker.addr(),
            s3.archive_toml()
        ),
    );
    let gw = TestGateway::start(config).await;
    // One record per request: 16 records over the two partitions.
    post_requests(&gw, 0..16).await;
    wait_archived(&s3_client, &(0..64).collect::<Vec<_>>()).await;
    let all = keys(&s3_client).await;
    for p in 0..2 {
        let redone = format!("{:020}-{MARKED_END:020}-k{p}.ndjson.zst", 0);
        assert!(
            all.iter().any(|k| k.ends_with(&redone)),
            "no object of the marked round of partition {p}: {all:#?}"
        );
    }

    // More rounds: the group's offsets pass the first markers, which go.
    tokio::time::sleep(Duration::from_secs(2)).await;
    post_requests(&gw, 16..24).await;
    wait_archived(&s3_client, &(0..96).collect::<Vec<_>>()).await;
    let start = Instant::now();
    loop {
        let all = keys(&s3_client).await;
        if (0..2).all(|p| !all.contains(&marker(p, 0))) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "passed markers not deleted: {all:#?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    gw.stop().await;
}
