//! The `[datadog]` section: Datadog's logs intake (`/api/v2/logs`).

use serde::Deserialize;

use crate::config::ConfigError;
use crate::config::value::invalid;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatadogConfig {
    /// Serve `POST /api/v2/logs` and `/v1/input`.
    pub enabled: bool,
    /// The item's attribute naming its log type (`ddsource` or
    /// `service`); its value becomes a type name as an Elasticsearch index
    /// does.
    pub type_field: String,
    /// The log type of an item without it.
    pub default_type: String,
    /// Items one request may carry at most (more: 413, nothing stored).
    pub max_items_per_request: usize,
}

impl Default for DatadogConfig {
    fn default() -> Self {
        DatadogConfig {
            enabled: true,
            type_field: "ddsource".into(),
            default_type: "datadog".into(),
            max_items_per_request: 100_000,
        }
    }
}

impl DatadogConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !matches!(self.type_field.as_str(), "ddsource" | "service") {
            return Err(invalid(
                "datadog.type_field",
                format!("`{}`: ddsource or service", self.type_field),
            ));
        }
        if !crate::config::valid_type_name(&self.default_type) {
            return Err(invalid(
                "datadog.default_type",
                format!("`{}` is not a valid log type name", self.default_type),
            ));
        }
        if self.max_items_per_request == 0 {
            return Err(invalid(
                "datadog.max_items_per_request",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}
