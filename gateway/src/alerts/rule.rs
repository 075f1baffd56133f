//! An alert rule as the API and the config take it ([`RuleSpec`]) and its
//! checked form ([`Rule`]): durations read, the query parsed, each kind's
//! own keys present and no other kind's.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::parse_duration;
use crate::hot::HotSchema;
use crate::hot::search::{SearchError, parse_query_with};

/// Longest rule name, in bytes.
pub const MAX_NAME_BYTES: usize = 200;
/// Most `group_by` fields.
pub const MAX_GROUP_BY: usize = 4;
/// Shortest evaluation interval.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// What a rule looks for (ElastAlert's most used rule types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// At least `threshold` matching events in the window, per group.
    Frequency,
    /// Fewer than `threshold` in the window: a source that went silent.
    Flatline,
    /// This window against the one before, by `ratio`.
    Spike,
    /// A value of `field` not seen in the `lookback` before the window.
    NewValue,
    /// Every matching event, at most `max_alerts` per evaluation.
    Any,
}

/// Which way a spike goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Up,
    Down,
    Both,
}

/// Which time puts an event in a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeBasis {
    /// The event's own `timestamp` (the default): an event that arrives
    /// after its window has passed is searchable but never counted.
    Event,
    /// `received_at`: late events count when they arrive.
    Received,
}

/// A rule as written: JSON in the API, a `[[alerts.tenants.<tenant>.rules]]`
/// table in the config. Durations are text (`30s`, `5m`, `7d`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub name: String,
    pub kind: Kind,
    /// The search syntax; empty or absent: every event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// The id of a saved search whose query (and type) the rule uses,
    /// read at each evaluation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saved_search: Option<String>,
    /// Log types to count; empty: all of the tenant's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_by: Vec<String>,
    /// frequency: at least this many; flatline: fewer than this many.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<u64>,
    /// spike: how many times larger (or smaller) than the window before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratio: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    /// spike: the larger of the two windows needs at least this many.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_count: Option<u64>,
    /// new_value: the field whose new values alert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// new_value: how far back a value counts as seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookback: Option<String>,
    /// any: most alerts one evaluation raises (newest events first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_alerts: Option<usize>,
    /// How long a condition holds before the alert fires.
    #[serde(rename = "for", default, skip_serializing_if = "Option::is_none")]
    pub pending_for: Option<String>,
    /// How often webhooks and Slack hear again of an alert still firing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_interval: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<TimeBasis>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Templated: `{{ $labels.NAME }}`, `{{ $value }}`, `{{ $window }}`,
    /// `{{ $samples }}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Names of the tenant's receivers (`[alerts.tenants.<tenant>]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub receivers: Vec<String>,
}

/// What a kind checks, with its own settings.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Frequency {
        at_least: u64,
    },
    Flatline {
        below: u64,
    },
    Spike {
        ratio: f64,
        direction: Direction,
        min_count: u64,
    },
    NewValue {
        field: String,
        lookback: Duration,
    },
    Any {
        max_alerts: usize,
    },
}

/// A checked rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub spec: RuleSpec,
    pub condition: Condition,
    pub interval: Duration,
    pub window: Duration,
    pub pending_for: Duration,
    pub repeat_interval: Duration,
    pub time: TimeBasis,
}

/// Why a rule is refused: the key and what is wrong with it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("`{key}`: {message}")]
pub struct RuleError {
    pub key: String,
    pub message: String,
    /// For a query that does not parse: the character offset.
    pub position: Option<usize>,
}

fn refuse(key: &str, message: impl Into<String>) -> RuleError {
    RuleError {
        key: key.to_string(),
        message: message.into(),
        position: None,
    }
}

pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
pub const DEFAULT_REPEAT: Duration = Duration::from_secs(4 * 3600);
pub const DEFAULT_LOOKBACK: Duration = Duration::from_secs(7 * 86_400);
pub const DEFAULT_MAX_ALERTS: usize = 10;
/// Most alerts an `any` rule may raise per evaluation.
pub const MAX_ANY_ALERTS: usize = 100;

fn duration(key: &str, text: &Option<String>, default: Duration) -> Result<Duration, RuleError> {
    match text {
        None => Ok(default),
        Some(t) => parse_duration(t).map_err(|m| refuse(key, m)),
    }
}

