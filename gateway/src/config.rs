//! Typed configuration: embedded defaults, a TOML file, environment overrides.
//!
//! `logway serve` with no file uses [`Config::default`], a single `default`
//! tenant with no keys on loopback. A file is TOML; every table rejects
//! unknown keys, and errors name the full key path (`tenants[0].routs`).
//! Environment variables `LOGWAY_<SECTION>__<KEY>` (double underscore between
//! levels, array items by index: `LOGWAY_TENANTS__0__INGEST_KEYS`) override
//! the file; values are read as TOML literals where they parse, else strings.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "./logway-data";
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_BACKGROUND_NICE: i32 = 10;
pub const DEFAULT_MAX_BODY_BYTES: usize = 10 * 1024 * 1024;
pub const DEFAULT_MAX_DECOMPRESSED_BYTES: usize = 64 * 1024 * 1024;
pub const DEFAULT_MAX_LINE_BYTES: usize = 1024 * 1024;
pub const DEFAULT_MAX_FIELDS_PER_EVENT: usize = 1000;
pub const DEFAULT_WAL_MAX_BYTES: u64 = 2 * 1024 * 1024 * 1024;
pub const DEFAULT_WAL_SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
pub const DEFAULT_WAL_QUEUE_LEN: usize = 4096;
pub const DEFAULT_HOT_COMMIT_INTERVAL: Duration = Duration::from_millis(500);
pub const DEFAULT_HOT_WRITER_MEMORY_BYTES: usize = 64 * 1024 * 1024;
pub const DEFAULT_HOT_RETENTION: Duration = Duration::from_secs(7 * 86_400);
pub const DEFAULT_HOT_REHYDRATED_RETENTION: Duration = Duration::from_secs(3 * 86_400);
pub const DEFAULT_IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(86_400);
pub const DEFAULT_SEARCH_MAX_LIMIT: usize = 10_000;
pub const DEFAULT_TENANT: &str = "default";
pub const DEFAULT_SYSLOG_MAX_MESSAGE_BYTES: usize = 64 * 1024;
pub const DEFAULT_SYSLOG_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
pub const DEFAULT_SYSLOG_MAX_CONNECTIONS: usize = 256;
pub const DEFAULT_ARCHIVE_PREFIX: &str = "logs";
pub const DEFAULT_ARCHIVE_MAX_OBJECT_BYTES: usize = 64 * 1024 * 1024;
pub const DEFAULT_ARCHIVE_MAX_OBJECT_AGE: Duration = Duration::from_secs(300);
pub const DEFAULT_ARCHIVE_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_ARCHIVE_MAX_ATTEMPTS: u32 = 5;
pub const DEFAULT_S3_REGION: &str = "us-east-1";
pub const DEFAULT_S3_MULTIPART_THRESHOLD_BYTES: usize = 16 * 1024 * 1024;
pub const DEFAULT_S3_MULTIPART_PART_BYTES: usize = 8 * 1024 * 1024;
pub const DEFAULT_FILTER_MAX_UPLOAD_BYTES: usize = 16 * 1024 * 1024;
pub const DEFAULT_FILTER_MAX_MEMORY_BYTES: usize = 64 * 1024 * 1024;
pub const DEFAULT_FILTER_MAX_STACK_BYTES: usize = 512 * 1024;
pub const DEFAULT_FILTER_MAX_BATCH_TIME: Duration = Duration::from_millis(250);
pub const DEFAULT_FILTER_MAX_INSTANCES: u32 = 256;
pub const DEFAULT_FILTER_MAX_OUTPUT_RATIO: usize = 4;
pub const ENV_PREFIX: &str = "LOGWAY_";

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
    #[error("invalid config: {0}")]
    Invalid(String),
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
    pub syslog: Vec<SyslogConfig>,
    pub tenants: Vec<TenantConfig>,
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
            syslog: Vec::new(),
            tenants: vec![TenantConfig::named(DEFAULT_TENANT)],
        }
    }
}

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

