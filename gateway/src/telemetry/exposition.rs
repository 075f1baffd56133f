//! What the StatsD listeners (`crate::sources::statsd`) have aggregated,
//! per tenant, in Prometheus's text format (`GET /api/v1/metrics/prometheus`, for Prometheus to
//! scrape), as Prometheus's own `statsd_exporter` exposes it:
//! counters as monotonic `{name}_total` counters summed since the start,
//! gauges and sets as gauges (the last value), timers, histograms and
//! distributions as summaries (the last interval's quantiles, `_count`
//! and `_sum` since the start). Names and tag names become Prometheus
//! names (`api.hits` → `api_hits`); a series not updated for
//! [`TTL`] is forgotten.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

/// A series not updated this long is no longer exposed.
pub const TTL: Duration = Duration::from_secs(600);

type Labels = Vec<(String, String)>;
/// A tenant's series by Prometheus name and labels.
type TenantSeries = BTreeMap<(String, Labels), Series>;

enum Exposed {
    Counter(f64),
    Gauge(f64),
    Summary {
        count: f64,
        sum: f64,
        quantiles: Vec<(String, f64)>,
    },
}

struct Series {
    value: Exposed,
    updated: Instant,
}

/// Every tenant's exposed series, by Prometheus name and labels.
#[derive(Default)]
pub struct Exposition {
    tenants: Mutex<HashMap<String, TenantSeries>>,
}

impl Exposition {
    /// Takes in one interval's points of `tenant` (as
    /// [`super::aggregate::Aggregator::flush`] writes them).
    pub fn update(&self, tenant: &str, points: &[Map<String, Value>]) {
        let now = Instant::now();
        let mut tenants = self.tenants.lock().unwrap();
        let series = tenants.entry(tenant.to_string()).or_default();
        for p in points {
            let (Some(name), Some(kind)) = (p["metric"].as_str(), p["kind"].as_str()) else {
                continue;
            };
            let labels: Labels = p
                .get("tags")
                .and_then(Value::as_object)
                .map(|tags| {
                    tags.iter()
                        .map(|(k, v)| (prometheus_name(k), v.as_str().unwrap_or("").to_string()))
                        .collect()
                })
                .unwrap_or_default();
            let f = |k: &str| p.get(k).and_then(Value::as_f64).unwrap_or(0.0);
            let name = prometheus_name(name);
            let entry = series.entry((name, labels));
            match kind {
                "counter" => {
                    let s = entry.or_insert(Series {
                        value: Exposed::Counter(0.0),
                        updated: now,
                    });
                    if let Exposed::Counter(total) = &mut s.value {
                        *total += f("value");
                    }
                    s.updated = now;
                }
                "gauge" | "set" => {
                    let s = entry.or_insert(Series {
                        value: Exposed::Gauge(0.0),
                        updated: now,
                    });
                    s.value = Exposed::Gauge(f("value"));
                    s.updated = now;
                }
                _ => {
                    let quantiles = p
                        .iter()
                        .filter_map(|(k, v)| Some((quantile_of(k)?, v.as_f64()?)))
                        .collect();
                    let s = entry.or_insert(Series {
                        value: Exposed::Summary {
                            count: 0.0,
                            sum: 0.0,
                            quantiles: Vec::new(),
                        },
                        updated: now,
                    });
                    if let Exposed::Summary {
                        count,
                        sum,
                        quantiles: q,
                    } = &mut s.value
                    {
                        *count += f("count");
                        *sum += f("sum");
                        *q = quantiles;
                    }
                    s.updated = now;
                }
            }
        }
        series.retain(|_, s| s.updated.elapsed() < TTL);
    }

    /// `tenant`'s series in Prometheus's text format (0.0.4).
    pub fn render(&self, tenant: &str) -> String {
        let mut out = String::new();
        let mut family: Option<String> = None;
        for s in self.samples(tenant) {
            if family.as_deref() != Some(s.family.as_str()) {
                let _ = writeln!(out, "# TYPE {} {}", s.family, s.kind);
                family = Some(s.family.clone());
            }
            let _ = writeln!(out, "{}{} {}", s.name, braces(&s.labels), number(s.value));
        }
        out
    }

