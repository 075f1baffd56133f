//! StatsD and DogStatsD lines: `name:value|type[|@rate][|#tag:v,tag2]`.
//!
//! Types: `c` counter, `g` gauge (`+n`/`-n` change it), `ms` timer, `h`
//! histogram, `d` distribution, `s` set (any text value). DogStatsD adds
//! tags (`#k:v`, a tag without `:` has the value `""`), several values in
//! one line for timers, histograms and distributions (`name:1:2:3|d`) and
//! sections this gateway does not use (`|c:container`, `|T1700000000`),
//! which are skipped. DogStatsD events (`_e{…}`) and service checks
//! (`_sc|…`) are not metrics and are refused.

/// A metric's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Counter,
    Gauge,
    Timer,
    Histogram,
    Distribution,
    Set,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Timer => "timer",
            Kind::Histogram => "histogram",
            Kind::Distribution => "distribution",
            Kind::Set => "set",
        }
    }

    /// Whether its values go into a sketch (count, sum, min, max, quantiles).
    pub fn sketched(self) -> bool {
        matches!(self, Kind::Timer | Kind::Histogram | Kind::Distribution)
    }
}

/// One value of a line.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Number(f64),
    /// A gauge's `+n` or `-n`.
    Delta(f64),
    /// A set's member.
    Member(&'a str),
}

/// A parsed line.
#[derive(Debug, Clone, PartialEq)]
pub struct Line<'a> {
    pub name: &'a str,
    pub kind: Kind,
    pub values: Vec<Value<'a>>,
    /// The client's sample rate (1 unless `@rate`): a counter's value and a
    /// sketch's count are divided by it.
    pub rate: f64,
    /// Sorted by name, so one series has one key whatever the order sent.
    pub tags: Vec<(&'a str, &'a str)>,
}

/// Parses one line (without its newline).
pub fn line(text: &str) -> Result<Line<'_>, String> {
    let text = text.trim_end_matches('\r');
    if text.starts_with("_e{") || text.starts_with("_sc|") {
        return Err("DogStatsD events and service checks are not metrics".into());
    }
    let (name, rest) = text
        .split_once(':')
        .ok_or_else(|| format!("`{}`: no `:` after the metric name", shorten(text)))?;
    if name.is_empty() {
        return Err("empty metric name".into());
    }
    let mut sections = rest.split('|');
    let values = sections.next().unwrap_or("");
    let kind = match sections.next() {
        Some("c") => Kind::Counter,
        Some("g") => Kind::Gauge,
        Some("ms") => Kind::Timer,
        Some("h") => Kind::Histogram,
        Some("d") => Kind::Distribution,
        Some("s") => Kind::Set,
        Some(t) => return Err(format!("`{name}`: unknown metric type `{}`", shorten(t))),
        None => return Err(format!("`{name}`: no metric type")),
    };
    let mut rate = 1.0;
    let mut tags = Vec::new();
    for section in sections {
        if let Some(r) = section.strip_prefix('@') {
            rate = r
                .parse::<f64>()
                .ok()
                .filter(|r| *r > 0.0 && *r <= 1.0)
                .ok_or_else(|| {
                    format!("`{name}`: sample rate `{}` is not in (0, 1]", shorten(r))
                })?;
        } else if let Some(list) = section.strip_prefix('#') {
            for tag in list.split(',').filter(|t| !t.is_empty()) {
                tags.push(tag.split_once(':').unwrap_or((tag, "")));
            }
        }
        // Other sections (container ids, timestamps) are not used.
    }
    tags.sort_unstable();
    tags.dedup_by(|a, b| a.0 == b.0);
    let many = kind.sketched();
    let mut parsed = Vec::new();
    for v in values.split(':') {
        if !parsed.is_empty() && !many {
            return Err(format!(
                "`{name}`: one value per line for a {}",
                kind.as_str()
            ));
        }
        parsed.push(value(name, kind, v)?);
    }
    Ok(Line {
        name,
        kind,
        values: parsed,
        rate,
        tags,
    })
}

fn value<'a>(name: &str, kind: Kind, v: &'a str) -> Result<Value<'a>, String> {
    if kind == Kind::Set {
        return Ok(Value::Member(v));
    }
    let number = |v: &str| {
        v.parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .ok_or_else(|| format!("`{name}`: `{}` is not a number", shorten(v)))
    };
    if kind == Kind::Gauge && (v.starts_with('+') || v.starts_with('-')) {
        return Ok(Value::Delta(number(v)?));
    }
    Ok(Value::Number(number(v)?))
}

fn shorten(s: &str) -> &str {
    match s.char_indices().nth(64) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_statsd_and_dogstatsd_lines() {
        let l = line("api.requests:3|c|@0.5|#env:prod,route:/a").unwrap();
        assert_eq!(l.name, "api.requests");
        assert_eq!(l.kind, Kind::Counter);
        assert_eq!(l.values, [Value::Number(3.0)]);
        assert_eq!(l.rate, 0.5);
        assert_eq!(l.tags, [("env", "prod"), ("route", "/a")]);

        let l = line("queue.depth:-4|g").unwrap();
        assert_eq!(l.values, [Value::Delta(-4.0)]);
        let l = line("queue.depth:12.5|g|#b,a:1").unwrap();
        assert_eq!(l.values, [Value::Number(12.5)]);
        assert_eq!(l.tags, [("a", "1"), ("b", "")], "sorted, a bare tag");
        let l = line("latency:1:2.5:3|d|c:abc|T1700000000").unwrap();
        assert_eq!(l.kind, Kind::Distribution);
        assert_eq!(l.values.len(), 3);
        let l = line("users:alice|s").unwrap();
        assert_eq!(l.values, [Value::Member("alice")]);
        assert_eq!(line("t:320|ms").unwrap().kind, Kind::Timer);
        assert_eq!(line("t:320|h\r").unwrap().kind, Kind::Histogram);
    }

    #[test]
    fn says_what_is_wrong_with_a_line() {
        for (text, says) in [
            ("nocolon", "no `:`"),
            (":1|c", "empty metric name"),
            ("a:1", "no metric type"),
            ("a:1|x", "unknown metric type `x`"),
            ("a:one|c", "`one` is not a number"),
            ("a:1|c|@2", "sample rate `2`"),
            ("a:1:2|c", "one value per line"),
            ("a:NaN|g", "not a number"),
            ("_e{5,4}:title|text", "not metrics"),
        ] {
            let e = line(text).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
    }
}
