//! One evaluation of a rule over the hot tier: counts (grouped by the
//! rule's fields through tantivy's terms aggregation), the window before
//! for `spike` and `flatline`, the values seen before for `new_value`,
//! the newest events for `any` and for samples. Only the tenant's own
//! partitions are opened.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::time::Instant;

use serde_json::value::RawValue;
use serde_json::{Value, json};
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{BooleanQuery, Occur, Query, RangeQuery};
use tantivy::schema::{Field, Term, Value as _};
use tantivy::{DateTime, Order, TantivyDocument};
use time::OffsetDateTime;

use crate::hot::fields::{key_text, value_at};

use super::rule::{Condition, Direction, Rule, TimeBasis, label_name};
use super::tally::Tally;
use crate::hot::search::SearchError;
use crate::hot::{HotIndex, Partition};

/// Sample events kept per alert.
pub const SAMPLES: usize = 3;
/// Newest events read to pick samples from.
const SAMPLE_POOL: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{0}")]
    Search(#[from] SearchError),
    #[error(
        "the evaluation ran past its budget of {budget_ms} ms (alerts.evaluation_budget) and was abandoned; its alerts keep their state"
    )]
    OverBudget { budget_ms: u128 },
}

impl From<tantivy::TantivyError> for EvalError {
    fn from(e: tantivy::TantivyError) -> Self {
        EvalError::Search(e.into())
    }
}

/// What the rule is evaluated against.
pub struct Scope<'a> {
    pub hot: &'a HotIndex,
    pub tenant: &'a str,
    /// The rule's query (resolved from its saved search if it has one).
    pub query: Box<dyn Query>,
    /// Log types to count; empty: all.
    pub types: Vec<String>,
    pub max_groups: usize,
    pub started: Instant,
    pub budget: std::time::Duration,
}

/// One group an evaluation looked at.
#[derive(Debug, Clone)]
pub struct Found {
    /// Stable across evaluations: the group's values as a JSON array
    /// (`""` without `group_by`), or the event id for `any`.
    pub key: String,
    /// The group's values by label name.
    pub labels: BTreeMap<String, String>,
    /// Matching events in the window.
    pub count: u64,
    /// spike and flatline: matching events in the window before.
    pub reference: Option<u64>,
    /// The condition holds.
    pub active: bool,
    /// Newest matching events of an active group (their stored JSON).
    pub samples: Vec<Box<RawValue>>,
}

pub struct Evaluation {
    pub from: OffsetDateTime,
    pub to: OffsetDateTime,
    pub groups: Vec<Found>,
}

