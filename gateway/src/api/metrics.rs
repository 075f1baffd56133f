//! `GET /api/v1/metrics/query`: series of metric points (what a StatsD
//! listener stores, `crate::sources::statsd`: events with `metric`,
//! `kind`, `value` or `count`/`sum`/`min`/`max`/`avg`/`pNN`, and `tags`),
//! for the admin key's tenant:
//!
//! `?metric=api.latency&from=now-1h&to=now&step=1m&agg=p99&by=env&tags=route:/pay&type=metrics`
//!
//! The points come from the hot tier through search (over the cluster in
//! cluster mode), are grouped by the `by` tags, and aggregated per `step`:
//! `sum`, `avg`, `min`, `max`, `count`, `last`, `rate` (a counter's sum per
//! second) or a quantile (`p50`, `p99`, … as written by the listener). A
//! quantile of a step that holds several intervals' points is the largest
//! of their quantiles (an upper bound, not a merge; the answer says so).
//! Default `agg`: counters `sum`, gauges `last`, sets `max`, timers,
//! histograms and distributions `avg`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::{admin_tenant, parse_time_param};
use crate::config::parse_duration;
use crate::error::ApiError;
use crate::hot::search::{Cursor, SearchRequest, unix_ms};
use crate::state::{AppState, Core};

/// Points read for one query at most.
const MAX_POINTS: usize = 100_000;
/// Steps in a range at most.
const MAX_STEPS: i64 = 11_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    metric: String,
    from: Option<String>,
    to: Option<String>,
    step: Option<String>,
    agg: Option<String>,
    /// Tag names to group by, comma-separated.
    by: Option<String>,
    /// Tag filters, `name:value` comma-separated.
    tags: Option<String>,
    #[serde(rename = "type")]
    log_type: Option<String>,
    #[serde(rename = "key")]
    _key: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum Agg {
    Sum,
    Avg,
    Min,
    Max,
    Count,
    Last,
    Rate,
    /// A quantile field the listener writes (`p99`).
    Quantile(String),
}

impl Agg {
    fn parse(text: &str) -> Result<Agg, ApiError> {
        Ok(match text {
            "sum" => Agg::Sum,
            "avg" => Agg::Avg,
            "min" => Agg::Min,
            "max" => Agg::Max,
            "count" => Agg::Count,
            "last" => Agg::Last,
            "rate" => Agg::Rate,
            q if q.len() > 1
                && q.starts_with('p')
                && q[1..].parse::<f64>().is_ok_and(|p| p > 0.0 && p < 100.0) =>
            {
                Agg::Quantile(q.to_string())
            }
            other => {
                return Err(ApiError::BadRequest(format!(
                    "`agg` = `{other}`: one of sum, avg, min, max, count, last, rate, or a quantile such as p99"
                )));
            }
        })
    }

    fn default_for(kind: &str) -> Agg {
        match kind {
            "counter" => Agg::Sum,
            "gauge" => Agg::Last,
            "set" => Agg::Max,
            _ => Agg::Avg,
        }
    }

    fn name(&self) -> String {
        match self {
            Agg::Sum => "sum".into(),
            Agg::Avg => "avg".into(),
            Agg::Min => "min".into(),
            Agg::Max => "max".into(),
            Agg::Count => "count".into(),
            Agg::Last => "last".into(),
            Agg::Rate => "rate".into(),
            Agg::Quantile(q) => q.clone(),
        }
    }
}

/// One series' points in one step.
#[derive(Default)]
struct Acc {
    points: u64,
    /// Of `value` (counters, gauges, sets) or, sketched, of `sum`.
    sum: f64,
    /// Sketched: of `count`.
    count: f64,
    min: f64,
    max: f64,
    /// The latest point's time and value (sketched: its `avg`).
    last: Option<(i64, f64)>,
    /// The largest quantile asked for.
    quantile: Option<f64>,
}

impl Acc {
    fn add(&mut self, ms: i64, fields: &Value, sketched: bool, agg: &Agg) {
        let f = |k: &str| fields[k].as_f64();
        let (value, min, max, count) = if sketched {
            (f("sum"), f("min"), f("max"), f("count"))
        } else {
            (f("value"), f("value"), f("value"), Some(1.0))
        };
        let (Some(value), Some(min), Some(max)) = (value, min, max) else {
            return;
        };
        let first = self.points == 0;
        self.points += 1;
        self.sum += value;
        self.count += count.unwrap_or(0.0);
        self.min = if first { min } else { self.min.min(min) };
        self.max = if first { max } else { self.max.max(max) };
        let latest = if sketched {
            f("avg").unwrap_or(0.0)
        } else {
            value
        };
        if self.last.is_none_or(|(t, _)| ms >= t) {
            self.last = Some((ms, latest));
        }
        if let Agg::Quantile(q) = agg
            && let Some(v) = f(q)
        {
            self.quantile = Some(self.quantile.map_or(v, |m| m.max(v)));
        }
    }

