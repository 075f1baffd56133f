//! Prometheus remote-write out: each `[[metrics.remote_write]]` entry sends
//! one tenant's series (what its StatsD listeners and derived metrics
//! aggregated, [`super::exposition`]) to a Prometheus-compatible TSDB
//! (Prometheus with its remote-write receiver, VictoriaMetrics, Mimir,
//! Thanos receive) every `interval`, so teams keep their dashboards.
//!
//! The protocol is remote-write 1.0: a `prometheus.WriteRequest` in
//! protobuf, snappy (block format) compressed, `POST`ed with
//! `Content-Encoding: snappy` and `X-Prometheus-Remote-Write-Version:
//! 0.1.0`. Each request carries every live series once, stamped with the
//! time of the send, under the names a scrape of
//! `GET /api/v1/metrics/prometheus` reads (counters are cumulative since
//! the gateway started, so a reset at a restart is what `rate()` expects).
//!
//! Failures, as the spec asks ([`crate::outbound`]): a 408, 429 or 5xx
//! answer, or no answer, is tried again with backoff until the next send
//! is due; the next request carries newer values of the same series
//! (counters are cumulative), so only that interval's resolution is lost.
//! Another 4xx is not tried again and its body is logged. Both are counted in
//! `logway_remote_write_failures_total{tenant, reason}`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use prost::Message;
use serde::Deserialize;
use tokio::sync::watch;

use super::exposition::{Exposition, Sample};
use crate::config::ConfigError;
use crate::config::value::{check_headers, check_http_url, de_duration, invalid};
use crate::outbound::Answer;

/// One `[[metrics.remote_write]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteWriteConfig {
    /// The receiver, e.g. "http://prometheus:9090/api/v1/write".
    pub url: String,
    /// Whose series are sent.
    pub tenant: String,
    /// How often every live series is sent.
    #[serde(default = "ten_seconds", deserialize_with = "de_duration")]
    pub interval: Duration,
    /// How long one request may take.
    #[serde(default = "ten_seconds", deserialize_with = "de_duration")]
    pub timeout: Duration,
    /// Extra request headers: `Authorization`, `X-Scope-OrgID` (Mimir).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Labels added to every series (Prometheus's `external_labels`); a
    /// series' own label of the same name wins.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

fn ten_seconds() -> Duration {
    Duration::from_secs(10)
}

impl RemoteWriteConfig {
    /// Checks entry `i`; `is_tenant` tells the configured tenants' names.
    pub fn validate(&self, i: usize, is_tenant: impl Fn(&str) -> bool) -> Result<(), ConfigError> {
        let at = |key: &str| format!("metrics.remote_write[{i}].{key}");
        check_http_url(&at("url"), &self.url)?;
        if !is_tenant(&self.tenant) {
            return Err(invalid(
                &at("tenant"),
                format!("no tenant `{}`", self.tenant),
            ));
        }
        if self.interval < Duration::from_millis(100) {
            return Err(invalid(&at("interval"), "must be at least 100ms"));
        }
        if self.timeout.is_zero() {
            return Err(invalid(&at("timeout"), "must be more than 0"));
        }
        check_headers(&at("headers"), &self.headers)?;
        if let Some(k) = self.labels.keys().find(|k| !valid_label_name(k)) {
            return Err(invalid(
                &at("labels"),
                format!("`{k}` is not a label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with __)"),
            ));
        }
        Ok(())
    }
}

fn valid_label_name(k: &str) -> bool {
    let mut chars = k.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !k.starts_with("__")
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantLabel {
    pub tenant: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    pub tenant: String,
    /// `rejected` (a 4xx other than 408 and 429: not tried again) or
    /// `unavailable` (408, 429, 5xx or no answer until the next send was due).
    pub reason: String,
}

/// The senders' counters at `/metrics`.
#[derive(Default)]
pub struct WriteMetrics {
    pub samples: Family<TenantLabel, Counter>,
    pub failures: Family<FailureLabels, Counter>,
}

impl WriteMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "remote_write_samples",
            "Samples a remote-write receiver accepted, by tenant",
            self.samples.clone(),
        );
        registry.register(
            "remote_write_failures",
            "Remote-write requests that did not get through, by tenant and reason (rejected: a 4xx answer, not tried again; unavailable: 5xx, 429 or no answer until the next send)",
            self.failures.clone(),
        );
    }
}

