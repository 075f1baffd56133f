//! A `[[kafka_sources]]` section: topics read into one tenant.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::config::ConfigError;
use crate::config::value::{invalid, refuse_own_properties};
use crate::event::FieldsConfig;
use crate::filter::FilterRef;
use crate::tenants::Route;
use crate::tenants::config::TenantConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Each record's value is one JSON object.
    Json,
    /// Each record's value is one message (a trailing newline dropped).
    Text,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Start {
    Earliest,
    Latest,
}

/// Topics read by one consumer group into one tenant and log type.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSourceConfig {
    /// Bootstrap servers, `host:port,host:port`.
    pub brokers: String,
    pub topics: Vec<String>,
    /// The consumer group: its committed offsets are where a restart
    /// resumes.
    #[serde(default = "default_group")]
    pub group_id: String,
    pub tenant: String,
    #[serde(rename = "type")]
    pub log_type: String,
    #[serde(default = "default_format")]
    pub format: Format,
    /// Where a group without committed offsets starts.
    #[serde(default = "default_start")]
    pub start: Start,
    /// Records stored as one batch at most.
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
    /// WASM filters (the tenant's), as on a route.
    #[serde(default)]
    pub filters: Vec<FilterRef>,
    /// Field names for the promoted fields, over the tenant's `fields`.
    #[serde(default)]
    pub fields: FieldsConfig,
    /// What the source promises its events: `log` (the default),
    /// `metric` or `event` (docs/guides/delivery-classes.md).
    #[serde(default)]
    pub class: crate::config::class::Class,
    /// More librdkafka properties (security, tuning), as they are.
    #[serde(default)]
    pub client: BTreeMap<String, String>,
}

fn default_group() -> String {
    "logway".into()
}

fn default_format() -> Format {
    Format::Json
}

fn default_start() -> Start {
    Start::Earliest
}

fn default_max_batch() -> usize {
    1000
}

/// librdkafka properties the source sets itself: committing only what is
/// durable depends on them.
const OWN_PROPERTIES: &[&str] = &[
    "bootstrap.servers",
    "group.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "auto.offset.reset",
];

impl KafkaSourceConfig {
    /// What the source gives its events, as a route would.
    pub fn route(&self, tenants: &[TenantConfig]) -> Route {
        Route::for_listener(
            tenants,
            &self.tenant,
            &self.log_type,
            &self.filters,
            &self.fields,
            self.class,
        )
    }

    /// Checks source `i` (`kafka_sources[i]`) against the tenants.
    pub fn validate(&self, i: usize, tenants: &[TenantConfig]) -> Result<(), ConfigError> {
        let at = |key: &str| format!("kafka_sources[{i}].{key}");
        crate::sources::check_bound(
            crate::sources::BoundConfig {
                at: format!("kafka_sources[{i}]"),
                no_keys: "",
                tenant: &self.tenant,
                log_type: &self.log_type,
                // Whoever may write to the topics sends events: Kafka's
                // own ACLs decide that.
                unauthenticated: true,
                tls: None,
                filters: &self.filters,
            },
            tenants,
        )?;
        if self.brokers.trim().is_empty() {
            return Err(invalid(&at("brokers"), "must name at least one broker"));
        }
        if self.topics.is_empty() || self.topics.iter().any(|t| t.is_empty()) {
            return Err(invalid(&at("topics"), "must name at least one topic"));
        }
        if self.group_id.is_empty() {
            return Err(invalid(&at("group_id"), "must not be empty"));
        }
        if self.max_batch == 0 {
            return Err(invalid(&at("max_batch"), "must be at least 1"));
        }
        refuse_own_properties(
            &at("client"),
            &self.client,
            OWN_PROPERTIES,
            "use the source's keys",
        )?;
        self.fields.validate(&at("fields"))
    }
}
