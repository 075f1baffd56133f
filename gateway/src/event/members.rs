//! Reading a JSON object's text into its members (keys, and each value's
//! text unparsed) without a map: what [`super::raw::from_json`] builds
//! events from, and what the compat sources read their protocols' JSON
//! with.

use std::borrow::Cow;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// An object's members: keys (unescaped) and their values' JSON text.
struct Members<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

/// The members of the JSON object `text` (keys unescaped, each value's
/// text as sent, repeated keys as sent), or `None` if it is not one.
pub fn members(text: &str) -> Option<Vec<(Cow<'_, str>, &RawValue)>> {
    serde_json::from_str::<Members>(text).ok().map(|m| m.0)
}

/// The value of the member `name` among `members`: the last one, as a
/// map keeps the last of a repeated key.
pub fn last<'a>(members: &[(Cow<'_, str>, &'a RawValue)], name: &str) -> Option<&'a RawValue> {
    members
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| *v)
}

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

/// A JSON value read as an object's members (as [`members`] gives them),
/// or `None` for any other value, read and skipped: for a source reading
/// a stream or an array of what should be objects in one pass.
pub struct MaybeObject<'a>(pub Option<Vec<(Cow<'a, str>, &'a RawValue)>>);

impl<'de> serde::Deserialize<'de> for MaybeObject<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{IgnoredAny, SeqAccess};
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MaybeObject<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::with_capacity(16);
                while let Some(Key(k)) = map.next_key()? {
                    members.push((k, map.next_value::<&'de RawValue>()?));
                }
                Ok(MaybeObject(Some(members)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(MaybeObject(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(MaybeObject(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(MaybeObject(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(MaybeObject(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(MaybeObject(None))
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(MaybeObject(None))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(MaybeObject(None))
            }
        }
        d.deserialize_any(V)
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

/// Deepest nesting of a member's value this path takes.
pub(super) const MAX_DEPTH: usize = 100;

/// A JSON string value's text (unescaped), or `None` for other values.
pub fn string(v: &RawValue) -> Option<Cow<'_, str>> {
    v.get().starts_with('"').then(|| text_value(v))
}

/// A string's text, or a number written as the map path writes it.
pub(super) fn text_value(v: &RawValue) -> Cow<'_, str> {
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

/// What a value's text holds outside its strings.
pub(super) struct Shape {
    /// One less than the leaves of an array or object at most (each leaf
    /// but the last is followed by one).
    pub commas: usize,
    /// The deepest nesting of arrays and objects.
    pub depth: usize,
    /// A number with an exponent, or of more than 300 digits (maybe out of
    /// f64's range), or a `\u` escape (maybe a lone surrogate): what only
    /// a full parse checks.
    pub unchecked: bool,
}

pub(super) fn shape(json: &str) -> Shape {
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

    #[test]
    fn commas_outside_strings_bound_the_leaves() {
        let s = shape(r#"[1,"a,b",{"c":"\",[{","d":[2,3]}],1.5e3"#);
        assert_eq!((s.commas, s.depth, s.unchecked), (5, 3, true));
    }
}
