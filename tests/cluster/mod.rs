//! Kafka against a real Kafka-protocol broker: tansu, which `./test.sh`
//! installs into the clients folder (docs/cluster.md). Cluster mode's
//! gateway role (a request is acknowledged once the topic has its batch,
//! and refused with 503 + `Retry-After` while no broker answers), the
//! indexer and archiver roles ([`indexer`], [`archiver`]), three nodes
//! through kill -9 and a rolling restart ([`chaos`]), and Kafka as a
//! source ([`source`]).

mod archiver;
mod chaos;
mod example;
mod indexer;
mod source;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use serde_json::{Value, json};

use crate::common::*;

/// A tansu broker on 127.0.0.1:`port`, its SQLite storage in `dir`.
pub struct Broker {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl Broker {
    fn bin() -> PathBuf {
        let bin = test_clients().join("tansu/bin/tansu");
        assert!(
            bin.exists(),
            "{} is missing: run ./test.sh (it installs it)",
            bin.display()
        );
        bin
    }

    pub async fn start(dir: &Path) -> Broker {
        let mut b = Broker {
            child: None,
            port: free_port(),
            dir: dir.to_path_buf(),
        };
        b.restart().await;
        b
    }

    async fn restart(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("broker.log"))
            .unwrap();
        let child = Command::new(Self::bin())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "sqlite://tansu.db"])
            .current_dir(&self.dir)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("tansu starts");
        self.child = Some(child);
        wait_port(self.port).await;
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The records of `topic` (partitions 0..`partitions`) from the start,
/// until those read hold every seq of `want` (or 60 s passed).
fn read_topic(brokers: &str, topic: &str, partitions: i32, want: &BTreeSet<u64>) -> Vec<Record> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "test-reader")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    c.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let start = Instant::now();
    while !want.is_subset(&seqs(&out)) && start.elapsed() < Duration::from_secs(60) {
        let Some(m) = c.poll(Duration::from_millis(200)) else {
            continue;
        };
        let m = m.unwrap();
        let headers = m.headers().map_or(Vec::new(), |h| {
            h.iter()
                .map(|h| {
                    let v = String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned();
                    (h.key.to_string(), v)
                })
                .collect()
        });
        let value = std::str::from_utf8(m.payload().unwrap()).unwrap();
        let mut lines = value.lines();
        let header: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
        let events = lines.map(|l| serde_json::from_str(l).unwrap()).collect();
        out.push(Record {
            bytes: value.len(),
            partition: m.partition(),
            key: String::from_utf8_lossy(m.key().unwrap()).into_owned(),
            headers,
            header,
            events,
        });
    }
    out
}

fn seqs(records: &[Record]) -> BTreeSet<u64> {
    records
        .iter()
        .flat_map(|r| {
            r.events
                .iter()
                .map(|e| e["fields"]["seq"].as_u64().unwrap())
        })
        .collect()
}

struct Record {
    /// The value's size.
    bytes: usize,
    partition: i32,
    key: String,
    headers: Vec<(String, String)>,
    header: Value,
    events: Vec<Value>,
}

fn cluster_config(dir: &Path, brokers: &str, topic: &str) -> logway::Config {
    two_tenant_config(
        dir,
        &format!(
            r#"
[cluster]
enabled = true
brokers = "{brokers}"
topic = "{topic}"
partitions = 6
replication_factor = 1
ack_timeout = "3s"
max_record_bytes = 4096
"#
        ),
    )
}

/// A cluster node's `[cluster]` and `[archive]` sections: a topic of
/// `partitions`, archive rounds closed after `archive_age`, searches
/// asking `peers`.
pub fn node_sections(
    brokers: &str,
    s3: &S3Server,
    partitions: u32,
    archive_age: &str,
    peers: &[String],
) -> String {
    let peers: Vec<String> = peers.iter().map(|p| format!("\"{p}\"")).collect();
    format!(
        r#"
[cluster]
enabled = true
brokers = "{brokers}"
topic = "events"
partitions = {partitions}
replication_factor = 1
ack_timeout = "5s"
peer_timeout = "2s"
peers = [{peers}]
[archive]
max_object_age = "{archive_age}"
{s3}"#,
        peers = peers.join(", "),
        s3 = s3.archive_toml()
    )
}

