//! Three nodes, one broker, one S3-protocol bucket, 16 connections
//! through a load-balancing client: a `kill -9` of a random node every
//! 20 s for 2 minutes (restarted after a pause), then a rolling restart of
//! every node (SIGTERM, start again) under load. Every acknowledged event
//! is then found by a search on every node and is in the archive, an
//! event whose first request was acknowledged exactly once in both (a
//! request retried on another node after its first node died may have
//! been written by both: its events may be stored twice, see
//! docs/cluster.md, "What an ack means"). `CHAOS_HISTORY=1` prints every
//! node's archive assignments when the test fails.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use super::{broker_and_bucket, node_config_file, node_sections, search_a};
use crate::common::*;

const NODES: usize = 3;
const CONNECTIONS: usize = 16;
const EVENTS_PER_REQUEST: u64 = 5;
/// Each connection's pause between requests (the test checks conservation,
/// not speed: the load stays small enough to page through every event).
const PACE: Duration = Duration::from_millis(400);
/// Longest a request may go unacknowledged (tried on one node after
/// another) during the rolling restart.
const MAX_UNANSWERED: Duration = Duration::from_secs(10);

struct Node {
    port: u16,
    config: PathBuf,
    server: Option<Server>,
    /// The log lines of its earlier processes.
    history: Vec<String>,
}

impl Node {
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn start(&mut self, client: &reqwest::Client) {
        let server = spawn_server(&self.config);
        wait_ready(client, &server.url).await;
        self.server = Some(server);
    }

    fn kill9(&mut self) {
        if let Some(s) = self.server.take() {
            self.history.extend(s.log.lock().unwrap().iter().cloned());
            self.history.push("---- kill -9".into());
        } // dropped: SIGKILL
    }

    /// SIGTERM, and waits for the process to end.
    fn stop(&mut self) {
        if let Some(mut s) = self.server.take() {
            let asked = Instant::now();
            unsafe { libc::kill(s.child.id() as i32, libc::SIGTERM) };
            let _ = s.child.wait();
            std::thread::sleep(Duration::from_millis(100)); // the last log lines
            let log = s.log.lock().unwrap();
            let unclosed = log.iter().filter(|l| l.contains("did not close")).count();
            eprintln!(
                "node :{} stopped {:.1} s after SIGTERM ({unclosed} group consumers left unclosed)",
                self.port,
                asked.elapsed().as_secs_f64()
            );
            drop(log);
            self.history.extend(s.log.lock().unwrap().iter().cloned());
            self.history.push("---- stopped".into());
        }
    }
}

/// What the load client saw.
#[derive(Default)]
struct Outcomes {
    /// Request number → whether its first try was acknowledged.
    acked: BTreeMap<u64, bool>,
    /// Per acknowledged request: when its first try was sent, and how
    /// long until a node acknowledged it.
    took: Vec<(Instant, Duration)>,
    /// Tries answered 5xx or not at all.
    failures: usize,
}

/// One connection of the load-balancing client: numbered requests, each
/// sent to the next node, and on failure (no answer, 5xx) to the next one
/// after, with the same Idempotency-Key, until acknowledged or the load
/// ends.
async fn connection(
    urls: Arc<Vec<String>>,
    next: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    outcomes: Arc<Mutex<Outcomes>>,
) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();
    while !stop.load(Ordering::Acquire) {
        let n = next.fetch_add(1, Ordering::AcqRel);
        let body: String = (0..EVENTS_PER_REQUEST)
            .map(|i| {
                format!(
                    "{}\n",
                    json!({"message": "numbered", "seq": n * EVENTS_PER_REQUEST + i})
                )
            })
            .collect();
        let mut node = n as usize % urls.len();
        let mut first = true;
        let sent = Instant::now();
        loop {
            let r = client
                .post(format!("{}/mobile", urls[node]))
                .bearer_auth(A_INGEST)
                .header("content-type", "application/x-ndjson")
                .header("idempotency-key", format!("req-{n}"))
                .body(body.clone())
                .send()
                .await;
            match r {
                Ok(r) if r.status() == 200 => {
                    let mut o = outcomes.lock().unwrap();
                    o.acked.insert(n, first);
                    o.took.push((sent, sent.elapsed()));
                    break;
                }
                Ok(r) => assert!(
                    r.status().is_server_error(),
                    "request {n}: {} {}",
                    r.status(),
                    r.text().await.unwrap_or_default()
                ),
                Err(_) => {}
            }
            outcomes.lock().unwrap().failures += 1;
            if stop.load(Ordering::Acquire) {
                break; // never acknowledged: not counted
            }
            first = false;
            node = (node + 1) % urls.len();
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tokio::time::sleep(PACE).await;
    }
}

