//! Aggregation per series per interval, as StatsD servers do: counters
//! summed (each value divided by its sample rate), gauges the last value
//! (`+n`/`-n` change the last one, which is kept across intervals), sets
//! their number of distinct members, and timers, histograms and
//! distributions a DDSketch (1% relative error) for count, sum, min, max,
//! average and the configured quantiles.
//!
//! A series is a name, a type and a set of tags. At most `max_series` are
//! held per interval (gauges' last values included); samples of a series
//! past that are dropped and counted, never let grow memory.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value, json};
use sketches_ddsketch::{Config as SketchConfig, DDSketch};

use super::parse::{self, Kind, Line};

/// Members of one set counted at most per interval (a bound on memory).
const MAX_SET_MEMBERS: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SeriesKey {
    name: String,
    kind: Kind,
    tags: Vec<(String, String)>,
}

enum State {
    Counter(f64),
    Gauge(f64),
    Sketch(Box<DDSketch>, f64),
    Set(HashSet<String>),
}

struct Series {
    state: State,
    /// Sampled in the interval now open (a gauge is kept without).
    updated: bool,
}

pub struct Aggregator {
    series: HashMap<SeriesKey, Series>,
    max_series: usize,
    quantiles: Vec<f64>,
}

/// Why a line was not aggregated.
#[derive(Debug, PartialEq, Eq)]
pub enum Dropped {
    /// The series bound was reached.
    Series,
}

impl Aggregator {
    pub fn new(max_series: usize, quantiles: Vec<f64>) -> Aggregator {
        Aggregator {
            series: HashMap::new(),
            max_series,
            quantiles,
        }
    }