/// A PEM certificate chain and private key, read again on reload.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// PEM CA certificates that sign client certificates: clients may then
    /// authenticate with a certificate whose name a tenant lists in
    /// `ingest_cert_names`. Read again on reload.
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
    /// With `client_ca_file`: refuse a TLS handshake without a valid client
    /// certificate (HTTPS; a syslog listener with a client CA always
    /// requires one). Otherwise a client may use a key instead.
    #[serde(default)]
    pub require_client_cert: bool,
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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Request body as sent (possibly compressed), bytes.
    pub max_body_bytes: usize,
    /// Request body after decompression, bytes.
    pub max_decompressed_bytes: usize,
    /// One line or one JSON event, bytes; a longer one is rejected.
    pub max_line_bytes: usize,
    /// Fields (leaves, counted through nesting) of one event.
    pub max_fields_per_event: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_decompressed_bytes: DEFAULT_MAX_DECOMPRESSED_BYTES,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            max_fields_per_event: DEFAULT_MAX_FIELDS_PER_EVENT,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WalConfig {
    /// Disk the WAL may use; past it ingest answers 503 until consumers catch up.
    pub max_bytes: u64,
    /// A segment is closed and a new one started past this size.
    pub segment_bytes: u64,
    /// Appends waiting for the writer at most; past it, 503.
    pub queue_len: usize,
    /// How batches' events are stored (see `batch`): `zstd` costs the
    /// request's thread some CPU and saves 4-8x the WAL's disk and page
    /// cache bytes; `none` for fast disks and CPU-bound loads.
    pub compression: WalCompression,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WalCompression {
    Zstd,
    None,
}

impl WalConfig {
    pub fn compress(&self) -> bool {
        self.compression == WalCompression::Zstd
    }
}

impl Default for WalConfig {
    fn default() -> Self {
        WalConfig {
            max_bytes: DEFAULT_WAL_MAX_BYTES,
            segment_bytes: DEFAULT_WAL_SEGMENT_BYTES,
            queue_len: DEFAULT_WAL_QUEUE_LEN,
            compression: WalCompression::Zstd,
        }
    }
}

/// The cold archive: every event also goes to an object store.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArchiveConfig {
    /// Archive at all (on by default, to `{data_dir}/archive`).
    pub enabled: bool,
    /// Directory of the local store when `s3` is not set.
    pub local_dir: Option<PathBuf>,
    /// First segment of every object key.
    pub prefix: String,
    /// An object is closed once this many uncompressed bytes are in it.
    pub max_object_bytes: usize,
    /// ... or once it has been open this long.
    #[serde(deserialize_with = "de_duration")]
    pub max_object_age: Duration,
    /// One store request (one attempt) must finish within this.
    #[serde(deserialize_with = "de_duration")]
    pub request_timeout: Duration,
    /// Tries per store request (transient errors only); the writer keeps
    /// retrying the object after that.
    pub max_attempts: u32,
    /// Default cold retention from the day an event was received; unset
    /// keeps objects forever.
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub retention: Option<Duration>,
    /// Cold retention per log type, overriding `retention`.
    #[serde(deserialize_with = "de_duration_map")]
    pub retention_by_type: BTreeMap<String, Duration>,
    /// Write to S3 instead of the local directory.
    pub s3: Option<S3Config>,
    /// Tenants' own defaults (`tenants[].cold_retention`), filled at load.
    #[serde(skip)]
    pub tenant_retention: BTreeMap<String, Duration>,
}

impl Default for ArchiveConfig {
    fn default() -> Self {
        ArchiveConfig {
            enabled: true,
            local_dir: None,
            prefix: DEFAULT_ARCHIVE_PREFIX.to_string(),
            max_object_bytes: DEFAULT_ARCHIVE_MAX_OBJECT_BYTES,
            max_object_age: DEFAULT_ARCHIVE_MAX_OBJECT_AGE,
            request_timeout: DEFAULT_ARCHIVE_REQUEST_TIMEOUT,
            max_attempts: DEFAULT_ARCHIVE_MAX_ATTEMPTS,
            retention: None,
            retention_by_type: BTreeMap::new(),
            s3: None,
            tenant_retention: BTreeMap::new(),
        }
    }
}

impl ArchiveConfig {
    /// Cold retention of a tenant's log type: the type's, else the
    /// tenant's default, else `retention` (`None`: forever).
    pub fn retention_for(&self, tenant: &str, log_type: &str) -> Option<Duration> {
        self.retention_by_type
            .get(log_type)
            .or_else(|| self.tenant_retention.get(tenant))
            .copied()
            .or(self.retention)
    }
}