/// A node's config file for the `logway` binary: listening on `port`,
/// its data under `dir`, tenant `a` with the `/mobile` route, `sections`.
pub fn node_config_file(dir: &Path, port: u16, sections: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("logway.toml");
    let text = format!(
        r#"
[server]
http_addr = "127.0.0.1:{port}"
[storage]
data_dir = "{data}"
[hot]
commit_interval = "100ms"
[search]
max_limit = 10000
{sections}
[[tenants]]
name = "a"
ingest_keys = ["{A_INGEST}"]
admin_keys = ["{A_ADMIN}"]
routes = [{{ path = "/mobile", type = "mobile_logs" }}]
"#,
        data = dir.join("data").display(),
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// A broker and an S3-protocol bucket under `dir`.
pub async fn broker_and_bucket(dir: &Path) -> (Broker, S3Server) {
    let broker_dir = dir.join("broker");
    std::fs::create_dir_all(&broker_dir).unwrap();
    let broker = Broker::start(&broker_dir).await;
    (broker, S3Server::start(&dir.join("s3")).await)
}

/// `GET {url}/api/v1/search?{query}` with tenant a's admin key: the answer.
pub async fn search_a(client: &reqwest::Client, url: &str, query: &[(&str, String)]) -> Value {
    let r = client
        .get(format!("{url}/api/v1/search"))
        .bearer_auth(A_ADMIN)
        .query(query)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

pub fn lines(from: u64, n: u64) -> String {
    (from..from + n)
        .map(|i| format!("{}\n", json!({"message": format!("event {i}"), "seq": i})))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_gateway_acks_once_the_topic_has_the_batch_and_503s_while_kafka_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let broker_dir = dir.path().join("broker");
    std::fs::create_dir_all(&broker_dir).unwrap();
    let mut broker = Broker::start(&broker_dir).await;
    let gw = TestGateway::start(cluster_config(
        &dir.path().join("node"),
        &broker.addr(),
        "events",
    ))
    .await;

    // Acknowledged requests: 5 of 20 events, one with an Idempotency-Key.
    let mut acked = BTreeSet::new();
    for r in 0..4u64 {
        let mut req = gw
            .post("/mobile", A_INGEST)
            .header("content-type", "application/x-ndjson")
            .body(lines(r * 5, 5));
        if r == 3 {
            req = req.header("idempotency-key", "retry-me-1");
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
        acked.extend(r * 5..r * 5 + 5);
    }
    let records = read_topic(&broker.addr(), "events", 6, &acked);
    assert_eq!(records.len(), 4, "one record per request");
    for rec in &records {
        let header = |k: &str| {
            rec.headers
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(header("tenant"), Some("a"));
        assert_eq!(header("type"), Some("mobile_logs"));
        assert_eq!(header("logway-batch"), Some("2"));
        assert!(rec.key.starts_with("a/mobile_logs/"), "{}", rec.key);
        assert_eq!(rec.header["tenant"], "a");
        assert_eq!(rec.header["n"], rec.events.len());
        for e in &rec.events {
            assert_eq!(e["tenant"], "a");
            assert_eq!(e["type"], "mobile_logs");
            assert_eq!(e["message"], format!("event {}", e["fields"]["seq"]));
        }
    }
    let keyed: Vec<&Record> = records
        .iter()
        .filter(|r| r.header["idempotency"]["key"] == "retry-me-1")
        .collect();
    assert_eq!(keyed.len(), 1);
    assert_eq!(seqs(&records), acked);
    let metrics = gw.metrics().await;
    assert_eq!(
        metric_sum(&metrics, "logway_cluster_records_delivered_total"),
        4.0
    );
    assert_eq!(metric_sum(&metrics, "logway_cluster_brokers_down"), 0.0);

    // A request larger than a record is cut into several records, all
    // under the limit, on one partition; an event alone larger is a 413.
    let resp = gw
        .post("/mobile", A_INGEST)
        .header("content-type", "application/x-ndjson")
        .body(lines(1000, 300))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let big: BTreeSet<u64> = (1000..1300).collect();
    acked.extend(big.iter().copied());
    let records = read_topic(&broker.addr(), "events", 6, &acked);
    let parts: Vec<&Record> = records
        .iter()
        .filter(|r| {
            r.events
                .iter()
                .any(|e| e["fields"]["seq"].as_u64() >= Some(1000))
        })
        .collect();
    assert!(parts.len() > 5, "{} parts", parts.len());
    for p in &parts {
        assert!(p.bytes <= 4096, "a part of {} bytes", p.bytes);
        assert_eq!(
            (p.key.as_str(), p.partition),
            (parts[0].key.as_str(), parts[0].partition)
        );
    }
    let part_seqs: Vec<u64> = parts
        .iter()
        .flat_map(|r| {
            r.events
                .iter()
                .map(|e| e["fields"]["seq"].as_u64().unwrap())
        })
        .collect();
    assert_eq!(
        part_seqs,
        big.iter().copied().collect::<Vec<_>>(),
        "in order, once"
    );
    let huge = json!({"message": "x".repeat(5000)}).to_string();
    let resp = gw
        .post("/mobile", A_INGEST)
        .header("content-type", "application/x-ndjson")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);

    // The broker goes away: no false 2xx, a 503 with Retry-After instead.
    broker.kill();
    let mut refused = 0;
    for r in 4..8u64 {
        let resp = gw
            .post("/mobile", A_INGEST)
            .header("content-type", "application/x-ndjson")
            .body(lines(r * 5, 5))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 503, "batch {r} while the broker is down");
        assert!(resp.headers().contains_key("retry-after"));
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unavailable", "{body}");
        refused += 1;
    }
    assert_eq!(refused, 4);
    let metrics = gw.metrics().await;
    assert!(
        metric_sum(&metrics, "logway_cluster_ack_timeouts_total") >= 1.0,
        "{metrics}"
    );

    // It comes back: ingest resumes by itself, and every acknowledged
    // event is on the topic.
    broker.restart().await;
    let start = Instant::now();
    let mut next = 100u64;
    let mut resumed = false;
    while start.elapsed() < Duration::from_secs(60) {
        let resp = gw
            .post("/mobile", A_INGEST)
            .header("content-type", "application/x-ndjson")
            .body(lines(next, 5))
            .send()
            .await
            .unwrap();
        if resp.status() == 200 {
            acked.extend(next..next + 5);
            resumed = true;
            break;
        }
        assert_eq!(resp.status(), 503);
        next += 5;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        resumed,
        "ingest did not resume within 60 s of the broker's return"
    );
    let records = read_topic(&broker.addr(), "events", 6, &acked);
    let seen = seqs(&records);
    let lost: Vec<&u64> = acked.difference(&seen).collect();
    assert!(
        lost.is_empty(),
        "acknowledged events missing from the topic: {lost:?}"
    );
    assert!(records.iter().all(|r| (0..6).contains(&r.partition)));

    // Replay is refused in cluster mode, saying why (its partitions would
    // not be found by the cluster's search).
    let resp = gw
        .client
        .post(format!("{}/api/v1/replay", gw.url))
        .bearer_auth(A_ADMIN)
        .json(&json!({"from": "now-1h", "to": "now"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 501);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_implemented", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cluster mode"),
        "{body}"
    );
    gw.stop().await;
}
