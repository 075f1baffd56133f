//! # Cluster mode: a Kafka topic in place of the local WAL
//!
//! The design and what each role promises are in `docs/cluster.md`. Built
//! so far: the gateway role ([`producer`]), whose log is the events topic
//! instead of the WAL. The indexer, archiver and searcher roles (one
//! consumer per assigned partition, the search fan-out) are not built
//! yet; `cluster.roles` refuses them.
//!
//! Files: [`config`] the `[cluster]` section; [`producer`] the gateway
//! role's [`crate::pipeline::Log`].

pub mod config;
pub mod producer;

pub use config::{ClusterConfig, Role};
pub use producer::KafkaLog;
