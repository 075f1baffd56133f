//! Building a stored event straight from an object's JSON text.
//!
//! [`super::from_object`] needs the object as a `serde_json::Map` (a tree of
//! owned keys and values, each allocated) and serialises every value again.
//! Most events need neither: their promoted fields are top-level keys, or
//! a few levels down an object (`{"log":{"level":…}}`, as ECS and OTel
//! names nest), and the rest is stored as sent. [`from_json`] reads the
//! object once into its members (keys, and each value's JSON text
//! unparsed), finds the promoted fields among the keys and, for dotted
//! names, inside the objects under their first parts, and writes the
//! stored event copying the other members' text byte for byte (an object
//! a field was taken from is written without it). It gives up (and the
//! caller builds from a map, with the same result) whenever the map path
//! could differ: invalid JSON or not an object (the map path words the
//! error), a repeated key inside an object a field is taken from, two
//! promoted fields from one member, or possibly more leaf values than
//! `limits.max_fields_per_event`. A repeated top-level key is written
//! once, with its last value, as a map keeps it (the compat sources rely
//! on that: they write a protocol's members and then what the mapping
//! puts over them).
//!
//! One difference is intended: `fields` keeps the members in the order
//! they were sent (a map sorts them), and nested values keep their
//! spacing. Both are the same JSON.

use std::borrow::Cow;

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::value::RawValue;

use super::members::{MAX_DEPTH, members, shape, text_value};
use super::times::parse_time_text;
use super::{EventContext, Fields, PromotedField, Taken, format_time, parse_event_time};

/// The members left in `fields`, written as sent (those a promoted field
/// was taken from inside, without it).
struct RawFields<'a, 'm>(
    &'m [(Cow<'a, str>, &'a RawValue)],
    &'m [bool],
    &'m [Option<&'m [String]>],
);

impl Serialize for RawFields<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        for (((k, v), taken), pruned) in self.0.iter().zip(self.1).zip(self.2) {
            match (taken, pruned) {
                (true, _) => {}
                (false, None) => map.serialize_entry(k, v)?,
                (false, Some(path)) => map.serialize_entry(k, &Pruned(v, path))?,
            }
        }
        map.end()
    }
}

impl Fields for RawFields<'_, '_> {
    fn is_empty(&self) -> bool {
        self.1.iter().all(|&t| t)
    }
}

