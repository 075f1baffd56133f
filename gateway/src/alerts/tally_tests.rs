//! The tally's tests: counted by steps, shared, written and read back,
//! it gives what counting each window whole gives.

use super::*;
use crate::alerts::eval::{Found, evaluate};
use crate::alerts::rule::RuleSpec;
use crate::alerts::tallies::Tallies;
use crate::hot::{HotIndex, HotSchema};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tantivy::merge_policy::LogMergePolicy;

/// xorshift: the same events on every run.
struct Random(u64);
impl Random {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn rfc3339(ms: i64) -> String {
    crate::alerts::notify::rfc3339(ms)
}

fn rule(spec: Value) -> Arc<Rule> {
    let spec: RuleSpec = serde_json::from_value(spec).unwrap();
    Arc::new(Rule::check(spec, &HotSchema::new(), &[]).unwrap())
}

fn summary(groups: &[Found]) -> Vec<(String, u64, Option<u64>, bool)> {
    let mut out: Vec<_> = groups
        .iter()
        .map(|g| (g.key.clone(), g.count, g.reference, g.active))
        .collect();
    out.sort();
    out
}

/// Evaluations with tallies give what counting each window whole
/// gives, for each kind counted by steps, by event and receive time,
/// while events arrive out of order, commits and merges reshape the
/// segments, and searchers are reloaded before the position is
/// published (as between the indexer's reload and its store); rules
/// that count the same share a tally, and the tallies written and
/// read back halfway (as at a restart) go on counting.
#[test]
fn tallies_count_what_whole_windows_count() {
    let dir = tempfile::tempdir().unwrap();
    let (hot, _) = HotIndex::open(&dir.path().join("hot")).unwrap();
    let base: i64 = 1_780_000_000_000;
    let day = OffsetDateTime::from_unix_timestamp(base / 1000)
        .unwrap()
        .date();
    let key = |log_type: &str| PartitionKey {
        tenant: "t".into(),
        log_type: log_type.into(),
        day,
        rehydrated: false,
        kafka: None,
    };
    let mut writers: Vec<_> = ["app", "web"]
        .iter()
        .map(|t| {
            let p = hot.partition(&key(t)).unwrap();
            let w = p.index.writer_with_num_threads(1, 15_000_000).unwrap();
            let mut policy = LogMergePolicy::default();
            policy.set_min_num_segments(2);
            policy.set_min_layer_size(10);
            w.set_merge_policy(Box::new(policy));
            (p, w, None)
        })
        .collect();
    let common = json!({"interval": "1s", "window": "10s"});
    let specs = [
        json!({"name": "f", "kind": "frequency", "query": "level:error", "threshold": 5}),
        json!({"name": "g", "kind": "frequency", "threshold": 5, "group_by": ["service", "user.id"]}),
        json!({"name": "s", "kind": "spike", "ratio": 2, "min_count": 3, "group_by": ["host"]}),
        json!({"name": "l", "kind": "flatline", "threshold": 20, "group_by": ["service"], "types": ["web"]}),
        json!({"name": "n", "kind": "new_value", "query": "level:error", "field": "service", "lookback": "1m"}),
        json!({"name": "r", "kind": "frequency", "threshold": 1, "time": "received", "group_by": ["service"]}),
        // Count what `f` and `g` count (`f2` over two windows).
        json!({"name": "f2", "kind": "spike", "query": "level:error", "ratio": 2, "min_count": 2}),
        json!({"name": "g2", "kind": "frequency", "threshold": 50, "group_by": ["service", "user.id"]}),
    ];
    let rules: Vec<Arc<Rule>> = specs
        .iter()
        .map(|s| {
            let mut s = s.clone();
            s.as_object_mut()
                .unwrap()
                .extend(common.as_object().unwrap().clone());
            rule(s)
        })
        .collect();
    let mut tallies = Tallies::load(dir.path());
    let mut random = Random(0x9e37_79b9_7f4a_7c15);
    let (mut now, mut lsn, mut id) = (base, 0u64, 0u64);
    let mut compared = 0;
    for round in 0..60 {
        now += random.below(2_500) as i64;
        // What a searcher held before the last round is published now.
        for (p, _, ahead) in &mut writers {
            if let Some(at) = ahead.take() {
                p.set_visible_lsn(at);
            }
        }
        // A few WAL records, each of one type.
        for _ in 0..1 + random.below(4) {
            lsn += 1 + random.below(1000);
            let (p, w, ahead) = &mut writers[random.below(2) as usize];
            for _ in 0..random.below(120) {
                id += 1;
                // Mostly recent, some late, some ahead of the clock
                // (less than a window ahead of the next evaluation).
                let t = match random.below(10) {
                    0 => now - 30_000 - random.below(60_000) as i64,
                    1 => now + random.below(10_000) as i64,
                    _ => now - random.below(25_000) as i64,
                };
                let level = ["info", "warn", "error"][random.below(3) as usize];
                let line = json!({
                    "id": format!("e{id}"),
                    "timestamp": rfc3339(t),
                    "received_at": rfc3339(now - random.below(3_000) as i64),
                    "type": p.key.log_type,
                    "level": level,
                    "service": format!("svc-{}", random.below(if round < 30 { 4 } else { 6 })),
                    "host": format!("h{}", random.below(3)),
                    "fields": {"user": {"id": random.below(5)}},
                });
                let mut doc = hot.schema.document(line.to_string().as_bytes()).unwrap();
                doc.add_u64(hot.schema.lsn, lsn);
                w.add_document(doc).unwrap();
            }
            match random.below(4) {
                // Committed and published, as the indexer does.
                0 | 1 => {
                    w.commit().unwrap();
                    p.reader.reload().unwrap();
                    p.set_visible_lsn(lsn);
                    *ahead = None;
                }
                // Reloaded, not yet published: the searcher holds
                // more than the tally may count yet.
                2 => {
                    w.commit().unwrap();
                    p.reader.reload().unwrap();
                    *ahead = Some(lsn);
                }
                _ => {}
            }
        }
        let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(now) * 1_000_000).unwrap();
        if round == 30 {
            assert_eq!(tallies.kept(), specs.len() - 2, "f2 and g2 share");
            tallies.save().unwrap();
            tallies = Tallies::load(dir.path());
            assert_eq!(tallies.kept(), specs.len() - 2);
        }
        for rule in &rules {
            let text = rule.spec.query.clone().unwrap_or_default();
            let tally = tallies
                .for_rule("t", rule, &text, &rule.spec.types)
                .unwrap();
            let scope = Scope {
                hot: &hot,
                tenant: "t",
                query: crate::hot::search::parse_query(&hot, &text).unwrap(),
                types: rule.spec.types.clone(),
                max_groups: 1000,
                started: Instant::now(),
                budget: Duration::from_secs(60),
            };
            let known = BTreeMap::new();
            let stepped = evaluate(&scope, rule, at, &known, Some(&mut *tally)).unwrap();
            if writers.iter().any(|(_, _, ahead)| ahead.is_some()) {
                continue;
            }
            let whole = evaluate(&scope, rule, tally.window_end(at), &known, None).unwrap();
            assert_eq!((stepped.from, stepped.to), (whole.from, whole.to));
            assert_eq!(
                summary(&stepped.groups),
                summary(&whole.groups),
                "rule {} in round {round}",
                rule.spec.name
            );
            compared += stepped.groups.len();
        }
    }
    assert!(compared > 500, "{compared} groups compared");
    // A tally goes when its last rule does.
    tallies.prune(|(_, name)| name != "f");
    assert_eq!(tallies.kept(), specs.len() - 2, "f2 still counts with f's");
    tallies.prune(|(_, name)| !["f", "f2", "n"].contains(&name.as_str()));
    assert_eq!(tallies.kept(), specs.len() - 4);
}

