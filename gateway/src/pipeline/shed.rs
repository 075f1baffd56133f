//! Refusals for want of room, by delivery class
//! (`docs/guides/delivery-classes.md`): the log (the WAL's shares and
//! queues, or Kafka in cluster mode) refuses what it has no room for, and
//! while the hot index is too far behind, log- and then metric-class
//! batches are refused before they reach it, as they are while the
//! machine's CPUs are saturated ([`super::cpu`]). Every refusal is counted in
//! `logway_shed_total{class, reason}`.

use super::{Error, Pipeline, Sealed};
use crate::config::class::Class;
use crate::telemetry::ShedLabels;
use crate::wal::WalError;

impl Pipeline {
    /// Refuses a log- or metric-class batch while the hot index is further
    /// behind than `limits.shed_at_index_lag_bytes` (twice it for metrics).
    pub(super) fn shed_for_index_lag(&self, sealed: &Sealed) -> Result<(), Error> {
        let limit = self.limits.shed_at_index_lag_bytes;
        let bound = match sealed.class {
            _ if limit == 0 => return Ok(()),
            Class::Event => return Ok(()),
            Class::Metric => limit.saturating_mul(2),
            Class::Log => limit,
        };
        let lag = self.metrics.hot_index_lag_bytes.get().max(0) as u64;
        if lag <= bound {
            return Ok(());
        }
        self.count_shed(sealed.class, "index_lag");
        Err(Error::Unavailable(format!(
            "the hot index is {lag} bytes of the write-ahead log behind, past {bound} for {} batches (limits.shed_at_index_lag_bytes); try again later",
            sealed.class.as_str()
        )))
    }

    /// Refuses a log-class batch while the machine's CPUs have been busy
    /// past `limits.shed_at_cpu` for `limits.shed_cpu_after` (a metric-class
    /// one after twice that), so that events keep the CPU.
    pub(super) fn shed_for_cpu(&self, sealed: &Sealed) -> Result<(), Error> {
        let Some(saturated) = self.cpu.as_ref().and_then(|c| c.saturated_for()) else {
            return Ok(());
        };
        let after = self.limits.shed_cpu_after;
        let bound = match sealed.class {
            Class::Event => return Ok(()),
            Class::Metric => after * 2,
            Class::Log => after,
        };
        if saturated < bound {
            return Ok(());
        }
        self.count_shed(sealed.class, "cpu");
        Err(Error::Unavailable(format!(
            "the CPUs have been more than {:.0}% busy for {} ms, past {} ms for {} batches (limits.shed_at_cpu); try again later",
            self.limits.shed_at_cpu * 100.0,
            saturated.as_millis(),
            bound.as_millis(),
            sealed.class.as_str()
        )))
    }

    /// Counts the log's refusal `e` of a batch of `class`, if it was for
    /// want of room.
    pub(super) fn count_refusal(&self, class: Class, e: &Error) {
        let reason = match e {
            Error::Wal(WalError::Full { .. }) => "wal_full",
            Error::Wal(WalError::QueueFull) => "queue_full",
            Error::Wal(WalError::DiskFull) => "disk_full",
            Error::Unavailable(_) => "unavailable",
            _ => return,
        };
        self.count_shed(class, reason);
    }

    fn count_shed(&self, class: Class, reason: &str) {
        self.metrics
            .shed
            .get_or_create(&ShedLabels {
                class: class.as_str().to_string(),
                reason: reason.to_string(),
            })
            .inc();
    }
}