/// An S3 bucket (or an S3-compatible server) for the archive.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    pub bucket: String,
    #[serde(default = "default_s3_region")]
    pub region: String,
    /// e.g. `http://127.0.0.1:9000` for MinIO or s3s.
    pub endpoint_url: Option<String>,
    /// `endpoint/bucket/key` instead of `bucket.endpoint/key`.
    #[serde(default)]
    pub force_path_style: bool,
    /// Static credentials; without them the standard AWS chain is used.
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<Secret>,
    /// Upload checksums: `when_supported` (SDK default) or `when_required`.
    #[serde(default)]
    pub checksums: S3Checksums,
    #[serde(default = "default_multipart_threshold")]
    pub multipart_threshold_bytes: usize,
    #[serde(default = "default_multipart_part")]
    pub multipart_part_bytes: usize,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum S3Checksums {
    #[default]
    WhenSupported,
    WhenRequired,
}

fn default_s3_region() -> String {
    DEFAULT_S3_REGION.to_string()
}

fn default_multipart_threshold() -> usize {
    DEFAULT_S3_MULTIPART_THRESHOLD_BYTES
}

fn default_multipart_part() -> usize {
    DEFAULT_S3_MULTIPART_PART_BYTES
}

fn de_opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(d)?;
    parse_duration(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HotConfig {
    /// How often new events are committed (made searchable).
    #[serde(deserialize_with = "de_duration")]
    pub commit_interval: Duration,
    /// Indexing memory of one partition writer.
    pub writer_memory_bytes: usize,
    /// Default hot retention, counted from the day an event was received.
    #[serde(deserialize_with = "de_duration")]
    pub retention: Duration,
    /// Hot retention per log type, overriding `retention`.
    #[serde(deserialize_with = "de_duration_map")]
    pub retention_by_type: BTreeMap<String, Duration>,
    /// How long events replayed from the archive stay, from the replay day.
    #[serde(deserialize_with = "de_duration")]
    pub rehydrated_retention: Duration,
    /// Tenants' own defaults (`tenants[].hot_retention`), filled at load.
    #[serde(skip)]
    pub tenant_retention: BTreeMap<String, Duration>,
}

impl Default for HotConfig {
    fn default() -> Self {
        HotConfig {
            commit_interval: DEFAULT_HOT_COMMIT_INTERVAL,
            writer_memory_bytes: DEFAULT_HOT_WRITER_MEMORY_BYTES,
            retention: DEFAULT_HOT_RETENTION,
            retention_by_type: BTreeMap::new(),
            rehydrated_retention: DEFAULT_HOT_REHYDRATED_RETENTION,
            tenant_retention: BTreeMap::new(),
        }
    }
}

impl HotConfig {
    /// A type's retention, else the tenant's default, else `retention`.
    pub fn retention_for(&self, tenant: &str, log_type: &str) -> Duration {
        self.retention_by_type
            .get(log_type)
            .or_else(|| self.tenant_retention.get(tenant))
            .copied()
            .unwrap_or(self.retention)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdempotencyConfig {
    /// How long an `Idempotency-Key` is remembered.
    #[serde(deserialize_with = "de_duration")]
    pub window: Duration,
}

impl Default for IdempotencyConfig {
    fn default() -> Self {
        IdempotencyConfig {
            window: DEFAULT_IDEMPOTENCY_WINDOW,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SearchConfig {
    /// Largest `limit` a search may ask for.
    pub max_limit: usize,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            max_limit: DEFAULT_SEARCH_MAX_LIMIT,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// `tracing` filter used when `RUST_LOG` is unset, e.g. "info,logway=debug".
    pub log_filter: Option<String>,
    /// Log lines as JSON instead of human-readable text.
    pub log_json: bool,
    /// OTLP/HTTP collector base URL (e.g. "http://127.0.0.1:4318") for the
    /// gateway's own traces; the standard OTEL_EXPORTER_OTLP_ENDPOINT
    /// variable switches export on as well. Off when neither is set.
    pub otlp_endpoint: Option<String>,
}

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

/// One rate limit: events/s and bytes/s, each with a burst (default: one
/// second's worth). Unset parts are unlimited.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
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
}

impl TenantConfig {
    fn named(name: &str) -> Self {
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
        }
    }
}

fn yes() -> bool {
    true
}

/// The WASM filter sandbox: bounds on uploads and on every filter call.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FiltersConfig {
    /// Largest component a tenant may upload.
    pub max_upload_bytes: usize,
    /// Linear memory one filter instance may grow to.
    pub max_memory_bytes: usize,
    /// WebAssembly stack one call may use.
    pub max_stack_bytes: usize,
    /// CPU time one filter may spend on one batch (epoch deadline).
    #[serde(deserialize_with = "de_duration")]
    pub max_batch_time: Duration,
    /// Filter instances alive at once, all tenants together (pooling allocator).
    pub max_instances: u32,
    /// A filter's output may be at most this many times its input, plus 1 MiB.
    pub max_output_ratio: usize,
}

impl Default for FiltersConfig {
    fn default() -> Self {
        FiltersConfig {
            max_upload_bytes: DEFAULT_FILTER_MAX_UPLOAD_BYTES,
            max_memory_bytes: DEFAULT_FILTER_MAX_MEMORY_BYTES,
            max_stack_bytes: DEFAULT_FILTER_MAX_STACK_BYTES,
            max_batch_time: DEFAULT_FILTER_MAX_BATCH_TIME,
            max_instances: DEFAULT_FILTER_MAX_INSTANCES,
            max_output_ratio: DEFAULT_FILTER_MAX_OUTPUT_RATIO,
        }
    }
}

/// One filter of a route's chain and its config.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FilterRef {
    /// The name the tenant uploaded the filter under.
    pub name: String,
    /// Passed to the filter's `init` as text pairs (numbers and booleans as
    /// text, arrays joined with commas).
    #[serde(default, deserialize_with = "de_filter_config")]
    pub config: Vec<(String, String)>,
}

fn de_filter_config<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, String)>, D::Error> {
    fn text(v: &toml::Value) -> Result<String, String> {
        Ok(match v {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(n) => n.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Array(a) => a.iter().map(text).collect::<Result<Vec<_>, _>>()?.join(","),
            other => return Err(format!("unsupported filter config value {other}")),
        })
    }
    let table = std::collections::BTreeMap::<String, toml::Value>::deserialize(d)?;
    table
        .into_iter()
        .map(|(k, v)| Ok((k, text(&v).map_err(serde::de::Error::custom)?)))
        .collect()
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
}

/// A key or other secret; never printed by `Debug`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
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
        let mut value = match path {
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
        for (name, raw) in env {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let keys: Vec<String> = rest.split("__").map(|k| k.to_ascii_lowercase()).collect();
            apply_override(&mut value, &keys, &raw).map_err(|message| ConfigError::Key {
                key: name.clone(),
                message,
            })?;
        }
        Self::from_table(value)
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

    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Key {
            key: key.to_string(),
            message,
        };
        if self.tenants.is_empty() {
            return Err(invalid("tenants", "at least one tenant is needed".into()));
        }
        if !(0..=19).contains(&self.server.background_nice) {
            return Err(invalid(
                "server.background_nice",
                format!(
                    "{} is not a nice value from 0 (normal priority) to 19 (lowest)",
                    self.server.background_nice
                ),
            ));
        }
        if self.open_mode() {
            if self.tenants.len() > 1 {
                return Err(invalid(
                    "tenants",
                    "several tenants need keys to tell them apart; give each an ingest or admin key".into(),
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
        let mut names = std::collections::HashSet::new();
        let mut keys = std::collections::HashSet::new();
        let mut cert_names = std::collections::HashSet::new();
        for (i, t) in self.tenants.iter().enumerate() {
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
                        "keys must be at least 8 characters".into(),
                    ));
                }
                if !keys.insert(key.0.as_str()) {
                    return Err(invalid(
                        &format!("tenants[{i}]"),
                        "a key is listed twice; a key belongs to exactly one tenant".into(),
                    ));
                }
            }
            let mut paths = std::collections::HashSet::new();
            for (j, r) in t.routes.iter().enumerate() {
                if !r.path.starts_with('/')
                    || r.path.starts_with("/api/")
                    || r.path.starts_with("/v1/logs/")
                {
                    return Err(invalid(
                        &format!("tenants[{i}].routes[{j}].path"),
                        format!(
                            "`{}` must start with '/' and not with /api/ or /v1/logs/",
                            r.path
                        ),
                    ));
                }
                if !paths.insert(r.path.as_str()) {
                    return Err(invalid(
                        &format!("tenants[{i}].routes[{j}].path"),
                        format!("duplicate path `{}`", r.path),
                    ));
                }
                for (k, f) in r.filters.iter().enumerate() {
                    if !valid_filter_name(&f.name) {
                        return Err(invalid(
                            &format!("tenants[{i}].routes[{j}].filters[{k}].name"),
                            format!("`{}` {FILTER_NAME_RULE}", f.name),
                        ));
                    }
                }
                if !valid_type_name(&r.log_type) {
                    return Err(invalid(
                        &format!("tenants[{i}].routes[{j}].type"),
                        format!(
                            "`{}` must be 1-64 characters of a-z, 0-9, '_' and '-'",
                            r.log_type
                        ),
                    ));
                }
            }
        }
        let a = &self.archive;
        if a.prefix.is_empty()
            || a.prefix.starts_with('/')
            || a.prefix.ends_with('/')
            || a.prefix
                .split('/')
                .any(|p| p.is_empty() || p == "." || p == "..")
        {
            return Err(invalid(
                "archive.prefix",
                format!(
                    "`{}` must be non-empty path segments without leading or trailing '/'",
                    a.prefix
                ),
            ));
        }
        if a.max_object_bytes == 0 {
            return Err(invalid(
                "archive.max_object_bytes",
                "must be above 0".into(),
            ));
        }
        if let Some(s3) = &a.s3 {
            if s3.bucket.is_empty() {
                return Err(invalid("archive.s3.bucket", "must not be empty".into()));
            }
            if s3.access_key_id.is_some() != s3.secret_access_key.is_some() {
                return Err(invalid(
                    "archive.s3",
                    "set both access_key_id and secret_access_key, or neither (the AWS credential chain)".into(),
                ));
            }
        }
        for (i, l) in self.syslog.iter().enumerate() {
            let client_certs = l.tls.as_ref().is_some_and(|t| t.client_ca_file.is_some());
            if !l.unauthenticated && !client_certs {
                return Err(invalid(
                    &format!("syslog[{i}].unauthenticated"),
                    "syslog has no authentication: set `unauthenticated = true` to accept anyone who can reach this address, or require client certificates (`tls.client_ca_file`)".into(),
                ));
            }
            if !self.tenants.iter().any(|t| t.name == l.tenant) {
                return Err(invalid(
                    &format!("syslog[{i}].tenant"),
                    format!("no tenant `{}`", l.tenant),
                ));
            }
            if !valid_type_name(&l.log_type) {
                return Err(invalid(
                    &format!("syslog[{i}].type"),
                    format!("`{}` is not a valid log type", l.log_type),
                ));
            }
            if l.max_message_bytes == 0 {
                return Err(invalid(
                    &format!("syslog[{i}].max_message_bytes"),
                    "must be greater than zero".into(),
                ));
            }
            for (k, f) in l.filters.iter().enumerate() {
                if !valid_filter_name(&f.name) {
                    return Err(invalid(
                        &format!("syslog[{i}].filters[{k}].name"),
                        format!("`{}` {FILTER_NAME_RULE}", f.name),
                    ));
                }
            }
        }
        if self.limits.max_line_bytes == 0 || self.limits.max_body_bytes == 0 {
            return Err(invalid("limits", "limits must be greater than zero".into()));
        }
        if self.wal.segment_bytes >= self.wal.max_bytes {
            return Err(invalid(
                "wal.segment_bytes",
                "must be smaller than wal.max_bytes".into(),
            ));
        }
        Ok(())
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// Log type names become directory names and query terms: keep them plain.
pub fn valid_type_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// What a filter name may be, said in errors.
pub const FILTER_NAME_RULE: &str = "must be 1-64 characters of a-z, 0-9, '_' and '-'";

/// Filter names follow the log type rule (they become directory names).
pub fn valid_filter_name(name: &str) -> bool {
    valid_type_name(name)
}

fn apply_override(table: &mut toml::Table, keys: &[String], raw: &str) -> Result<(), String> {
    let (last, parents) = keys.split_last().ok_or("empty key")?;
    let mut cursor: Option<&mut toml::Value> = None;
    for key in parents {
        let next = match cursor.take() {
            None => table
                .entry(key.clone())
                .or_insert_with(|| toml::Value::Table(Default::default())),
            Some(toml::Value::Table(t)) => t
                .entry(key.clone())
                .or_insert_with(|| toml::Value::Table(Default::default())),
            Some(toml::Value::Array(a)) => {
                let i: usize = key
                    .parse()
                    .map_err(|_| format!("`{key}` must be an array index"))?;
                a.get_mut(i)
                    .ok_or_else(|| format!("array index {i} is out of range"))?
            }
            Some(_) => return Err(format!("`{key}` is below a value that is not a table")),
        };
        cursor = Some(next);
    }
    let value = parse_env_value(raw);
    match cursor {
        None => {
            table.insert(last.clone(), value);
        }
        Some(toml::Value::Table(t)) => {
            t.insert(last.clone(), value);
        }
        Some(toml::Value::Array(a)) => {
            let i: usize = last
                .parse()
                .map_err(|_| format!("`{last}` must be an array index"))?;
            *a.get_mut(i)
                .ok_or_else(|| format!("array index {i} is out of range"))? = value;
        }
        Some(_) => return Err(format!("`{last}` is below a value that is not a table")),
    }
    Ok(())
}

fn parse_env_value(raw: &str) -> toml::Value {
    // `x = <raw>` parses numbers, booleans and arrays; anything else is a string.
    match toml::from_str::<toml::Table>(&format!("x = {raw}")) {
        Ok(mut t) => t
            .remove("x")
            .unwrap_or_else(|| toml::Value::String(raw.to_string())),
        Err(_) => toml::Value::String(raw.to_string()),
    }
}

/// Parses "250ms", "10s", "5m", "24h", "7d"; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 500ms, 10s, 5m, 24h or 7d"))?;
    let secs = |k: u64| Duration::from_secs(n.saturating_mul(k));
    match unit.trim() {
        "ms" => Ok(Duration::from_millis(n)),
        "" | "s" => Ok(secs(1)),
        "m" => Ok(secs(60)),
        "h" => Ok(secs(3600)),
        "d" => Ok(secs(86_400)),
        other => Err(format!(
            "unknown duration unit `{other}` in `{text}` (use ms, s, m, h or d)"
        )),
    }
}

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

fn de_duration_map<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, Duration>, D::Error> {
    let raw = BTreeMap::<String, String>::deserialize(d)?;
    raw.into_iter()
        .map(|(k, v)| Ok((k, parse_duration(&v).map_err(serde::de::Error::custom)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_defaults_are_a_working_single_node() {
        let c = Config::load_with_env(None, Vec::new()).unwrap();
        assert_eq!(c.server.http_addr.to_string(), DEFAULT_HTTP_ADDR);
        assert!(c.open_mode());
        assert_eq!(c.tenants[0].name, DEFAULT_TENANT);
    }

    #[test]
    fn unknown_key_is_an_error_naming_the_key() {
        let err = Config::from_toml("[[tenants]]\nname = \"a\"\nrouts = []\n").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("tenants[0]") && text.contains("routs"),
            "{text}"
        );
        let err = Config::from_toml("[server]\nhttp_adr = \"127.0.0.1:1\"\n").unwrap_err();
        assert!(err.to_string().contains("http_adr"), "{err}");
    }

    #[test]
    fn wal_compression_is_zstd_unless_set_to_none() {
        assert!(Config::from_toml("").unwrap().wal.compress());
        let c = Config::from_toml("[wal]\ncompression = \"none\"\n").unwrap();
        assert!(!c.wal.compress());
        let err = Config::from_toml("[wal]\ncompression = \"lz4\"\n").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("wal.compression") && text.contains("lz4"),
            "{text}"
        );
    }

    #[test]
    fn environment_overrides_the_file() {
        let env = vec![
            (
                "LOGWAY_SERVER__MAX_CONNECTIONS".to_string(),
                "7".to_string(),
            ),
            (
                "LOGWAY_HOT__COMMIT_INTERVAL".to_string(),
                "250ms".to_string(),
            ),
            ("LOGWAY_STORAGE__DATA_DIR".to_string(), "/tmp/x".to_string()),
            ("UNRELATED".to_string(), "1".to_string()),
        ];
        let c = Config::load_with_env(None, env).unwrap();
        assert_eq!(c.server.max_connections, 7);
        assert_eq!(c.hot.commit_interval, Duration::from_millis(250));
        assert_eq!(c.storage.data_dir, PathBuf::from("/tmp/x"));
        let bad = vec![("LOGWAY_SERVER__NOPE".to_string(), "1".to_string())];
        assert!(
            Config::load_with_env(None, bad)
                .unwrap_err()
                .to_string()
                .contains("nope")
        );
    }

    #[test]
    fn refuses_network_address_without_keys() {
        let err = Config::from_toml("[server]\nhttp_addr = \"0.0.0.0:8080\"\n").unwrap_err();
        assert!(err.to_string().contains("loopback"), "{err}");
        let ok = Config::from_toml(
            "[server]\nhttp_addr = \"0.0.0.0:8080\"\n[[tenants]]\nname = \"a\"\ningest_keys = [\"abcdefgh\"]\n",
        );
        assert!(ok.is_ok());
    }

    #[test]
    fn a_syslog_listener_must_be_explicitly_unauthenticated() {
        let base = "[[tenants]]\nname = \"default\"\n[[syslog]]\naddr = \"127.0.0.1:5514\"\ntenant = \"default\"\ntype = \"syslog\"\n";
        let err = Config::from_toml(base).unwrap_err();
        assert!(
            err.to_string().contains("syslog[0].unauthenticated"),
            "{err}"
        );
        Config::from_toml(&format!("{base}unauthenticated = true\n")).unwrap();
        let err = Config::from_toml(&format!(
            "{base}unauthenticated = true\nfilters = [{{ name = \"Bad Name\" }}]\n"
        ))
        .unwrap_err();
        assert!(
            err.to_string().contains("syslog[0].filters[0].name"),
            "{err}"
        );
        let ok = Config::from_toml(&format!(
            "{base}unauthenticated = true\nfilters = [{{ name = \"openssh\", config = {{ year = 2017 }} }}]\n"
        ))
        .unwrap();
        assert_eq!(
            ok.syslog[0].filters[0].config,
            [("year".into(), "2017".into())]
        );
    }

    #[test]
    fn a_certificate_name_belongs_to_one_tenant_and_nice_is_0_to_19() {
        let two = |a: &str, b: &str| {
            format!(
                "[[tenants]]\nname = \"a\"\ningest_cert_names = [\"{a}\"]\n[[tenants]]\nname = \"b\"\ningest_cert_names = [\"{b}\"]\n"
            )
        };
        let err = Config::from_toml(&two("x.example", "x.example")).unwrap_err();
        assert!(
            err.to_string().contains("tenants[1].ingest_cert_names"),
            "{err}"
        );
        let ok = Config::from_toml(&two("x.example", "y.example")).unwrap();
        assert!(!ok.open_mode(), "certificate names are credentials");
        for bad in [-1, 20] {
            let text = format!("[server]\nbackground_nice = {bad}\n");
            let err = Config::from_toml(&text).unwrap_err();
            assert!(err.to_string().contains("server.background_nice"), "{err}");
        }
        let text = "[server]\nbackground_nice = 0\n";
        assert_eq!(Config::from_toml(text).unwrap().server.background_nice, 0);
    }

    #[test]
    fn retention_is_the_types_else_the_tenants_else_the_default() {
        let c = Config::from_toml(
            r#"
[hot]
retention = "7d"
retention_by_type = { debug_logs = "1d" }
[archive]
retention_by_type = { audit = "400d" }
[[tenants]]
name = "a"
ingest_keys = ["a-ingest-key-0001"]
hot_retention = "3d"
cold_retention = "30d"
[[tenants]]
name = "b"
ingest_keys = ["b-ingest-key-0001"]
"#,
        )
        .unwrap();
        let day = Duration::from_secs(86_400);
        assert_eq!(c.hot.retention_for("a", "debug_logs"), day);
        assert_eq!(c.hot.retention_for("a", "web_logs"), 3 * day);
        assert_eq!(c.hot.retention_for("b", "web_logs"), 7 * day);
        assert_eq!(c.archive.retention_for("a", "audit"), Some(400 * day));
        assert_eq!(c.archive.retention_for("a", "web_logs"), Some(30 * day));
        assert_eq!(c.archive.retention_for("b", "web_logs"), None);
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(
            parse_duration("7d").unwrap(),
            Duration::from_secs(7 * 86400)
        );
        assert!(parse_duration("7 weeks").is_err());
    }

    #[test]
    fn example_config_is_valid() {
        let text = include_str!("../../examples/logway.toml");
        Config::from_toml(text).unwrap();
    }
}
