//! The `[gelf]` section: GELF over HTTP (`POST /gelf`) and its UDP and
//! TCP listeners (`[[gelf.listeners]]`, each bound to one tenant).

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use crate::config::ConfigError;
use crate::config::value::{de_duration, invalid, valid_type_name};
use crate::event::FieldsConfig;
use crate::filter::FilterRef;
use crate::listen::tls::TlsConfig;
use crate::tenants::Route;
use crate::tenants::config::TenantConfig;

/// GELF's own bound on chunks per message.
pub const MAX_CHUNKS: usize = 128;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GelfConfig {
    /// Serve `POST /gelf` on the HTTP listener.
    pub enabled: bool,
    /// The log type of messages sent to `/gelf`.
    pub default_type: String,
    /// A message's bytes at most, decompressed (HTTP, UDP and TCP).
    pub max_message_bytes: usize,
    pub listeners: Vec<GelfListener>,
}

impl Default for GelfConfig {
    fn default() -> Self {
        GelfConfig {
            enabled: true,
            default_type: "gelf".into(),
            max_message_bytes: 1 << 20,
            listeners: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Udp,
    Tcp,
}

/// A GELF listener bound to one tenant and log type.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GelfListener {
    /// e.g. "0.0.0.0:12201".
    pub addr: SocketAddr,
    pub protocol: Transport,
    pub tenant: String,
    #[serde(rename = "type", default = "default_type")]
    pub log_type: String,
    /// GELF has no keys: a listener must say it accepts that (or, over
    /// TCP, require client certificates).
    #[serde(default)]
    pub unauthenticated: bool,
    /// TCP only.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// UDP: chunks one message may have (GELF allows 128).
    #[serde(default = "default_max_chunks")]
    pub max_chunks: usize,
    /// UDP: how long the chunks of an incomplete message are kept.
    #[serde(default = "default_chunk_timeout", deserialize_with = "de_duration")]
    pub chunk_timeout: Duration,
    /// UDP: bytes of incomplete messages kept at most; past it the oldest
    /// is dropped (and counted).
    #[serde(default = "default_pending")]
    pub max_pending_bytes: usize,
    /// TCP: connections at most.
    #[serde(default = "default_connections")]
    pub max_connections: usize,
    /// TCP: a connection silent this long is closed.
    #[serde(default = "default_idle", deserialize_with = "de_duration")]
    pub idle_timeout: Duration,
    #[serde(default)]
    pub filters: Vec<FilterRef>,
    #[serde(default)]
    pub fields: FieldsConfig,
    /// What the listener promises its events: `log` (the default),
    /// `metric` or `event` (docs/guides/delivery-classes.md).
    #[serde(default)]
    pub class: crate::config::class::Class,
}

fn default_type() -> String {
    "gelf".into()
}
fn default_max_chunks() -> usize {
    MAX_CHUNKS
}
fn default_chunk_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_pending() -> usize {
    64 << 20
}
fn default_connections() -> usize {
    256
}
fn default_idle() -> Duration {
    Duration::from_secs(300)
}

impl GelfConfig {
    pub fn validate(&self, tenants: &[TenantConfig]) -> Result<(), ConfigError> {
        if !valid_type_name(&self.default_type) {
            return Err(invalid(
                "gelf.default_type",
                format!("`{}` is not a valid log type name", self.default_type),
            ));
        }
        if self.max_message_bytes == 0 {
            return Err(invalid("gelf.max_message_bytes", "must be at least 1"));
        }
        for (i, l) in self.listeners.iter().enumerate() {
            l.validate(i, tenants)?;
        }
        Ok(())
    }
}

impl GelfListener {
    /// What the listener gives its messages, as a route would.
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

    fn validate(&self, i: usize, tenants: &[TenantConfig]) -> Result<(), ConfigError> {
        let at = |key: &str| format!("gelf.listeners[{i}].{key}");
        crate::sources::check_bound(
            crate::sources::BoundConfig {
                at: format!("gelf.listeners[{i}]"),
                no_keys: "GELF has no keys",
                tenant: &self.tenant,
                log_type: &self.log_type,
                unauthenticated: self.unauthenticated,
                tls: self.tls.as_ref(),
                filters: &self.filters,
            },
            tenants,
        )?;
        if self.protocol == Transport::Udp && self.tls.is_some() {
            return Err(invalid(&at("tls"), "is for TCP listeners"));
        }
        if !(1..=MAX_CHUNKS).contains(&self.max_chunks) {
            return Err(invalid(&at("max_chunks"), format!("1 to {MAX_CHUNKS}")));
        }
        if self.max_connections == 0 || self.max_pending_bytes == 0 {
            return Err(invalid(
                &at("max_connections"),
                "max_connections and max_pending_bytes must be greater than zero",
            ));
        }
        self.fields.validate(&at("fields"))
    }
}
