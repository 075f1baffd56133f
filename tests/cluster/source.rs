//! Kafka as a source: `[[kafka_sources]]` read a topic another producer
//! wrote into searchable events, once, and resume at the committed offsets.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::util::Timeout;
use serde_json::{Value, json};

use super::Broker;
use crate::common::*;

/// Another producer: `values` onto `topic` (created with 3 partitions).
async fn produce(brokers: &str, topic: &str, values: Vec<String>) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    let new = NewTopic::new(topic, 3, TopicReplication::Fixed(1));
    admin
        .create_topics([&new], &AdminOptions::new())
        .await
        .unwrap();
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .create()
        .unwrap();
    let sends = values.iter().enumerate().map(|(i, v)| {
        let key = format!("k{i}");
        let p = &p;
        async move {
            p.send(FutureRecord::to(topic).key(&key).payload(v), Timeout::Never)
                .await
                .map_err(|(e, _)| e)
                .unwrap();
        }
    });
    futures_util::future::join_all(sends).await;
}

/// The sum of `group`'s committed offsets over `topic`'s partitions.
fn committed(brokers: &str, group: &str, topic: &str, partitions: i32) -> i64 {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let got = c.committed_offsets(tpl, Duration::from_secs(10)).unwrap();
    got.elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(o) => o,
            _ => 0,
        })
        .sum()
}

/// Searches `q` until its total is `n` (a consumer group takes seconds to
/// form); returns the hits.
async fn wait_total(gw: &TestGateway, q: &str, n: u64) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let (status, body) = gw.search_raw(A_ADMIN, &[("q", q), ("limit", "1000")]).await;
        assert_eq!(status, 200, "{body}");
        if body["total"].as_u64() == Some(n) {
            return body["hits"].as_array().unwrap().clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{q}: {} hits, not {n}, after 60 s",
            body["total"]
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The `seq` field of every hit; a seq twice fails.
fn hit_seqs(hits: &[Value]) -> BTreeSet<u64> {
    let mut seqs = BTreeSet::new();
    for h in hits {
        let seq = h["fields"]["seq"].as_u64().unwrap();
        assert!(seqs.insert(seq), "seq {seq} stored twice");
    }
    seqs
}

fn kafka_sources(brokers: &str) -> String {
    format!(
        r#"
[[kafka_sources]]
brokers = "{brokers}"
topics = ["app-logs"]
tenant = "a"
type = "kafka_app"

[[kafka_sources]]
brokers = "{brokers}"
topics = ["plain"]
group_id = "logway-plain"
tenant = "a"
type = "kafka_text"
format = "text"
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_kafka_source_stores_every_record_of_a_topic_once_and_resumes_where_it_left() {
    let dir = tempfile::tempdir().unwrap();
    let broker_dir = dir.path().join("broker");
    std::fs::create_dir_all(&broker_dir).unwrap();
    let broker = Broker::start(&broker_dir).await;
    let brokers = broker.addr();
    let mut values: Vec<String> = (0..300)
        .map(|i| json!({"message": format!("order {i} placed"), "seq": i}).to_string())
        .collect();
    values.push("{not json".into());
    values.push("[1, 2]".into());
    produce(&brokers, "app-logs", values).await;
    let lines = (0..50).map(|i| format!("plain line {i}\n")).collect();
    produce(&brokers, "plain", lines).await;

    let node = dir.path().join("node");
    let gw = TestGateway::start(two_tenant_config(&node, &kafka_sources(&brokers))).await;
    let hits = wait_total(&gw, "type:kafka_app AND order", 300).await;
    assert_eq!(hit_seqs(&hits), (0..300).collect(), "every record once");
    let id = hits[0]["id"].as_str().unwrap();
    assert!(id.starts_with("kafka:app-logs/"), "{id}");
    // Values that are not JSON objects are kept, as rejected events.
    wait_total(&gw, "type:kafka_app AND outcome:rejected", 2).await;
    let plain = wait_total(&gw, "type:kafka_text", 50).await;
    assert!(
        plain
            .iter()
            .all(|h| h["message"].as_str().unwrap().starts_with("plain line "))
    );
    gw.stop().await;
    // What was stored is committed: the group's offsets are the topic's end.
    assert_eq!(committed(&brokers, "logway", "app-logs", 3), 302);

    // Stopped and started again: it resumes at the committed offsets,
    // reading only what was written meanwhile.
    let more = (300..400)
        .map(|i| json!({"message": format!("order {i} placed"), "seq": i}).to_string())
        .collect();
    produce(&brokers, "app-logs", more).await;
    let gw = TestGateway::start(two_tenant_config(&node, &kafka_sources(&brokers))).await;
    let hits = wait_total(&gw, "type:kafka_app AND order", 400).await;
    assert_eq!(hit_seqs(&hits), (0..400).collect());
    // Nothing more arrives later (no record read twice).
    tokio::time::sleep(Duration::from_secs(2)).await;
    wait_total(&gw, "type:kafka_app", 402).await;
    wait_total(&gw, "type:kafka_text", 50).await;
    gw.stop().await;
}
