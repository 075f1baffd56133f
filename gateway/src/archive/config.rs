//! The `[archive]` section and its `[archive.s3]` store.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::config::ConfigError;
use crate::config::value::{Secret, de_duration, de_duration_map, de_opt_duration, invalid};

pub const DEFAULT_ARCHIVE_PREFIX: &str = "logs";
pub const DEFAULT_ARCHIVE_MAX_OBJECT_BYTES: usize = 64 * 1024 * 1024;
pub const DEFAULT_ARCHIVE_MAX_OBJECT_AGE: Duration = Duration::from_secs(300);
pub const DEFAULT_ARCHIVE_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_ARCHIVE_MAX_ATTEMPTS: u32 = 5;
pub const DEFAULT_S3_REGION: &str = "us-east-1";
pub const DEFAULT_S3_MULTIPART_THRESHOLD_BYTES: usize = 16 * 1024 * 1024;
pub const DEFAULT_S3_MULTIPART_PART_BYTES: usize = 8 * 1024 * 1024;

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

    pub fn validate(&self) -> Result<(), ConfigError> {
        let prefix = &self.prefix;
        if prefix.is_empty()
            || prefix.starts_with('/')
            || prefix.ends_with('/')
            || prefix
                .split('/')
                .any(|p| p.is_empty() || p == "." || p == "..")
        {
            return Err(invalid(
                "archive.prefix",
                format!(
                    "`{prefix}` must be non-empty path segments without leading or trailing '/'"
                ),
            ));
        }
        if self.max_object_bytes == 0 {
            return Err(invalid("archive.max_object_bytes", "must be above 0"));
        }
        if let Some(s3) = &self.s3 {
            if s3.bucket.is_empty() {
                return Err(invalid("archive.s3.bucket", "must not be empty"));
            }
            if s3.access_key_id.is_some() != s3.secret_access_key.is_some() {
                return Err(invalid(
                    "archive.s3",
                    "set both access_key_id and secret_access_key, or neither (the AWS credential chain)",
                ));
            }
        }
        Ok(())
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
