//! The indexer and archiver roles: nodes share the events topic's
//! partitions through their consumer groups, each indexes the partitions
//! it owns and answers searches for them, every record is indexed once,
//! and when a node is killed (`kill -9`) another takes its partitions
//! over, resuming each from its own index checkpoint or rebuilding it from
//! the topic; a search on any node asks the others (the searcher role)
//! and says which partitions no node answered for; the archive (one
//! S3-protocol bucket for both) holds every event exactly once. The
//! singleton jobs run on the owner of partition 0 only.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{broker_and_bucket, lines, node_config_file, node_sections, search_a};
use crate::common::*;

/// A search for every `mobile_logs` event on the node at `url`: over the
/// cluster, or with `partitions` this node's own share of them.
async fn search(client: &reqwest::Client, url: &str, partitions: Option<&str>) -> Value {
    let mut query = vec![("q", "type:mobile_logs".into()), ("limit", "1000".into())];
    query.extend(partitions.map(|p| ("partitions", p.to_string())));
    search_a(client, url, &query).await
}

/// The `seq` of every hit of a search; a seq twice fails.
fn seqs_of(body: &Value, url: &str) -> BTreeSet<u64> {
    let mut seqs = BTreeSet::new();
    for h in body["hits"].as_array().unwrap() {
        let seq = h["fields"]["seq"].as_u64().unwrap();
        assert!(seqs.insert(seq), "seq {seq} found twice on {url}");
    }
    assert_eq!(body["total"].as_u64(), Some(seqs.len() as u64), "{url}");
    seqs
}

/// What the node at `url` indexes itself (every partition named: the
/// node answers for those it owns, asking no other).
async fn node_seqs(client: &reqwest::Client, url: &str) -> BTreeSet<u64> {
    seqs_of(&search(client, url, Some("0,1,2,3")).await, url)
}

