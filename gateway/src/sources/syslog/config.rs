//! A `[[syslog]]` listener's section.

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

pub const DEFAULT_SYSLOG_MAX_MESSAGE_BYTES: usize = 64 * 1024;
pub const DEFAULT_SYSLOG_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
pub const DEFAULT_SYSLOG_MAX_CONNECTIONS: usize = 256;

/// A TCP syslog listener, bound to one tenant and log type.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogConfig {
    /// e.g. "127.0.0.1:5514".
    pub addr: SocketAddr,
    pub tenant: String,
    #[serde(rename = "type")]
    pub log_type: String,
    /// Syslog has no keys: a listener must say it accepts that.
    #[serde(default)]
    pub unauthenticated: bool,
    #[serde(default = "default_syslog_max_message")]
    pub max_message_bytes: usize,
    #[serde(default = "default_syslog_idle", deserialize_with = "de_duration")]
    pub idle_timeout: Duration,
    #[serde(default = "default_syslog_connections")]
    pub max_connections: usize,
    /// Syslog over TLS (RFC 5425) instead of plain TCP.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// WASM filters (the tenant's) run in order on every batch of parsed
    /// messages, as on an HTTP route.
    #[serde(default)]
    pub filters: Vec<FilterRef>,
    /// Field names for the promoted fields of filtered messages (see the
    /// event model); unset names fall back to the tenant's `fields`.
    #[serde(default)]
    pub fields: FieldsConfig,
    /// What the listener promises its events: `log` (the default),
    /// `metric` or `event` (docs/guides/delivery-classes.md).
    #[serde(default)]
    pub class: crate::config::class::Class,
}

fn default_syslog_max_message() -> usize {
    DEFAULT_SYSLOG_MAX_MESSAGE_BYTES
}

fn default_syslog_idle() -> Duration {
    DEFAULT_SYSLOG_IDLE_TIMEOUT
}

fn default_syslog_connections() -> usize {
    DEFAULT_SYSLOG_MAX_CONNECTIONS
}

impl SyslogConfig {
    /// What the listener gives its events, as a route would: its log type,
    /// filters, and field names over its tenant's.
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

    /// Checks listener `i` (`syslog[i]`) against the tenants it may name.
    pub fn validate(&self, i: usize, tenants: &[TenantConfig]) -> Result<(), ConfigError> {
        crate::sources::check_bound(
            crate::sources::BoundConfig {
                at: format!("syslog[{i}]"),
                no_keys: "syslog has no authentication",
                tenant: &self.tenant,
                log_type: &self.log_type,
                unauthenticated: self.unauthenticated,
                tls: self.tls.as_ref(),
                filters: &self.filters,
            },
            tenants,
        )?;
        if self.max_message_bytes == 0 {
            return Err(invalid(
                &format!("syslog[{i}].max_message_bytes"),
                "must be greater than zero",
            ));
        }
        Ok(())
    }
}
