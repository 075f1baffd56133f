//! The `[limits]` and `[idempotency]` sections: bounds on what one request
//! may bring into the pipeline, and how long retries are recognised.

use std::time::Duration;

use serde::Deserialize;

use crate::config::ConfigError;
use crate::config::value::{de_duration, invalid};

pub const DEFAULT_MAX_BODY_BYTES: usize = 10 * 1024 * 1024;
pub const DEFAULT_MAX_DECOMPRESSED_BYTES: usize = 64 * 1024 * 1024;
pub const DEFAULT_MAX_LINE_BYTES: usize = 1024 * 1024;
pub const DEFAULT_MAX_FIELDS_PER_EVENT: usize = 1000;
pub const DEFAULT_SHED_AT_INDEX_LAG_BYTES: u64 = 512 * 1024 * 1024;
pub const DEFAULT_IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(86_400);
pub const DEFAULT_MAX_EVENT_IDS: usize = 1_000_000;

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
    /// Past this many bytes of the WAL not yet committed by the hot index,
    /// log-class batches are refused (503), metric-class ones past twice
    /// it, event-class ones never; 0: never.
    pub shed_at_index_lag_bytes: u64,
    /// Share of the machine's CPUs (0-1) busy past which, for
    /// `shed_cpu_after`, log-class batches are refused (503), metric-class
    /// ones after twice that, event-class ones never; 0: never.
    pub shed_at_cpu: f64,
    /// How long the CPUs must stay past `shed_at_cpu` before logs are shed.
    #[serde(deserialize_with = "crate::config::value::de_duration")]
    pub shed_cpu_after: std::time::Duration,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_decompressed_bytes: DEFAULT_MAX_DECOMPRESSED_BYTES,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            max_fields_per_event: DEFAULT_MAX_FIELDS_PER_EVENT,
            shed_at_index_lag_bytes: DEFAULT_SHED_AT_INDEX_LAG_BYTES,
            shed_at_cpu: 0.0,
            shed_cpu_after: std::time::Duration::from_secs(2),
        }
    }
}

impl LimitsConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(0.0..=1.0).contains(&self.shed_at_cpu) {
            return Err(invalid(
                "limits.shed_at_cpu",
                "must be a share of the CPUs from 0 (never) to 1",
            ));
        }
        if self.max_line_bytes == 0 || self.max_body_bytes == 0 {
            return Err(invalid("limits", "limits must be greater than zero"));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdempotencyConfig {
    /// How long an `Idempotency-Key` is remembered.
    #[serde(deserialize_with = "de_duration")]
    pub window: Duration,
    /// Client-chosen event ids (an Elasticsearch `_id`) remembered at most,
    /// within the same window; past it the oldest are forgotten first.
    pub max_event_ids: usize,
}

impl Default for IdempotencyConfig {
    fn default() -> Self {
        IdempotencyConfig {
            window: DEFAULT_IDEMPOTENCY_WINDOW,
            max_event_ids: DEFAULT_MAX_EVENT_IDS,
        }
    }
}