/// Every `seq` a search on `url` finds over the cluster, page by page
/// (with repeats), and whether the answer was complete.
async fn cluster_seqs(client: &reqwest::Client, url: &str) -> (Vec<u64>, bool) {
    let mut seqs = Vec::new();
    let mut after: Option<String> = None;
    let mut complete = true;
    loop {
        let mut q = vec![
            ("q", "type:mobile_logs".to_string()),
            ("limit", "10000".into()),
        ];
        q.extend(after.clone().map(|a| ("search_after", a)));
        let body = search_a(client, url, &q).await;
        complete &= body["partial"] == false;
        seqs.extend(
            body["hits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["fields"]["seq"].as_u64().unwrap()),
        );
        match body["next"].as_str() {
            Some(n) => after = Some(n.to_string()),
            None => return (seqs, complete),
        }
    }
}

/// Each node's partitions and the log lines about partitions and
/// failures, for a failure's message.
async fn diagnose(client: &reqwest::Client, nodes: &[Node]) -> String {
    let mut out = String::new();
    for n in nodes {
        let owned = match client
            .get(format!("{}/api/v1/cluster/partitions", n.url()))
            .bearer_auth(A_ADMIN)
            .send()
            .await
        {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(e) => e.to_string(),
        };
        out.push_str(&format!("\n{}: {owned}\n", n.url()));
        if std::env::var_os("CHAOS_HISTORY").is_some() {
            let current = n.server.as_ref().map(|s| s.log.lock().unwrap().clone());
            for line in n.history.iter().chain(current.iter().flatten()) {
                if line.contains("role=\"archive\"")
                    || line.contains("redoing")
                    || line.starts_with("----")
                {
                    eprintln!("{} {line}", n.port);
                }
            }
        }
        if let Some(s) = &n.server {
            for line in s
                .log
                .lock()
                .unwrap()
                .iter()
                .filter(|l| {
                    l.contains("partition")
                        || l.contains("archive")
                        || l.contains("WARN")
                        || l.contains("ERROR")
                })
                .rev()
                .take(30)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
            {
                out.push_str(&format!("  {line}\n"));
            }
        }
    }
    out
}

/// Checks `found` (with repeats) against what was acknowledged: every
/// acknowledged event at least once, and with `once` those acknowledged
/// at the first try exactly once. Returns what is wrong, if anything.
fn check(found: &[u64], acked: &BTreeMap<u64, bool>, once: bool) -> Option<String> {
    let mut count: BTreeMap<u64, u32> = BTreeMap::new();
    for s in found {
        *count.entry(*s).or_default() += 1;
    }
    let mut lost = Vec::new();
    let mut twice = Vec::new();
    for (&n, &first) in acked {
        for seq in n * EVENTS_PER_REQUEST..(n + 1) * EVENTS_PER_REQUEST {
            match count.get(&seq) {
                None => lost.push(seq),
                Some(&c) if c > 1 && first && once => twice.push(seq),
                _ => {}
            }
        }
    }
    (!lost.is_empty() || !twice.is_empty()).then(|| {
        format!(
            "{} acknowledged events missing (first {:?}), {} first-try events more than once (first {:?})",
            lost.len(),
            &lost[..lost.len().min(10)],
            twice.len(),
            &twice[..twice.len().min(10)]
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_lose_nothing_acked_through_kill_9_and_a_rolling_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, s3) = broker_and_bucket(dir.path()).await;
    let client = reqwest::Client::new();
    let ports: Vec<u16> = (0..NODES).map(|_| free_port()).collect();
    let urls: Vec<String> = ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect();
    let mut nodes: Vec<Node> = ports
        .iter()
        .enumerate()
        .map(|(i, &port)| Node {
            port,
            config: node_config_file(
                &dir.path().join(format!("n{i}")),
                port,
                &node_sections(&broker.addr(), &s3, 6, "2s", &urls),
            ),
            server: None,
            history: Vec::new(),
        })
        .collect();
    for n in &mut nodes {
        n.start(&client).await;
    }

    let next = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let outcomes = Arc::new(Mutex::new(Outcomes::default()));
    let load: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            tokio::spawn(connection(
                Arc::new(urls.clone()),
                next.clone(),
                stop.clone(),
                outcomes.clone(),
            ))
        })
        .collect();

    // Chaos: a kill -9 every 20 s for 2 minutes, the node back after 5 s.
    let chaos = Instant::now();
    let mut kills = 0;
    while chaos.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_secs(15)).await;
        let victim = (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos() as usize)
            % NODES;
        nodes[victim].kill9();
        kills += 1;
        tokio::time::sleep(Duration::from_secs(5)).await;
        nodes[victim].start(&client).await;
    }
    let acked_after_chaos = outcomes.lock().unwrap().acked.len();

    // Rolling restart under load: each node stopped and started in turn.
    let rolling = Instant::now();
    for n in &mut nodes {
        n.stop();
        n.start(&client).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    let rolling_end = Instant::now();
    stop.store(true, Ordering::Release);
    for l in load {
        l.await.unwrap();
    }
    let outcomes = Arc::try_unwrap(outcomes)
        .ok()
        .unwrap()
        .into_inner()
        .unwrap();
    let acked = outcomes.acked;
    let first_try = acked.values().filter(|f| **f).count();
    eprintln!(
        "{kills} kills; {} requests acknowledged ({first_try} at the first try, {acked_after_chaos} during the kills), {} failed tries",
        acked.len(),
        outcomes.failures
    );
    assert!(acked.len() > 500, "too little load to prove anything");
    // During the rolling restart a request went unacknowledged only
    // briefly: the client moved on from a stopped node to a running one.
    let slowest = outcomes
        .took
        .iter()
        .filter(|(sent, _)| *sent >= rolling && *sent <= rolling_end)
        .map(|(_, took)| *took)
        .max()
        .unwrap();
    eprintln!("rolling restart: the slowest request was acknowledged after {slowest:?}");
    assert!(
        slowest <= MAX_UNANSWERED,
        "a request took {slowest:?} to be acknowledged during the rolling restart"
    );

    // Every node finds every acknowledged event once the partitions settle.
    for url in &urls {
        let start = Instant::now();
        loop {
            let (found, complete) = cluster_seqs(&client, url).await;
            let problem = check(&found, &acked, true);
            if complete && problem.is_none() {
                break;
            }
            if start.elapsed() > Duration::from_secs(120) {
                panic!(
                    "{url} after 120 s: complete {complete}, {}{}",
                    problem.unwrap_or_default(),
                    diagnose(&client, &nodes).await
                );
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    // The archive, once every round is uploaded.
    let s3_client = crate::archive::s3_client(&s3).await;
    let start = Instant::now();
    loop {
        let objects = crate::archive::read_archive(&s3_client).await;
        let found: Vec<u64> = objects
            .values()
            .flatten()
            .map(|e| e["fields"]["seq"].as_u64().unwrap())
            .collect();
        let distinct: BTreeSet<u64> = found.iter().copied().collect();
        let problem = check(&found, &acked, true);
        if problem.is_none() {
            eprintln!(
                "archive: {} objects, {} events, {} of them (of retried requests) stored more than once",
                objects.len(),
                found.len(),
                found.len() - distinct.len()
            );
            break;
        }
        if start.elapsed() > Duration::from_secs(60) {
            // The objects of the first event stored twice, if any (a lead
            // when rounds overlap).
            let mut seen = BTreeSet::new();
            let twice = found.iter().find(|s| !seen.insert(**s)).copied();
            let holders: Vec<&String> = objects
                .iter()
                .filter(|(_, events)| events.iter().any(|e| e["fields"]["seq"].as_u64() == twice))
                .map(|(k, _)| k)
                .collect();
            panic!(
                "archive after 60 s ({} objects, {} distinct events): {}; seq {twice:?} is in {holders:?}{}",
                objects.len(),
                distinct.len(),
                problem.unwrap_or_default(),
                diagnose(&client, &nodes).await
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    for n in &mut nodes {
        n.stop();
    }
}