/// Evaluates `rule` for the window ending at `now`. `known` are the
/// groups the rule's alerts hold (flatline keeps watching them). With a
/// tally, it first counts what was indexed since its last update, and
/// the window ends at the tally's last whole step before `now`; without
/// one, the window is counted whole and ends at `now`.
pub fn evaluate(
    scope: &Scope,
    rule: &Rule,
    now: OffsetDateTime,
    known: &BTreeMap<String, BTreeMap<String, String>>,
    tally: Option<&mut Tally>,
) -> Result<Evaluation, EvalError> {
    let window = time::Duration::try_from(rule.window).unwrap_or(time::Duration::DAY);
    let (to, tally) = match tally {
        Some(t) => {
            t.update(scope, rule, now)?;
            (t.window_end(now), Some(&*t))
        }
        None => (now, None),
    };
    let from = to - window;
    let counts = |fields: &[String], text_only: bool, from, to| {
        counted(scope, rule, tally, fields, text_only, from, to)
    };
    let group_by = &rule.spec.group_by;
    let groups: Vec<Found> = match &rule.condition {
        Condition::Frequency { at_least } => counts(group_by, false, from, to)?
            .into_iter()
            .map(|(values, n)| found(group_by, values, n, None, n >= *at_least))
            .collect(),
        Condition::Flatline { below } => {
            let now_counts = counts(group_by, false, from, to)?;
            let mut keys: BTreeSet<Vec<String>> = now_counts.keys().cloned().collect();
            if group_by.is_empty() {
                keys.insert(Vec::new());
            } else {
                keys.extend(counts(group_by, false, from - window, from)?.into_keys());
                keys.extend(known.keys().filter_map(|k| serde_json::from_str(k).ok()));
            }
            keys.into_iter()
                .map(|values| {
                    let n = now_counts.get(&values).copied().unwrap_or(0);
                    found(group_by, values, n, None, n < *below)
                })
                .collect()
        }
        Condition::Spike {
            ratio,
            direction,
            min_count,
        } => {
            let now_counts = counts(group_by, false, from, to)?;
            let before = counts(group_by, false, from - window, from)?;
            let keys: BTreeSet<&Vec<String>> = now_counts.keys().chain(before.keys()).collect();
            keys.into_iter()
                .map(|values| {
                    let cur = now_counts.get(values).copied().unwrap_or(0);
                    let prev = before.get(values).copied().unwrap_or(0);
                    let up = prev > 0 && cur >= *min_count && cur as f64 >= ratio * prev as f64;
                    let down = prev >= *min_count && (cur as f64) * ratio <= prev as f64;
                    let active = match direction {
                        Direction::Up => up,
                        Direction::Down => down,
                        Direction::Both => up || down,
                    };
                    found(group_by, values.clone(), cur, Some(prev), active)
                })
                .collect()
        }
        Condition::NewValue { field, lookback } => {
            let fields = std::slice::from_ref(field);
            let candidates: Vec<(String, u64)> = counts(fields, true, from, to)?
                .into_iter()
                .filter_map(|(mut v, n)| v.pop().map(|v| (v, n)))
                .collect();
            let since = to - time::Duration::try_from(*lookback).unwrap_or(time::Duration::DAY);
            let names: Vec<String> = candidates.iter().map(|(v, _)| v.clone()).collect();
            let seen = seen_before(scope, rule, field, &names, since, from)?;
            candidates
                .into_iter()
                .enumerate()
                .filter(|(i, _)| !seen.contains(i))
                .map(|(_, (v, n))| found(fields, vec![v], n, None, true))
                .collect()
        }
        Condition::Any { max_alerts } => newest(scope, rule, from, to, *max_alerts)?
            .into_iter()
            .filter_map(|raw| {
                let v: Value = serde_json::from_str(raw.get()).ok()?;
                let id = v["id"].as_str()?.to_string();
                let mut labels: BTreeMap<String, String> = group_by
                    .iter()
                    .filter_map(|f| Some((label_name(f), value_at(&v, f)?)))
                    .collect();
                labels.insert("event_id".into(), id.clone());
                Some(Found {
                    key: id,
                    labels,
                    count: 1,
                    reference: None,
                    active: true,
                    samples: vec![raw],
                })
            })
            .collect(),
    };
    Ok(Evaluation { from, to, groups })
}

fn found(
    fields: &[String],
    values: Vec<String>,
    count: u64,
    reference: Option<u64>,
    active: bool,
) -> Found {
    let key = group_key(fields, &values);
    Found {
        key,
        labels: fields.iter().map(|f| label_name(f)).zip(values).collect(),
        count,
        reference,
        active,
        samples: Vec::new(),
    }
}

/// A group's stable key: its values as a JSON array, `""` without fields.
fn group_key(fields: &[String], values: &[String]) -> String {
    if fields.is_empty() {
        String::new()
    } else {
        serde_json::to_string(values).expect("strings serialize")
    }
}

pub(super) fn time_field(scope: &Scope, rule: &Rule) -> (Field, &'static str) {
    match rule.time {
        TimeBasis::Event => (scope.hot.schema.timestamp, "timestamp"),
        TimeBasis::Received => (scope.hot.schema.received_at, "received_at"),
    }
}