impl Rule {
    /// Checks a spec; `receivers` are the names the tenant has.
    pub fn check(
        spec: RuleSpec,
        schema: &HotSchema,
        receivers: &[String],
    ) -> Result<Rule, RuleError> {
        let s = &spec;
        if s.name.trim().is_empty() || s.name.len() > MAX_NAME_BYTES || s.name.contains('/') {
            return Err(refuse(
                "name",
                format!("must be 1-{MAX_NAME_BYTES} bytes, not blank, without `/`"),
            ));
        }
        if s.query.is_some() && s.saved_search.is_some() {
            return Err(refuse(
                "saved_search",
                "give `query` or `saved_search`, not both",
            ));
        }
        if let Some(q) = &s.query {
            parse_query_with(schema, q).map_err(|e| match e {
                SearchError::Syntax { message, position } => RuleError {
                    key: "query".into(),
                    message: format!("invalid query: {message}"),
                    position: Some(position),
                },
                other => refuse("query", other.to_string()),
            })?;
        }
        for t in &s.types {
            if !crate::config::valid_type_name(t) {
                return Err(refuse("types", format!("`{t}` is not a log type name")));
            }
        }
        let interval = duration("interval", &s.interval, DEFAULT_INTERVAL)?;
        if interval < MIN_INTERVAL {
            return Err(refuse("interval", "must be at least 100ms"));
        }
        let window = match (&s.window, s.kind) {
            (None, Kind::Any) => interval,
            (None, _) => return Err(refuse("window", "is required for this kind")),
            (Some(_), _) => duration("window", &s.window, interval)?,
        };
        if window.is_zero() {
            return Err(refuse("window", "must be longer than 0s"));
        }
        let pending_for = duration("for", &s.pending_for, Duration::ZERO)?;
        let repeat_interval = duration("repeat_interval", &s.repeat_interval, DEFAULT_REPEAT)?;
        if repeat_interval.is_zero() {
            return Err(refuse("repeat_interval", "must be longer than 0s"));
        }
        if s.group_by.len() > MAX_GROUP_BY {
            return Err(refuse("group_by", format!("at most {MAX_GROUP_BY} fields")));
        }
        for f in &s.group_by {
            crate::hot::fields::column_of(f).map_err(|e| refuse("group_by", e.to_string()))?;
        }
        for name in &s.receivers {
            if !receivers.contains(name) {
                return Err(refuse(
                    "receivers",
                    format!(
                        "the tenant has no receiver `{name}` (its receivers in [alerts.tenants.<tenant>]: {})",
                        if receivers.is_empty() {
                            "none".to_string()
                        } else {
                            receivers.join(", ")
                        }
                    ),
                ));
            }
        }
        for name in s.labels.keys() {
            if RESERVED_LABELS.contains(&name.as_str()) {
                return Err(refuse(
                    "labels",
                    format!("`{name}` is set by the gateway (the rule's name and tenant)"),
                ));
            }
            if !valid_label_name(name) {
                return Err(refuse(
                    "labels",
                    format!("`{name}` is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)"),
                ));
            }
        }
        for (name, text) in &s.annotations {
            if !valid_label_name(name) {
                return Err(refuse(
                    "annotations",
                    format!("`{name}` is not an annotation name ([a-zA-Z_][a-zA-Z0-9_]*)"),
                ));
            }
            super::notify::check_template(text).map_err(|m| refuse("annotations", m))?;
        }
        let condition = condition(s)?;
        if let Condition::NewValue { lookback, .. } = &condition
            && *lookback <= window
        {
            return Err(refuse(
                "lookback",
                "must be longer than `window`: a value is new if it was not seen in the lookback before the window",
            ));
        }
        Ok(Rule {
            condition,
            interval,
            window,
            pending_for,
            repeat_interval,
            time: s.time.unwrap_or(TimeBasis::Event),
            spec,
        })
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }
}

/// The kind's condition; another kind's keys are refused, so a typo in
/// `kind` does not silently change what a rule means.
fn condition(s: &RuleSpec) -> Result<Condition, RuleError> {
    let keys: [(&str, bool, &[Kind]); 7] = [
        (
            "threshold",
            s.threshold.is_some(),
            &[Kind::Frequency, Kind::Flatline],
        ),
        ("ratio", s.ratio.is_some(), &[Kind::Spike]),
        ("direction", s.direction.is_some(), &[Kind::Spike]),
        ("min_count", s.min_count.is_some(), &[Kind::Spike]),
        ("field", s.field.is_some(), &[Kind::NewValue]),
        ("lookback", s.lookback.is_some(), &[Kind::NewValue]),
        ("max_alerts", s.max_alerts.is_some(), &[Kind::Any]),
    ];
    for (key, set, kinds) in keys {
        if set && !kinds.contains(&s.kind) {
            let names: Vec<_> = kinds.iter().map(kind_name).collect();
            return Err(refuse(
                key,
                format!(
                    "is for {} rules, not {}",
                    names.join(" and "),
                    kind_name(&s.kind)
                ),
            ));
        }
    }
    Ok(match s.kind {
        Kind::Frequency => Condition::Frequency {
            at_least: s
                .threshold
                .filter(|&n| n > 0)
                .ok_or_else(|| refuse("threshold", "frequency rules need a threshold ≥ 1"))?,
        },
        Kind::Flatline => Condition::Flatline {
            below: s
                .threshold
                .filter(|&n| n > 0)
                .ok_or_else(|| refuse("threshold", "flatline rules need a threshold ≥ 1"))?,
        },
        Kind::Spike => Condition::Spike {
            ratio: s
                .ratio
                .filter(|r| r.is_finite() && *r > 1.0)
                .ok_or_else(|| refuse("ratio", "spike rules need a ratio above 1 (e.g. 3)"))?,
            direction: s.direction.unwrap_or(Direction::Up),
            min_count: s.min_count.unwrap_or(1).max(1),
        },
        Kind::NewValue => {
            let field = s
                .field
                .clone()
                .ok_or_else(|| refuse("field", "new_value rules need a field"))?;
            crate::hot::fields::column_of(&field).map_err(|e| refuse("field", e.to_string()))?;
            if !s.group_by.is_empty() {
                return Err(refuse(
                    "group_by",
                    "new_value rules group by their field already",
                ));
            }
            let lookback = duration("lookback", &s.lookback, DEFAULT_LOOKBACK)?;
            Condition::NewValue { field, lookback }
        }
        Kind::Any => {
            let n = s.max_alerts.unwrap_or(DEFAULT_MAX_ALERTS);
            if n == 0 || n > MAX_ANY_ALERTS {
                return Err(refuse("max_alerts", format!("must be 1-{MAX_ANY_ALERTS}")));
            }
            Condition::Any { max_alerts: n }
        }
    })
}

