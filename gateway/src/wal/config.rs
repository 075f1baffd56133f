//! The `[wal]` section.

use serde::Deserialize;

use crate::config::ConfigError;
use crate::config::value::invalid;

pub const DEFAULT_WAL_MAX_BYTES: u64 = 2 * 1024 * 1024 * 1024;
pub const DEFAULT_WAL_SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
pub const DEFAULT_WAL_QUEUE_LEN: usize = 4096;

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

impl WalConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.segment_bytes >= self.max_bytes {
            return Err(invalid(
                "wal.segment_bytes",
                "must be smaller than wal.max_bytes",
            ));
        }
        Ok(())
    }

    /// The writer's options.
    pub fn options(&self) -> super::WalOptions {
        super::WalOptions {
            max_bytes: self.max_bytes,
            segment_bytes: self.segment_bytes,
            queue_len: self.queue_len,
        }
    }
}