/// The rule's query within `[from, to)` of its time field.
pub(super) fn windowed(
    scope: &Scope,
    rule: &Rule,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> BooleanQuery {
    let (field, _) = time_field(scope, rule);
    let term = |t: OffsetDateTime| {
        let t = DateTime::from_utc(t).truncate(tantivy::schema::DateTimePrecision::Milliseconds);
        Term::from_field_date(field, t)
    };
    BooleanQuery::new(vec![
        (Occur::Must, scope.query.box_clone()),
        (
            Occur::Must,
            Box::new(RangeQuery::new(
                Bound::Included(term(from)),
                Bound::Excluded(term(to)),
            )),
        ),
    ])
}

/// The partitions that may hold matching events of `[from, …)`: the
/// tenant's, of the rule's types; by receive time, none of a day before.
pub(super) fn partitions(
    scope: &Scope,
    rule: &Rule,
    from: OffsetDateTime,
) -> Vec<std::sync::Arc<Partition>> {
    scope
        .hot
        .partitions_of(scope.tenant, None)
        .into_iter()
        .filter(|p| scope.types.is_empty() || scope.types.contains(&p.key.log_type))
        .filter(|p| {
            rule.time != TimeBasis::Received || p.key.rehydrated || p.key.day >= from.date()
        })
        .collect()
}

pub(super) fn check_budget(scope: &Scope) -> Result<(), EvalError> {
    if scope.started.elapsed() > scope.budget {
        return Err(EvalError::OverBudget {
            budget_ms: scope.budget.as_millis(),
        });
    }
    Ok(())
}

/// Matching events in `[from, to)` per group: from the tally and the
/// partitions it does not count, or without one, from every partition;
/// the `max_groups` largest groups.
fn counted(
    scope: &Scope,
    rule: &Rule,
    tally: Option<&Tally>,
    fields: &[String],
    text_only: bool,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<BTreeMap<Vec<String>, u64>, EvalError> {
    let Some(tally) = tally else {
        return counts(scope, rule, fields, text_only, from, to, |_| true);
    };
    let mut out = tally.counts(from, to);
    let rest = counts(scope, rule, fields, text_only, from, to, |p| {
        !p.counts_lsn()
    })?;
    for (values, n) in rest {
        *out.entry(values).or_default() += n;
    }
    if out.len() > scope.max_groups {
        let mut largest: Vec<(Vec<String>, u64)> = out.into_iter().collect();
        largest.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        largest.truncate(scope.max_groups);
        out = largest.into_iter().collect();
    }
    Ok(out)
}

/// Matching events in `[from, to)` of the partitions `keep` takes, per
/// group of `fields`' values (one group of no values without fields).
/// Events without one of the fields are in no group; with `text_only`,
/// neither are number and boolean values.
fn counts(
    scope: &Scope,
    rule: &Rule,
    fields: &[String],
    text_only: bool,
    from: OffsetDateTime,
    to: OffsetDateTime,
    keep: impl Fn(&Partition) -> bool,
) -> Result<BTreeMap<Vec<String>, u64>, EvalError> {
    let mut out = BTreeMap::new();
    let parts: Vec<_> = partitions(scope, rule, from)
        .into_iter()
        .filter(|p| keep(p))
        .collect();
    if parts.is_empty() {
        return Ok(out);
    }
    let query = windowed(scope, rule, from, to);
    if fields.is_empty() {
        let mut total = 0u64;
        for p in parts {
            check_budget(scope)?;
            total += p.reader.searcher().search(&query, &Count)? as u64;
        }
        if total > 0 {
            out.insert(Vec::new(), total);
        }
        return Ok(out);
    }
    let mut agg: Option<Value> = None;
    for (i, f) in fields.iter().enumerate().rev() {
        let column = crate::hot::fields::column_of(f)?;
        let mut terms = json!({"terms": {"field": column, "size": scope.max_groups}});
        if let Some(inner) = agg.take() {
            terms["aggs"] = json!({ format!("g{}", i + 1): inner });
        }
        agg = Some(terms);
    }
    let (result, _) =
        crate::hot::fields::aggregate(parts, &query, json!({ "g0": agg }), || check_budget(scope))?;
    walk_groups(&result, 0, text_only, &mut Vec::new(), &mut |b, values| {
        if let Some(n) = b["doc_count"].as_u64().filter(|&n| n > 0) {
            out.insert(values.to_vec(), n);
        }
    });
    Ok(out)
}

/// The nested terms buckets `g0`, `g1`, … of an aggregation: `leaf`
/// gets each innermost bucket with its groups' values. With `text_only`,
/// number and boolean keys form no group.
pub(super) fn walk_groups(
    node: &Value,
    depth: usize,
    text_only: bool,
    values: &mut Vec<String>,
    leaf: &mut dyn FnMut(&Value, &[String]),
) {
    let Some(buckets) = node[format!("g{depth}")]["buckets"].as_array() else {
        return;
    };
    for b in buckets {
        if text_only && !b["key"].is_string() {
            continue;
        }
        let Some(key) = key_text(&b["key"]) else {
            continue;
        };
        values.push(key);
        if b.get(format!("g{}", depth + 1)).is_some() {
            walk_groups(b, depth + 1, text_only, values, leaf);
        } else {
            leaf(b, values);
        }
        values.pop();
    }
}

/// Which `candidates` (values of `field`) matching events held in
/// `[since, until)`.
fn seen_before(
    scope: &Scope,
    rule: &Rule,
    field: &str,
    candidates: &[String],
    since: OffsetDateTime,
    until: OffsetDateTime,
) -> Result<std::collections::HashSet<usize>, EvalError> {
    let mut seen = std::collections::HashSet::new();
    if candidates.is_empty() || since >= until {
        return Ok(seen);
    }
    let column = crate::hot::fields::column_of(field)?;
    let query = windowed(scope, rule, since, until);
    for p in partitions(scope, rule, since) {
        check_budget(scope)?;
        let found = super::seen::seen(&p.reader.searcher(), &query, &column, candidates, &seen)?;
        seen.extend(found);
        if seen.len() == candidates.len() {
            break;
        }
    }
    Ok(seen)
}

/// The newest `limit` matching events of `[from, to)` by the rule's time.
fn newest(
    scope: &Scope,
    rule: &Rule,
    from: OffsetDateTime,
    to: OffsetDateTime,
    limit: usize,
) -> Result<Vec<Box<RawValue>>, EvalError> {
    let (_, name) = time_field(scope, rule);
    let query = windowed(scope, rule, from, to);
    let mut candidates = Vec::new();
    let parts = partitions(scope, rule, from);
    let mut searchers = Vec::with_capacity(parts.len());
    for (i, p) in parts.iter().enumerate() {
        check_budget(scope)?;
        let searcher = p.reader.searcher();
        let top =
            TopDocs::with_limit(limit.max(1)).order_by_fast_field::<DateTime>(name, Order::Desc);
        for (t, addr) in searcher.search(&query, &top)? {
            candidates.push((
                t.map(|t| t.into_timestamp_millis()).unwrap_or(i64::MIN),
                i,
                addr,
            ));
        }
        searchers.push(searcher);
    }
    candidates.sort_by_key(|c| std::cmp::Reverse(c.0));
    candidates.truncate(limit);
    let mut out = Vec::with_capacity(candidates.len());
    for (_, i, addr) in candidates {
        let doc: TantivyDocument = searchers[i].doc(addr)?;
        if let Some(source) = doc
            .get_first(scope.hot.schema.source)
            .and_then(|v| v.as_str())
            && let Ok(raw) = RawValue::from_string(source.to_string())
        {
            out.push(raw);
        }
    }
    Ok(out)
}

/// Gives the active groups of `keys` up to [`SAMPLES`] of the newest
/// matching events with their values (fetched only for what is about to
/// be notified: reading stored events costs more than counting).
pub fn add_samples(
    scope: &Scope,
    rule: &Rule,
    from: OffsetDateTime,
    to: OffsetDateTime,
    groups: &mut [Found],
    keys: &[String],
) -> Result<(), EvalError> {
    if matches!(rule.condition, Condition::Any { .. }) || keys.is_empty() {
        return Ok(());
    }
    let fields: Vec<String> = match &rule.condition {
        Condition::NewValue { field, .. } => vec![field.clone()],
        _ => rule.spec.group_by.clone(),
    };
    let pool = if fields.is_empty() {
        SAMPLES
    } else {
        SAMPLE_POOL
    };
    let pool = newest(scope, rule, from, to, pool)?;
    for raw in pool {
        let Ok(v) = serde_json::from_str::<Value>(raw.get()) else {
            continue;
        };
        let values: Option<Vec<String>> = fields.iter().map(|f| value_at(&v, f)).collect();
        let Some(values) = values else { continue };
        let key = group_key(&fields, &values);
        if let Some(g) = groups.iter_mut().find(|g| {
            g.active && g.key == key && g.samples.len() < SAMPLES && keys.contains(&g.key)
        }) {
            g.samples.push(raw);
        }
    }
    Ok(())
}
