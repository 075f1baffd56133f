//! The `[hec]` section: Splunk's HTTP Event Collector
//! (`/services/collector/...`).

use serde::Deserialize;

use crate::config::ConfigError;
use crate::config::value::invalid;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HecConfig {
    /// Serve `/services/collector/...`.
    pub enabled: bool,
    /// The event's metadata field naming its log type (`sourcetype`,
    /// `source` or `index`); its value becomes a type name as an
    /// Elasticsearch index does.
    pub type_field: String,
    /// The log type of an event without it.
    pub default_type: String,
    /// Events one request may carry at most (more: 413, nothing stored).
    pub max_events_per_request: usize,
}

impl Default for HecConfig {
    fn default() -> Self {
        HecConfig {
            enabled: true,
            type_field: "sourcetype".into(),
            default_type: "hec".into(),
            max_events_per_request: 100_000,
        }
    }
}

impl HecConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !matches!(self.type_field.as_str(), "sourcetype" | "source" | "index") {
            return Err(invalid(
                "hec.type_field",
                format!("`{}`: one of sourcetype, source, index", self.type_field),
            ));
        }
        if !crate::config::valid_type_name(&self.default_type) {
            return Err(invalid(
                "hec.default_type",
                format!("`{}` is not a valid log type name", self.default_type),
            ));
        }
        if self.max_events_per_request == 0 {
            return Err(invalid("hec.max_events_per_request", "must be at least 1"));
        }
        Ok(())
    }
}
