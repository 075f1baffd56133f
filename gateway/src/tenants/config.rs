//! The `[[tenants]]` sections (keys, routes, origins, limits, retention,
//! field names) and the `[rate_limits]` defaults.

use std::collections::HashSet;
use std::time::Duration;

use serde::Deserialize;

use crate::config::ConfigError;
use crate::config::value::{
    FILTER_NAME_RULE, Secret, de_opt_duration, invalid, is_name_char, valid_filter_name,
    valid_type_name,
};
use crate::event::FieldsConfig;
use crate::filter::FilterRef;

pub const DEFAULT_TENANT: &str = "default";

/// One rate limit: events/s and bytes/s, each with a burst (default: one
/// second's worth). Unset parts are unlimited.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    pub events_per_sec: Option<u32>,
    pub events_burst: Option<u32>,
    pub bytes_per_sec: Option<u32>,
    pub bytes_burst: Option<u32>,
}

/// Limits for tenants that do not set their own.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitDefaults {
    /// Per tenant, all its routes together.
    pub tenant: Option<RateLimitConfig>,
    /// Per client IP within a tenant (for public browser and mobile keys).
    pub client: Option<RateLimitConfig>,
}

/// A tenant: its keys, its routes, its browser origins.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    pub name: String,
    /// Keys that may send logs (may be public, e.g. embedded in a web page).
    #[serde(default)]
    pub ingest_keys: Vec<Secret>,
    /// Keys that may send logs and search (later: manage filters, replay).
    #[serde(default)]
    pub admin_keys: Vec<Secret>,
    /// Client certificate names (subject CN or DNS subject alternative
    /// name) that may send logs for this tenant, over HTTPS or syslog over
    /// TLS, when the listener has a `client_ca_file`. A certificate never
    /// grants admin rights.
    #[serde(default)]
    pub ingest_cert_names: Vec<String>,
    /// Origins allowed to send from browsers (CORS); "*" allows any.
    #[serde(default)]
    pub cors_origins: Vec<String>,
    /// Serve the generic route `/v1/logs/{type}` for this tenant.
    #[serde(default = "yes")]
    pub generic_route: bool,
    /// URL path → log type.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// Limit on the tenant's traffic, all routes together.
    #[serde(default)]
    pub rate_limit: Option<RateLimitConfig>,
    /// Limit per client IP within this tenant.
    #[serde(default)]
    pub client_rate_limit: Option<RateLimitConfig>,
    /// This tenant's default hot retention (a type's own setting wins).
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub hot_retention: Option<Duration>,
    /// This tenant's default cold retention (a type's own setting wins).
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub cold_retention: Option<Duration>,
    /// Where this tenant's events keep their promoted fields, tried before
    /// the built-in names (a route's own `fields` win).
    #[serde(default)]
    pub fields: FieldsConfig,
    /// Index names of the compat protocols (an Elasticsearch `_index`) →
    /// a log type or one of this tenant's routes, first match wins;
    /// unmatched names get a type derived from the name.
    #[serde(default)]
    pub indices: Vec<IndexConfig>,
    /// Metrics derived from this tenant's events (`crate::derived`).
    #[serde(default)]
    pub derived_metrics: Vec<DerivedMetricConfig>,
}

/// One `[[tenants.derived_metrics]]` entry: a counter of the events that
/// match (or, with `field`, the distribution of a numeric field), per
/// combination of the `by` fields' values.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DerivedMetricConfig {
    /// The metric's name, e.g. `web.requests`.
    pub name: String,
    /// Only events of this log type (default: every type).
    #[serde(rename = "type", default)]
    pub log_type: Option<String>,
    /// Only events matching this query (the search syntax; default: all).
    #[serde(default)]
    pub query: Option<String>,
    /// A numeric field: its values' distribution instead of a count.
    #[serde(default)]
    pub field: Option<String>,
    /// Fields whose values tag the series (at most 4).
    #[serde(default)]
    pub by: Vec<String>,
}

