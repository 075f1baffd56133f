use super::*;

fn filter(pairs: &[(&str, &str)]) -> Result<Sample, String> {
    let pairs = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Sample::new(&Config::new(pairs))
}

fn kept(verdict: &Verdict) -> bool {
    match verdict {
        Verdict::Keep => true,
        Verdict::Drop => false,
        other => panic!("expected keep or drop, got {other:?}"),
    }
}

fn ctx() -> BatchContext {
    BatchContext::for_test("app_logs")
}

fn with_id(id: &str) -> Event {
    Event::json_text(&format!(r#"{{"request_id":"{id}","message":"step"}}"#))
}

fn with_level(mut event: Event, level: &str) -> Event {
    event.promoted.level = Some(level.to_string());
    event
}

// --- the hash ---

#[test]
fn fnv1a_matches_the_reference_vectors() {
    let fnv = |s: &[u8]| {
        let mut h = StableHasher::default();
        h.update(s);
        h.fnv1a()
    };
    assert_eq!(fnv(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv(b"a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(fnv(b"foobar"), 0x8594_4171_f739_67e8);
}

#[test]
fn fmix64_matches_murmur3() {
    assert_eq!(fmix64(0), 0);
    // fmix64(1), computed independently (Python).
    assert_eq!(fmix64(1), 0xb456_bcfc_34c2_cb2c);
}

#[test]
fn hash_is_pinned() {
    // Changing the hash would change which requests are kept across a
    // deploy: these values must never move.
    assert_eq!(stable_hash(b"req-1"), PINNED_REQ_1);
    assert_eq!(stable_hash(b""), fmix64(0xcbf2_9ce4_8422_2325));
    let mut pieces = StableHasher::default();
    pieces.update(b"req");
    pieces.update(b"-1");
    assert_eq!(pieces.finish(), PINNED_REQ_1);
}

/// Computed independently (Python) from the FNV-1a and fmix64 definitions.
const PINNED_REQ_1: u64 = 0x41bf_9201_cad1_d3b5;

#[test]
fn keeps_the_lowest_share_of_the_range() {
    assert!(keeps(0, 10));
    assert!(keeps(u64::MAX / 10, 10));
    assert!(!keeps(u64::MAX / 10 + 2, 10));
    assert!(!keeps(u64::MAX, 10));
    assert!(keeps(u64::MAX, 1));
    assert!(keeps(0, u64::MAX));
    assert!(!keeps(1 << 1, u64::MAX));
}

// --- config ---

#[test]
fn config_defaults() {
    let f = filter(&[]).unwrap();
    assert_eq!(f.rate, 10);
    assert_eq!(f.field, "request_id");
    assert!(f.levels.is_empty() && f.types.is_empty());
    let f = filter(&[
        ("rate", " 100 "),
        ("levels", "DEBUG, trace"),
        ("types", "a,b"),
    ])
    .unwrap();
    assert_eq!(f.rate, 100);
    assert_eq!(f.levels, ["debug", "trace"]);
    assert_eq!(f.types, ["a", "b"]);
}

#[test]
fn invalid_rate_is_an_init_error_naming_the_key() {
    for bad in ["0", "-1", "ten", "1.5", "", "99999999999999999999999"] {
        let err = filter(&[("rate", bad)])
            .err()
            .unwrap_or_else(|| panic!("{bad} accepted"));
        assert!(err.contains("`rate`"), "{bad}: {err}");
    }
    let err = filter(&[("field", "a..b")]).err().unwrap();
    assert!(err.contains("`field`"), "{err}");
}

// --- sampling ---

#[test]
fn rate_one_keeps_everything() {
    let mut f = filter(&[("rate", "1")]).unwrap();
    let events: Vec<Event> = (0..1000).map(|i| with_id(&format!("r{i}"))).collect();
    assert!(f.process_batch(&ctx(), &events).iter().all(kept));
}

#[test]
fn rate_ten_keeps_about_a_tenth_of_requests() {
    let mut f = filter(&[("rate", "10")]).unwrap();
    let events: Vec<Event> = (0..10_000).map(|i| with_id(&format!("req-{i}"))).collect();
    let n = f
        .process_batch(&ctx(), &events)
        .iter()
        .filter(|v| kept(v))
        .count();
    assert!((850..=1150).contains(&n), "kept {n} of 10000");
    // UUID-like ids too.
    let events: Vec<Event> = (0..10_000u64)
        .map(|i| with_id(&format!("{:08x}-4b1c-9d2e-{:012x}", i * 7919, i)))
        .collect();
    let n = f
        .process_batch(&ctx(), &events)
        .iter()
        .filter(|v| kept(v))
        .count();
    assert!((850..=1150).contains(&n), "kept {n} of 10000");
}

#[test]
fn other_rates_hold_too() {
    for rate in [2u64, 3, 100] {
        let mut f = filter(&[("rate", &rate.to_string())]).unwrap();
        let events: Vec<Event> = (0..20_000).map(|i| with_id(&format!("id{i}"))).collect();
        let n = f
            .process_batch(&ctx(), &events)
            .iter()
            .filter(|v| kept(v))
            .count() as f64;
        let want = 20_000.0 / rate as f64;
        assert!(
            (n - want).abs() < want * 0.15 + 30.0,
            "rate {rate}: kept {n}"
        );
    }
}

#[test]
fn events_of_one_request_share_the_verdict() {
    let mut f = filter(&[]).unwrap();
    let mut kept_requests = 0;
    for i in 0..200 {
        let id = format!("req-{i}");
        let events: Vec<Event> = (0..20)
            .map(|step| {
                let e = Event::json_text(&format!(
                    r#"{{"message":"step {step}","request_id":"{id}","ms":{step}}}"#
                ));
                with_level(e, "debug")
            })
            .collect();
        let verdicts = f.process_batch(&ctx(), &events);
        let first = kept(&verdicts[0]);
        assert!(verdicts.iter().all(|v| kept(v) == first), "{id} split");
        kept_requests += usize::from(first);
    }
    assert!(kept_requests > 0 && kept_requests < 200);
}

#[test]
fn verdicts_are_stable_across_instances() {
    let mut a = filter(&[("rate", "7")]).unwrap();
    let mut b = filter(&[("rate", "7")]).unwrap();
    let events: Vec<Event> = (0..500).map(|i| with_id(&format!("x{i}"))).collect();
    let va: Vec<bool> = a.process_batch(&ctx(), &events).iter().map(kept).collect();
    let vb: Vec<bool> = b
        .process_batch(&ctx(), &events[..])
        .iter()
        .map(kept)
        .collect();
    assert_eq!(va, vb);
    // And one event at a time, in any order.
    for (i, event) in events.iter().enumerate().rev() {
        assert_eq!(kept(&b.process(&ctx(), event)), va[i]);
    }
}

#[test]
fn nested_and_numeric_fields() {
    let f = filter(&[("field", "trace.id")]).unwrap();
    let nested = Event::json_text(r#"{"trace":{"id":"abc"},"message":"one"}"#);
    let nested2 = Event::json_text(r#"{"message":"two","trace":{"id":"abc"}}"#);
    assert_eq!(f.event_hash(&nested), stable_hash(b"abc"));
    assert_eq!(f.event_hash(&nested2), stable_hash(b"abc"));

    let f = filter(&[("field", "id")]).unwrap();
    let number = Event::json_text(r#"{"id":42}"#);
    let string = Event::json_text(r#"{"id":"42"}"#);
    assert_eq!(f.event_hash(&number), f.event_hash(&string));
    let boolean = Event::json_text(r#"{"id":true}"#);
    assert_eq!(f.event_hash(&boolean), stable_hash(b"true"));
}

#[test]
fn raw_bytes_when_no_field() {
    let f = filter(&[]).unwrap();
    for raw in [
        r#"{"message":"no id"}"#,
        r#"{"request_id":""}"#,
        r#"{"request_id":null}"#,
        r#"{"request_id":{"a":1}}"#,
        r#"{"request_id":[1]}"#,
        "not json at all",
        "",
    ] {
        assert_eq!(
            f.event_hash(&Event::json_text(raw)),
            stable_hash(raw.as_bytes()),
            "{raw}"
        );
    }
    // Text events hash the line, even one that looks like JSON.
    let line = r#"{"request_id":"abc"}"#;
    assert_eq!(
        f.event_hash(&Event::text(line)),
        stable_hash(line.as_bytes())
    );
    // Distinct lines sample independently: about 1 in 10 kept.
    let mut f = f;
    let events: Vec<Event> = (0..10_000)
        .map(|i| Event::text(&format!("debug line {i}")))
        .collect();
    let n = f
        .process_batch(&ctx(), &events)
        .iter()
        .filter(|v| kept(v))
        .count();
    assert!((850..=1150).contains(&n), "kept {n}");
}

#[test]
fn levels_scope_the_sampling() {
    let mut f = filter(&[("rate", "1000000"), ("levels", "Debug,trace")]).unwrap();
    let id = "some-request";
    // At this rate nearly everything sampled is dropped.
    assert!(!kept(&f.process(&ctx(), &with_level(with_id(id), "debug"))));
    assert!(!kept(&f.process(&ctx(), &with_level(with_id(id), "DEBUG"))));
    assert!(!kept(&f.process(&ctx(), &with_level(with_id(id), "trace"))));
    // Other levels, and events without a level, are always kept.
    assert!(kept(&f.process(&ctx(), &with_level(with_id(id), "error"))));
    assert!(kept(&f.process(&ctx(), &with_id(id))));
}

#[test]
fn types_scope_the_sampling() {
    let mut f = filter(&[("rate", "1000000"), ("types", "debug_logs, noisy")]).unwrap();
    let events: Vec<Event> = (0..100).map(|i| with_id(&format!("r{i}"))).collect();
    let noisy = BatchContext::for_test("noisy");
    let other = BatchContext::for_test("app_logs");
    assert!(
        f.process_batch(&noisy, &events)
            .iter()
            .filter(|v| kept(v))
            .count()
            < 3
    );
    assert!(f.process_batch(&other, &events).iter().all(kept));
    assert!(kept(&f.process(&other, &events[0])));
    assert!(!kept(&f.process(&noisy, &with_id("fixed"))));
}

#[test]
fn garbage_never_panics() {
    let mut f = filter(&[("rate", "3"), ("field", "a.b.c")]).unwrap();
    let mut bytes = Event::text("");
    bytes.raw = vec![0xff, 0xfe, 0x00];
    let mut json_bytes = bytes.clone();
    json_bytes.format = EventFormat::Json;
    let deep = format!("{}1{}", "{\"a\":".repeat(300), "}".repeat(300));
    let events = [
        bytes,
        json_bytes,
        Event::json_text("{"),
        Event::json_text(r#"{"a":{"b":"not an object"}}"#),
        Event::json_text(r#"{"a":{"b":{"c":1e400}}}"#),
        Event::json_text(r#"{"a":{"b":{"c":-0.0}}}"#),
        Event::json_text(&deep),
        with_level(Event::text("x"), "\u{0}😀"),
    ];
    assert_eq!(f.process_batch(&ctx(), &events).len(), events.len());
    let mut max = filter(&[("rate", &u64::MAX.to_string())]).unwrap();
    let _ = max.process_batch(&ctx(), &events);
}
