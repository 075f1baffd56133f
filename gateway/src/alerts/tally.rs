//! A rule's counts kept between evaluations, so that an evaluation counts
//! only what was indexed since the one before instead of its whole window.
//!
//! The indexer writes each event with `_lsn`, its WAL record's end, and
//! each partition says up to which position its searchers hold every
//! event ([`Partition::visible_lsn`]). An update counts, per partition,
//! the matching events with `_lsn` in `(counted, visible]` by steps of
//! the rule's time (and by group), and adds them to the steps kept. A
//! window's count is then the sum of its steps, so windows end at a whole
//! step: the largest of 10 ms … 1 min that divides the window into at
//! least 300 steps (a 5-minute window ends at a whole second, an hour at
//! 10 s, a day at a whole minute). Steps before the oldest window the
//! rule still needs are dropped.
//!
//! Events timed more than the kept span ahead of the clock when indexed
//! are not counted when their time comes; partitions without positions
//! (replayed ones, ones from before `_lsn`) are counted whole at each
//! evaluation, as without a tally.
//!
//! A tally is keyed by what it counts ([`Key`]), so rules counting the
//! same share one; [`super::tallies`] keeps them and writes them to disk
//! ([`Stored`]) so that a restart resumes them.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::json;
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::Column;
use tantivy::query::{EnableScoring, Query};
use tantivy::{DateTime, DocId, Score, SegmentReader};
use time::OffsetDateTime;

use super::eval::{EvalError, Scope, check_budget, partitions, time_field, walk_groups, windowed};
use super::rule::{Condition, Rule, TimeBasis};
use crate::hot::Lsn;
use crate::hot::PartitionKey;
use crate::hot::fields::Aggregation;
use crate::hot::search::{from_unix_ms, unix_ms};
use crate::hot::since;

/// Steps a window is divided into at least (when a step divides it so).
const MIN_STEPS: i64 = 300;
/// Step lengths (ms), largest first.
const STEPS_MS: [i64; 13] = [
    60_000, 30_000, 15_000, 10_000, 5_000, 2_000, 1_000, 500, 200, 100, 50, 20, 10,
];
/// Most steps a tally keeps: a window no step divides into fewer is
/// counted whole at each evaluation.
const MAX_STEPS: i64 = 20_000;

/// What a tally counts. Rules whose keys are equal share one tally (a
/// `frequency` and a `spike` rule on `level:error` over 5 minutes count
/// the same steps); when a rule's key changes, it moves to another.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Key {
    pub tenant: String,
    /// The query as run (a saved search may change).
    pub query: String,
    pub types: Vec<String>,
    pub time: TimeBasis,
    /// The group fields (`[field]` for new_value); empty: one group.
    pub fields: Vec<String>,
    /// Only text values form groups (new_value).
    pub text_only: bool,
    pub step_ms: i64,
}

impl Key {
    /// The key of `rule` run with `query` over `types`, and how far back
    /// from a window's end it needs steps kept; `None` if the rule is
    /// counted whole at each evaluation (`any`; a window no step divides).
    pub fn of(tenant: &str, rule: &Rule, query: &str, types: &[String]) -> Option<(Key, i64)> {
        let window_ms = i64::try_from(rule.window.as_millis()).ok()?;
        let (fields, text_only, span) = match &rule.condition {
            Condition::Any { .. } => return None,
            Condition::Frequency { .. } => (rule.spec.group_by.clone(), false, 1),
            Condition::Flatline { .. } | Condition::Spike { .. } => {
                (rule.spec.group_by.clone(), false, 2)
            }
            Condition::NewValue { field, .. } => (vec![field.clone()], true, 1),
        };
        let key = Key {
            tenant: tenant.to_string(),
            query: query.to_string(),
            types: types.to_vec(),
            time: rule.time,
            fields,
            text_only,
            step_ms: step_for(window_ms)?,
        };
        Some((key, window_ms * span))
    }
}

pub struct Tally {
    pub key: Key,
    /// How far before a window's end steps are kept: the longest any of
    /// its rules needs.
    span_ms: i64,
    /// Per partition counted: every event up to this position is in `steps`.
    counted: HashMap<PartitionKey, Lsn>,
    /// Group values by id.
    groups: Vec<Vec<String>>,
    group_ids: HashMap<Vec<String>, u32>,
    /// Step start (ms) → (group id, events), by group id.
    steps: BTreeMap<i64, Vec<(u32, u64)>>,
}

