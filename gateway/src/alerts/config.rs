//! The `[alerts]` section, and a tenant's `alert_receivers` and
//! `alert_rules` (checked here, with the tenants).

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::rule::Rule;
use crate::config::value::{Secret, de_duration, de_opt_duration, invalid, is_name_char};
use crate::config::{ConfigError, TenantConfig};
use crate::hot::HotSchema;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Evaluate rules and deliver notifications.
    pub enabled: bool,
    /// Longest one evaluation of a rule may run; past it the evaluation is
    /// abandoned, marked, and the alerts keep their state.
    #[serde(deserialize_with = "de_duration")]
    pub evaluation_budget: Duration,
    /// Rules a tenant may create through the API.
    pub max_rules_per_tenant: usize,
    /// Groups one rule evaluation counts at most (the largest first).
    pub max_groups: usize,
    /// The UI's address as people reach it, for links in notifications
    /// (default: `http://` and `server.http_addr`).
    pub external_url: Option<String>,
    /// Notifications kept per receiver while it fails; past it the oldest
    /// are dropped and counted.
    pub max_queued: usize,
    /// The longest wait between two tries of a failing receiver (the wait
    /// starts at 1s and doubles).
    #[serde(deserialize_with = "de_duration")]
    pub retry_backoff_max: Duration,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            enabled: true,
            evaluation_budget: Duration::from_secs(10),
            max_rules_per_tenant: 1000,
            max_groups: 1000,
            external_url: None,
            max_queued: 10_000,
            retry_backoff_max: Duration::from_secs(60),
        }
    }
}

impl AlertsConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.evaluation_budget.is_zero() {
            return Err(invalid(
                "alerts.evaluation_budget",
                "must be longer than 0s",
            ));
        }
        if self.max_groups == 0 || self.max_queued == 0 {
            return Err(invalid(
                "alerts",
                "max_groups and max_queued must be at least 1",
            ));
        }
        if self.retry_backoff_max < Duration::from_secs(1) {
            return Err(invalid("alerts.retry_backoff_max", "must be at least 1s"));
        }
        if let Some(u) = &self.external_url {
            check_url("alerts.external_url", u)?;
        }
        Ok(())
    }
}

/// Where a receiver's notifications go, in its own format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiverKind {
    /// Alertmanager's API: `POST {url}/api/v2/alerts`, re-sent while firing.
    Alertmanager,
    /// Alertmanager's webhook v4 JSON body, `POST url`.
    Webhook,
    /// A Slack-compatible incoming webhook: `{"text": …}`, `POST url`.
    Slack,
}

/// One `[[tenants.alert_receivers]]` entry. Receivers are the operator's
/// (the config file), not the API's: a tenant key cannot make the
/// gateway send requests to an address of its choosing.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverConfig {
    pub name: String,
    pub kind: ReceiverKind,
    pub url: String,
    /// Extra request headers (e.g. `Authorization`), never shown.
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    /// One delivery attempt's limit (default 10s).
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub timeout: Option<Duration>,
}

fn check_url(key: &str, url: &str) -> Result<(), ConfigError> {
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
        _ => Err(invalid(key, format!("`{url}` is not an http(s) URL"))),
    }
}

/// Checks tenant `i`'s receivers and rules.
pub fn validate_tenant(i: usize, t: &TenantConfig, schema: &HotSchema) -> Result<(), ConfigError> {
    let mut names = HashSet::new();
    for (j, r) in t.alert_receivers.iter().enumerate() {
        let key = format!("tenants[{i}].alert_receivers[{j}]");
        if r.name.is_empty() || !r.name.chars().all(is_name_char) || !names.insert(&r.name) {
            return Err(invalid(
                &format!("{key}.name"),
                format!(
                    "`{}` is empty, uses other characters than a-z, A-Z, 0-9, '_' and '-', or is listed twice",
                    r.name
                ),
            ));
        }
        check_url(&format!("{key}.url"), &r.url)?;
        for h in r.headers.keys() {
            if reqwest::header::HeaderName::from_bytes(h.as_bytes()).is_err() {
                return Err(invalid(
                    &format!("{key}.headers"),
                    format!("`{h}` is not a header name"),
                ));
            }
        }
    }
    let receivers = receiver_names(t);
    let mut rules = HashSet::new();
    for (j, spec) in t.alert_rules.iter().enumerate() {
        let key = format!("tenants[{i}].alert_rules[{j}]");
        if !rules.insert(&spec.name) {
            return Err(invalid(
                &format!("{key}.name"),
                format!("duplicate rule `{}`", spec.name),
            ));
        }
        Rule::check(spec.clone(), schema, &receivers)
            .map_err(|e| invalid(&format!("{key}.{}", e.key), e.message))?;
    }
    Ok(())
}

pub fn receiver_names(t: &TenantConfig) -> Vec<String> {
    t.alert_receivers.iter().map(|r| r.name.clone()).collect()
}
