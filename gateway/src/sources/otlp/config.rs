//! The `[otlp]` section: OpenTelemetry logs over OTLP/HTTP
//! (`POST /v1/logs` on the HTTP listener).

use std::net::SocketAddr;

use serde::Deserialize;

use crate::config::ConfigError;
use crate::config::value::invalid;
use crate::listen::tls::TlsConfig;

/// The log type of records that name none.
pub const DEFAULT_TYPE: &str = "otlp";
/// Log records one request may carry (the SDKs' batches hold 512 by
/// default, the Collector's up to 8,192).
pub const DEFAULT_MAX_RECORDS: usize = 100_000;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpConfig {
    /// Serve `POST /v1/logs`.
    pub enabled: bool,
    /// Attributes naming a record's log type, tried in order on the
    /// record, then on its resource; the first present wins (its value
    /// becomes a type name as an Elasticsearch index does, and the
    /// tenant's `indices` patterns apply).
    pub type_attributes: Vec<String>,
    /// The log type of a record none of them names.
    pub default_type: String,
    /// Log records per request at most (more: 413, nothing stored).
    pub max_records_per_request: usize,
    /// Serve OTLP/gRPC on a listener of its own, e.g. "0.0.0.0:4317".
    pub grpc_addr: Option<SocketAddr>,
    /// TLS on that listener.
    pub grpc_tls: Option<TlsConfig>,
}

impl Default for OtlpConfig {
    fn default() -> Self {
        OtlpConfig {
            enabled: true,
            type_attributes: vec!["logway.type".into(), "service.name".into()],
            default_type: DEFAULT_TYPE.to_string(),
            max_records_per_request: DEFAULT_MAX_RECORDS,
            grpc_addr: None,
            grpc_tls: None,
        }
    }
}

impl OtlpConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !crate::config::valid_type_name(&self.default_type) {
            return Err(invalid(
                "otlp.default_type",
                format!("`{}` is not a valid log type name", self.default_type),
            ));
        }
        if self.type_attributes.iter().any(|a| a.is_empty()) {
            return Err(invalid("otlp.type_attributes", "names must not be empty"));
        }
        if self.grpc_tls.is_some() && self.grpc_addr.is_none() {
            return Err(invalid(
                "otlp.grpc_tls",
                "is for the gRPC listener: set `otlp.grpc_addr` too",
            ));
        }
        if self.max_records_per_request == 0 {
            return Err(invalid(
                "otlp.max_records_per_request",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}