/// A tally as written to disk: what it counts, up to where, and the counts.
#[derive(Serialize, Deserialize)]
pub struct Stored {
    key: Key,
    span_ms: i64,
    /// (tenant, log type, day, rehydrated, counted up to) of the WAL's
    /// partitions.
    counted: Vec<(String, String, String, bool, Lsn)>,
    /// The same, first the topic partition, of cluster mode's partitions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    counted_kafka: Vec<(u32, String, String, String, bool, Lsn)>,
    groups: Vec<Vec<String>>,
    steps: Vec<(i64, Vec<(u32, u64)>)>,
}

/// The step of a window (ms), if it can be counted by steps.
pub fn step_for(window_ms: i64) -> Option<i64> {
    if window_ms <= 0 {
        return None;
    }
    let dividing = || STEPS_MS.iter().copied().filter(|s| window_ms % s == 0);
    let step = dividing()
        .find(|s| window_ms / s >= MIN_STEPS)
        .or_else(|| dividing().next_back())
        .or_else(|| (1..10).rev().find(|s| window_ms % s == 0))?;
    (window_ms / step <= MAX_STEPS).then_some(step)
}

impl Tally {
    pub fn new(key: Key, span_ms: i64) -> Tally {
        Tally {
            key,
            span_ms,
            counted: HashMap::new(),
            groups: Vec::new(),
            group_ids: HashMap::new(),
            steps: BTreeMap::new(),
        }
    }

    /// Makes the tally keep steps `span_ms` back (a rule that needs more
    /// than it kept joined it): the counts start over.
    pub fn cover(&mut self, span_ms: i64) {
        if span_ms > self.span_ms {
            self.span_ms = span_ms;
            self.reset();
        }
    }

    pub fn to_stored(&self) -> Stored {
        let entry = |k: &PartitionKey, lsn: Lsn| {
            let day = crate::hot::day_name(k.day);
            (k.tenant.clone(), k.log_type.clone(), day, k.rehydrated, lsn)
        };
        Stored {
            key: self.key.clone(),
            span_ms: self.span_ms,
            counted: self
                .counted
                .iter()
                .filter(|(k, _)| k.kafka.is_none())
                .map(|(k, lsn)| entry(k, *lsn))
                .collect(),
            counted_kafka: self
                .counted
                .iter()
                .filter_map(|(k, lsn)| {
                    let (t, l, d, r, n) = entry(k, *lsn);
                    k.kafka.map(|p| (p, t, l, d, r, n))
                })
                .collect(),
            groups: self.groups.clone(),
            steps: self.steps.iter().map(|(t, c)| (*t, c.clone())).collect(),
        }
    }

    /// The tally written by [`Tally::to_stored`], or `None` if it does not
    /// hold together (a group id out of range, a day that is not one).
    pub fn from_stored(stored: Stored) -> Option<Tally> {
        let n = stored.groups.len();
        if stored
            .steps
            .iter()
            .flat_map(|(_, c)| c)
            .any(|(g, _)| *g as usize >= n)
        {
            return None;
        }
        let mut counted = HashMap::new();
        let wal = stored
            .counted
            .into_iter()
            .map(|(t, l, d, r, n)| (None, t, l, d, r, n));
        let kafka = stored
            .counted_kafka
            .into_iter()
            .map(|(p, t, l, d, r, n)| (Some(p), t, l, d, r, n));
        for (kafka, tenant, log_type, day, rehydrated, lsn) in wal.chain(kafka) {
            let day = crate::hot::parse_day(&day)?;
            let key = PartitionKey {
                tenant,
                log_type,
                day,
                rehydrated,
                kafka,
            };
            counted.insert(key, lsn);
        }
        let group_ids = stored
            .groups
            .iter()
            .enumerate()
            .map(|(i, g)| (g.clone(), i as u32))
            .collect();
        Some(Tally {
            key: stored.key,
            span_ms: stored.span_ms,
            counted,
            groups: stored.groups,
            group_ids,
            steps: stored.steps.into_iter().collect(),
        })
    }

    /// The end of the window evaluated at `now`: its last whole step.
    pub fn window_end(&self, now: OffsetDateTime) -> OffsetDateTime {
        let step = self.key.step_ms;
        from_unix_ms(unix_ms(now).div_euclid(step) * step).unwrap_or(now)
    }

