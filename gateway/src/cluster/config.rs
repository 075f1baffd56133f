//! The `[cluster]` section: Kafka in place of the local WAL
//! (`docs/cluster.md`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::config::ConfigError;
use crate::config::value::{de_duration, invalid, refuse_own_properties};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Gateway,
    Indexer,
    Archiver,
    Searcher,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// Off: the embedded single node (the local WAL).
    pub enabled: bool,
    /// Kafka bootstrap servers, `host:port,host:port`.
    pub brokers: String,
    /// The events topic.
    pub topic: String,
    /// Partitions the topic is created with when it does not exist.
    pub partitions: i32,
    /// Replication factor the topic is created with.
    pub replication_factor: i32,
    /// Create the topic at start when it does not exist.
    pub create_topic: bool,
    /// Partitions one tenant and type spread over at most.
    pub partitions_per_stream: u32,
    /// What this node does.
    pub roles: Vec<Role>,
    /// The roles' consumer groups are `{group_prefix}-index`, ...
    pub group_prefix: String,
    /// The nodes a search asks (the searcher role): base URLs
    /// (`http://10.0.0.2:8080`), or `dns:{name}:{port}` for every address
    /// a DNS name has; this node may be among them.
    pub peers: Vec<String>,
    /// A peer that has not answered a search within this is left out
    /// (its partitions are then missing).
    #[serde(deserialize_with = "de_duration")]
    pub peer_timeout: Duration,
    /// A search some partition is missing from is refused (503) instead
    /// of answered `partial`.
    pub strict_search: bool,
    /// A batch not reported delivered within this is answered 503.
    #[serde(deserialize_with = "de_duration")]
    pub ack_timeout: Duration,
    /// Bytes the producer queues at most; past it, 503 at once.
    pub queue_bytes: u64,
    /// A batch larger than this is cut into several records; one event
    /// larger than this is refused (413).
    pub max_record_bytes: usize,
    /// More librdkafka properties, passed as they are: security
    /// (`security.protocol`, `sasl.mechanism`, `sasl.username`,
    /// `sasl.password`, `ssl.ca.location`, ...) and tuning.
    pub client: BTreeMap<String, String>,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            enabled: false,
            brokers: "127.0.0.1:9092".into(),
            topic: "logway-events".into(),
            partitions: 12,
            replication_factor: 3,
            create_topic: true,
            partitions_per_stream: 4,
            roles: vec![Role::Gateway, Role::Indexer, Role::Archiver, Role::Searcher],
            peers: Vec::new(),
            peer_timeout: Duration::from_secs(5),
            strict_search: false,
            group_prefix: "logway".into(),
            ack_timeout: Duration::from_secs(10),
            queue_bytes: 256 << 20,
            max_record_bytes: 900 << 10,
            client: BTreeMap::new(),
        }
    }
}

/// librdkafka properties Logway sets itself: the delivery contract
/// (`docs/cluster.md`) depends on them.
pub const OWN_PROPERTIES: &[&str] = &[
    "bootstrap.servers",
    "acks",
    "enable.idempotence",
    "compression.type",
    "message.timeout.ms",
    "partitioner",
    "queue.buffering.max.kbytes",
    "message.max.bytes",
    "group.id",
    "partition.assignment.strategy",
    "enable.auto.commit",
    "auto.offset.reset",
];

impl ClusterConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.enabled {
            return Ok(());
        }
        if self.brokers.trim().is_empty() {
            return Err(invalid("cluster.brokers", "must name at least one broker"));
        }
        if self.topic.is_empty() {
            return Err(invalid("cluster.topic", "must not be empty"));
        }
        if self.partitions < 1 || self.replication_factor < 1 {
            return Err(invalid(
                "cluster.partitions",
                "partitions and replication_factor must be at least 1",
            ));
        }
        if self.partitions_per_stream == 0 {
            return Err(invalid(
                "cluster.partitions_per_stream",
                "must be at least 1",
            ));
        }
        if self.roles.is_empty() {
            return Err(invalid("cluster.roles", "must name at least one role"));
        }
        for peer in &self.peers {
            let ok = match peer.strip_prefix("dns:") {
                Some(rest) => rest
                    .rsplit_once(':')
                    .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok()),
                None => peer.starts_with("http://") || peer.starts_with("https://"),
            };
            if !ok {
                return Err(invalid(
                    "cluster.peers",
                    format!("`{peer}` is neither a base URL (http://host:port) nor dns:name:port"),
                ));
            }
        }
        if self.peer_timeout.is_zero() {
            return Err(invalid("cluster.peer_timeout", "must be more than 0"));
        }
        if self.group_prefix.is_empty() {
            return Err(invalid("cluster.group_prefix", "must not be empty"));
        }
        if self.ack_timeout.is_zero() {
            return Err(invalid("cluster.ack_timeout", "must be more than 0"));
        }
        if self.queue_bytes < 1024 {
            return Err(invalid("cluster.queue_bytes", "must be at least 1024"));
        }
        refuse_own_properties(
            "cluster.client",
            &self.client,
            OWN_PROPERTIES,
            "use the [cluster] keys (see docs/cluster.md)",
        )
    }
}
