//! Metrics derived from logs: each tenant's `derived_metrics` rules count
//! the events that match (`query`, `type`) or take the distribution of a
//! numeric `field`, tagged by up to four fields (`by`), and write one point
//! per series and `metrics.derived_interval`, as a StatsD listener does
//! (`crate::sources::statsd`): metric-class events of
//! `metrics.derived_type`, read back by `GET /api/v1/metrics/query` and
//! exposed to Prometheus. So a request rate and a latency chart come from
//! access logs without another system.
//!
//! One thread (`derived`, at `server.background_nice`) follows the
//! durable end of the WAL with its own reader, as the live tail does (no
//! checkpoint: it starts at "now", never holds WAL segments, and the
//! interval in hand at a stop is not written). It decodes each batch, and
//! parses an event only when a rule of its tenant and type wants it.
//! Metric-class batches (its own points, StatsD's) are skipped. Not in
//! cluster mode, which writes no local WAL.

pub mod config;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::batch;
use crate::config::Config;
use crate::config::class::Class;
use crate::hot::fields::value_at;
use crate::pipeline::{Admission, Pipeline};
use crate::sources::statsd::aggregate::{Aggregator, Dropped};
use crate::sources::statsd::parse::{self, Kind, Line};
use crate::sources::statsd::{build_points, count_dropped, end_interval};
use crate::tail::Matcher;
use crate::telemetry::Metrics;
use crate::tenants::Route;
use crate::wal::Wal;

/// WAL payload bytes read per step.
const READ_BYTES: usize = 4 << 20;
/// Longest wait for new records.
const WAIT: Duration = Duration::from_millis(100);
/// The quantiles written for a field's distribution.
const QUANTILES: [f64; 3] = [0.5, 0.9, 0.99];

struct Rule {
    name: String,
    log_type: Option<String>,
    matcher: Option<Matcher>,
    field: Option<String>,
    by: Vec<String>,
}

/// A tenant's rules, its series and where its points go.
struct TenantMetrics {
    rules: Vec<Rule>,
    aggregator: Aggregator,
    admission: Admission,
}

/// Starts the thread if some tenant has rules (and the node writes a WAL).
pub fn start(
    config: &Config,
    wal: Wal,
    pipeline: Arc<Pipeline>,
    metrics: Arc<Metrics>,
    runtime: tokio::runtime::Handle,
) -> std::io::Result<Option<std::thread::JoinHandle<()>>> {
    if config.cluster.enabled || config.tenants.iter().all(|t| t.derived_metrics.is_empty()) {
        return Ok(None);
    }
    let m = &config.metrics;
    let mut tenants = HashMap::new();
    for t in config
        .tenants
        .iter()
        .filter(|t| !t.derived_metrics.is_empty())
    {
        let rules = t
            .derived_metrics
            .iter()
            .map(|r| Rule {
                name: r.name.clone(),
                log_type: r.log_type.clone(),
                // Checked at load.
                matcher: r.query.as_deref().and_then(|q| Matcher::parse(q).ok()),
                field: r.field.clone(),
                by: r.by.clone(),
            })
            .collect();
        let route = Route::for_listener(
            &config.tenants,
            &t.name,
            &m.derived_type,
            &[],
            &Default::default(),
            Class::Metric,
        );
        let admission = pipeline.admit_listener(&t.name, "derived".to_string(), route, None);
        tenants.insert(
            t.name.clone(),
            TenantMetrics {
                rules,
                aggregator: Aggregator::new(m.derived_max_series, QUANTILES.to_vec()),
                admission,
            },
        );
    }
    let interval = m.derived_interval;
    let nice = config.server.background_nice;
    let thread = crate::background::spawn("derived", nice, move || {
        run(wal, tenants, interval, pipeline, metrics, runtime)
    })?;
    Ok(Some(thread))
}

