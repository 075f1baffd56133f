//! The `[wal]` section.

use serde::Deserialize;

use crate::config::ConfigError;
use crate::config::value::invalid;

pub const DEFAULT_WAL_MAX_BYTES: u64 = 2 * 1024 * 1024 * 1024;
pub const DEFAULT_WAL_SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
pub const DEFAULT_WAL_QUEUE_LEN: usize = 4096;
pub const DEFAULT_WAL_EVENT_QUEUE_LEN: usize = 1024;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WalConfig {
    /// Disk the WAL may use; past it ingest answers 503 until consumers catch up.
    pub max_bytes: u64,
    /// A segment is closed and a new one started past this size.
    pub segment_bytes: u64,
    /// Appends waiting for the writer at most; past it, 503.
    pub queue_len: usize,
    /// Event-class appends waiting for the writer at most, in their own
    /// queue, which the writer takes ahead of the others.
    pub event_queue_len: usize,
    /// Share of `max_bytes` log-class ingest may fill: past it logs get
    /// 503, while metrics and events are still taken.
    pub log_share: f64,
    /// Share of `max_bytes` metric-class ingest may fill; events may
    /// fill all of it.
    pub metric_share: f64,
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
            event_queue_len: DEFAULT_WAL_EVENT_QUEUE_LEN,
            log_share: 0.8,
            metric_share: 0.9,
            compression: WalCompression::Zstd,
        }
    }
}

impl WalConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(self.log_share > 0.0
            && self.log_share <= self.metric_share
            && self.metric_share <= 1.0)
        {
            return Err(invalid(
                "wal.log_share",
                "must be above 0 and at most wal.metric_share, which is at most 1",
            ));
        }
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
            event_queue_len: self.event_queue_len,
            log_share: self.log_share,
            metric_share: self.metric_share,
        }
    }
}