/// `prometheus.WriteRequest` (remote-write 1.0, `prompb/remote.proto`).
#[derive(Clone, PartialEq, Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TimeSeries {
    /// Sorted by name, `__name__` among them.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<PromSample>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Label {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct PromSample {
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Unix milliseconds.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// The request for `samples` at `now_ms`, with the external `labels`.
pub fn request(
    samples: Vec<Sample>,
    labels: &BTreeMap<String, String>,
    now_ms: i64,
) -> WriteRequest {
    let timeseries = samples
        .into_iter()
        .map(|s| {
            let mut all: BTreeMap<String, String> = labels.clone();
            all.extend(s.labels);
            all.insert("__name__".into(), s.name);
            TimeSeries {
                labels: all
                    .into_iter()
                    .map(|(name, value)| Label { name, value })
                    .collect(),
                samples: vec![PromSample {
                    value: s.value,
                    timestamp: now_ms,
                }],
            }
        })
        .collect();
    WriteRequest { timeseries }
}

/// Starts one sender per entry; each stops at shutdown.
pub fn spawn(
    configs: &[RemoteWriteConfig],
    metrics: &Arc<super::Metrics>,
    shutdown: &watch::Receiver<bool>,
) {
    for c in configs {
        tokio::spawn(send_loop(c.clone(), metrics.clone(), shutdown.clone()));
    }
}

async fn send_loop(
    config: RemoteWriteConfig,
    all: Arc<super::Metrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    let (exposition, metrics): (&Exposition, &WriteMetrics) =
        (&all.statsd_series, &all.remote_write);
    let client = match reqwest::Client::builder().timeout(config.timeout).build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(url = %config.url, error = %e, "remote-write client not built");
            return;
        }
    };
    let tenant = TenantLabel {
        tenant: config.tenant.clone(),
    };
    let mut tick = tokio::time::interval(config.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tick.tick() => {}
        }
        let samples = exposition.samples(&config.tenant);
        if samples.is_empty() {
            continue;
        }
        let n = samples.len() as u64;
        let body = request(samples, &config.labels, crate::now_ms()).encode_to_vec();
        let Ok(body) = snap::raw::Encoder::new().compress_vec(&body) else {
            continue;
        };
        let due = Instant::now() + config.interval;
        let failed = |reason: &str| {
            metrics
                .failures
                .get_or_create(&FailureLabels {
                    tenant: config.tenant.clone(),
                    reason: reason.into(),
                })
                .inc();
        };
        match send(&client, &config, body, due, &mut shutdown).await {
            Answer::Accepted => {
                metrics.samples.get_or_create(&tenant).inc_by(n);
            }
            Answer::Refused(why) => {
                tracing::warn!(url = %config.url, tenant = %config.tenant, %why, "remote-write request rejected; not tried again");
                failed("rejected");
            }
            Answer::Retry(why) => {
                tracing::warn!(url = %config.url, tenant = %config.tenant, %why, "remote-write receiver unavailable until the next send");
                failed("unavailable");
            }
        }
    }
}

/// Posts `body`, trying again after 408, 429, 5xx or no answer (backoff
/// from 100 ms, doubling) until `due` or shutdown: `Retry` then says why
/// it did not get through.
async fn send(
    client: &reqwest::Client,
    config: &RemoteWriteConfig,
    body: Vec<u8>,
    due: Instant,
    shutdown: &mut watch::Receiver<bool>,
) -> Answer {
    let mut backoff = Duration::from_millis(100);
    loop {
        let mut req = client
            .post(&config.url)
            .header("content-type", "application/x-protobuf")
            .header("content-encoding", "snappy")
            .header("x-prometheus-remote-write-version", "0.1.0")
            .header("user-agent", concat!("logway/", env!("CARGO_PKG_VERSION")));
        for (k, v) in &config.headers {
            req = req.header(k, v);
        }
        let why = match crate::outbound::post(req.body(body.clone()), &config.url).await {
            Answer::Retry(why) => why,
            done => return done,
        };
        if Instant::now() + backoff >= due {
            return Answer::Retry(why);
        }
        tokio::select! {
            _ = shutdown.changed() => return Answer::Retry(why),
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_carry_their_name_and_sorted_labels() {
        let samples = vec![Sample {
            family: "api_hits_total".into(),
            kind: "counter",
            name: "api_hits_total".into(),
            labels: vec![("env".into(), "prod".into())],
            value: 6.0,
        }];
        let external = BTreeMap::from([
            ("Zone".to_string(), "eu".to_string()),
            ("env".to_string(), "ignored".to_string()),
        ]);
        let req = request(samples, &external, 1_700_000_000_000);
        let labels: Vec<(&str, &str)> = req.timeseries[0]
            .labels
            .iter()
            .map(|l| (l.name.as_str(), l.value.as_str()))
            .collect();
        assert_eq!(
            labels,
            [
                ("Zone", "eu"),
                ("__name__", "api_hits_total"),
                ("env", "prod")
            ]
        );
        assert_eq!(req.timeseries[0].samples[0].timestamp, 1_700_000_000_000);
        let decoded = WriteRequest::decode(&*req.encode_to_vec()).unwrap();
        assert_eq!(decoded, req);
        assert!(valid_label_name("region") && !valid_label_name("__x") && !valid_label_name("9a"));
    }
}