    fn reset(&mut self) {
        self.counted.clear();
        self.groups.clear();
        self.group_ids.clear();
        self.steps.clear();
    }

    /// Counts what the partitions made visible since the last update.
    /// A partition counted before that is gone (hot retention), or holds
    /// less than was counted of it (replaced while the gateway was down),
    /// starts the counts over. Each partition's counts are added whole or not at all,
    /// so an update stopped by the budget resumes where it stopped.
    pub fn update(
        &mut self,
        scope: &Scope,
        rule: &Rule,
        now: OffsetDateTime,
    ) -> Result<(), EvalError> {
        let changed = |(k, counted): (&PartitionKey, &Lsn)| {
            scope
                .hot
                .existing(k)
                .is_none_or(|p| p.visible_lsn() < *counted)
        };
        if self.counted.iter().any(changed) {
            self.reset();
        }
        let end = unix_ms(self.window_end(now));
        let keep_from = end - self.span_ms;
        // Steps from here on are kept; later ones are counted as they come.
        let until = unix_ms(now) + self.span_ms;
        let at = |ms: i64| from_unix_ms(ms).unwrap_or(now);
        let (_, time_name) = time_field(scope, rule);
        // Within the steps kept: a segment of older (or later) times is
        // skipped whole.
        let query = windowed(scope, rule, at(keep_from), at(until));
        let aggregation = if self.key.fields.is_empty() {
            None
        } else {
            Some(self.grouped(scope, time_name, keep_from, until)?)
        };
        for p in partitions(scope, rule, at(keep_from)) {
            if !p.counts_lsn() {
                continue;
            }
            let visible = p.visible_lsn();
            let counted = self.counted.get(&p.key).copied().unwrap_or(0);
            if visible <= counted {
                continue;
            }
            check_budget(scope)?;
            let searcher = p.reader.searcher();
            let weight = query.weight(EnableScoring::disabled_from_searcher(&searcher))?;
            let found: Vec<(i64, Vec<String>, u64)> = if let Some(aggregation) = &aggregation {
                let collected = since::collect(
                    &searcher,
                    &p.lsn_columns,
                    &*weight,
                    &aggregation.collector(),
                    counted,
                    visible,
                )?;
                let mut out = Vec::new();
                let result = aggregation.finish(Some(collected))?;
                walk_groups(
                    &result,
                    0,
                    self.key.text_only,
                    &mut Vec::new(),
                    &mut |b, values| {
                        for s in b["t"]["buckets"].as_array().into_iter().flatten() {
                            if let (Some(t), Some(n)) = (s["key"].as_f64(), s["doc_count"].as_u64())
                                && n > 0
                            {
                                out.push((t as i64, values.to_vec(), n));
                            }
                        }
                    },
                );
                out
            } else {
                let collector = StepCounts {
                    field: time_name,
                    from_ms: keep_from,
                    step_ms: self.key.step_ms,
                    steps: ((until - keep_from) / self.key.step_ms) as usize,
                };
                since::collect(
                    &searcher,
                    &p.lsn_columns,
                    &*weight,
                    &collector,
                    counted,
                    visible,
                )?
                .into_iter()
                .enumerate()
                .filter(|(_, n)| *n > 0)
                .map(|(i, n)| (keep_from + i as i64 * self.key.step_ms, Vec::new(), n))
                .collect()
            };
            for (step, values, n) in found {
                self.add(step, values, n);
            }
            self.counted.insert(p.key.clone(), visible);
        }
        let first_kept = keep_from.div_euclid(self.key.step_ms) * self.key.step_ms;
        self.steps = self.steps.split_off(&first_kept);
        if self.groups.len() > 1024 && self.groups.len() > 2 * self.live_groups() {
            self.compact();
        }
        Ok(())
    }

