//! `[[statsd]]`: StatsD / DogStatsD listeners over UDP or TCP, each bound to one
//! tenant, their points stored as metric-class events of one log type.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use crate::config::ConfigError;
use crate::config::class::Class;
use crate::config::value::{de_duration, invalid};
use crate::tenants::Route;
use crate::tenants::config::TenantConfig;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsdConfig {
    /// Address, e.g. "0.0.0.0:8125".
    pub addr: SocketAddr,
    /// `udp` (the default) or `tcp` (newline-separated lines on each
    /// connection).
    #[serde(default)]
    pub mode: Mode,
    pub tenant: String,
    /// The log type of the points.
    #[serde(rename = "type", default = "default_type")]
    pub log_type: String,
    /// StatsD has no keys: the listener must say it accepts that.
    #[serde(default)]
    pub unauthenticated: bool,
    /// The aggregation interval: each series writes one point per interval.
    #[serde(default = "default_flush", deserialize_with = "de_duration")]
    pub flush_interval: Duration,
    /// Series held per interval at most; samples of more are dropped.
    #[serde(default = "default_max_series")]
    pub max_series: usize,
    /// Quantiles of timers, histograms and distributions (0 < q < 1).
    #[serde(default = "default_quantiles")]
    pub quantiles: Vec<f64>,
}

/// How a listener receives lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Udp,
    Tcp,
}

fn default_type() -> String {
    "metrics".into()
}
fn default_flush() -> Duration {
    Duration::from_secs(10)
}
fn default_max_series() -> usize {
    100_000
}
fn default_quantiles() -> Vec<f64> {
    vec![0.5, 0.9, 0.99]
}

impl StatsdConfig {
    /// What the listener gives its points: a metric-class route.
    pub fn route(&self, tenants: &[TenantConfig]) -> Route {
        Route::for_listener(
            tenants,
            &self.tenant,
            &self.log_type,
            &[],
            &Default::default(),
            Class::Metric,
        )
    }

    pub fn validate(&self, i: usize, tenants: &[TenantConfig]) -> Result<(), ConfigError> {
        let at = |key: &str| format!("statsd[{i}].{key}");
        crate::sources::check_bound(
            crate::sources::BoundConfig {
                at: format!("statsd[{i}]"),
                no_keys: "StatsD has no keys",
                tenant: &self.tenant,
                log_type: &self.log_type,
                unauthenticated: self.unauthenticated,
                tls: None,
                filters: &[],
            },
            tenants,
        )?;
        if self.flush_interval < Duration::from_millis(100) {
            return Err(invalid(&at("flush_interval"), "must be at least 100ms"));
        }
        if self.max_series == 0 {
            return Err(invalid(&at("max_series"), "must be at least 1"));
        }
        if let Some(q) = self.quantiles.iter().find(|q| !(**q > 0.0 && **q < 1.0)) {
            return Err(invalid(
                &at("quantiles"),
                format!("{q} is not between 0 and 1"),
            ));
        }
        Ok(())
    }
}
