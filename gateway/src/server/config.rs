//! The `[server]` and `[storage]` sections: the HTTP listener, its bounds
//! and timeouts, background priority, and the data directory.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::config::ConfigError;
use crate::config::value::{de_duration, invalid};
use crate::listen::tls::TlsConfig;

pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "./logway-data";
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_BACKGROUND_NICE: i32 = 10;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address of the HTTP listener; port 0 picks a free port.
    pub http_addr: SocketAddr,
    /// Open connections at most; further ones wait in the kernel backlog.
    pub max_connections: usize,
    /// A client must finish sending request headers within this time.
    #[serde(deserialize_with = "de_duration")]
    pub header_read_timeout: Duration,
    /// A request (body read, decode, durable write) must finish within this time.
    #[serde(deserialize_with = "de_duration")]
    pub request_timeout: Duration,
    /// Serve HTTPS instead of HTTP.
    pub tls: Option<TlsConfig>,
    /// Nice value (0-19, Linux) of the threads that work behind the WAL:
    /// the hot indexer with tantivy's threads, the archive writer, replay.
    /// When the CPU is short, ingest (parse, WAL append, ack) goes first and
    /// indexing lags, within the WAL's disk cap.
    pub background_nice: i32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            http_addr: DEFAULT_HTTP_ADDR.parse().expect("valid default address"),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            tls: None,
            background_nice: DEFAULT_BACKGROUND_NICE,
        }
    }
}

impl ServerConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(0..=19).contains(&self.background_nice) {
            return Err(invalid(
                "server.background_nice",
                format!(
                    "{} is not a nice value from 0 (normal priority) to 19 (lowest)",
                    self.background_nice
                ),
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Root of the WAL, the hot index and the idempotency table.
    pub data_dir: PathBuf,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
        }
    }
}
