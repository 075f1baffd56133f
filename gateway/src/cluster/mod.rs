//! # Cluster mode: a Kafka topic in place of the local WAL
//!
//! The design and what each role promises are in `docs/cluster.md`. Built
//! so far: the gateway role ([`producer`]), whose log is the events topic
//! instead of the WAL; the indexer role ([`indexer`]): a hot indexer per
//! partition the node owns in its consumer group ([`group`]); the
//! archiver role ([`archiver`]): an archive writer per partition, the
//! same way. The searcher role (the search fan-out) is not built yet;
//! `cluster.roles` refuses it.
//!
//! Files: [`config`] the `[cluster]` section; [`producer`] the gateway
//! role's [`crate::pipeline::Log`]; [`group`] a role's group member, which
//! runs a consumer per owned partition; [`indexer`] and [`archiver`] the
//! two roles' work per partition.

pub mod archiver;
pub mod config;
pub mod group;
pub mod indexer;
pub mod producer;

pub use config::{ClusterConfig, Role};
pub use producer::KafkaLog;
