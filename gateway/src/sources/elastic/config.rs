//! The `[elasticsearch]` section: where the Elasticsearch-compatible API is
//! served and which version it reports.

use std::net::SocketAddr;

use serde::Deserialize;

use crate::config::ConfigError;
use crate::config::value::invalid;
use crate::listen::tls::TlsConfig;

pub const DEFAULT_PATH: &str = "/es";
/// An 8.x version no older than the newest Beats: Filebeat 8.1-8.10
/// refuses an Elasticsearch older than itself.
pub const DEFAULT_VERSION: &str = "8.19.0";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ElasticsearchConfig {
    /// Serve the API under `path` on the HTTP listener.
    pub enabled: bool,
    /// The path prefix on the HTTP listener: clients use
    /// `http://host:8080/es` as their Elasticsearch URL.
    pub path: String,
    /// Also serve the API at the root of a listener of its own (for
    /// clients without a path setting), e.g. "127.0.0.1:9200".
    pub addr: Option<SocketAddr>,
    /// HTTPS on that listener.
    pub tls: Option<TlsConfig>,
    /// The version `GET /` reports (`version.number`).
    pub version: String,
}

impl Default for ElasticsearchConfig {
    fn default() -> Self {
        ElasticsearchConfig {
            enabled: true,
            path: DEFAULT_PATH.to_string(),
            addr: None,
            tls: None,
            version: DEFAULT_VERSION.to_string(),
        }
    }
}

impl ElasticsearchConfig {
    /// True when the API's prefix on the HTTP listener covers `path`.
    pub fn serves(&self, path: &str) -> bool {
        self.enabled
            && path
                .strip_prefix(self.path.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let p = &self.path;
        let well_formed = p.len() > 1
            && p.starts_with('/')
            && !p.ends_with('/')
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/-_.".contains(&b));
        if !well_formed {
            return Err(invalid(
                "elasticsearch.path",
                format!(
                    "`{p}` must start with '/', not end with '/', and use a-z, 0-9, '-', '_', '.'"
                ),
            ));
        }
        let parts: Vec<&str> = self.version.split('.').collect();
        let numeric = parts.len() == 3 && parts.iter().all(|n| n.parse::<u32>().is_ok());
        if !numeric || !matches!(parts[0], "7" | "8" | "9") {
            return Err(invalid(
                "elasticsearch.version",
                format!(
                    "`{}` must be a version like 8.19.0, major 7, 8 or 9",
                    self.version
                ),
            ));
        }
        if self.tls.is_some() && self.addr.is_none() {
            return Err(invalid(
                "elasticsearch.tls",
                "is for the listener of its own: set `elasticsearch.addr` too (the prefix on the HTTP listener uses server.tls)",
            ));
        }
        Ok(())
    }
}