/// Searches over the cluster from `url` until it finds `want` once and
/// says nothing is missing.
async fn wait_cluster_search(client: &reqwest::Client, url: &str, want: &BTreeSet<u64>) {
    let start = Instant::now();
    loop {
        let body = search(client, url, None).await;
        if body["partial"] == false && &seqs_of(&body, url) == want {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "{url}: the cluster's search never found {} events once: {} hits, partial {}, missing {}",
            want.len(),
            body["total"],
            body["partial"],
            body["missing_partitions"]
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits until the nodes' searches together return `want`, each event
/// on exactly one node (`min_each`: hits every node must have); returns
/// each node's share.
async fn wait_split(
    client: &reqwest::Client,
    urls: &[&str],
    want: &BTreeSet<u64>,
    min_each: usize,
    within: Duration,
) -> Vec<BTreeSet<u64>> {
    let start = Instant::now();
    loop {
        let mut shares = Vec::new();
        for url in urls {
            shares.push(node_seqs(client, url).await);
        }
        let total: usize = shares.iter().map(|s| s.len()).sum();
        let union: BTreeSet<u64> = shares.iter().flatten().copied().collect();
        if &union == want && total == want.len() && shares.iter().all(|s| s.len() >= min_each) {
            return shares;
        }
        let counts: Vec<usize> = shares.iter().map(|s| s.len()).collect();
        assert!(
            start.elapsed() < within,
            "after {within:?}: {counts:?} hits on {urls:?} ({} distinct, {} missing), want {} once",
            union.len(),
            want.difference(&union).count(),
            want.len()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits until exactly one of the nodes runs the singleton jobs, and it
/// is the one owning partition 0 of the index group; returns its index.
async fn wait_one_leader(client: &reqwest::Client, urls: &[&str]) -> usize {
    let start = Instant::now();
    loop {
        let mut answers = Vec::new();
        for url in urls {
            let r = client
                .get(format!("{url}/api/v1/cluster/partitions"))
                .bearer_auth(A_ADMIN)
                .send()
                .await
                .unwrap();
            answers.push(r.json::<Value>().await.unwrap());
        }
        let leaders: Vec<usize> = (0..urls.len())
            .filter(|&i| answers[i]["singletons"] == true)
            .collect();
        let owners: Vec<usize> = (0..urls.len())
            .filter(|&i| answers[i]["partitions"].get("0").is_some())
            .collect();
        if leaders.len() == 1 && leaders == owners {
            return leaders[0];
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "not one singleton leader owning partition 0: {answers:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn post(client: &reqwest::Client, url: &str, from: u64, n: u64) {
    let r = client
        .post(format!("{url}/mobile"))
        .bearer_auth(A_INGEST)
        .header("content-type", "application/x-ndjson")
        .body(lines(from, n))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn indexers_share_the_partitions_index_each_record_once_and_take_over_a_killed_node() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, s3) = broker_and_bucket(dir.path()).await;
    let client = reqwest::Client::new();

    // One node: it owns every partition and indexes every record once.
    // Each node's peer is the other.
    let b_port = free_port();
    let a = TestGateway::start(two_tenant_config(
        &dir.path().join("a"),
        &node_sections(
            &broker.addr(),
            &s3,
            4,
            "300ms",
            &[format!("http://127.0.0.1:{b_port}")],
        ),
    ))
    .await;
    for r in 0..20 {
        post(&client, &a.url, r * 10, 10).await;
    }
    let first: BTreeSet<u64> = (0..200).collect();
    wait_split(&client, &[&a.url], &first, 0, Duration::from_secs(60)).await;

    // A second node joins: the group moves some partitions to it, which
    // it builds from the topic; each record is found on one node only.
    let b_config = node_config_file(
        &dir.path().join("b"),
        b_port,
        &node_sections(
            &broker.addr(),
            &s3,
            4,
            "300ms",
            std::slice::from_ref(&a.url),
        ),
    );
    let b = spawn_server(&b_config);
    wait_ready(&client, &b.url).await;
    let shares = wait_split(
        &client,
        &[&a.url, &b.url],
        &first,
        1,
        Duration::from_secs(60),
    )
    .await;
    // Ingest through either node lands on the partitions' owners.
    for r in 20..40 {
        post(&client, &b.url, r * 10, 10).await;
    }
    let all: BTreeSet<u64> = (0..400).collect();
    let split = wait_split(&client, &[&a.url, &b.url], &all, 1, Duration::from_secs(60)).await;
    // A search on either node covers the cluster: every event once.
    for url in [&a.url, &b.url] {
        wait_cluster_search(&client, url, &all).await;
    }
    assert_eq!(a.histogram_total(A_ADMIN, "type:mobile_logs").await, 400);
    // The singleton jobs run on the owner of partition 0 only.
    wait_one_leader(&client, &[&a.url, &b.url]).await;

    // kill -9 of the second node: until its partitions move, a search
    // says which are missing and finds what the rest hold.
    let owned_by_b = client
        .get(format!("{}/api/v1/cluster/partitions", b.url))
        .bearer_auth(A_ADMIN)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let b_partitions: Vec<u64> = owned_by_b["partitions"]
        .as_object()
        .unwrap()
        .keys()
        .map(|p| p.parse().unwrap())
        .collect();
    assert!(!b_partitions.is_empty(), "{owned_by_b}");
    drop(b);
    let killed = Instant::now();
    let body = search(&client, &a.url, None).await;
    if killed.elapsed() < Duration::from_secs(5) {
        assert_eq!(body["partial"], true, "{body}");
        assert_eq!(
            body["missing_partitions"],
            serde_json::json!(b_partitions),
            "{body}"
        );
        assert_eq!(seqs_of(&body, &a.url), split[0], "what the survivor holds");
    }
    // After the group's session timeout the first owns every partition
    // again, resuming those it had indexed before from its own
    // checkpoints, and finds every record once.
    wait_split(&client, &[&a.url], &all, 0, Duration::from_secs(90)).await;
    wait_cluster_search(&client, &a.url, &all).await;
    eprintln!(
        "takeover: every record searchable on the survivor {:.1} s after the kill (the second node had {} of the first 200)",
        killed.elapsed().as_secs_f64(),
        shares[1].len()
    );
    // The survivor owns partition 0 now, so it runs the singleton jobs.
    assert_eq!(wait_one_leader(&client, &[&a.url]).await, 0);
    let start = Instant::now();
    let metrics = loop {
        let metrics = a.metrics().await;
        if metric_sum(&metrics, "logway_cluster_singleton_leader") == 1.0 {
            break metrics;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "{metrics}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        metric_sum(&metrics, "logway_events_indexed_total") >= 400.0,
        "{metrics}"
    );

    // The archive: every event exactly once, in objects keyed by topic
    // partition and offsets, whichever node uploaded them.
    let s3_client = crate::archive::s3_client(&s3).await;
    let start = Instant::now();
    loop {
        let objects = crate::archive::read_archive(&s3_client).await;
        let mut seen = BTreeSet::new();
        let mut twice = Vec::new();
        for (key, events) in &objects {
            let name = key.rsplit('/').next().unwrap();
            assert!(
                name.ends_with(".ndjson.zst") && name.contains("-k"),
                "{key}: not a partition's object"
            );
            for e in events {
                let seq = e["fields"]["seq"].as_u64().unwrap();
                if !seen.insert(seq) {
                    twice.push(seq);
                }
            }
        }
        assert!(twice.is_empty(), "archived twice: {twice:?}");
        if seen == all {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "archive holds {} of 400 events after 60 s",
            seen.len()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    a.stop().await;
}
