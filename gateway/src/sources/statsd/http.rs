//! StatsD lines posted over HTTP to a metric-class route with
//! `format = "statsd"`: for clients that can only make HTTP requests (a
//! browser, a serverless function) and for batches that must be
//! acknowledged.
//!
//! The lines of one request are aggregated together, as one interval of a
//! listener ([`super::aggregate`]): one point per series, stamped with the
//! request's time. Unlike a listener's interval, the request is
//! acknowledged only once its points are durable, and each line that is
//! not a metric line is rejected with its line number and kept as a
//! rejected event (contract 2). A gauge delta (`+n`) applies to the
//! request's own value (0 before its first sample). Points carry no
//! `interval_s` and `rate`; the series API's `rate` works from their
//! times.

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::aggregate::{Aggregator, Dropped};
use super::parse;
use crate::pipeline::Item;

/// One series' point, as [`Aggregator::flush`] writes it.
pub type Point = Map<String, Value>;

/// Series one request may carry; lines of more are rejected.
pub const MAX_SERIES: usize = 10_000;
/// The quantiles of a request's timers, histograms and distributions.
const QUANTILES: [f64; 3] = [0.5, 0.9, 0.99];

/// The items of a body of StatsD lines: each bad line as a rejected item
/// (numbered as in the body), then one point per series, numbered after
/// the body's last line; and the points again, for the tenant's
/// Prometheus series once they are durable.
pub fn items(body: &[u8]) -> (Vec<(usize, Item<'_>)>, Vec<Point>) {
    let mut aggregator = Aggregator::new(MAX_SERIES, QUANTILES.to_vec());
    let mut items = Vec::new();
    let mut last = 0;
    for (i, raw) in body.split(|&b| b == b'\n').enumerate() {
        let line = i + 1;
        last = line;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let bad = |reason: String, kind| Item::Bad {
            raw: Cow::Borrowed(raw),
            reason,
            kind,
        };
        let item = match std::str::from_utf8(raw) {
            Err(_) => bad("the line is not UTF-8".into(), "invalid_utf8"),
            Ok(text) => match parse::line(text) {
                Err(e) => bad(format!("not a StatsD line: {e}"), "invalid_statsd"),
                Ok(parsed) => match aggregator.add(&parsed) {
                    Ok(()) => continue,
                    Err(Dropped::Series) => bad(
                        format!("more than {MAX_SERIES} series in one request"),
                        "too_many_series",
                    ),
                },
            },
        };
        items.push((line, item));
    }
    let mut points = aggregator.flush(1.0);
    for (k, point) in points.iter_mut().enumerate() {
        point.remove("interval_s");
        point.remove("rate");
        items.push((last + k + 1, Item::Object(point.clone(), None)));
    }
    (items, points)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_become_one_point_per_series_and_bad_lines_are_rejected() {
        let body = b"a:1|c\na:2|c|@0.5\nnot a line\n\nlat:3|ms\nlat:5|ms\ng:+4|g\r\n";
        let (items, exposed) = items(body);
        assert_eq!(exposed.len(), 3);
        let bad: Vec<usize> = items
            .iter()
            .filter(|(_, i)| matches!(i, Item::Bad { .. }))
            .map(|(l, _)| *l)
            .collect();
        assert_eq!(bad, [3]);
        let points: Vec<(usize, &serde_json::Map<String, serde_json::Value>)> = items
            .iter()
            .filter_map(|(l, i)| match i {
                Item::Object(m, _) => Some((*l, m)),
                _ => None,
            })
            .collect();
        assert_eq!(points.len(), 3);
        assert!(points.iter().all(|(l, _)| *l > 8));
        let by = |name: &str| points.iter().find(|(_, p)| p["metric"] == name).unwrap().1;
        assert_eq!(by("a")["value"], 5.0);
        assert_eq!(by("lat")["count"], 2.0);
        assert_eq!(by("g")["value"], 4.0);
        assert!(by("a").get("rate").is_none() && by("a").get("interval_s").is_none());
    }
}