    fn value(&self, agg: &Agg, sketched: bool, step_secs: f64) -> Option<f64> {
        Some(match agg {
            Agg::Sum => self.sum,
            Agg::Count if sketched => self.count,
            Agg::Count => self.points as f64,
            Agg::Avg if sketched => (self.count > 0.0).then(|| self.sum / self.count)?,
            Agg::Avg => self.sum / self.points as f64,
            Agg::Min => self.min,
            Agg::Max => self.max,
            Agg::Last => self.last?.1,
            Agg::Rate => self.sum / step_secs,
            Agg::Quantile(_) => self.quantile?,
        })
    }
}

pub async fn query(
    State(state): State<Arc<AppState>>,
    headers: axum::http::HeaderMap,
    uri: axum::http::Uri,
    params: Result<Query<Params>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::Json<Value>, ApiError> {
    let core = state.core()?.clone();
    let tenant = admin_tenant(&core, &headers, uri.query())?;
    let Query(p) = params.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let key =
        super::session::request_or_session_key(&core, &headers, uri.query()).unwrap_or_default();
    let now = OffsetDateTime::now_utc();
    let from = parse_time_param("from", p.from.as_deref().unwrap_or("now-1h"), now)?;
    let to = parse_time_param("to", p.to.as_deref().unwrap_or("now"), now)?;
    if to <= from {
        return Err(ApiError::BadRequest("`to` must be after `from`".into()));
    }
    let span_ms = unix_ms(to) - unix_ms(from);
    let step = match &p.step {
        Some(text) => {
            parse_duration(text).map_err(|e| ApiError::BadRequest(format!("`step`: {e}")))?
        }
        None => Duration::from_millis((span_ms / 60).max(1000) as u64),
    };
    let step_ms = step.as_millis() as i64;
    if step_ms <= 0 || span_ms / step_ms > MAX_STEPS {
        return Err(ApiError::BadRequest(format!(
            "`step` gives more than {MAX_STEPS} steps; choose a larger one"
        )));
    }
    plain("metric", &p.metric)?;
    let mut filters: Vec<(String, String)> = Vec::new();
    for pair in list(&p.tags) {
        let (k, v) = pair.split_once(':').unwrap_or((pair, ""));
        if !k
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            || k.is_empty()
        {
            return Err(ApiError::BadRequest(format!(
                "`tags`: `{k}` is not a tag name"
            )));
        }
        if !v.is_empty() {
            plain("tag value", v)?;
        }
        filters.push((k.to_string(), v.to_string()));
    }
    let by: Vec<String> = list(&p.by).map(str::to_string).collect();
    let asked = p.agg.as_deref().map(Agg::parse).transpose()?;

    let mut query = format!("metric:\"{}\"", p.metric);
    for (k, v) in filters.iter().filter(|(_, v)| !v.is_empty()) {
        query.push_str(&format!(" AND tags.{k}:\"{v}\""));
    }
    let mut request = SearchRequest {
        query,
        from: Some(from),
        to: Some(to),
        log_type: p.log_type.clone(),
        limit: core.config.search.max_limit,
        after: None,
        partitions: None,
    };

    // Every point of the range, exactly of this metric and these tags.
    let mut kind: Option<String> = None;
    let mut read = 0usize;
    let mut other_kinds = 0u64;
    let mut partial = false;
    let mut points: Vec<(i64, BTreeMap<String, String>, Value)> = Vec::new();
    loop {
        let (hits, next, part) = page(&core, &tenant, &key, request.clone()).await?;
        partial |= part;
        read += hits.len();
        if read > MAX_POINTS {
            return Err(ApiError::BadRequest(format!(
                "more than {MAX_POINTS} points in the range: narrow it, or the tags"
            )));
        }
        for mut hit in hits {
            let ms = super::fanout::hit_ms(&hit);
            let fields = hit["fields"].take();
            if fields["metric"] != p.metric.as_str()
                || filters.iter().any(|(k, v)| fields["tags"][k] != v.as_str())
            {
                continue;
            }
            let Some(k) = fields["kind"].as_str() else {
                continue;
            };
            if kind.get_or_insert_with(|| k.to_string()) != k {
                other_kinds += 1;
                continue;
            }
            if ms == i64::MIN {
                continue;
            }
            let group = by
                .iter()
                .map(|t| {
                    let v = fields["tags"][t].as_str().unwrap_or("");
                    (t.clone(), v.to_string())
                })
                .collect();
            points.push((ms, group, fields));
        }
        match next {
            Some(c) => request.after = Some(c),
            None => break,
        }
    }

    let kind = kind.unwrap_or_default();
    let sketched = matches!(kind.as_str(), "timer" | "histogram" | "distribution");
    let agg = asked.unwrap_or_else(|| Agg::default_for(&kind));
    if !kind.is_empty() {
        match &agg {
            Agg::Rate if kind != "counter" => {
                return Err(ApiError::BadRequest(format!(
                    "`agg=rate` is for counters; `{}` is a {kind}",
                    p.metric
                )));
            }
            Agg::Quantile(q) if !sketched => {
                return Err(ApiError::BadRequest(format!(
                    "`agg={q}` is for timers, histograms and distributions; `{}` is a {kind}",
                    p.metric
                )));
            }
            _ => {}
        }
    }
    let start_ms = unix_ms(from);
    let mut series: BTreeMap<BTreeMap<String, String>, BTreeMap<i64, Acc>> = BTreeMap::new();
    for (ms, group, fields) in &points {
        let bucket = start_ms + (ms - start_ms).div_euclid(step_ms) * step_ms;
        series
            .entry(group.clone())
            .or_default()
            .entry(bucket)
            .or_default()
            .add(*ms, fields, sketched, &agg);
    }
    let step_secs = step.as_secs_f64();
    let mut merged_quantiles = false;
    let series: Vec<Value> = series
        .into_iter()
        .map(|(tags, steps)| {
            let values: Vec<Value> = steps
                .iter()
                .filter_map(|(t, acc)| {
                    merged_quantiles |= matches!(agg, Agg::Quantile(_)) && acc.points > 1;
                    acc.value(&agg, sketched, step_secs).map(|v| json!([t, v]))
                })
                .collect();
            json!({"tags": tags, "points": values})
        })
        .collect();
    let mut out = json!({
        "metric": p.metric,
        "kind": kind,
        "agg": agg.name(),
        "from": crate::event::format_time(from),
        "to": crate::event::format_time(to),
        "step_ms": step_ms,
        "series": series,
        "points_read": points.len(),
    });
    if merged_quantiles {
        out["quantile_of_steps"] = json!("the largest of the intervals' quantiles in each step");
    }
    if other_kinds > 0 {
        out["points_of_other_kinds"] = json!(other_kinds);
    }
    if partial {
        out["partial"] = json!(true);
    }
    Ok(axum::Json(out))
}

/// `GET /api/v1/metrics/prometheus`: the admin key's tenant's StatsD
/// series in Prometheus's text format, for its Prometheus to scrape
/// (`authorization: {credentials: <admin key>}` in the scrape config).
pub async fn prometheus(
    State(state): State<Arc<AppState>>,
    headers: axum::http::HeaderMap,
    uri: axum::http::Uri,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let core = state.core()?.clone();
    let tenant = admin_tenant(&core, &headers, uri.query())?;
    let text = core.metrics.statsd_series.render(&tenant);
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// The items of a comma-separated parameter.
fn list(param: &Option<String>) -> impl Iterator<Item = &str> {
    param
        .iter()
        .flat_map(|t| t.split(','))
        .filter(|t| !t.is_empty())
}

/// A name or value that goes into a query between quotes.
fn plain(what: &str, s: &str) -> Result<(), ApiError> {
    if s.is_empty() || s.contains(['"', '\\']) {
        return Err(ApiError::BadRequest(format!(
            "{what} `{s}` is empty or has a quote or backslash"
        )));
    }
    Ok(())
}

/// One page of hits as the search API answers it, where the next starts,
/// and whether a cluster partition was missing.
async fn page(
    core: &Arc<Core>,
    tenant: &str,
    key: &str,
    request: SearchRequest,
) -> Result<(Vec<Value>, Option<Cursor>, bool), ApiError> {
    let mut answer = super::search::answer(core, tenant, key, request).await?;
    let next = answer["next"].as_str().and_then(Cursor::decode);
    let partial = answer["partial"] == true;
    let hits = match answer["hits"].take() {
        Value::Array(hits) => hits,
        _ => Vec::new(),
    };
    Ok((hits, next, partial))
}