/// Objects with more top-level members take the map path (repeated keys
/// are looked for pairwise here).
const MAX_MEMBERS: usize = 64;
/// Builds the stored event from an object's JSON text, as
/// [`super::from_object`] would from its map; `Err` gives `id` back when
/// this path does not apply (see the module's text).
pub fn from_json<'a, 'n>(
    text: &'a str,
    ctx: &EventContext<'n>,
    id: Option<String>,
) -> Result<Vec<u8>, Option<String>> {
    let Some(mut members) = members(text) else {
        return Err(id);
    };
    if members.len() > MAX_MEMBERS {
        return Err(id);
    }
    let names = ctx.fields;
    // Each member's leaf values (at most).
    let mut leaves = Vec::with_capacity(members.len());
    for (_, v) in &members {
        let v = v.get();
        let s = shape(v);
        // serde_json refuses deeper nesting (128 levels, the stored event
        // adds two) and numbers out of f64's range, which skipping a value
        // lets through: the map path words those errors.
        if s.depth > MAX_DEPTH || s.unchecked {
            return Err(id);
        }
        leaves.push(if v.starts_with('{') || v.starts_with('[') {
            1 + s.commas
        } else {
            1
        });
    }
    // A repeated key: the last one counts, as in a map.
    let mut i = 0;
    while i < members.len() {
        if members[i + 1..].iter().any(|(k, _)| *k == members[i].0) {
            members.remove(i);
            leaves.remove(i);
        } else {
            i += 1;
        }
    }
    let leaves: usize = leaves.iter().sum();
    if leaves > ctx.max_fields {
        return Err(id);
    }
    // For each promoted field, where it is taken from: the candidate of
    // the lowest rank that holds what the field takes. A dotted name is
    // its flat key if the object has one, else its path into the object
    // under its first part; `touched` has a bit per field with a candidate
    // in each member.
    let mut chosen: [Option<Choice<'a, 'n>>; 6] = [None; 6];
    let mut touched = vec![0u8; members.len()];
    let mut consider = |field: PromotedField, at: Choice<'a, 'n>| {
        let fits = match field {
            // The first present name decides, whatever it holds.
            PromotedField::Timestamp | PromotedField::Message => true,
            _ => is_text(at.value),
        };
        touched[at.member] |= 1 << field as u8;
        let slot = &mut chosen[field as usize];
        if fits && slot.is_none_or(|c| at.rank < c.rank) {
            *slot = Some(at);
        }
    };
    for (i, (k, v)) in members.iter().map(|(k, v)| (k, *v)).enumerate() {
        for (field, rank) in names.candidates(k) {
            consider(
                field,
                Choice {
                    rank,
                    member: i,
                    path: None,
                    value: v,
                },
            );
        }
        if !v.get().starts_with('{') {
            continue;
        }
        for (field, rank, flat, rest) in names.dotted_under(k) {
            if members.iter().any(|(m, _)| m == flat) {
                continue;
            }
            match inside(v, rest) {
                Ok(Some(value)) => consider(
                    field,
                    Choice {
                        rank,
                        member: i,
                        path: Some(rest),
                        value,
                    },
                ),
                Ok(None) => {}
                Err(()) => return Err(id),
            }
        }
    }
    // Two fields taken from one member (names configured so, or paths
    // into one object), or a value taken from inside a member another
    // field looks at: the map path takes them one after the other, each
    // seeing what the one before left; leave that to it.
    for (a, slot) in chosen.iter().enumerate() {
        let Some(c) = slot else { continue };
        if chosen[a + 1..]
            .iter()
            .any(|o| o.is_some_and(|o| o.member == c.member))
            || (c.path.is_some() && touched[c.member] & !(1 << a) != 0)
        {
            return Err(id);
        }
    }
    let mut taken = vec![false; members.len()];
    let mut pruned: Vec<Option<&'n [String]>> = vec![None; members.len()];
    let mut take = |c: Choice<'a, 'n>| {
        match c.path {
            None => taken[c.member] = true,
            // A parent left empty goes too.
            Some(path) if emptied(members[c.member].1, path) => taken[c.member] = true,
            Some(path) => pruned[c.member] = Some(path),
        }
        c.value
    };
    let timestamp = match chosen[PromotedField::Timestamp as usize] {
        Some(c) => match event_time(c.value) {
            Some(t) => {
                take(c);
                format_time(t)
            }
            None => ctx.received_text.clone(),
        },
        None => ctx.received_text.clone(),
    };
    let mut text_of = |field: PromotedField| chosen[field as usize].map(|c| text_value(take(c)));
    let level = text_of(PromotedField::Level);
    let service = text_of(PromotedField::Service);
    let host = text_of(PromotedField::Host);
    let request_id = text_of(PromotedField::RequestId);
    // A structured `message` stays in `fields`.
    let message = match chosen[PromotedField::Message as usize] {
        Some(c) if c.value.get().starts_with('"') => text_of(PromotedField::Message),
        _ => None,
    };
    let promoted = Taken {
        timestamp,
        level,
        service,
        host,
        request_id,
        message,
    };
    // The event's text plus what is added around it, in one allocation.
    let capacity = text.len() + 160 + ctx.received_text.len() * 2;
    Ok(promoted.store(ctx, id, RawFields(&members, &taken, &pruned), capacity))
}

/// Where a promoted field is taken from: a member, or a value inside it.
#[derive(Clone, Copy)]
struct Choice<'a, 'n> {
    rank: u8,
    member: usize,
    /// The path inside the member (the rest of a dotted name).
    path: Option<&'n [String]>,
    value: &'a RawValue,
}

/// The value at `path` inside the object `v` (as `Name::get` follows a
/// dotted name through objects); `Err` when a map could differ (a
/// repeated key on the way).
fn inside<'a>(v: &'a RawValue, path: &[String]) -> Result<Option<&'a RawValue>, ()> {
    let Some((first, rest)) = path.split_first() else {
        return Ok(Some(v));
    };
    let Some(members) = members(v.get()) else {
        return Err(());
    };
    let mut found = members.iter().filter(|(k, _)| k == first);
    let Some((_, inner)) = found.next() else {
        return Ok(None);
    };
    if found.next().is_some() {
        return Err(());
    }
    if rest.is_empty() {
        return Ok(Some(inner));
    }
    if !inner.get().starts_with('{') {
        return Ok(None);
    }
    inside(inner, rest)
}

/// Whether the object `v` is left empty once the value at `path` (which
/// [`inside`] found) is taken out, its emptied parents with it.
fn emptied(v: &RawValue, path: &[String]) -> bool {
    let Some(members) = members(v.get()) else {
        return false;
    };
    match (members.as_slice(), path) {
        ([(k, inner)], [first, rest @ ..]) if k == first => rest.is_empty() || emptied(inner, rest),
        _ => false,
    }
}

/// An object with the value at `path` taken out (and its emptied parents).
struct Pruned<'a, 'n>(&'a RawValue, &'n [String]);

