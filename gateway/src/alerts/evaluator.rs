//! The schedule: one thread at `server.background_nice` evaluates the
//! due rule that has waited longest, one at a time (every `interval`; a
//! rule found late runs once and its whole intervals of delay are counted
//! as missed, never run to catch up), moves its alerts through the state
//! machine, queues what receivers must hear, writes the state file (at
//! most a second behind) and wakes the delivery tasks. Also the "test
//! rule" call.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use time::OffsetDateTime;

use super::SavedQueries;
use super::config::ReceiverKind;
use super::eval::{self, EvalError, Scope};
use super::notify::{self, Outgoing, Sent};
use super::rule::{Rule, TimeBasis};
use super::state::{self, Changes};
use super::tallies::Tallies;
use super::{Alerts, AlertsError, Book};
use crate::hot::HotIndex;
use crate::hot::search::{SearchError, parse_query, unix_ms};
use crate::telemetry::alerts::{ResultLabels, RuleLabels};

/// How often the thread looks for due rules.
const TICK: Duration = Duration::from_millis(50);

/// Starts the evaluator thread; it ends when `stop` is set.
pub fn spawn(
    alerts: Arc<Alerts>,
    hot: Arc<HotIndex>,
    saved: Arc<dyn SavedQueries>,
    stop: Arc<AtomicBool>,
    nice: i32,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    crate::background::spawn("alerts", nice, move || {
        let mut written = Instant::now();
        let mut dirty = false;
        let mut tallies = Tallies::load(&alerts.data_dir);
        let mut pruned = Instant::now();
        while !stop.load(Ordering::Acquire) {
            match most_overdue(&alerts) {
                Some((tenant, rule)) => {
                    evaluate_and_apply(&alerts, &hot, &*saved, &mut tallies, &tenant, &rule);
                    dirty = true;
                }
                None => std::thread::sleep(TICK),
            }
            if pruned.elapsed() >= SAVE_TALLIES_EVERY {
                {
                    let book = alerts.lock();
                    tallies.prune(|user| book.rules.contains_key(user));
                }
                save(&tallies);
                pruned = Instant::now();
            }
            // The state file (and so the notifications, which wait for
            // it) at most a second behind, also while rules queue up.
            if dirty && written.elapsed() >= PERSIST_EVERY {
                if let Err(e) = alerts.persist() {
                    tracing::error!(error = %e, "cannot write the alert state; will retry");
                }
                alerts.wake.send_modify(|g| *g += 1);
                written = Instant::now();
                dirty = false;
            }
        }
        if let Err(e) = alerts.persist() {
            tracing::error!(error = %e, "cannot write the alert state at shutdown");
        }
        save(&tallies);
    })
}

fn save(tallies: &Tallies) {
    if let Err(e) = tallies.save() {
        tracing::warn!(error = %e, "cannot write the alert tallies; a restart counts windows whole once");
    }
}

/// How often the evaluator writes the state file while it has changes.
const PERSIST_EVERY: Duration = Duration::from_secs(1);
/// How often the tallies no rule uses are dropped and the rest written.
const SAVE_TALLIES_EVERY: Duration = Duration::from_secs(60);

/// The due rule waiting longest, now marked as started: its next turn is
/// an interval from now (a late rule runs once, never twice to catch up),
/// and each whole interval it waited past its turn is counted as missed.
fn most_overdue(alerts: &Alerts) -> Option<(String, Arc<Rule>)> {
    let now = Instant::now();
    let mut book = alerts.lock();
    let (key, e) = book
        .rules
        .iter_mut()
        .filter(|(_, e)| e.next_due <= now)
        .min_by_key(|(_, e)| e.next_due)?;
    let late = now.duration_since(e.next_due).as_nanos();
    let missed = (late / e.rule.interval.as_nanos().max(1)) as u64;
    if missed > 0 {
        e.status.missed += missed;
        alerts
            .metrics
            .alerts
            .evaluations_missed
            .get_or_create(&rule_labels(&key.0, &key.1))
            .inc_by(missed);
    }
    e.next_due = now + e.rule.interval;
    Some((key.0.clone(), e.rule.clone()))
}

fn rule_labels(tenant: &str, rule: &str) -> RuleLabels {
    RuleLabels {
        tenant: tenant.into(),
        rule: rule.into(),
    }
}

