//! Logs (`tracing`), traces (optional OTLP export) and metrics (Prometheus
//! text at `GET /metrics`).
//!
//! Metric names are a contract: they are listed in the README ("Metrics")
//! and asserted by `tests/ingest.rs`. Never log a key: spans and logs carry
//! the tenant name only, and request logs never include the query string.
//!
//! Traces: each ingest and search request is an `ingest` / `search` span
//! with tenant, log type and event count. They are exported over OTLP/HTTP
//! when `telemetry.otlp_endpoint` is set, or when the standard
//! `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`
//! variables are; otherwise nothing is exported.
//!
//! Tenants' own metrics (from StatsD) are exposed apart, per tenant:
//! [`exposition`], and sent to Prometheus-compatible TSDBs:
//! [`remote_write`].

pub mod alerts;
pub mod exposition;
pub mod remote_write;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use serde::Deserialize;

/// The `[telemetry]` section.
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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantType {
    pub tenant: String,
    pub r#type: String,
}

impl TenantType {
    pub fn new(tenant: &str, log_type: &str) -> Self {
        TenantType {
            tenant: tenant.to_string(),
            r#type: log_type.to_string(),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RejectLabels {
    pub tenant: String,
    pub r#type: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LimitLabels {
    pub tenant: String,
    pub r#type: String,
    /// e.g. "tenant_events", "client_bytes", "route_events_over_burst".
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub endpoint: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabel {
    pub endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FilterLabels {
    pub tenant: String,
    pub filter: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FilterReasonLabels {
    pub tenant: String,
    pub filter: String,
    /// "trap", "cpu", "memory", "output", "init", "missing", "instantiate".
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FilterCounterLabels {
    pub tenant: String,
    pub filter: String,
    pub name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ShedLabels {
    /// The route's delivery class: "log", "metric", "event".
    pub class: String,
    /// "wal_full", "queue_full", "disk_full", "index_lag", "cpu", "unavailable" (cluster mode).
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookLabels {
    pub tenant: String,
    pub route: String,
    /// "delivered" or "abandoned".
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatsdDropLabels {
    /// The listener's address.
    pub listener: String,
    /// "bad_line", "series", "refused".
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GelfDropLabels {
    /// The listener's address.
    pub listener: String,
    /// "bad_chunk", "incomplete", "memory", "overloaded", "refused".
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StoreOpLabels {
    /// "put", "get", "list", "delete".
    pub op: String,
    /// "ok", "not_found", "transient_error", "permanent_error".
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabel {
    pub op: String,
}

type HistogramFamily = Family<EndpointLabel, Histogram, fn() -> Histogram>;

/// Every metric the gateway exports.
pub struct Metrics {
    registry: Registry,
    /// Alert rules and receivers (`crate::alerts`).
    pub alerts: alerts::AlertMetrics,
    pub events_received: Family<TenantType, Counter>,
    pub events_rejected: Family<RejectLabels, Counter>,
    pub events_indexed: Family<TenantType, Counter>,
    pub bytes_received: Family<TenantType, Counter>,
    pub http_requests: Family<HttpLabels, Counter>,
    pub http_request_duration: HistogramFamily,
    pub idempotent_replays: Counter,
    pub event_ids: Gauge,
    pub event_ids_forgotten: Counter,
    pub requests_limited: Family<LimitLabels, Counter>,
    pub limiter_client_keys: Gauge,
    pub wal_bytes: Gauge,
    pub wal_torn_bytes: Gauge,
    pub hot_index_lag_bytes: Gauge,
    pub hot_partitions_deleted: Counter,
    pub filter_batches: Family<FilterLabels, Counter>,
    pub filter_failures: Family<FilterReasonLabels, Counter>,
    pub filter_events_dropped: Family<FilterLabels, Counter>,
    pub filter_instances_created: Family<FilterLabels, Counter>,
    pub filter_host_calls_ignored: Family<FilterLabels, Counter>,
    pub filter_counter: Family<FilterCounterLabels, Counter>,
    pub archive_lag_bytes: Gauge,
    pub archive_objects: Counter,
    pub archive_bytes: Counter,
    pub archive_events: Family<TenantType, Counter>,
    pub archive_upload_errors: Counter,
    /// Cluster mode's producer (`crate::cluster::producer`).
    pub cluster_records_delivered: Counter,
    pub cluster_record_errors: Counter,
    pub cluster_ack_timeouts: Counter,
    pub cluster_brokers_down: Gauge,
    pub cluster_singleton_leader: Gauge,
    pub gelf_dropped: Family<GelfDropLabels, Counter>,
    pub shed: Family<ShedLabels, Counter>,
    /// The machine's busy CPU share in thousandths (`limits.shed_at_cpu`).
    pub cpu_busy_permille: Gauge,
    pub event_webhook_events: Family<WebhookLabels, Counter>,
    pub statsd_lines: Counter,
    pub statsd_dropped: Family<StatsdDropLabels, Counter>,
    /// The tenants' StatsD series, for their Prometheus to scrape.
    pub statsd_series: exposition::Exposition,
    /// Sending those series to Prometheus-compatible TSDBs.
    pub remote_write: remote_write::WriteMetrics,
    pub archive_objects_deleted: Counter,
    pub object_store_requests: Family<StoreOpLabels, Counter>,
    pub object_store_duration: Family<OpLabel, Histogram, fn() -> Histogram>,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("logway");
        let m = Metrics {
            events_received: Family::default(),
            events_rejected: Family::default(),
            events_indexed: Family::default(),
            bytes_received: Family::default(),
            http_requests: Family::default(),
            http_request_duration: Family::new_with_constructor(latency_histogram),
            idempotent_replays: Counter::default(),
            event_ids: Gauge::default(),
            event_ids_forgotten: Counter::default(),
            requests_limited: Family::default(),
            limiter_client_keys: Gauge::default(),
            wal_bytes: Gauge::default(),
            wal_torn_bytes: Gauge::default(),
            hot_index_lag_bytes: Gauge::default(),
            hot_partitions_deleted: Counter::default(),
            filter_batches: Family::default(),
            filter_failures: Family::default(),
            filter_events_dropped: Family::default(),
            filter_instances_created: Family::default(),
            filter_host_calls_ignored: Family::default(),
            filter_counter: Family::default(),
            archive_lag_bytes: Gauge::default(),
            archive_objects: Counter::default(),
            archive_bytes: Counter::default(),
            archive_events: Family::default(),
            archive_upload_errors: Counter::default(),
            cluster_records_delivered: Counter::default(),
            cluster_record_errors: Counter::default(),
            cluster_ack_timeouts: Counter::default(),
            cluster_brokers_down: Gauge::default(),
            cluster_singleton_leader: Gauge::default(),
            gelf_dropped: Family::default(),
            shed: Family::default(),
            cpu_busy_permille: Gauge::default(),
            event_webhook_events: Family::default(),
            statsd_lines: Counter::default(),
            statsd_dropped: Family::default(),
            statsd_series: Default::default(),
            remote_write: Default::default(),
            archive_objects_deleted: Counter::default(),
            object_store_requests: Family::default(),
            object_store_duration: Family::new_with_constructor(latency_histogram),
            registry: Registry::default(),
            alerts: Default::default(),
        };
        m.alerts.register(&mut registry);
        m.remote_write.register(&mut registry);
        registry.register(
            "events_received",
            "Events accepted into the WAL",
            m.events_received.clone(),
        );
        registry.register(
            "events_rejected",
            "Lines or events rejected at ingest, kept as rejected events",
            m.events_rejected.clone(),
        );
        registry.register(
            "events_indexed",
            "Events added to the hot index",
            m.events_indexed.clone(),
        );
        registry.register(
            "ingest_bytes",
            "Request body bytes received (as sent)",
            m.bytes_received.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests answered",
            m.http_requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency, from headers read to response",
            m.http_request_duration.clone(),
        );
        registry.register(
            "idempotent_replays",
            "Requests answered from the idempotency table",
            m.idempotent_replays.clone(),
        );
        registry.register(
            "event_ids",
            "Client-chosen event ids remembered (an Elasticsearch _id), to store each once",
            m.event_ids.clone(),
        );
        registry.register(
            "event_ids_forgotten",
            "Client-chosen event ids forgotten before their window ended (idempotency.max_event_ids)",
            m.event_ids_forgotten.clone(),
        );
        registry.register(
            "requests_limited",
            "Requests refused by a rate limit (429) or over a burst (413)",
            m.requests_limited.clone(),
        );
        registry.register(
            "limiter_client_keys",
            "Client IPs tracked by per-client rate limits",
            m.limiter_client_keys.clone(),
        );
        registry.register(
            "wal_bytes",
            "Bytes of WAL segments on disk",
            m.wal_bytes.clone(),
        );
        registry.register(
            "wal_torn_bytes",
            "Bytes cut from torn WAL tails since start",
            m.wal_torn_bytes.clone(),
        );
        registry.register(
            "hot_index_lag_bytes",
            "Durable WAL bytes not yet read by the hot indexer",
            m.hot_index_lag_bytes.clone(),
        );
        registry.register(
            "hot_partitions_deleted",
            "Hot partitions deleted by retention",
            m.hot_partitions_deleted.clone(),
        );
        registry.register(
            "filter_batches",
            "Batches a WASM filter processed successfully",
            m.filter_batches.clone(),
        );
        registry.register(
            "filter_failures",
            "Batches a WASM filter failed on (their events became dead letters)",
            m.filter_failures.clone(),
        );
        registry.register(
            "filter_events_dropped",
            "Events a WASM filter dropped on purpose",
            m.filter_events_dropped.clone(),
        );
        registry.register(
            "filter_instances_created",
            "WASM filter instances created (first use, more workers, after a failure)",
            m.filter_instances_created.clone(),
        );
        registry.register(
            "filter_host_calls_ignored",
            "Host calls of a filter ignored past its per-batch budget",
            m.filter_host_calls_ignored.clone(),
        );
        registry.register(
            "filter_counter",
            "Counters WASM filters add to with `counter-add`",
            m.filter_counter.clone(),
        );
        registry.register(
            "archive_lag_bytes",
            "Durable WAL bytes not yet uploaded to the archive",
            m.archive_lag_bytes.clone(),
        );
        registry.register(
            "archive_objects",
            "Objects uploaded to the archive",
            m.archive_objects.clone(),
        );
        registry.register(
            "archive_bytes",
            "Compressed bytes uploaded to the archive",
            m.archive_bytes.clone(),
        );
        registry.register(
            "archive_events",
            "Events uploaded to the archive",
            m.archive_events.clone(),
        );
        registry.register(
            "archive_upload_errors",
            "Archive uploads that failed (and are retried)",
            m.archive_upload_errors.clone(),
        );
        registry.register(
            "cluster_records_delivered",
            "Cluster mode: records the events topic acknowledged (acks=all)",
            m.cluster_records_delivered.clone(),
        );
        registry.register(
            "cluster_record_errors",
            "Cluster mode: records whose delivery failed",
            m.cluster_record_errors.clone(),
        );
        registry.register(
            "cluster_ack_timeouts",
            "Cluster mode: requests answered 503 because Kafka did not confirm within cluster.ack_timeout",
            m.cluster_ack_timeouts.clone(),
        );
        registry.register(
            "cluster_brokers_down",
            "Cluster mode: 1 while the producer reports every broker down (requests are refused at once)",
            m.cluster_brokers_down.clone(),
        );
        registry.register(
            "cluster_singleton_leader",
            "1 while this node runs the singleton jobs (the archive's retention sweep): always on a single node; in cluster mode while its indexer owns partition 0 of the index group",
            m.cluster_singleton_leader.clone(),
        );
        registry.register(
            "shed",
            "Appends refused because the log had no room for their delivery class (logs first, metrics next, events last): an HTTP request gets 503 with Retry-After, a syslog or Beats connection waits and tries again",
            m.shed.clone(),
        );
        registry.register(
            "event_webhook_events",
            "Events of event-class routes pushed to their webhook, by tenant, route and outcome (delivered: answered 2xx; abandoned: a 4xx, or no 2xx within webhook.give_up_after)",
            m.event_webhook_events.clone(),
        );
        registry.register(
            "cpu_busy_permille",
            "Thousandths of the machine's CPU time spent busy over the last half second, sampled when limits.shed_at_cpu is set",
            m.cpu_busy_permille.clone(),
        );
        registry.register(
            "statsd_lines",
            "StatsD lines received (UDP and TCP listeners)",
            m.statsd_lines.clone(),
        );
        registry.register(
            "statsd_dropped",
            "StatsD lines or points a listener lost, by reason (bad_line: not a metric line; series: past max_series; refused: the pipeline refused the interval's batch)",
            m.statsd_dropped.clone(),
        );
        registry.register(
            "gelf_dropped",
            "GELF messages a UDP listener lost, by reason (UDP is lossy: bad or timed-out chunks, memory or queue bounds, refused by the pipeline)",
            m.gelf_dropped.clone(),
        );
        registry.register(
            "archive_objects_deleted",
            "Archived objects deleted by cold retention",
            m.archive_objects_deleted.clone(),
        );
        registry.register(
            "object_store_requests",
            "Object store calls by operation and outcome",
            m.object_store_requests.clone(),
        );
        registry.register(
            "object_store_request_duration_seconds",
            "Object store call latency",
            m.object_store_duration.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Counts a batch that is now durable: its accepted events, and each
    /// rejected line under its reason (HTTP and syslog alike).
    pub fn count_stored(
        &self,
        tenant: &str,
        log_type: &str,
        accepted: usize,
        rejected: &[&'static str],
    ) {
        self.events_received
            .get_or_create(&TenantType::new(tenant, log_type))
            .inc_by(accepted as u64);
        for reason in rejected {
            self.events_rejected
                .get_or_create(&RejectLabels {
                    tenant: tenant.to_string(),
                    r#type: log_type.to_string(),
                    reason: reason.to_string(),
                })
                .inc();
        }
    }

    /// Every sample of the metrics, read back from their own exposition
    /// (the registry has no other way to list a family's label sets):
    /// `(name, labels, value)`, for the admin API's overview.
    pub fn samples(&self) -> Vec<Sample> {
        self.encode().lines().filter_map(parse_sample).collect()
    }

    /// Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String");
        out
    }
}

/// One sample: its metric's name, its labels and its value.
pub type Sample = (String, Vec<(String, String)>, f64);

/// One line of the text exposition: `name{a="x",b="y"} 12`.
fn parse_sample(line: &str) -> Option<Sample> {
    if line.starts_with('#') || line.is_empty() {
        return None;
    }
    let (series, value) = line.rsplit_once(' ')?;
    let value: f64 = value.parse().ok()?;
    let Some((name, rest)) = series.split_once('{') else {
        return Some((series.to_string(), Vec::new(), value));
    };
    let mut labels = Vec::new();
    let mut chars = rest.strip_suffix('}')?.chars().peekable();
    loop {
        let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
        if key.is_empty() {
            break;
        }
        if chars.next() != Some('"') {
            return None;
        }
        let mut v = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next()? {
                    'n' => v.push('\n'),
                    other => v.push(other),
                },
                '"' => break,
                c => v.push(c),
            }
        }
        labels.push((key.trim_start_matches(',').to_string(), v));
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
    Some((name.to_string(), labels, value))
}

/// Flushes exported traces when dropped (at the end of `main`).
pub struct TelemetryGuard {
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown()
        {
            eprintln!("logway: flushing traces failed: {e}");
        }
    }
}

/// True when the OTLP trace exporter should run.
fn otlp_enabled(config: &TelemetryConfig) -> bool {
    config.otlp_endpoint.is_some()
        || [
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        ]
        .iter()
        .any(|v| std::env::var(v).is_ok_and(|s| !s.is_empty()))
}

fn tracer_provider(
    config: &TelemetryConfig,
) -> anyhow::Result<opentelemetry_sdk::trace::SdkTracerProvider> {
    use opentelemetry_otlp::WithExportConfig;
    let mut builder = opentelemetry_otlp::SpanExporter::builder().with_http();
    if let Some(base) = &config.otlp_endpoint {
        builder = builder.with_endpoint(format!("{}/v1/traces", base.trim_end_matches('/')));
    }
    let exporter = builder.build()?;
    Ok(opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name("logway")
                .build(),
        )
        .build())
}

/// Sets up logs (`RUST_LOG` wins over `telemetry.log_filter`) and, when
/// configured, OTLP trace export.
pub fn init_tracing(config: &TelemetryConfig) -> anyhow::Result<TelemetryGuard> {
    use opentelemetry::trace::TracerProvider as _;
    use std::io::IsTerminal;
    use tracing_subscriber::prelude::*;
    use tracing_subscriber::{EnvFilter, Layer, Registry};

    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(config.log_filter.as_deref().unwrap_or("info")))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let fmt: Box<dyn Layer<Registry> + Send + Sync> = if config.log_json {
        Box::new(fmt.json())
    } else {
        Box::new(fmt)
    };
    let provider = if otlp_enabled(config) {
        Some(tracer_provider(config)?)
    } else {
        None
    };
    let otel = provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("logway")));
    let _ = tracing_subscriber::registry()
        .with(fmt)
        .with(otel)
        .with(filter)
        .try_init();
    if provider.is_some() {
        tracing::info!("exporting traces over OTLP/HTTP");
    }
    Ok(TelemetryGuard { provider })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_read_back_labels_with_escapes() {
        let m = Metrics::new();
        m.count_stored("acme", "web_logs", 3, &["invalid_json"]);
        m.events_rejected
            .get_or_create(&RejectLabels {
                tenant: "a \"quoted\" \\ name".into(),
                r#type: "t".into(),
                reason: "x".into(),
            })
            .inc();
        let samples = m.samples();
        let find = |name: &str, tenant: &str| {
            samples
                .iter()
                .find(|(n, l, _)| n == name && l.iter().any(|(k, v)| k == "tenant" && v == tenant))
                .unwrap_or_else(|| panic!("{name} {tenant} in {samples:?}"))
                .clone()
        };
        let (_, labels, value) = find("logway_events_received_total", "acme");
        assert_eq!(value, 3.0);
        assert!(labels.contains(&("type".into(), "web_logs".into())));
        let (_, labels, _) = find("logway_events_rejected_total", "a \"quoted\" \\ name");
        assert!(
            labels.contains(&("reason".into(), "x".into())),
            "{labels:?}"
        );
        assert!(
            samples
                .iter()
                .any(|(n, l, _)| n == "logway_wal_bytes" && l.is_empty())
        );
    }
}
