//! A `[[beats]]` listener's section.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use crate::config::ConfigError;
use crate::config::value::{de_duration, invalid};
use crate::event::FieldsConfig;
use crate::filter::FilterRef;
use crate::listen::tls::TlsConfig;
use crate::tenants::Route;
use crate::tenants::config::TenantConfig;

/// go-lumber's default; Filebeat sends at most 2048 (`bulk_max_size`).
pub const DEFAULT_MAX_WINDOW: u32 = 10_000;
/// Logstash's `client_inactivity_timeout`.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;

/// A Beats (Lumberjack v2) listener, bound to one tenant.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BeatsConfig {
    /// e.g. "127.0.0.1:5044".
    pub addr: SocketAddr,
    pub tenant: String,
    /// The log type of events that do not name one in `type_field`.
    #[serde(rename = "type")]
    pub log_type: String,
    /// A field whose value is the event's log type, e.g. "fields.type" or
    /// "event.dataset" (dotted: flat or nested); unset, unusable or
    /// missing: `type`.
    #[serde(default)]
    pub type_field: Option<String>,
    /// Beats has no keys: a listener must say it accepts that, or require
    /// client certificates.
    #[serde(default)]
    pub unauthenticated: bool,
    #[serde(default = "default_max_window")]
    pub max_window: u32,
    /// A connection silent this long (also: a window this slow) is closed.
    #[serde(default = "default_idle", deserialize_with = "de_duration")]
    pub idle_timeout: Duration,
    #[serde(default = "default_connections")]
    pub max_connections: usize,
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// WASM filters (the tenant's) run on every window, as on a route.
    #[serde(default)]
    pub filters: Vec<FilterRef>,
    /// Field names for the promoted fields, over the tenant's `fields`.
    #[serde(default)]
    pub fields: FieldsConfig,
    /// What the listener promises its events: `log` (the default),
    /// `metric` or `event` (docs/guides/delivery-classes.md).
    #[serde(default)]
    pub class: crate::config::class::Class,
}

fn default_max_window() -> u32 {
    DEFAULT_MAX_WINDOW
}

fn default_idle() -> Duration {
    DEFAULT_IDLE_TIMEOUT
}

fn default_connections() -> usize {
    DEFAULT_MAX_CONNECTIONS
}

impl BeatsConfig {
    /// What the listener gives events of `log_type`, as a route would.
    pub fn route(&self, tenants: &[TenantConfig], log_type: &str) -> Route {
        Route::for_listener(
            tenants,
            &self.tenant,
            log_type,
            &self.filters,
            &self.fields,
            self.class,
        )
    }

    /// Checks listener `i` (`beats[i]`) against the tenants it may name.
    pub fn validate(&self, i: usize, tenants: &[TenantConfig]) -> Result<(), ConfigError> {
        let at = |key: &str| format!("beats[{i}].{key}");
        crate::sources::check_bound(
            crate::sources::BoundConfig {
                at: format!("beats[{i}]"),
                no_keys: "the Beats protocol has no keys",
                tenant: &self.tenant,
                log_type: &self.log_type,
                unauthenticated: self.unauthenticated,
                tls: self.tls.as_ref(),
                filters: &self.filters,
            },
            tenants,
        )?;
        if self.type_field.as_ref().is_some_and(|f| f.is_empty()) {
            return Err(invalid(&at("type_field"), "must not be empty"));
        }
        if self.max_window == 0 || self.max_connections == 0 {
            return Err(invalid(
                &at("max_window"),
                "max_window and max_connections must be greater than zero",
            ));
        }
        self.fields.validate(&at("fields"))
    }
}
