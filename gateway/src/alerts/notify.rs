//! What receivers are sent: the alerts of one rule's evaluation
//! ([`Outgoing`], kept in the outbox until delivered), in each receiver's
//! own format: Alertmanager's `POST /api/v2/alerts` list, Alertmanager's
//! webhook v4 body, a Slack incoming webhook's `{"text"}`. Annotations are
//! templates over the group ([`render`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::eval::Found;
use super::rule::{Condition, Rule};

/// One alert as receivers see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sent {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub starts_at_ms: i64,
    /// Resolved: when; firing: until when Alertmanager may consider it
    /// firing without hearing again (`None` for webhooks and Slack).
    pub ends_at_ms: Option<i64>,
    pub resolved: bool,
    pub fingerprint: String,
}

/// One notification of one receiver, kept until delivered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outgoing {
    pub seq: u64,
    pub tenant: String,
    pub receiver: String,
    pub rule: String,
    /// The UI's search for the rule's query over the window.
    pub generator_url: String,
    pub alerts: Vec<Sent>,
    pub created_ms: i64,
}

/// An alert's full label set: the group's values, the rule's labels
/// (which win, as in Prometheus), then `alertname` and `tenant`, which no
/// rule can set (a tenant must not pass for another at a shared
/// Alertmanager).
pub fn labels(
    tenant: &str,
    rule: &Rule,
    group: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut l = group.clone();
    for (k, v) in &rule.spec.labels {
        l.insert(k.clone(), v.clone());
    }
    l.insert("alertname".into(), rule.spec.name.clone());
    l.insert("tenant".into(), tenant.to_string());
    l
}

/// A stable id of a label set (what webhooks get as `fingerprint`).
pub fn fingerprint(labels: &BTreeMap<String, String>) -> String {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for (k, v) in labels {
        h.update(k.as_bytes());
        h.update(&[0xff]);
        h.update(v.as_bytes());
        h.update(&[0xff]);
    }
    format!("{:016x}", h.digest())
}

pub fn rfc3339(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// Alertmanager's `POST /api/v2/alerts` body.
pub fn alertmanager_body(o: &Outgoing) -> Value {
    Value::Array(
        o.alerts
            .iter()
            .map(|a| {
                let mut v = json!({
                    "labels": a.labels,
                    "annotations": a.annotations,
                    "startsAt": rfc3339(a.starts_at_ms),
                    "generatorURL": o.generator_url,
                });
                if let Some(end) = a.ends_at_ms {
                    v["endsAt"] = rfc3339(end).into();
                }
                v
            })
            .collect(),
    )
}

/// Alertmanager's webhook v4 body, as its `webhook_config` posts it.
pub fn webhook_body(o: &Outgoing, external_url: &str) -> Value {
    let common = |pick: fn(&Sent) -> &BTreeMap<String, String>| -> BTreeMap<String, String> {
        let mut it = o.alerts.iter();
        let Some(first) = it.next() else {
            return BTreeMap::new();
        };
        let mut c = pick(first).clone();
        for a in it {
            c.retain(|k, v| pick(a).get(k) == Some(v));
        }
        c
    };
    let firing = o.alerts.iter().any(|a| !a.resolved);
    let group_labels = BTreeMap::from([("alertname".to_string(), o.rule.clone())]);
    json!({
        "version": "4",
        "groupKey": format!("{{}}:{{alertname={:?}, tenant={:?}}}", o.rule, o.tenant),
        "truncatedAlerts": 0,
        "status": if firing { "firing" } else { "resolved" },
        "receiver": o.receiver,
        "groupLabels": group_labels,
        "commonLabels": common(|a| &a.labels),
        "commonAnnotations": common(|a| &a.annotations),
        "externalURL": external_url,
        "alerts": o.alerts.iter().map(|a| json!({
            "status": if a.resolved { "resolved" } else { "firing" },
            "labels": a.labels,
            "annotations": a.annotations,
            "startsAt": rfc3339(a.starts_at_ms),
            // Alertmanager's zero time for an alert still firing.
            "endsAt": a.ends_at_ms.filter(|_| a.resolved).map(rfc3339)
                .unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
            "generatorURL": o.generator_url,
            "fingerprint": a.fingerprint,
        })).collect::<Vec<_>>(),
    })
}

/// A Slack incoming webhook's body: one line per alert and a link to the
/// events in the UI.
pub fn slack_body(o: &Outgoing) -> Value {
    let firing = o.alerts.iter().filter(|a| !a.resolved).count();
    let mut text = if firing > 0 {
        format!("[FIRING:{firing}] {}", slack_escape(&o.rule))
    } else {
        format!("[RESOLVED] {}", slack_escape(&o.rule))
    };
    for a in &o.alerts {
        let group: Vec<String> = a
            .labels
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "alertname" | "tenant"))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let summary = a.annotations.get("summary").cloned().unwrap_or_default();
        text.push_str(&format!(
            "\n• {}{} {}",
            if a.resolved { "resolved " } else { "" },
            slack_escape(&group.join(" ")),
            slack_escape(&summary)
        ));
    }
    text.push_str(&format!("\n<{}|Search these events>", o.generator_url));
    json!({ "text": text })
}

/// Slack's three control characters in message text.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The placeholders annotations may use.
pub const PLACEHOLDERS: &str = "{{ $labels.NAME }}, {{ $value }}, {{ $reference }}, {{ $window }}, {{ $rule }}, {{ $samples }}";