#[test]
fn steps_divide_windows() {
    assert_eq!(step_for(300_000), Some(1_000));
    assert_eq!(step_for(3_600_000), Some(10_000));
    assert_eq!(step_for(86_400_000), Some(60_000));
    assert_eq!(step_for(30_000), Some(100));
    assert_eq!(step_for(1_000), Some(10));
    assert_eq!(step_for(1_234), Some(2));
    assert_eq!(step_for(7), Some(7));
    assert_eq!(step_for(1_234_567), None);
    assert_eq!(step_for(0), None);
}

#[test]
fn stored_tallies_keep_the_positions_of_wal_and_topic_partitions_apart() {
    let key = Key {
        tenant: "t".into(),
        query: "error".into(),
        types: vec![],
        time: crate::alerts::rule::TimeBasis::Event,
        fields: vec![],
        text_only: false,
        step_ms: 60_000,
    };
    let mut tally = Tally::new(key, 600_000);
    let day = time::macros::date!(2026 - 12 - 02);
    let part = |kafka: Option<u32>| PartitionKey {
        tenant: "t".into(),
        log_type: "app".into(),
        day,
        rehydrated: false,
        kafka,
    };
    tally.counted.insert(part(None), 4096);
    tally.counted.insert(part(Some(0)), 17);
    tally.counted.insert(part(Some(3)), 5);
    let text = serde_json::to_string(&tally.to_stored()).unwrap();
    let back = Tally::from_stored(serde_json::from_str(&text).unwrap()).unwrap();
    assert_eq!(back.counted, tally.counted);
    // A tally written before cluster mode (no `counted_kafka`) still reads.
    let mut old: Value = serde_json::from_str(&text).unwrap();
    old.as_object_mut().unwrap().remove("counted_kafka");
    let back = Tally::from_stored(serde_json::from_value(old).unwrap()).unwrap();
    assert_eq!(back.counted, HashMap::from([(part(None), 4096)]));
}
