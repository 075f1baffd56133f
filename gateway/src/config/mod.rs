//! Typed configuration: embedded defaults, a TOML file, environment overrides.
//!
//! `logway serve` with no file uses [`Config::default`], a single `default`
//! tenant with no keys on loopback. A file is TOML; every table rejects
//! unknown keys, and errors name the full key path (`tenants[0].routs`).
//! Environment variables `LOGWAY_<SECTION>__<KEY>` override the file
//! ([`env`]).
//!
//! Each section's struct lives beside what it configures and validates
//! itself (`wal/config.rs`, `hot/config.rs`, `tenants/config.rs`, ...);
//! this module assembles them and checks what spans sections. The key table
//! in `docs/configuration.md` is tested against what this accepts.

pub mod class;
pub mod env;
pub mod value;
pub mod webhook;

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use crate::alerts::config::AlertsConfig;
pub use crate::archive::config::{ArchiveConfig, S3Checksums, S3Config};
pub use crate::cluster::config::ClusterConfig;
pub use crate::derived::config::MetricsConfig;
pub use crate::filter::config::{FilterRef, FiltersConfig};
pub use crate::hot::config::{HotConfig, SearchConfig};
pub use crate::listen::tls::TlsConfig;
pub use crate::pipeline::config::{IdempotencyConfig, LimitsConfig};
pub use crate::server::config::{ServerConfig, StorageConfig};
pub use crate::sources::beats::config::BeatsConfig;
pub use crate::sources::datadog::config::DatadogConfig;
pub use crate::sources::elastic::config::ElasticsearchConfig;
pub use crate::sources::gelf::config::GelfConfig;
pub use crate::sources::hec::config::HecConfig;
pub use crate::sources::kafka::config::KafkaSourceConfig;
pub use crate::sources::loki::config::LokiConfig;
pub use crate::sources::otlp::config::OtlpConfig;
pub use crate::sources::statsd::config::StatsdConfig;
pub use crate::sources::syslog::config::SyslogConfig;
pub use crate::telemetry::TelemetryConfig;
pub use crate::tenants::config::{RateLimitConfig, RateLimitDefaults, RouteConfig, TenantConfig};
pub use crate::ui::UiConfig;
pub use crate::wal::config::{WalCompression, WalConfig};
use value::invalid;
pub use value::{Secret, parse_duration, valid_type_name};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {source}")]
    Syntax {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("config key `{key}`: {message}")]
    Key { key: String, message: String },
}

/// The whole configuration. Every section has defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub limits: LimitsConfig,
    pub wal: WalConfig,
    pub hot: HotConfig,
    pub archive: ArchiveConfig,
    pub idempotency: IdempotencyConfig,
    pub search: SearchConfig,
    pub telemetry: TelemetryConfig,
    pub rate_limits: RateLimitDefaults,
    pub filters: FiltersConfig,
    pub elasticsearch: ElasticsearchConfig,
    pub otlp: OtlpConfig,
    pub loki: LokiConfig,
    pub hec: HecConfig,
    pub datadog: DatadogConfig,
    pub gelf: GelfConfig,
    pub syslog: Vec<SyslogConfig>,
    pub beats: Vec<BeatsConfig>,
    pub kafka_sources: Vec<KafkaSourceConfig>,
    pub statsd: Vec<StatsdConfig>,
    pub metrics: MetricsConfig,
    pub tenants: Vec<TenantConfig>,
    pub ui: UiConfig,
    pub alerts: AlertsConfig,
    pub cluster: ClusterConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            server: ServerConfig::default(),
            storage: StorageConfig::default(),
            limits: LimitsConfig::default(),
            wal: WalConfig::default(),
            hot: HotConfig::default(),
            archive: ArchiveConfig::default(),
            idempotency: IdempotencyConfig::default(),
            search: SearchConfig::default(),
            telemetry: TelemetryConfig::default(),
            rate_limits: RateLimitDefaults::default(),
            filters: FiltersConfig::default(),
            elasticsearch: ElasticsearchConfig::default(),
            otlp: OtlpConfig::default(),
            loki: LokiConfig::default(),
            hec: HecConfig::default(),
            datadog: DatadogConfig::default(),
            gelf: GelfConfig::default(),
            syslog: Vec::new(),
            beats: Vec::new(),
            kafka_sources: Vec::new(),
            statsd: Vec::new(),
            metrics: MetricsConfig::default(),
            tenants: vec![TenantConfig::named(crate::tenants::config::DEFAULT_TENANT)],
            ui: UiConfig::default(),
            alerts: AlertsConfig::default(),
            cluster: ClusterConfig::default(),
        }
    }
}