impl Serialize for Pruned<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Some(members) = members(self.0.get()) else {
            return self.0.serialize(s);
        };
        let Some((first, rest)) = self.1.split_first() else {
            return self.0.serialize(s);
        };
        let mut map = s.serialize_map(None)?;
        for (k, v) in &members {
            if k != first {
                map.serialize_entry(k, v)?;
            } else if !rest.is_empty() && !emptied(v, rest) {
                map.serialize_entry(k, &Pruned(v, rest))?;
            }
        }
        map.end()
    }
}

/// A string or a number: what text fields take.
fn is_text(v: &RawValue) -> bool {
    matches!(v.get().as_bytes().first(), Some(b'"' | b'-' | b'0'..=b'9'))
}

fn event_time(v: &RawValue) -> Option<time::OffsetDateTime> {
    if v.get().starts_with('"') {
        return parse_time_text(&text_value(v));
    }
    parse_event_time(&serde_json::from_str(v.get()).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{FieldNames, FieldsConfig, from_object};
    use serde_json::Value;
    use time::OffsetDateTime;

    fn ctx(names: &FieldNames) -> EventContext<'_> {
        EventContext::new(
            "t",
            "web_logs",
            OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
            Some("hdr-1"),
            12,
        )
        .with_fields(names)
    }

    /// Both paths, with the same id, as JSON values (member order aside).
    fn both(text: &str, names: &FieldNames) -> (Option<Value>, Value) {
        let c = ctx(names);
        let fast = from_json(text, &c, Some("ID".into()))
            .ok()
            .map(|b| serde_json::from_slice(&b).unwrap());
        let Value::Object(m) = serde_json::from_str(text).unwrap() else {
            panic!()
        };
        let slow = serde_json::from_slice(&from_object(m, &c, Some("ID".into()))).unwrap();
        (fast, slow)
    }

    #[test]
    fn the_same_event_as_from_a_map() {
        let names = FieldNames::builtin();
        for text in [
            r#"{"ts":"2026-11-30T05:00:08.123456Z","host":"web-01","level":"INFO","status":200,"method":"GET","msg":"served","user":{"id":7,"tags":["a","b,c"]}}"#,
            r#"{"timestamp":1600000000123,"severity":"Warn","app":"cart","RequestKey":42,"message":"hi","x":null}"#,
            r#"{"time":"yesterday","message":{"structured":true},"msg":"not this one","level":["x"],"lvl":"debug"}"#,
            r#"{"message":"a \"quoted\" é line\n","service":7.50,"hostname":"h","trace_id":"abc"}"#,
            r#"{"esc\"aped key":1, "spaced" : { "a" : 1 } }"#,
            r#"{"log.level":"ERROR","hosts":{"name":"not a promoted parent"},"request_id":"r"}"#,
            r#"{}"#,
            // Parents of dotted names whose paths are not there.
            r#"{"http":{"method":"GET","request":{"bytes":5}},"log":{"logger":"db"},"level":"info"}"#,
            // Promoted from inside objects (ECS), emptied parents removed.
            r#"{"@timestamp":"2026-11-30T10:00:00.000Z","log":{"level":"info"},"service":{"name":"cart"},"host":{"name":"cart-3"},"trace":{"id":"0af1"},"message":"done","http":{"method":"GET","status":200}}"#,
            r#"{"log":{"level":"WARN","logger":"db"},"host":{"name":"h","ip":["10.0.0.1"]}}"#,
            r#"{"http":{"request":{"id":"r1","bytes":5},"method":"GET"}}"#,
            r#"{"http":{"request":{"id":"r1"}},"a":1}"#,
            // The flat key of a dotted name wins over its path.
            r#"{"log":{"level":"inner"},"log.level":"flat"}"#,
            // A path to a value no text field takes is skipped.
            r#"{"service":{"name":{"x":1}},"host":{"name":null},"app":"a"}"#,
            // A repeated key: the last counts.
            r#"{"level":"a","x":1,"level":"b","host":{"name":"h"},"host":"flat"}"#,
            // A lower rank wins over a path.
            r#"{"host":{"name":"h"},"hostname":"x"}"#,
        ] {
            let (fast, slow) = both(text, names);
            assert_eq!(fast.as_ref(), Some(&slow), "{text}");
        }
    }

    #[test]
    fn configured_names_rank_before_the_builtin_ones() {
        let names = FieldNames::new(&FieldsConfig {
            level: Some(vec!["Level".into()]),
            message: Some(vec!["text".into()]),
            ..FieldsConfig::default()
        });
        let (fast, slow) = both(
            r#"{"level":"info","Level":"ERROR","text":"t","message":"m"}"#,
            &names,
        );
        let fast = fast.unwrap();
        assert_eq!(fast, slow);
        assert_eq!(fast["level"], "error");
        assert_eq!(fast["message"], "t");
        assert_eq!(fast["fields"]["level"], "info");
    }

    #[test]
    fn gives_way_to_the_map_where_it_could_differ() {
        let names = FieldNames::builtin();
        let c = ctx(names);
        for text in [
            r#"{"log":{"level":"a","level":"b"}}"#, // a map keeps the last
            r#"{"a":"\u00e9"}"#,                    // a full parse checks `\u` escapes
            r#"{"a":[1.5e3]}"#,                     // and numbers that may not fit
            r#"[1]"#,                               // not an object
            r#"{"a":"#,                             // not JSON
            r#"{"a":[1,2,3,4,5,6,7,8,9,10,11,12,13]}"#, // maybe too many fields
        ] {
            assert_eq!(
                from_json(text, &c, Some("k".into())),
                Err(Some("k".into())),
                "{text}"
            );
        }
    }

    #[test]
    fn two_fields_from_inside_one_object_are_left_to_the_map() {
        let names = FieldNames::new(&FieldsConfig {
            level: Some(vec!["meta.level".into()]),
            service: Some(vec!["meta.service".into()]),
            ..FieldsConfig::default()
        });
        let text = r#"{"meta":{"level":"x","service":"y"}}"#;
        assert_eq!(from_json(text, &ctx(&names), None), Err(None));
        let (_, slow) = both(text, &names);
        assert_eq!(
            (&slow["level"], &slow["service"]),
            (&"x".into(), &"y".into())
        );
    }

    /// Random objects over the names promoted fields look for, nested and
    /// flat, with builtin and configured names: wherever this path builds
    /// an event, it is the map path's.
    #[test]
    fn random_objects_build_as_from_a_map() {
        let keys = [
            "log",
            "level",
            "log.level",
            "service",
            "name",
            "service.name",
            "host",
            "host.name",
            "trace",
            "id",
            "request",
            "http",
            "message",
            "msg",
            "ts",
            "meta",
            "app",
            "x",
        ];
        let values = [
            r#""s""#,
            "7",
            "null",
            "[1]",
            r#""2026-11-30T10:00:00Z""#,
            "true",
            "{}",
        ];
        let configured = FieldNames::new(&FieldsConfig {
            level: Some(vec!["meta.level".into(), "x.name".into()]),
            request_id: Some(vec!["http.request.id".into(), "meta".into()]),
            message: Some(vec!["log.message".into()]),
            ..FieldsConfig::default()
        });
        let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        fn object(
            next: &mut dyn FnMut(usize) -> usize,
            keys: &[&str],
            values: &[&str],
            depth: usize,
        ) -> String {
            let members: Vec<String> = (0..next(4) + usize::from(depth == 0))
                .map(|_| {
                    let k = keys[next(keys.len())];
                    let v = if depth < 3 && next(3) == 0 {
                        object(next, keys, values, depth + 1)
                    } else {
                        values[next(values.len())].to_string()
                    };
                    format!("\"{k}\":{v}")
                })
                .collect();
            format!("{{{}}}", members.join(","))
        }
        let (mut fast_built, mut cases) = (0, 0);
        for names in [FieldNames::builtin(), &configured] {
            for _ in 0..4000 {
                let text = object(&mut next, &keys, &values, 0);
                let (fast, slow) = both(&text, names);
                cases += 1;
                if let Some(fast) = fast {
                    fast_built += 1;
                    assert_eq!(fast, slow, "{text}");
                }
            }
        }
        // Most of them take this path (a repeated key is the usual reason not).
        assert!(fast_built * 2 > cases, "{fast_built} of {cases}");
    }

    /// What the map path refuses, this path refuses too (it must never
    /// store what the indexer then cannot read).
    #[test]
    fn what_serde_json_refuses_is_never_built() {
        let names = FieldNames::builtin();
        for text in [
            r#"{"a":1e400}"#,
            r#"{"a":-1e400}"#,
            r#"{"a":"\ud800"}"#,
            r#"{"a":["\udc00x"]}"#,
            r#"{"a":"\u12"}"#,
            r#"{"a":"\q"}"#,
            "{\"a\":\"tab\there\"}",
            r#"{"a":01}"#,
            r#"{"a":[1,]}"#,
            r#"{"a":{"b":1,}}"#,
            r#"{"a":tru}"#,
        ] {
            let map_ok = serde_json::from_str::<Value>(text).is_ok();
            let built = from_json(text, &ctx(names), None);
            if let Ok(b) = &built {
                assert!(serde_json::from_slice::<Value>(b).is_ok(), "{text}");
            }
            assert_eq!(built.is_ok(), map_ok, "{text}");
        }
    }

    #[test]
    fn deep_nesting_is_left_to_the_map_path_which_refuses_it() {
        let names = FieldNames::builtin();
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(150), "]".repeat(150));
        assert_eq!(from_json(&deep, &ctx(names), None), Err(None));
        assert!(serde_json::from_str::<Value>(&deep).is_err());
    }
}
