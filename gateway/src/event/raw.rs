//! Building a stored event straight from an object's JSON text.
//!
//! [`super::from_object`] needs the object as a `serde_json::Map` (a tree of
//! owned keys and values, each allocated) and serialises every value again.
//! Most events need neither: their promoted fields are top-level keys and
//! the rest is stored as sent. [`from_json`] reads the object once into
//! its members (keys, and each value's JSON text unparsed), finds the
//! promoted fields among the keys, and writes the stored event copying the
//! other members' text byte for byte. It gives up (and the caller builds
//! from a map, with the same result) whenever the map path could differ:
//! invalid JSON or not an object (the map path words the error), a
//! repeated key (a map keeps the last), an object under the first part of
//! a dotted name (`{"log":{"level":…}}` promotes from inside it), or
//! possibly more leaf values than `limits.max_fields_per_event`.
//!
//! One difference is intended: `fields` keeps the members in the order
//! they were sent (a map sorts them), and nested values keep their
//! spacing. Both are the same JSON.

use std::borrow::Cow;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::value::RawValue;

use super::times::parse_time_text;
use super::{EventContext, Fields, PromotedField, Taken, format_time, parse_event_time};

/// An object's members: keys (unescaped) and their values' JSON text.
struct Members<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> serde::Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<'de>, A::Error> {
                let mut members = Vec::with_capacity(16);
                while let Some(Key(k)) = map.next_key()? {
                    members.push((k, map.next_value::<&'de RawValue>()?));
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(V)
    }
}

/// A key, borrowed from the text unless it had escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// The members left in `fields`, written as sent.
struct RawFields<'a, 'm>(&'m [(Cow<'a, str>, &'a RawValue)], &'m [bool]);

impl Serialize for RawFields<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        for ((k, v), taken) in self.0.iter().zip(self.1) {
            if !taken {
                map.serialize_entry(k, v)?;
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
/// Deepest nesting of a member's value this path takes.
const MAX_DEPTH: usize = 100;

/// Builds the stored event from an object's JSON text, as
/// [`super::from_object`] would from its map; `Err` gives `id` back when
/// this path does not apply (see the module's text).
pub fn from_json(
    text: &str,
    ctx: &EventContext,
    id: Option<String>,
) -> Result<Vec<u8>, Option<String>> {
    let Ok(Members(members)) = serde_json::from_str::<Members>(text) else {
        return Err(id);
    };
    if members.len() > MAX_MEMBERS {
        return Err(id);
    }
    let names = ctx.fields;
    let mut leaves = 0usize;
    for (i, (k, v)) in members.iter().enumerate() {
        let v = v.get();
        let nested = v.starts_with('{');
        if nested && names.paths_under(k).any(|rest| resolves(v, rest)) {
            return Err(id);
        }
        let s = shape(v);
        // serde_json refuses deeper nesting (128 levels, the stored event
        // adds two) and numbers out of f64's range, which skipping a value
        // lets through: the map path words those errors.
        if s.depth > MAX_DEPTH || s.unchecked {
            return Err(id);
        }
        leaves += if nested || v.starts_with('[') {
            1 + s.commas
        } else {
            1
        };
        if members[..i].iter().any(|(seen, _)| seen == k) {
            return Err(id);
        }
    }
    if leaves > ctx.max_fields {
        return Err(id);
    }
    // For each promoted field, the member it takes: the candidate of the
    // lowest rank that holds what the field takes.
    let mut taken = vec![false; members.len()];
    let mut chosen: [Option<(u8, usize)>; 6] = [None; 6];
    for (i, (k, v)) in members.iter().enumerate() {
        for (field, rank) in names.candidates(k) {
            let fits = match field {
                // The first present name decides, whatever it holds.
                PromotedField::Timestamp | PromotedField::Message => true,
                _ => is_text(v),
            };
            let slot = &mut chosen[field as usize];
            if fits && slot.is_none_or(|(r, _)| rank < r) {
                *slot = Some((rank, i));
            }
        }
    }
    // Names shared between fields (configured so): the map path takes
    // them one after the other; leave that to it.
    for (a, slot) in chosen.iter().enumerate() {
        if let Some((_, i)) = slot
            && chosen[a + 1..]
                .iter()
                .any(|o| o.is_some_and(|(_, j)| j == *i))
        {
            return Err(id);
        }
    }
    let timestamp = match chosen[PromotedField::Timestamp as usize].map(|(_, i)| i) {
        Some(i) => match event_time(members[i].1) {
            Some(t) => {
                taken[i] = true;
                format_time(t)
            }
            None => ctx.received_text.clone(),
        },
        None => ctx.received_text.clone(),
    };
    let text_of = |field: PromotedField, taken: &mut Vec<bool>| -> Option<Cow<str>> {
        let i = chosen[field as usize]
            .map(|(_, i)| i)
            .filter(|&i| !taken[i])?;
        taken[i] = true;
        Some(text_value(members[i].1))
    };
    let level = text_of(PromotedField::Level, &mut taken);
    let service = text_of(PromotedField::Service, &mut taken);
    let host = text_of(PromotedField::Host, &mut taken);
    let request_id = text_of(PromotedField::RequestId, &mut taken);
    // A structured `message` stays in `fields`.
    let message = match chosen[PromotedField::Message as usize] {
        Some((_, i)) if !taken[i] && members[i].1.get().starts_with('"') => {
            text_of(PromotedField::Message, &mut taken)
        }
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
    Ok(promoted.store(ctx, id, RawFields(&members, &taken), capacity))
}

/// Whether `path` leads to a value inside the object `v` (as
/// `Name::get` follows a dotted name); when unsure, yes.
fn resolves(v: &str, path: &[String]) -> bool {
    let Some((first, rest)) = path.split_first() else {
        return true;
    };
    let Ok(Members(members)) = serde_json::from_str::<Members>(v) else {
        return true;
    };
    members
        .iter()
        .filter(|(k, _)| k == first)
        .any(|(_, inner)| {
            rest.is_empty() || (inner.get().starts_with('{') && resolves(inner.get(), rest))
        })
}

/// A string or a number: what text fields take.
fn is_text(v: &RawValue) -> bool {
    matches!(v.get().as_bytes().first(), Some(b'"' | b'-' | b'0'..=b'9'))
}

/// A string's text, or a number written as the map path writes it.
fn text_value(v: &RawValue) -> Cow<'_, str> {
    let raw = v.get();
    if raw.starts_with('"') {
        if !raw.contains('\\') {
            return Cow::Borrowed(&raw[1..raw.len() - 1]);
        }
        return Cow::Owned(serde_json::from_str::<String>(raw).unwrap_or_default());
    }
    Cow::Owned(
        serde_json::from_str::<serde_json::Number>(raw)
            .map(|n| n.to_string())
            .unwrap_or_else(|_| raw.to_string()),
    )
}

fn event_time(v: &RawValue) -> Option<time::OffsetDateTime> {
    if v.get().starts_with('"') {
        return parse_time_text(&text_value(v));
    }
    parse_event_time(&serde_json::from_str(v.get()).ok()?)
}

/// What a value's text holds outside its strings.
struct Shape {
    /// One less than the leaves of an array or object at most (each leaf
    /// but the last is followed by one).
    commas: usize,
    /// The deepest nesting of arrays and objects.
    depth: usize,
    /// A number with an exponent, or of more than 300 digits (maybe out of
    /// f64's range), or a `\u` escape (maybe a lone surrogate): what only
    /// a full parse checks.
    unchecked: bool,
}

fn shape(json: &str) -> Shape {
    let mut s = Shape {
        commas: 0,
        depth: 0,
        unchecked: false,
    };
    let (mut depth, mut digits) = (0usize, 0usize);
    let mut in_string = false;
    let mut escaped = false;
    for &b in json.as_bytes() {
        if in_string {
            if escaped {
                // `\u` escapes (surrogates) are checked only by a full parse.
                s.unchecked |= b == b'u';
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'0'..=b'9' => {
                digits += 1;
                s.unchecked |= digits > 300;
                continue;
            }
            b'e' | b'E' if digits > 0 => s.unchecked = true,
            b'"' => in_string = true,
            b',' => s.commas += 1,
            b'{' | b'[' => {
                depth += 1;
                s.depth = s.depth.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if b != b'.' {
            digits = 0;
        }
    }
    s
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
            r#"{"log":{"level":"warn"}}"#, // promotes from inside an object
            r#"{"host":{"name":"h"}}"#,    // the same
            r#"{"a":"\u00e9"}"#,           // a full parse checks `\u` escapes
            r#"{"a":[1.5e3]}"#,            // and numbers that may not fit
            r#"{"a":1,"a":2}"#,            // a map keeps the last
            r#"[1]"#,                      // not an object
            r#"{"a":"#,                    // not JSON
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
    fn commas_outside_strings_bound_the_leaves() {
        let s = shape(r#"[1,"a,b",{"c":"\",[{","d":[2,3]}],1.5e3"#);
        assert_eq!((s.commas, s.depth, s.unchecked), (5, 3, true));
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
