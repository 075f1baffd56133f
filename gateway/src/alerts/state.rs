//! Alert states, as Prometheus and the Loki ruler keep them: per rule and
//! group, inactive (no entry) → pending (the condition holds, for less
//! than `for`) → firing → resolved (the condition no longer holds; the
//! entry goes once its resolve is queued). [`advance`] is the whole state
//! machine; what it decides to tell the receivers comes back as
//! [`Changes`].
//!
//! Times are milliseconds since the epoch.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::eval::Found;
use super::rule::Rule;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Pending,
    Firing,
}

/// One group's alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// The group's values by label name.
    pub labels: BTreeMap<String, String>,
    pub phase: Phase,
    /// When the condition started to hold.
    pub active_since_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fired_at_ms: Option<i64>,
    /// When receivers were last told it fires (`None`: never, e.g. muted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notified_at_ms: Option<i64>,
    /// The count (or the new value's count) at the last evaluation.
    pub value: u64,
    /// Rendered at the last evaluation.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Sample events (their stored JSON), read when it was last notified.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<String>,
}

/// A rule's alerts and mute.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RuleAlerts {
    /// No notifications of firing alerts before this time (resolves of
    /// alerts already notified are still sent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub muted_until_ms: Option<i64>,
    /// When the firing alerts were last sent to Alertmanager receivers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alertmanager_sent_ms: Option<i64>,
    #[serde(default)]
    pub alerts: BTreeMap<String, Alert>,
}

/// An alert that stopped firing at `resolved_ms`.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub key: String,
    pub alert: Alert,
    pub resolved_ms: i64,
}

/// What one evaluation changes for the receivers.
#[derive(Debug, Default)]
pub struct Changes {
    /// Firing alerts webhooks and Slack hear of now: newly fired, or
    /// firing past `repeat_interval` since they last heard.
    pub notify: Vec<(String, Alert)>,
    /// Alerts that were notified and are now resolved.
    pub resolved: Vec<Resolved>,
    /// Every firing alert, for Alertmanager receivers, when due.
    pub alertmanager: Option<Vec<(String, Alert)>>,
    /// Something changed that must be kept (state or notifications).
    pub dirty: bool,
}

/// How often Alertmanager hears of alerts still firing (Prometheus'
/// `rules.alert.resend-delay`).
pub const ALERTMANAGER_RESEND_MS: i64 = 60_000;