pub fn kind_name(k: &Kind) -> &'static str {
    match k {
        Kind::Frequency => "frequency",
        Kind::Flatline => "flatline",
        Kind::Spike => "spike",
        Kind::NewValue => "new_value",
        Kind::Any => "any",
    }
}

/// Labels every alert gets from the gateway.
pub const RESERVED_LABELS: &[&str] = &["alertname", "tenant"];

/// Prometheus' label name rule (Alertmanager refuses others).
pub fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A field name as a label name: `error.title` → `error_title`.
pub fn label_name(field: &str) -> String {
    let name: String = field
        .strip_prefix("fields.")
        .unwrap_or(field)
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        format!("_{name}")
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> Result<Rule, RuleError> {
        let s: RuleSpec = serde_json::from_value(json).unwrap();
        Rule::check(s, &HotSchema::new(), &["pager".to_string()])
    }

    #[test]
    fn each_kind_takes_its_own_keys() {
        let r = spec(serde_json::json!({"name":"e","kind":"frequency","query":"level:error","window":"5m","threshold":10,"group_by":["service"],"receivers":["pager"]})).unwrap();
        assert_eq!(r.condition, Condition::Frequency { at_least: 10 });
        assert_eq!(r.window, Duration::from_secs(300));
        assert_eq!(r.interval, DEFAULT_INTERVAL);
        let e = spec(serde_json::json!({"name":"e","kind":"frequency","window":"5m","threshold":1,"ratio":3.0})).unwrap_err();
        assert_eq!(e.key, "ratio");
        assert!(e.message.contains("spike"), "{e}");
        let e = spec(serde_json::json!({"name":"e","kind":"spike","window":"5m","ratio":1.0}))
            .unwrap_err();
        assert_eq!(e.key, "ratio");
        let e = spec(serde_json::json!({"name":"e","kind":"new_value","window":"5m"})).unwrap_err();
        assert_eq!(e.key, "field");
        let e = spec(serde_json::json!({"name":"e","kind":"new_value","field":"x","window":"1d","lookback":"1d"})).unwrap_err();
        assert_eq!(e.key, "lookback");
        let r = spec(serde_json::json!({"name":"e","kind":"any","interval":"10s"})).unwrap();
        assert_eq!(r.window, Duration::from_secs(10));
        assert_eq!(r.condition, Condition::Any { max_alerts: 10 });
    }

    #[test]
    fn a_bad_query_is_refused_with_its_position() {
        let e = spec(serde_json::json!({"name":"e","kind":"frequency","window":"5m","threshold":1,"query":"level:(error"})).unwrap_err();
        assert_eq!(e.key, "query");
        assert!(e.position.is_some(), "{e:?}");
        let e = spec(serde_json::json!({"name":"e","kind":"frequency","window":"5m","threshold":1,"receivers":["nobody"]})).unwrap_err();
        assert_eq!(e.key, "receivers");
        assert!(e.message.contains("pager"), "{e}");
        let e = spec(serde_json::json!({"name":"e","kind":"frequency","window":"5m","threshold":1,"group_by":["message"]})).unwrap_err();
        assert_eq!(e.key, "group_by");
    }

    #[test]
    fn field_names_become_label_names() {
        assert_eq!(label_name("error.title"), "error_title");
        assert_eq!(label_name("fields.level"), "level");
        assert_eq!(label_name("http-status"), "http_status");
        assert!(valid_label_name("alertname"));
        assert!(!valid_label_name("1a"));
        assert!(!valid_label_name("a.b"));
    }
}