/// The rule's query and types, from its saved search if it names one.
fn scope<'a>(
    hot: &'a HotIndex,
    saved: &dyn SavedQueries,
    alerts: &Alerts,
    tenant: &'a str,
    rule: &Rule,
) -> Result<(Scope<'a>, String), EvalError> {
    let (text, types) = match &rule.spec.saved_search {
        Some(id) => {
            let (query, log_type) = saved.saved_query(tenant, id).ok_or_else(|| {
                SearchError::Query(format!("the saved search `{id}` no longer exists"))
            })?;
            let types = match (log_type, rule.spec.types.is_empty()) {
                (Some(t), true) => vec![t],
                _ => rule.spec.types.clone(),
            };
            (query, types)
        }
        None => (
            rule.spec.query.clone().unwrap_or_default(),
            rule.spec.types.clone(),
        ),
    };
    let query = parse_query(hot, &text)?;
    Ok((
        Scope {
            hot,
            tenant,
            query,
            types,
            max_groups: alerts.config.max_groups,
            started: Instant::now(),
            budget: alerts.config.evaluation_budget,
        },
        text,
    ))
}

/// The UI's search for the events a rule counted: `query` over `[from,
/// to)` of event time; by receive time, the range is in the query (the
/// UI's range is on event time, so it spans the hot tier's week).
fn search_url(
    alerts: &Alerts,
    rule: &Rule,
    query: &str,
    types: &[String],
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> String {
    let ms = unix_ms;
    let mut url = reqwest::Url::parse(&format!("{}/", alerts.external_url))
        .unwrap_or_else(|_| reqwest::Url::parse("http://localhost/").expect("valid"));
    let (q, from) = match rule.time {
        TimeBasis::Event => (query.trim().to_string(), from),
        TimeBasis::Received => {
            let range = format!(
                "received_at:[{} TO {}]",
                notify::rfc3339(ms(from)),
                notify::rfc3339(ms(to))
            );
            let q = match query.trim() {
                "" | "*" => range,
                q => format!("({q}) AND {range}"),
            };
            (q, from - time::Duration::days(7))
        }
    };
    {
        let mut pairs = url.query_pairs_mut();
        if !q.is_empty() {
            pairs.append_pair("q", &q);
        }
        pairs.append_pair("from", &notify::rfc3339(ms(from)));
        pairs.append_pair("to", &notify::rfc3339(ms(to)));
        if let [t] = types {
            pairs.append_pair("type", t);
        }
    }
    url.to_string()
}

fn evaluate_and_apply(
    alerts: &Alerts,
    hot: &HotIndex,
    saved: &dyn SavedQueries,
    tallies: &mut Tallies,
    tenant: &str,
    rule: &Arc<Rule>,
) {
    let name = rule.name();
    let key = (tenant.to_string(), name.to_string());
    let started = Instant::now();
    let now = OffsetDateTime::now_utc();
    let now_ms = unix_ms(now);
    let state_now = || {
        let book = alerts.lock();
        book.stored
            .state
            .get(tenant)
            .and_then(|m| m.get(name))
            .cloned()
            .unwrap_or_default()
    };
    let before = state_now();
    let known: BTreeMap<String, BTreeMap<String, String>> = before
        .alerts
        .iter()
        .map(|(k, a)| (k.clone(), a.labels.clone()))
        .collect();
    let result = scope(hot, saved, alerts, tenant, rule).and_then(|(scope, text)| {
        let tally = tallies.for_rule(tenant, rule, &text, &scope.types);
        let mut ev = eval::evaluate(&scope, rule, now, &known, tally)?;
        // Samples only for the alerts about to be notified: a dry run of
        // the state machine on a copy says which.
        let mut dry = before.clone();
        let notify: Vec<String> =
            state::advance(&mut dry, rule, &ev.groups, now_ms, |_, _| BTreeMap::new())
                .notify
                .into_iter()
                .map(|(k, _)| k)
                .collect();
        eval::add_samples(&scope, rule, ev.from, ev.to, &mut ev.groups, &notify)?;
        Ok((ev, text, scope.types))
    });
    let elapsed = started.elapsed();
    let m = &alerts.metrics.alerts;
    let labels = rule_labels(tenant, name);
    m.evaluation_seconds
        .get_or_create(&labels)
        .set(elapsed.as_secs_f64());
    m.last_evaluation
        .get_or_create(&labels)
        .set(now_ms as f64 / 1000.0);
    let mut book = alerts.lock();
    // Replaced or deleted while it ran: the next evaluation counts.
    if !book
        .rules
        .get(&key)
        .is_some_and(|e| Arc::ptr_eq(&e.rule, rule))
    {
        return;
    }
    let (result_name, error, active) = match result {
        Ok((ev, text, types)) => {
            let url = search_url(alerts, rule, &text, &types, ev.from, ev.to);
            let state = book
                .stored
                .state
                .entry(tenant.to_string())
                .or_default()
                .entry(name.to_string())
                .or_default();
            let changes = state::advance(state, rule, &ev.groups, now_ms, |g, samples| {
                notify::render(rule, g, samples)
            });
            let counts = [state::Phase::Pending, state::Phase::Firing]
                .map(|p| state.alerts.values().filter(|a| a.phase == p).count() as i64);
            for (phase, n) in ["pending", "firing"].into_iter().zip(counts) {
                m.alerts
                    .get_or_create(&crate::telemetry::alerts::StateLabels {
                        tenant: tenant.into(),
                        rule: name.into(),
                        state: phase.into(),
                    })
                    .set(n);
            }
            if changes.dirty {
                book.generation += 1;
            }
            enqueue(alerts, &mut book, tenant, rule, &changes, Some(url), now_ms);
            let active = ev.groups.iter().filter(|g| g.active).count();
            ("ok", None, active)
        }
        Err(e @ EvalError::OverBudget { .. }) => ("over_budget", Some(e.to_string()), 0),
        Err(e) => ("error", Some(e.to_string()), 0),
    };
    if let Some(e) = &error {
        tracing::warn!(tenant, rule = name, error = %e, "alert rule evaluation failed");
    }
    m.evaluations
        .get_or_create(&ResultLabels {
            tenant: tenant.into(),
            rule: name.into(),
            result: result_name.into(),
        })
        .inc();
    if let Some(e) = book.rules.get_mut(&key) {
        let s = &mut e.status;
        s.last_evaluation = Some(notify::rfc3339(now_ms));
        s.last_duration_ms = Some(elapsed.as_millis() as u64);
        s.last_result = Some(result_name.into());
        s.last_error = error;
        s.evaluations += 1;
        if result_name == "ok" {
            s.active_groups = active;
        }
    }
}

/// Puts what `changes` tells each of the rule's receivers into the outbox.
pub(super) fn enqueue(
    alerts: &Alerts,
    book: &mut Book,
    tenant: &str,
    rule: &Rule,
    changes: &Changes,
    generator_url: Option<String>,
    now_ms: i64,
) {
    let sent = |a: &state::Alert, resolved_ms: Option<i64>, ends_ms: Option<i64>| {
        let labels = notify::labels(tenant, rule, &a.labels);
        Sent {
            fingerprint: notify::fingerprint(&labels),
            labels,
            annotations: a.annotations.clone(),
            starts_at_ms: a.fired_at_ms.unwrap_or(a.active_since_ms),
            ends_at_ms: resolved_ms.or(ends_ms),
            resolved: resolved_ms.is_some(),
        }
    };
    let resolved: Vec<Sent> = changes
        .resolved
        .iter()
        .map(|r| sent(&r.alert, Some(r.resolved_ms), None))
        .collect();
    // Alertmanager considers an alert firing until endsAt unless it hears
    // again: four resends, as Prometheus sets it.
    let valid_ms = 4 * state::ALERTMANAGER_RESEND_MS.max(rule.interval.as_millis() as i64);
    let url = generator_url.unwrap_or_else(|| format!("{}/", alerts.external_url));
    for receiver in &rule.spec.receivers {
        let Some(cfg) = alerts
            .receivers
            .get(&(tenant.to_string(), receiver.clone()))
        else {
            continue;
        };
        let mut list: Vec<Sent> = if cfg.kind == ReceiverKind::Alertmanager {
            match &changes.alertmanager {
                Some(firing) => firing
                    .iter()
                    .map(|(_, a)| sent(a, None, Some(now_ms + valid_ms)))
                    .collect(),
                None => Vec::new(),
            }
        } else {
            changes
                .notify
                .iter()
                .map(|(_, a)| sent(a, None, None))
                .collect()
        };
        list.extend(resolved.iter().cloned());
        if list.is_empty() {
            continue;
        }
        let outbox = &mut book.stored.outbox;
        if cfg.kind == ReceiverKind::Alertmanager {
            // Only the latest state matters to Alertmanager: an undelivered
            // earlier one is replaced, keeping its resolves.
            if let Some(i) = outbox.iter().position(|o| {
                o.tenant == tenant && &o.receiver == receiver && o.rule == rule.spec.name
            }) {
                let old = outbox.remove(i);
                for a in old.alerts.into_iter().filter(|a| a.resolved) {
                    if !list.iter().any(|b| b.fingerprint == a.fingerprint) {
                        list.push(a);
                    }
                }
            }
        }
        book.stored.seq += 1;
        outbox.push(Outgoing {
            seq: book.stored.seq,
            tenant: tenant.to_string(),
            receiver: receiver.clone(),
            rule: rule.spec.name.clone(),
            generator_url: url.clone(),
            alerts: list,
            created_ms: now_ms,
        });
        let queued = book.queued(tenant, receiver);
        if queued > alerts.config.max_queued
            && let Some(i) = book
                .stored
                .outbox
                .iter()
                .position(|o| o.tenant == tenant && &o.receiver == receiver)
        {
            book.stored.outbox.remove(i);
            alerts.metrics.alerts.delivery(tenant, receiver, "dropped");
            book.receivers
                .entry((tenant.to_string(), receiver.clone()))
                .or_default()
                .dropped += 1;
            tracing::warn!(
                tenant,
                receiver,
                "alert receiver queue full; dropped its oldest notification"
            );
        }
        alerts
            .metrics
            .alerts
            .queued
            .get_or_create(&crate::telemetry::alerts::ReceiverLabels {
                tenant: tenant.into(),
                receiver: receiver.clone(),
            })
            .set(queued.min(alerts.config.max_queued) as i64);
        book.generation += 1;
    }
}

/// Evaluates a rule spec over `[from, to)` (its window replaced by that
/// range) without touching any state or notifying anyone.
pub fn test_rule(
    alerts: &Alerts,
    hot: &HotIndex,
    saved: &dyn SavedQueries,
    tenant: &str,
    spec: super::rule::RuleSpec,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<Value, AlertsError> {
    let mut rule = alerts.check(tenant, spec)?;
    if to <= from {
        return Err(AlertsError::Invalid(super::rule::RuleError {
            key: "from".into(),
            message: "must be before `to`".into(),
            position: None,
        }));
    }
    rule.window = Duration::try_from(to - from).unwrap_or(rule.window);
    let started = Instant::now();
    let evaluated = scope(hot, saved, alerts, tenant, &rule).and_then(|(scope, _)| {
        let mut ev = eval::evaluate(&scope, &rule, to, &BTreeMap::new(), None)?;
        let active: Vec<String> = ev
            .groups
            .iter()
            .filter(|g| g.active)
            .map(|g| g.key.clone())
            .collect();
        eval::add_samples(&scope, &rule, ev.from, ev.to, &mut ev.groups, &active)?;
        Ok(ev)
    });
    let ev = match evaluated {
        Ok(ev) => ev,
        Err(e) => {
            return Err(AlertsError::Invalid(super::rule::RuleError {
                key: "query".into(),
                message: e.to_string(),
                position: None,
            }));
        }
    };
    let groups: Vec<Value> = ev
        .groups
        .iter()
        .map(|g| {
            json!({
                "labels": g.labels,
                "count": g.count,
                "reference": g.reference,
                "active": g.active,
                "annotations": if g.active {
                    let samples: Vec<String> = g.samples.iter().map(|r| r.get().to_string()).collect();
                    json!(notify::render(&rule, g, &samples))
                } else {
                    json!({})
                },
                "samples": g.samples,
            })
        })
        .collect();
    Ok(json!({
        "from": notify::rfc3339(unix_ms(from)),
        "to": notify::rfc3339(unix_ms(to)),
        "took_ms": started.elapsed().as_millis() as u64,
        "would_fire": ev.groups.iter().any(|g| g.active),
        "groups": groups,
    }))
}
