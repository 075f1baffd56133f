//! The `[loki]` section: Loki's push API (`POST /loki/api/v1/push`).

use serde::Deserialize;

use crate::config::ConfigError;
use crate::config::value::invalid;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LokiConfig {
    /// Serve `/loki/api/v1/push`, `/api/prom/push` and `/ready`.
    pub enabled: bool,
    /// Stream labels naming the log type, tried in order (the value
    /// becomes a type name as an Elasticsearch index does).
    pub type_labels: Vec<String>,
    /// The log type of a stream none of them names.
    pub default_type: String,
    /// Labels one stream may have at most (more: 400).
    pub max_labels_per_stream: usize,
    /// Entries one request may carry at most (more: 413).
    pub max_entries_per_request: usize,
}

impl Default for LokiConfig {
    fn default() -> Self {
        LokiConfig {
            enabled: true,
            type_labels: vec!["job".into(), "service_name".into()],
            default_type: "loki".into(),
            max_labels_per_stream: 64,
            max_entries_per_request: 100_000,
        }
    }
}

impl LokiConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !crate::config::valid_type_name(&self.default_type) {
            return Err(invalid(
                "loki.default_type",
                format!("`{}` is not a valid log type name", self.default_type),
            ));
        }
        if self.max_labels_per_stream == 0 || self.max_entries_per_request == 0 {
            return Err(invalid(
                "loki.max_labels_per_stream",
                "the bounds must be at least 1",
            ));
        }
        Ok(())
    }
}