impl Config {
    /// Loads a TOML file (or the embedded defaults when `path` is `None`),
    /// applies `LOGWAY_*` environment overrides, and validates.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_with_env(path, std::env::vars())
    }

    pub fn load_with_env(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut table = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                toml::from_str::<toml::Table>(&text).map_err(|source| ConfigError::Syntax {
                    path: path.to_path_buf(),
                    source: Box::new(source),
                })?
            }
            None => toml::Table::new(),
        };
        env::apply(&mut table, env)?;
        Self::from_table(table)
    }

    /// Parses a TOML document (no environment overrides); used by tests.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let table = toml::from_str::<toml::Table>(text).map_err(|source| ConfigError::Syntax {
            path: PathBuf::from("<inline>"),
            source: Box::new(source),
        })?;
        Self::from_table(table)
    }

    fn from_table(table: toml::Table) -> Result<Config, ConfigError> {
        let mut config: Config = serde_path_to_error::deserialize(toml::Value::Table(table))
            .map_err(|err| ConfigError::Key {
                key: err.path().to_string(),
                message: err.inner().to_string(),
            })?;
        for t in &config.tenants {
            if let Some(d) = t.hot_retention {
                config.hot.tenant_retention.insert(t.name.clone(), d);
            }
            if let Some(d) = t.cold_retention {
                config.archive.tenant_retention.insert(t.name.clone(), d);
            }
        }
        config.validate()?;
        Ok(config)
    }

    /// True when no tenant has any key: requests need no key and map to the
    /// single tenant. Only allowed on loopback.
    pub fn open_mode(&self) -> bool {
        self.tenants.iter().all(|t| {
            t.ingest_keys.is_empty() && t.admin_keys.is_empty() && t.ingest_cert_names.is_empty()
        })
    }

    /// Checks every section, then what spans sections.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.server.validate()?;
        self.cluster.validate()?;
        self.elasticsearch.validate()?;
        self.otlp.validate()?;
        self.loki.validate()?;
        self.hec.validate()?;
        self.datadog.validate()?;
        self.gelf.validate(&self.tenants)?;
        for (i, s) in self.statsd.iter().enumerate() {
            s.validate(i, &self.tenants)?;
        }
        self.metrics.validate(&self.tenants)?;
        let es = &self.elasticsearch.path;
        if crate::server::router::reserved(es).is_some() || es.starts_with("/v1/") {
            return Err(invalid(
                "elasticsearch.path",
                format!("`{es}` is a path the gateway serves itself"),
            ));
        }
        let reserved = |path: &str| {
            crate::server::router::reserved(path).or_else(|| {
                self.elasticsearch
                    .serves(path)
                    .then_some("the Elasticsearch API, elasticsearch.path")
            })
        };
        crate::tenants::config::validate(&self.tenants, reserved)?;
        webhook::validate_routes(&self.tenants, self.cluster.enabled)?;
        if self.open_mode() {
            if self.tenants.len() > 1 {
                return Err(invalid(
                    "tenants",
                    "several tenants need keys to tell them apart; give each an ingest or admin key",
                ));
            }
            if !self.server.http_addr.ip().is_loopback() {
                return Err(invalid(
                    "server.http_addr",
                    format!(
                        "{} is not a loopback address and no tenant has a key; refusing to accept unauthenticated logs from the network",
                        self.server.http_addr
                    ),
                ));
            }
        }
        self.archive.validate()?;
        for (i, l) in self.syslog.iter().enumerate() {
            l.validate(i, &self.tenants)?;
        }
        for (i, l) in self.beats.iter().enumerate() {
            l.validate(i, &self.tenants)?;
        }
        for (i, s) in self.kafka_sources.iter().enumerate() {
            s.validate(i, &self.tenants)?;
        }
        self.limits.validate()?;
        self.alerts.validate(&self.tenants)?;
        self.wal.validate()
    }
}

#[cfg(test)]
mod tests;