/// One `[[tenants.indices]]` entry: a name pattern and where it goes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexConfig {
    /// An index name, `*` matching any run of characters
    /// (`filebeat-*`, `logs-*-default`).
    pub pattern: String,
    /// The log type of its events (no filters; the tenant's field names).
    #[serde(rename = "type")]
    pub log_type: Option<String>,
    /// Or one of the tenant's route paths: its type, filters, fields and
    /// rate limit.
    pub route: Option<String>,
}

impl TenantConfig {
    pub fn named(name: &str) -> Self {
        TenantConfig {
            name: name.to_string(),
            ingest_keys: Vec::new(),
            admin_keys: Vec::new(),
            ingest_cert_names: Vec::new(),
            cors_origins: vec!["*".to_string()],
            generic_route: true,
            routes: Vec::new(),
            rate_limit: None,
            client_rate_limit: None,
            hot_retention: None,
            cold_retention: None,
            fields: FieldsConfig::default(),
            indices: Vec::new(),
            derived_metrics: Vec::new(),
        }
    }
}

fn yes() -> bool {
    true
}

/// One URL path of a tenant and what it means.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Exact URL path, e.g. "/mobile".
    pub path: String,
    /// Log type given to every event posted here, e.g. "mobile_logs".
    #[serde(rename = "type")]
    pub log_type: String,
    /// Limit on this route's traffic.
    #[serde(default)]
    pub rate_limit: Option<RateLimitConfig>,
    /// WASM filters run in order on every batch of this route.
    #[serde(default)]
    pub filters: Vec<FilterRef>,
    /// Where this route's events keep their promoted fields; a name listed
    /// here replaces the tenant's list for that field.
    #[serde(default)]
    pub fields: FieldsConfig,
    /// What the route promises its events: `log` (the default), `metric`
    /// or `event` (docs/guides/delivery-classes.md).
    #[serde(default)]
    pub class: crate::config::class::Class,
    /// What a native HTTP request's body is: `native` (JSON, NDJSON or
    /// text lines by Content-Type) or `statsd` (StatsD lines, on a
    /// metric-class route).
    #[serde(default)]
    pub format: RouteFormat,
    /// Where the route's events are pushed once durable (`event` class
    /// only; `crate::webhooks`).
    #[serde(default)]
    pub webhook: Option<crate::config::webhook::WebhookConfig>,
}

/// How the native HTTP endpoint reads a route's request bodies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteFormat {
    /// Events: JSON, NDJSON or text lines, by Content-Type.
    #[default]
    Native,
    /// StatsD / DogStatsD lines, aggregated per series within the request
    /// (`crate::sources::statsd::http`).
    Statsd,
}