    /// Per step and group: the terms aggregation (the `max_groups`
    /// largest groups of what is counted) with a date histogram of the
    /// steps in `[from, until)` under it.
    fn grouped(
        &self,
        scope: &Scope,
        time_name: &str,
        from: i64,
        until: i64,
    ) -> Result<Aggregation, EvalError> {
        let mut agg = json!({"date_histogram": {
            "field": time_name,
            "fixed_interval": format!("{}ms", self.key.step_ms),
            "min_doc_count": 1,
            "hard_bounds": {"min": from as f64, "max": (until - 1) as f64},
        }});
        let mut name = "t".to_string();
        for (i, f) in self.key.fields.iter().enumerate().rev() {
            let column = crate::hot::fields::column_of(f)?;
            agg = json!({
                "terms": {"field": column, "size": scope.max_groups},
                "aggs": { name: agg },
            });
            name = format!("g{i}");
        }
        Ok(Aggregation::new(json!({ name: agg }), u32::MAX)?)
    }

    fn add(&mut self, step: i64, values: Vec<String>, n: u64) {
        let id = match self.group_ids.get(&values) {
            Some(&id) => id,
            None => {
                let id = self.groups.len() as u32;
                self.groups.push(values.clone());
                self.group_ids.insert(values, id);
                id
            }
        };
        let counts = self.steps.entry(step).or_default();
        match counts.binary_search_by_key(&id, |(g, _)| *g) {
            Ok(i) => counts[i].1 += n,
            Err(i) => counts.insert(i, (id, n)),
        }
    }

    fn live_groups(&self) -> usize {
        let mut live: Vec<u32> = self
            .steps
            .values()
            .flat_map(|c| c.iter().map(|(g, _)| *g))
            .collect();
        live.sort_unstable();
        live.dedup();
        live.len()
    }

    /// Forgets groups no kept step holds.
    fn compact(&mut self) {
        let steps = std::mem::take(&mut self.steps);
        let groups = std::mem::take(&mut self.groups);
        self.group_ids.clear();
        for (step, counts) in steps {
            for (g, n) in counts {
                self.add(step, groups[g as usize].clone(), n);
            }
        }
    }

    /// Counted events in `[from, to)` (whole steps) per group.
    pub fn counts(&self, from: OffsetDateTime, to: OffsetDateTime) -> BTreeMap<Vec<String>, u64> {
        let mut sums: HashMap<u32, u64> = HashMap::new();
        for counts in self.steps.range(unix_ms(from)..unix_ms(to)).map(|(_, c)| c) {
            for (g, n) in counts {
                *sums.entry(*g).or_default() += n;
            }
        }
        sums.into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(g, n)| (self.groups[g as usize].clone(), n))
            .collect()
    }
}

/// Matching events per step of a date column from `from_ms`.
struct StepCounts {
    field: &'static str,
    from_ms: i64,
    step_ms: i64,
    steps: usize,
}

impl Collector for StepCounts {
    type Fruit = Vec<u64>;
    type Child = StepSegment;

    fn for_segment(&self, _: u32, segment: &SegmentReader) -> tantivy::Result<StepSegment> {
        Ok(StepSegment {
            column: segment.fast_fields().date(self.field)?,
            from_ms: self.from_ms,
            step_ms: self.step_ms,
            counts: vec![0; self.steps],
            times: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Vec<u64>>) -> tantivy::Result<Vec<u64>> {
        let mut total = vec![0; self.steps];
        for fruit in fruits {
            for (t, n) in total.iter_mut().zip(fruit) {
                *t += n;
            }
        }
        Ok(total)
    }
}

struct StepSegment {
    column: Column<DateTime>,
    from_ms: i64,
    step_ms: i64,
    counts: Vec<u64>,
    times: Vec<Option<DateTime>>,
}

impl StepSegment {
    fn count(&mut self, t: Option<DateTime>) {
        if let Some(t) = t {
            let i = (t.into_timestamp_millis() - self.from_ms).div_euclid(self.step_ms);
            if let Some(n) = usize::try_from(i).ok().and_then(|i| self.counts.get_mut(i)) {
                *n += 1;
            }
        }
    }
}

impl SegmentCollector for StepSegment {
    type Fruit = Vec<u64>;

    fn collect(&mut self, doc: DocId, _: Score) {
        let t = self.column.first(doc);
        self.count(t);
    }

    fn collect_block(&mut self, docs: &[DocId]) {
        let mut times = std::mem::take(&mut self.times);
        times.clear();
        times.resize(docs.len(), None);
        self.column.first_vals(docs, &mut times);
        for t in &times {
            self.count(*t);
        }
        self.times = times;
    }

    fn harvest(self) -> Vec<u64> {
        self.counts
    }
}

#[cfg(test)]
#[path = "tally_tests.rs"]
mod tests;
