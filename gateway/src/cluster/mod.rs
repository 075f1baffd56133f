//! # Cluster mode: a Kafka topic in place of the local WAL
//!
//! The design and what each role promises are in `docs/cluster.md`. The
//! gateway role ([`producer`]) writes to the events topic instead of the
//! WAL; the indexer role ([`indexer`]) runs a hot indexer per partition
//! the node owns in its consumer group ([`group`]); the archiver role
//! ([`archiver`]) an archive writer per partition, the same way; the
//! searcher role is the search fan-out (`crate::api::fanout`). The owner
//! of partition 0 of the index group runs the singleton jobs
//! (`crate::state::Core::leads_singletons`).
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
