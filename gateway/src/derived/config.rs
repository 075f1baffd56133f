//! The `[metrics]` section: how metrics derived from logs are written
//! (the rules are each tenant's `derived_metrics`), and where tenants'
//! series are sent by remote-write (`[[metrics.remote_write]]`).

use std::time::Duration;

use serde::Deserialize;

use crate::config::ConfigError;
use crate::config::value::{de_duration, invalid, valid_type_name};
use crate::tenants::config::TenantConfig;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Each derived series writes one point per interval.
    #[serde(deserialize_with = "de_duration")]
    pub derived_interval: Duration,
    /// The log type of derived points.
    pub derived_type: String,
    /// Derived series held per tenant and interval at most.
    pub derived_max_series: usize,
    /// Where tenants' series are sent by Prometheus remote-write.
    pub remote_write: Vec<crate::telemetry::remote_write::RemoteWriteConfig>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            derived_interval: Duration::from_secs(10),
            derived_type: "metrics".into(),
            derived_max_series: 10_000,
            remote_write: Vec::new(),
        }
    }
}

/// Fields a derived metric may be tagged by, at most.
pub const MAX_BY: usize = 4;

impl MetricsConfig {
    pub fn validate(&self, tenants: &[TenantConfig]) -> Result<(), ConfigError> {
        if self.derived_interval < Duration::from_millis(100) {
            return Err(invalid(
                "metrics.derived_interval",
                "must be at least 100ms",
            ));
        }
        if !valid_type_name(&self.derived_type) {
            return Err(invalid(
                "metrics.derived_type",
                format!("`{}` is not a valid log type", self.derived_type),
            ));
        }
        if self.derived_max_series == 0 {
            return Err(invalid("metrics.derived_max_series", "must be at least 1"));
        }
        for (i, w) in self.remote_write.iter().enumerate() {
            w.validate(i, |name| tenants.iter().any(|t| t.name == name))?;
        }
        for (i, t) in tenants.iter().enumerate() {
            for (k, m) in t.derived_metrics.iter().enumerate() {
                let at = |key: &str| format!("tenants[{i}].derived_metrics[{k}].{key}");
                if m.name.is_empty() || m.name.contains(['"', '\\']) {
                    return Err(invalid(
                        &at("name"),
                        "must be non-empty, without quotes or backslashes",
                    ));
                }
                if m.by.len() > MAX_BY || m.by.iter().any(String::is_empty) {
                    return Err(invalid(
                        &at("by"),
                        format!("at most {MAX_BY} non-empty field names"),
                    ));
                }
                if m.field.as_deref() == Some("") {
                    return Err(invalid(&at("field"), "must be a field name"));
                }
                if let Some(q) = &m.query {
                    crate::tail::Matcher::parse(q)
                        .map_err(|e| invalid(&at("query"), format!("`{q}`: {e}")))?;
                }
            }
        }
        Ok(())
    }
}
