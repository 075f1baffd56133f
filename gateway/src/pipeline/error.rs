//! Why the pipeline refused a batch, in plain terms: no HTTP here. The
//! HTTP sources map these to statuses in one place (`crate::error`);
//! other protocols to their own answers.

use std::time::Duration;

use crate::tenants::AccessError;
use crate::tenants::limit::Refusal;
use crate::wal::WalError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No, unknown or unfit key; no route.
    #[error(transparent)]
    Access(#[from] AccessError),
    /// Over a rate limit (or over its burst: never).
    #[error(transparent)]
    Limited(#[from] Refusal),
    #[error("Idempotency-Key must be 1-255 characters")]
    BadIdempotencyKey,
    #[error("a request with this Idempotency-Key is still being processed; retry later")]
    InFlight,
    #[error("this Idempotency-Key was already used with a different body")]
    KeyReused,
    #[error("the body holds no events")]
    Empty,
    /// The WAL refused the batch (full, disk full, closed, I/O).
    #[error(transparent)]
    Wal(#[from] WalError),
    /// The batch's class is shed (the hot index is too far behind), or in
    /// cluster mode the Kafka log did not take it (brokers unreachable,
    /// its queue full, no delivery report in time).
    #[error("{0}")]
    Unavailable(String),
    /// Cluster mode: the batch is larger than a record may be.
    #[error("{0}")]
    TooLarge(String),
}

impl Error {
    /// A full WAL or disk, an unreachable Kafka: worth retrying the same
    /// batch shortly.
    pub fn is_full(&self) -> bool {
        matches!(
            self,
            Error::Wal(WalError::Full { .. } | WalError::QueueFull | WalError::DiskFull)
                | Error::Unavailable(_)
        )
    }

    /// How long a source that keeps its client waiting (Beats, a Kafka
    /// topic) waits before trying the same batch again; `None` when a
    /// retry cannot help.
    pub fn retry_in(&self) -> Option<Duration> {
        match self {
            Error::Limited(r) => Some(Duration::from_secs(r.retry_after.unwrap_or(1).max(1))),
            Error::InFlight => Some(Duration::from_millis(100)),
            _ if self.is_full() => Some(Duration::from_millis(500)),
            _ => None,
        }
    }
}