    /// Series held now.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Adds one parsed line.
    pub fn add(&mut self, line: &Line<'_>) -> Result<(), Dropped> {
        let key = SeriesKey {
            name: line.name.to_string(),
            kind: line.kind,
            tags: line
                .tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        if !self.series.contains_key(&key) && self.series.len() >= self.max_series {
            return Err(Dropped::Series);
        }
        let series = self.series.entry(key).or_insert_with(|| Series {
            state: match line.kind {
                Kind::Counter => State::Counter(0.0),
                Kind::Gauge => State::Gauge(0.0),
                Kind::Set => State::Set(HashSet::new()),
                _ => State::Sketch(Box::new(DDSketch::new(SketchConfig::defaults())), 0.0),
            },
            updated: false,
        });
        series.updated = true;
        for v in &line.values {
            match (&mut series.state, v) {
                (State::Counter(sum), parse::Value::Number(n)) => *sum += n / line.rate,
                (State::Gauge(last), parse::Value::Number(n)) => *last = *n,
                (State::Gauge(last), parse::Value::Delta(d)) => *last += d,
                (State::Set(members), parse::Value::Member(m))
                    if members.len() < MAX_SET_MEMBERS =>
                {
                    members.insert(m.to_string());
                }
                (State::Sketch(sketch, count), parse::Value::Number(n)) => {
                    sketch.add(*n);
                    *count += 1.0 / line.rate;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The points of the interval that ends now, one JSON object each
    /// (`timestamp` is the caller's), and a fresh interval: counters, sets
    /// and sketches start again; gauges keep their value but are written
    /// only in intervals that set them.
    pub fn flush(&mut self, interval_secs: f64) -> Vec<Map<String, Value>> {
        let mut points = Vec::new();
        self.series.retain(|key, series| {
            if series.updated {
                points.push(point(key, &series.state, interval_secs, &self.quantiles));
            }
            series.updated = false;
            // Only a gauge's value outlives its interval.
            matches!(series.state, State::Gauge(_))
        });
        points
    }
}

fn point(
    key: &SeriesKey,
    state: &State,
    interval_secs: f64,
    quantiles: &[f64],
) -> Map<String, Value> {
    let mut p = Map::new();
    p.insert("message".into(), json!(key.name));
    p.insert("metric".into(), json!(key.name));
    p.insert("kind".into(), json!(key.kind.as_str()));
    p.insert("interval_s".into(), json!(interval_secs));
    match state {
        State::Counter(sum) => {
            p.insert("value".into(), json!(sum));
            p.insert("rate".into(), json!(sum / interval_secs));
        }
        State::Gauge(last) => {
            p.insert("value".into(), json!(last));
        }
        State::Set(members) => {
            p.insert("value".into(), json!(members.len()));
        }
        State::Sketch(sketch, count) => {
            let n = sketch.count() as f64;
            let sum = sketch.sum().unwrap_or(0.0);
            // The count a sampling client stands for; the rest is what
            // was received.
            p.insert("count".into(), json!(count.round()));
            p.insert("sum".into(), json!(sum));
            p.insert("min".into(), json!(sketch.min()));
            p.insert("max".into(), json!(sketch.max()));
            p.insert("avg".into(), json!(if n > 0.0 { sum / n } else { 0.0 }));
            for q in quantiles {
                if let Ok(Some(v)) = sketch.quantile(*q) {
                    p.insert(quantile_name(*q), json!(v));
                }
            }
        }
    }
    if !key.tags.is_empty() {
        let tags: Map<String, Value> = key
            .tags
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        p.insert("tags".into(), Value::Object(tags));
    }
    p
}

/// `p50`, `p99`, `p99.9` for 0.5, 0.99, 0.999.
pub fn quantile_name(q: f64) -> String {
    let pct = format!("{:.3}", q * 100.0);
    let pct = pct.trim_end_matches('0').trim_end_matches('.');
    format!("p{pct}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::statsd::parse::line;

    fn add(a: &mut Aggregator, text: &str) {
        a.add(&line(text).unwrap()).unwrap();
    }

    fn find<'a>(points: &'a [Map<String, Value>], metric: &str) -> &'a Map<String, Value> {
        points
            .iter()
            .find(|p| p["metric"] == metric)
            .unwrap_or_else(|| panic!("no point for {metric}: {points:?}"))
    }

    #[test]
    fn aggregates_each_kind_over_an_interval() {
        let mut a = Aggregator::new(100, vec![0.5, 0.99]);
        add(&mut a, "hits:1|c");
        add(&mut a, "hits:2|c|@0.5");
        add(&mut a, "depth:10|g");
        add(&mut a, "depth:+5|g");
        add(&mut a, "users:ann|s");
        add(&mut a, "users:bob|s");
        add(&mut a, "users:ann|s");
        for ms in 1..=100 {
            add(&mut a, &format!("latency:{ms}|ms"));
        }
        add(&mut a, "hits:7|c|#env:prod");
        let points = a.flush(10.0);
        assert_eq!(points.len(), 5);
        let hits = points
            .iter()
            .find(|p| p["metric"] == "hits" && p.get("tags").is_none())
            .unwrap();
        assert_eq!(hits["value"], 5.0, "1 + 2 / 0.5");
        assert_eq!(hits["rate"], 0.5);
        assert_eq!(find(&points, "depth")["value"], 15.0);
        assert_eq!(find(&points, "users")["value"], 2);
        let l = find(&points, "latency");
        assert_eq!(l["count"], 100.0);
        assert_eq!(l["sum"], 5050.0);
        assert_eq!(
            (l["min"].as_f64(), l["max"].as_f64()),
            (Some(1.0), Some(100.0))
        );
        let p50 = l["p50"].as_f64().unwrap();
        let p99 = l["p99"].as_f64().unwrap();
        assert!((p50 - 50.0).abs() <= 1.0, "p50 {p50} within 1% of 50");
        assert!((p99 - 99.0).abs() <= 1.5, "p99 {p99}");

        // The next interval: a gauge's delta applies to its kept value, and
        // series not sampled write nothing.
        add(&mut a, "depth:-3|g");
        let points = a.flush(10.0);
        assert_eq!(points.len(), 1, "{points:?}");
        assert_eq!(find(&points, "depth")["value"], 12.0);
        assert!(a.flush(10.0).is_empty());
    }

    #[test]
    fn new_series_past_the_bound_are_dropped() {
        let mut a = Aggregator::new(2, vec![]);
        add(&mut a, "a:1|c");
        add(&mut a, "b:1|c");
        assert_eq!(a.add(&line("c:1|c").unwrap()), Err(Dropped::Series));
        assert_eq!(a.add(&line("a:1|c").unwrap()), Ok(()), "a known series");
        assert_eq!(a.len(), 2);
    }

    #[test]
    fn quantiles_are_named_by_percent() {
        assert_eq!(quantile_name(0.5), "p50");
        assert_eq!(quantile_name(0.99), "p99");
        assert_eq!(quantile_name(0.999), "p99.9");
    }
}