/// Checks the tenants on their own: names, keys and certificate names each
/// in one tenant, well-formed routes. `reserved` tells the paths the
/// gateway serves itself (a route may not take them).
pub fn validate(
    tenants: &[TenantConfig],
    reserved: impl Fn(&str) -> Option<&'static str>,
) -> Result<(), ConfigError> {
    if tenants.is_empty() {
        return Err(invalid("tenants", "at least one tenant is needed"));
    }
    let mut names = HashSet::new();
    let mut keys = HashSet::new();
    let mut cert_names = HashSet::new();
    for (i, t) in tenants.iter().enumerate() {
        for name in &t.ingest_cert_names {
            if name.is_empty() || !cert_names.insert(name.as_str()) {
                return Err(invalid(
                    &format!("tenants[{i}].ingest_cert_names"),
                    format!(
                        "`{name}` is empty or listed twice; a certificate name belongs to exactly one tenant"
                    ),
                ));
            }
        }
        if t.name.is_empty() || !t.name.chars().all(is_name_char) {
            return Err(invalid(
                &format!("tenants[{i}].name"),
                format!(
                    "`{}` must be non-empty and use only a-z, A-Z, 0-9, '_' and '-'",
                    t.name
                ),
            ));
        }
        if !names.insert(t.name.as_str()) {
            return Err(invalid(
                &format!("tenants[{i}].name"),
                format!("duplicate tenant `{}`", t.name),
            ));
        }
        for key in t.ingest_keys.iter().chain(&t.admin_keys) {
            if key.0.len() < 8 {
                return Err(invalid(
                    &format!("tenants[{i}]"),
                    "keys must be at least 8 characters",
                ));
            }
            if !keys.insert(key.0.as_str()) {
                return Err(invalid(
                    &format!("tenants[{i}]"),
                    "a key is listed twice; a key belongs to exactly one tenant",
                ));
            }
        }
        t.fields.validate(&format!("tenants[{i}].fields"))?;
        let mut paths = HashSet::new();
        for (j, r) in t.routes.iter().enumerate() {
            r.validate(&format!("tenants[{i}].routes[{j}]"), &reserved)?;
            if !paths.insert(r.path.as_str()) {
                return Err(invalid(
                    &format!("tenants[{i}].routes[{j}].path"),
                    format!("duplicate path `{}`", r.path),
                ));
            }
        }
        for (j, x) in t.indices.iter().enumerate() {
            x.validate(&format!("tenants[{i}].indices[{j}]"), &paths)?;
        }
    }
    Ok(())
}

impl IndexConfig {
    fn validate(&self, at: &str, paths: &HashSet<&str>) -> Result<(), ConfigError> {
        if self.pattern.is_empty() || self.pattern.len() > 255 {
            return Err(invalid(
                &format!("{at}.pattern"),
                "must be 1-255 characters",
            ));
        }
        match (&self.log_type, &self.route) {
            (Some(t), None) if valid_type_name(t) => Ok(()),
            (Some(t), None) => Err(invalid(
                &format!("{at}.type"),
                format!("`{t}` must be 1-64 characters of a-z, 0-9, '_' and '-'"),
            )),
            (None, Some(r)) if paths.contains(r.as_str()) => Ok(()),
            (None, Some(r)) => Err(invalid(
                &format!("{at}.route"),
                format!("`{r}` is not a route of this tenant"),
            )),
            _ => Err(invalid(at, "set exactly one of `type` and `route`")),
        }
    }
}

impl RouteConfig {
    fn validate(
        &self,
        at: &str,
        reserved: &impl Fn(&str) -> Option<&'static str>,
    ) -> Result<(), ConfigError> {
        if !self.path.starts_with('/') {
            return Err(invalid(
                &format!("{at}.path"),
                format!("`{}` must start with '/'", self.path),
            ));
        }
        if let Some(owner) = reserved(&self.path) {
            return Err(invalid(
                &format!("{at}.path"),
                format!("`{}` is served by the gateway itself ({owner})", self.path),
            ));
        }
        for (k, f) in self.filters.iter().enumerate() {
            if !valid_filter_name(&f.name) {
                return Err(invalid(
                    &format!("{at}.filters[{k}].name"),
                    format!("`{}` {FILTER_NAME_RULE}", f.name),
                ));
            }
        }
        if !valid_type_name(&self.log_type) {
            return Err(invalid(
                &format!("{at}.type"),
                format!(
                    "`{}` must be 1-64 characters of a-z, 0-9, '_' and '-'",
                    self.log_type
                ),
            ));
        }
        if self.format == RouteFormat::Statsd && self.class != crate::config::class::Class::Metric {
            return Err(invalid(
                &format!("{at}.format"),
                "a route of `statsd` format must have `class = \"metric\"`",
            ));
        }
        if let Some(w) = &self.webhook {
            if self.class != crate::config::class::Class::Event {
                return Err(invalid(
                    &format!("{at}.webhook"),
                    "only a route of `class = \"event\"` pushes its events to a webhook",
                ));
            }
            w.validate(&format!("{at}.webhook"))?;
        }
        self.fields.validate(&format!("{at}.fields"))
    }
}