    /// `tenant`'s series as samples, in the order a scrape reads them: what
    /// [`Exposition::render`] writes and remote-write
    /// ([`super::remote_write`]) sends.
    pub fn samples(&self, tenant: &str) -> Vec<Sample> {
        let tenants = self.tenants.lock().unwrap();
        let Some(series) = tenants.get(tenant) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut typed: Option<(String, &'static str)> = None;
        for ((name, labels), s) in series {
            if s.updated.elapsed() >= TTL {
                continue;
            }
            let (family, kind) = match &s.value {
                Exposed::Counter(_) => (format!("{name}_total"), "counter"),
                Exposed::Gauge(_) => (name.clone(), "gauge"),
                Exposed::Summary { .. } => (name.clone(), "summary"),
            };
            match &typed {
                // One family, one type: a name that came with two kinds
                // keeps the first.
                Some((f, k)) if *f == family && *k != kind => continue,
                Some((f, _)) if *f == family => {}
                _ => typed = Some((family.clone(), kind)),
            }
            let mut push = |name: String, quantile: Option<&String>, value: f64| {
                let mut labels = labels.clone();
                if let Some(q) = quantile {
                    labels.push(("quantile".into(), q.clone()));
                    labels.sort();
                }
                out.push(Sample {
                    family: family.clone(),
                    kind,
                    name,
                    labels,
                    value,
                });
            };
            match &s.value {
                Exposed::Counter(v) | Exposed::Gauge(v) => push(family.clone(), None, *v),
                Exposed::Summary {
                    count,
                    sum,
                    quantiles,
                } => {
                    for (q, v) in quantiles {
                        push(name.clone(), Some(q), *v);
                    }
                    push(format!("{name}_sum"), None, *sum);
                    push(format!("{name}_count"), None, *count);
                }
            }
        }
        out
    }
}

/// One sample of [`Exposition::samples`]: a Prometheus series name, its
/// labels (sorted by name, `quantile` included) and value, and the family
/// (with its type) it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub family: String,
    pub kind: &'static str,
    pub name: String,
    pub labels: Labels,
    pub value: f64,
}

/// `p99` → `0.99`, `p99.9` → `0.999`.
fn quantile_of(field: &str) -> Option<String> {
    let pct: f64 = field.strip_prefix('p')?.parse().ok()?;
    (pct > 0.0 && pct < 100.0).then(|| {
        let q = format!("{:.6}", pct / 100.0);
        q.trim_end_matches('0').to_string()
    })
}

/// A Prometheus metric or label name: `[a-zA-Z_:][a-zA-Z0-9_:]*` (label
/// names without `:`), other characters as `_`.
pub fn prometheus_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

fn braces(labels: &Labels) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    format!("{{{}}}", parts.join(","))
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn points(v: Value) -> Vec<Map<String, Value>> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_object().unwrap().clone())
            .collect()
    }

    #[test]
    fn counters_add_up_and_the_rest_is_the_last_interval() {
        let e = Exposition::default();
        let interval = json!([
            {"metric": "api.hits", "kind": "counter", "value": 3.0, "tags": {"env": "prod", "route": "/a\"b"}},
            {"metric": "queue-depth", "kind": "gauge", "value": 7.0},
            {"metric": "lat", "kind": "timer", "count": 10.0, "sum": 55.0, "p50": 5.0, "p99.9": 10.0},
        ]);
        e.update("t", &points(interval.clone()));
        e.update("t", &points(interval));
        let text = e.render("t");
        assert_eq!(
            text,
            "# TYPE api_hits_total counter\n\
             api_hits_total{env=\"prod\",route=\"/a\\\"b\"} 6\n\
             # TYPE lat summary\n\
             lat{quantile=\"0.5\"} 5\n\
             lat{quantile=\"0.999\"} 10\n\
             lat_sum 110\n\
             lat_count 20\n\
             # TYPE queue_depth gauge\n\
             queue_depth 7\n"
        );
        assert_eq!(e.render("other"), "");
        let samples = e.samples("t");
        let names: Vec<&str> = samples.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "api_hits_total",
                "lat",
                "lat",
                "lat_sum",
                "lat_count",
                "queue_depth"
            ]
        );
        assert_eq!(samples[0].value, 6.0);
        assert_eq!(
            samples[2].labels,
            [("quantile".to_string(), "0.999".to_string())]
        );
        assert_eq!(prometheus_name("9lives.ok"), "_9lives_ok");
    }
}