/// Checks an annotation template: every `{{ … }}` is a known placeholder.
pub fn check_template(text: &str) -> Result<(), String> {
    render_with(text, |name| {
        known(name)
            .then(String::new)
            .ok_or_else(|| format!("unknown placeholder `{{{{ {name} }}}}`: use {PLACEHOLDERS}"))
    })
    .map(|_| ())
}

fn known(name: &str) -> bool {
    matches!(
        name,
        "$value" | "$reference" | "$window" | "$rule" | "$samples"
    ) || name.strip_prefix("$labels.").is_some_and(|n| !n.is_empty())
}

fn render_with(
    text: &str,
    mut value: impl FnMut(&str) -> Result<String, String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(len) = rest[start..].find("}}") else {
            return Err("a `{{` without its `}}`".into());
        };
        let name = rest[start + 2..start + len].trim();
        out.push_str(&value(name)?);
        rest = &rest[start + len + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The annotations of a group: the rule's templates rendered, and a
/// `summary` by kind when the rule has none.
pub fn render(rule: &Rule, group: &Found, samples: &[String]) -> BTreeMap<String, String> {
    let window = humanize(rule.window);
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    let value = |name: &str| -> Result<String, String> {
        Ok(match name {
            "$value" => group.count.to_string(),
            "$reference" => group.reference.unwrap_or(0).to_string(),
            "$window" => window.clone(),
            "$rule" => rule.spec.name.clone(),
            "$samples" => samples_text(samples),
            other => match other.strip_prefix("$labels.") {
                Some("alertname") => rule.spec.name.clone(),
                Some(n) => rule
                    .spec
                    .labels
                    .get(n)
                    .or_else(|| group.labels.get(n))
                    .cloned()
                    .unwrap_or_default(),
                None => String::new(),
            },
        })
    };
    for (k, t) in &rule.spec.annotations {
        out.insert(k.clone(), render_with(t, value).unwrap_or_else(|e| e));
    }
    out.entry("summary".into()).or_insert_with(|| {
        let n = group.count;
        match &rule.condition {
            Condition::Frequency { at_least } => {
                format!("{n} matching events in {window} (threshold {at_least})")
            }
            Condition::Flatline { below } => {
                format!("{n} matching events in {window}, fewer than {below}")
            }
            Condition::Spike { .. } => format!(
                "{n} matching events in {window} against {} in the {window} before",
                group.reference.unwrap_or(0)
            ),
            Condition::NewValue { field, .. } => format!(
                "new value of {field}: {} ({n} events in {window})",
                group.labels.values().next().cloned().unwrap_or_default()
            ),
            Condition::Any { .. } => samples_text(samples),
        }
    });
    out
}

/// The sample events as lines: time, level, message (or the event's JSON).
fn samples_text(samples: &[String]) -> String {
    samples
        .iter()
        .filter_map(|raw| serde_json::from_str::<Value>(raw).ok())
        .map(|e| {
            let line = match e["message"].as_str() {
                Some(m) => format!(
                    "{} {} {m}",
                    e["timestamp"].as_str().unwrap_or(""),
                    e["level"].as_str().unwrap_or("")
                ),
                None => e.to_string(),
            };
            line.chars().take(300).collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `300s` → `5m`.
pub fn humanize(d: std::time::Duration) -> String {
    let ms = d.as_millis() as u64;
    for (unit, n) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
    ] {
        if ms >= n && ms.is_multiple_of(n) {
            return format!("{}{unit}", ms / n);
        }
    }
    format!("{ms}ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_render_the_group() {
        let spec: crate::alerts::rule::RuleSpec = serde_json::from_value(json!({
            "name":"errors","kind":"frequency","window":"5m","threshold":3,
            "annotations":{"summary":"{{ $value }} errors from {{$labels.service}} in {{ $window }}"}
        }))
        .unwrap();
        let rule = Rule::check(spec, &crate::hot::HotSchema::new(), &[]).unwrap();
        let g = Found {
            key: "[\"checkout\"]".into(),
            labels: BTreeMap::from([("service".into(), "checkout".into())]),
            count: 7,
            reference: None,
            active: true,
            samples: Vec::new(),
        };
        assert_eq!(
            render(&rule, &g, &[])["summary"],
            "7 errors from checkout in 5m"
        );
        assert!(check_template("{{ $labels.x }} {{$value}}").is_ok());
        assert!(
            check_template("{{ .Labels.x }}")
                .unwrap_err()
                .contains("unknown")
        );
        assert!(check_template("{{ $value").is_err());
    }

    #[test]
    fn slack_text_cannot_inject_links() {
        let o = Outgoing {
            seq: 1,
            tenant: "t".into(),
            receiver: "s".into(),
            rule: "r".into(),
            generator_url: "http://ui/?q=x".into(),
            alerts: vec![Sent {
                labels: BTreeMap::from([("service".into(), "<http://evil|click>".into())]),
                annotations: BTreeMap::new(),
                starts_at_ms: 0,
                ends_at_ms: None,
                resolved: false,
                fingerprint: "f".into(),
            }],
            created_ms: 0,
        };
        let text = slack_body(&o)["text"].as_str().unwrap().to_string();
        assert!(text.contains("&lt;http://evil|click&gt;"), "{text}");
        assert!(
            text.ends_with("<http://ui/?q=x|Search these events>"),
            "{text}"
        );
    }
}
