//! A route's `webhook`: where its event-class events are pushed
//! (`crate::webhooks`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::config::ConfigError;
use crate::config::value::{check_headers, check_http_url, de_duration, invalid};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// The receiver, e.g. "https://billing.internal/events".
    pub url: String,
    /// Extra request headers (`Authorization`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// How long one request may take.
    #[serde(default = "ten_seconds", deserialize_with = "de_duration")]
    pub timeout: Duration,
    /// Events per request at most.
    #[serde(default = "default_max_events")]
    pub max_events: usize,
    /// How long a request is tried again (5xx, 429, no answer) before it
    /// is abandoned and the cursor moves on.
    #[serde(default = "default_give_up", deserialize_with = "de_duration")]
    pub give_up_after: Duration,
}

fn ten_seconds() -> Duration {
    Duration::from_secs(10)
}
fn default_max_events() -> usize {
    500
}
fn default_give_up() -> Duration {
    Duration::from_secs(3600)
}

impl WebhookConfig {
    pub fn validate(&self, at: &str) -> Result<(), ConfigError> {
        check_http_url(&format!("{at}.url"), &self.url)?;
        check_headers(&format!("{at}.headers"), &self.headers)?;
        if self.timeout.is_zero() || self.max_events == 0 {
            return Err(invalid(at, "timeout and max_events must be more than 0"));
        }
        Ok(())
    }
}

/// What spans routes: a tenant's log type has one webhook at most (the
/// WAL's batches carry the type, not the route), and cluster mode, which
/// writes no local WAL, has none yet.
pub fn validate_routes(
    tenants: &[crate::tenants::config::TenantConfig],
    cluster: bool,
) -> Result<(), ConfigError> {
    let mut seen = std::collections::HashSet::new();
    for (i, t) in tenants.iter().enumerate() {
        for (j, r) in t.routes.iter().enumerate() {
            if r.webhook.is_none() {
                continue;
            }
            let at = format!("tenants[{i}].routes[{j}].webhook");
            if cluster {
                return Err(invalid(
                    &at,
                    "event webhooks are not available in cluster mode yet",
                ));
            }
            if !seen.insert((t.name.as_str(), r.log_type.as_str())) {
                return Err(invalid(
                    &at,
                    format!(
                        "type `{}` of tenant `{}` already has a webhook; one per tenant and type",
                        r.log_type, t.name
                    ),
                ));
            }
        }
    }
    Ok(())
}