fn run(
    wal: Wal,
    mut tenants: HashMap<String, TenantMetrics>,
    interval: Duration,
    pipeline: Arc<Pipeline>,
    metrics: Arc<Metrics>,
    runtime: tokio::runtime::Handle,
) {
    let mut reader = wal.reader(wal.durable_lsn());
    let mut next_flush = Instant::now() + interval;
    while !wal.is_closed() {
        if Instant::now() >= next_flush {
            next_flush += interval;
            for t in tenants.values_mut() {
                flush(t, interval, &pipeline, &metrics, &runtime);
            }
        }
        let records = match reader.read_available(READ_BYTES) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "derived metrics cannot read the WAL; starting again at its end");
                reader = wal.reader(wal.durable_lsn());
                std::thread::sleep(WAIT);
                continue;
            }
        };
        if records.is_empty() {
            let until_flush = next_flush.saturating_duration_since(Instant::now());
            wal.wait_past(
                reader.position(),
                WAIT.min(until_flush).max(Duration::from_millis(1)),
            );
            continue;
        }
        for record in records {
            // The header first: a batch no rule wants is not decompressed.
            let Ok(header) = batch::decode_header(&record.payload) else {
                continue;
            };
            if header.class == Class::Metric || !tenants.contains_key(&header.tenant) {
                continue;
            }
            let Ok(b) = batch::decode(&record.payload) else {
                continue;
            };
            let Some(t) = tenants.get_mut(&b.header.tenant) else {
                continue;
            };
            let mut over = 0;
            for (log_type, line) in b.typed_events() {
                if !t
                    .rules
                    .iter()
                    .any(|r| r.log_type.as_deref().is_none_or(|x| x == log_type))
                {
                    continue;
                }
                let Ok(event) = serde_json::from_slice::<Value>(line) else {
                    continue;
                };
                for rule in &t.rules {
                    if rule.log_type.as_deref().is_some_and(|x| x != log_type)
                        || rule.matcher.as_ref().is_some_and(|m| !m.matches(&event))
                    {
                        continue;
                    }
                    if count(&mut t.aggregator, rule, &event) == Err(Dropped::Series) {
                        over += 1;
                    }
                }
            }
            count_dropped(&metrics, "derived", "series", over);
        }
    }
}

/// Counts one matching event into its rule's series. Fields are read as
/// an alert's group keys are ([`value_at`]); a `field` whose text is not
/// a number counts nothing.
fn count(aggregator: &mut Aggregator, rule: &Rule, event: &Value) -> Result<(), Dropped> {
    let (kind, value) = match &rule.field {
        Some(f) => match value_at(event, f).and_then(|t| t.trim().parse::<f64>().ok()) {
            Some(v) if v.is_finite() => (Kind::Distribution, v),
            _ => return Ok(()),
        },
        None => (Kind::Counter, 1.0),
    };
    let tags: Vec<(String, String)> = rule
        .by
        .iter()
        .map(|b| (b.clone(), value_at(event, b).unwrap_or_default()))
        .collect();
    let mut line = Line {
        name: &rule.name,
        kind,
        values: vec![parse::Value::Number(value)],
        rate: 1.0,
        tags: tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
    };
    line.tags.sort_unstable();
    aggregator.add(&line)
}

/// Ends a tenant's interval: its points go to its Prometheus exposition
/// and, as one metric-class batch, to the pipeline (as a StatsD
/// listener's do).
fn flush(
    t: &mut TenantMetrics,
    interval: Duration,
    pipeline: &Pipeline,
    metrics: &Metrics,
    runtime: &tokio::runtime::Handle,
) {
    let tenant = t.admission.tenant.clone();
    let Some(points) = end_interval(&mut t.aggregator, interval, metrics, &tenant) else {
        return;
    };
    let n = points.len() as u64;
    let built = build_points(pipeline, &t.admission, points);
    if let Err(e) = runtime.block_on(pipeline.store(&t.admission, built, None)) {
        tracing::warn!(tenant = %tenant, error = %e, points = n, "derived metrics not stored");
        count_dropped(metrics, "derived", "refused", n);
    }
}