/// Moves `state` on by one evaluation at `now_ms`: `groups` are what the
/// evaluation found, `annotate` renders a group's annotations with its
/// samples (the group's own, else those its alert kept).
pub fn advance(
    state: &mut RuleAlerts,
    rule: &Rule,
    groups: &[Found],
    now_ms: i64,
    annotate: impl Fn(&Found, &[String]) -> BTreeMap<String, String>,
) -> Changes {
    let mut changes = Changes::default();
    let pending_ms = rule.pending_for.as_millis() as i64;
    let repeat_ms = rule.repeat_interval.as_millis() as i64;
    let muted = state.muted_until_ms.is_some_and(|t| t > now_ms);
    let mut transitions = false;
    let active: BTreeMap<&str, &Found> = groups
        .iter()
        .filter(|g| g.active)
        .map(|g| (g.key.as_str(), g))
        .collect();
    // Gone: pending ones are forgotten, firing ones resolve.
    let gone: Vec<String> = state
        .alerts
        .keys()
        .filter(|k| !active.contains_key(k.as_str()))
        .cloned()
        .collect();
    for key in gone {
        let alert = state.alerts.remove(&key).expect("listed above");
        changes.dirty = true;
        if alert.phase == Phase::Firing {
            transitions = true;
            if alert.notified_at_ms.is_some() {
                changes.resolved.push(Resolved {
                    key,
                    alert,
                    resolved_ms: now_ms,
                });
            }
        }
    }
    for (key, g) in active {
        let alert = state.alerts.entry(key.to_string()).or_insert_with(|| {
            changes.dirty = true;
            Alert {
                labels: g.labels.clone(),
                phase: Phase::Pending,
                active_since_ms: now_ms,
                fired_at_ms: None,
                notified_at_ms: None,
                value: g.count,
                annotations: BTreeMap::new(),
                samples: Vec::new(),
            }
        });
        if !g.samples.is_empty() {
            alert.samples = g.samples.iter().map(|r| r.get().to_string()).collect();
        }
        let annotations = annotate(g, &alert.samples);
        if alert.value != g.count || alert.annotations != annotations {
            alert.value = g.count;
            alert.annotations = annotations;
            changes.dirty = true;
        }
        if alert.phase == Phase::Pending && now_ms - alert.active_since_ms >= pending_ms {
            alert.phase = Phase::Firing;
            alert.fired_at_ms = Some(now_ms);
            changes.dirty = true;
            transitions = true;
        }
        if alert.phase == Phase::Firing
            && !muted
            && alert.notified_at_ms.is_none_or(|t| now_ms - t >= repeat_ms)
        {
            alert.notified_at_ms = Some(now_ms);
            changes.dirty = true;
            changes.notify.push((key.to_string(), alert.clone()));
        }
    }
    let firing: Vec<(String, Alert)> = state
        .alerts
        .iter()
        .filter(|(_, a)| a.phase == Phase::Firing && a.notified_at_ms.is_some() && !muted)
        .map(|(k, a)| (k.clone(), a.clone()))
        .collect();
    let resend_ms = ALERTMANAGER_RESEND_MS.max(rule.interval.as_millis() as i64);
    let due = state
        .alertmanager_sent_ms
        .is_none_or(|t| now_ms - t >= resend_ms);
    if (!firing.is_empty() && (due || transitions || !changes.notify.is_empty()))
        || !changes.resolved.is_empty()
    {
        state.alertmanager_sent_ms = Some(now_ms);
        changes.alertmanager = Some(firing);
        changes.dirty = true;
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::rule::RuleSpec;
    use crate::hot::HotSchema;

    fn rule(json: serde_json::Value) -> Rule {
        let spec: RuleSpec = serde_json::from_value(json).unwrap();
        Rule::check(spec, &HotSchema::new(), &[]).unwrap()
    }

    fn group(key: &str, count: u64, active: bool) -> Found {
        Found {
            key: key.into(),
            labels: BTreeMap::from([("service".into(), key.into())]),
            count,
            reference: None,
            active,
            samples: Vec::new(),
        }
    }

    fn step(s: &mut RuleAlerts, r: &Rule, groups: &[Found], now: i64) -> Changes {
        advance(s, r, groups, now, |_, _| BTreeMap::new())
    }

    /// pending for `for`, then firing, notified once, repeated after
    /// `repeat_interval`, resolved once.
    #[test]
    fn pending_firing_repeat_resolved() {
        let r = rule(
            serde_json::json!({"name":"r","kind":"frequency","window":"1m","threshold":1,"for":"10s","repeat_interval":"1h","interval":"5s"}),
        );
        let mut s = RuleAlerts::default();
        let c = step(&mut s, &r, &[group("a", 5, true)], 0);
        assert!(c.notify.is_empty() && c.alertmanager.is_none() && c.dirty);
        assert_eq!(s.alerts["a"].phase, Phase::Pending);
        let c = step(&mut s, &r, &[group("a", 6, true)], 5_000);
        assert!(c.notify.is_empty());
        let c = step(&mut s, &r, &[group("a", 7, true)], 10_000);
        assert_eq!(c.notify.len(), 1);
        assert_eq!(s.alerts["a"].phase, Phase::Firing);
        assert_eq!(c.alertmanager.as_ref().unwrap().len(), 1);
        let c = step(&mut s, &r, &[group("a", 7, true)], 15_000);
        assert!(c.notify.is_empty() && c.alertmanager.is_none() && !c.dirty);
        // Alertmanager hears again after a minute; webhooks after an hour.
        let c = step(&mut s, &r, &[group("a", 7, true)], 70_000);
        assert!(c.notify.is_empty() && c.alertmanager.is_some());
        let c = step(&mut s, &r, &[group("a", 7, true)], 3_610_000);
        assert_eq!(c.notify.len(), 1);
        let c = step(&mut s, &r, &[group("a", 0, false)], 3_615_000);
        assert_eq!(c.resolved.len(), 1);
        assert!(s.alerts.is_empty());
        let c = step(&mut s, &r, &[], 3_620_000);
        assert!(c.resolved.is_empty() && !c.dirty);
    }

    /// A condition that stops before `for` never fires nor resolves.
    #[test]
    fn pending_that_ends_is_forgotten() {
        let r = rule(
            serde_json::json!({"name":"r","kind":"frequency","window":"1m","threshold":1,"for":"10s"}),
        );
        let mut s = RuleAlerts::default();
        step(&mut s, &r, &[group("a", 5, true)], 0);
        let c = step(&mut s, &r, &[], 5_000);
        assert!(c.resolved.is_empty() && c.notify.is_empty() && c.alertmanager.is_none());
        assert!(s.alerts.is_empty());
    }

    /// Muted: firing but not notified; a resolve of an alert never
    /// notified is not sent; after the mute, the firing alert is sent.
    #[test]
    fn mute_holds_back_firing_notifications() {
        let r =
            rule(serde_json::json!({"name":"r","kind":"frequency","window":"1m","threshold":1}));
        let mut s = RuleAlerts {
            muted_until_ms: Some(10_000),
            ..Default::default()
        };
        let c = step(&mut s, &r, &[group("a", 5, true), group("b", 1, true)], 0);
        assert!(c.notify.is_empty() && c.alertmanager.is_none());
        assert_eq!(s.alerts["a"].phase, Phase::Firing);
        let c = step(&mut s, &r, &[group("a", 5, true)], 5_000);
        assert!(c.resolved.is_empty());
        let c = step(&mut s, &r, &[group("a", 5, true)], 10_000);
        assert_eq!(c.notify.len(), 1);
    }
}
