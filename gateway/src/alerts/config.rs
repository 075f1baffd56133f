//! The `[alerts]` section: its settings, and per tenant the receivers and
//! the rules kept in the config (`[alerts.tenants.<tenant>]`).

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::rule::{Rule, RuleSpec};
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
    /// Rules a tenant may have, config and API together; past it the API
    /// refuses to create one.
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
    /// Receivers and config rules, by tenant name.
    pub tenants: BTreeMap<String, TenantAlerts>,
}

/// `[alerts.tenants.<tenant>]`: where the tenant's alerts go, and its
/// rules kept in the config (read-only through the API).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantAlerts {
    #[serde(default)]
    pub receivers: Vec<ReceiverConfig>,
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
}

impl TenantAlerts {
    pub fn receiver_names(&self) -> Vec<String> {
        self.receivers.iter().map(|r| r.name.clone()).collect()
    }
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
            tenants: BTreeMap::new(),
        }
    }
}

impl AlertsConfig {
    pub fn validate(&self, tenants: &[TenantConfig]) -> Result<(), ConfigError> {
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
        let schema = HotSchema::new();
        for (name, t) in &self.tenants {
            if !tenants.iter().any(|c| &c.name == name) {
                return Err(invalid(
                    &format!("alerts.tenants.{name}"),
                    format!("no tenant `{name}` in [[tenants]]"),
                ));
            }
            validate_tenant(name, t, &schema)?;
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

/// One receiver of `[alerts.tenants.<tenant>]`. Receivers are the operator's
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

/// Checks a tenant's receivers and rules.
fn validate_tenant(tenant: &str, t: &TenantAlerts, schema: &HotSchema) -> Result<(), ConfigError> {
    let mut names = HashSet::new();
    for (j, r) in t.receivers.iter().enumerate() {
        let key = format!("alerts.tenants.{tenant}.receivers[{j}]");
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
    let receivers = t.receiver_names();
    let mut rules = HashSet::new();
    for (j, spec) in t.rules.iter().enumerate() {
        let key = format!("alerts.tenants.{tenant}.rules[{j}]");
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

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn load(alerts: &str) -> Result<Config, String> {
        Config::from_toml(&format!(
            "{alerts}\n[[tenants]]\nname = \"acme\"\nadmin_keys = [\"acme-admin-key\"]\n"
        ))
        .map_err(|e| e.to_string())
    }

    /// Each error names the key, down to the rule's own.
    #[test]
    fn config_rules_and_receivers_are_checked_at_load() {
        let ok = load(
            "[alerts.tenants.acme]\nreceivers = [{ name = \"am\", kind = \"alertmanager\", url = \"http://127.0.0.1:9093\" }]\n[[alerts.tenants.acme.rules]]\nname = \"errors\"\nkind = \"frequency\"\nquery = \"level:error\"\nwindow = \"5m\"\nthreshold = 10\nfor = \"1m\"\nreceivers = [\"am\"]\n",
        )
        .unwrap();
        assert_eq!(ok.alerts.tenants["acme"].rules[0].name, "errors");
        let e = load("[alerts.tenants.other]\n").unwrap_err();
        assert!(
            e.contains("alerts.tenants.other") && e.contains("no tenant"),
            "{e}"
        );
        let e = load(
            "[[alerts.tenants.acme.rules]]\nname = \"x\"\nkind = \"frequency\"\nwindow = \"5m\"\n",
        )
        .unwrap_err();
        assert!(e.contains("alerts.tenants.acme.rules[0].threshold"), "{e}");
        let e = load("[alerts.tenants.acme]\nreceivers = [{ name = \"s\", kind = \"slack\", url = \"file:///etc/passwd\" }]\n").unwrap_err();
        assert!(e.contains("alerts.tenants.acme.receivers[0].url"), "{e}");
    }
}
