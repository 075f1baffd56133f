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

/// A JSON string (a key, or a value that must be a string), borrowed from
/// the text unless it had escapes.
pub struct Key<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for Key<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Key<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

/// The elements of the JSON array `text` in one pass, each with its own
/// text and read as a `T` when it is one (`None` when it is another JSON
/// value); `None` when `text` is not a JSON array. For a source whose
/// body is an array of items it reads, and whose byte counts and rejected
/// items need each item's text.
pub fn elements<'a, T: serde::Deserialize<'a>>(text: &'a str) -> Option<Vec<(&'a str, Option<T>)>> {
    let bytes = text.as_bytes();
    let skip = |mut at: usize| {
        while bytes.get(at).is_some_and(u8::is_ascii_whitespace) {
            at += 1;
        }
        at
    };
    let mut at = skip(0);
    if bytes.get(at) != Some(&b'[') {
        return None;
    }
    at = skip(at + 1);
    let mut out = Vec::new();
    if bytes.get(at) == Some(&b']') {
        return (skip(at + 1) == bytes.len()).then_some(out);
    }
    loop {
        let rest = &text[at..];
        // Each element from where it starts: the stream's offset after
        // it is where it ends (a comma or `]` may follow any value).
        let mut typed = serde_json::Deserializer::from_str(rest).into_iter::<T>();
        let (len, value) = match typed.next() {
            Some(Ok(v)) => (typed.byte_offset(), Some(v)),
            _ => {
                let mut any = serde_json::Deserializer::from_str(rest).into_iter::<&RawValue>();
                match any.next() {
                    Some(Ok(_)) => (any.byte_offset(), None),
                    _ => return None,
                }
            }
        };
        out.push((&rest[..len], value));
        at = skip(at + len);
        match bytes.get(at) {
            Some(b',') => at = skip(at + 1),
            Some(b']') => return (skip(at + 1) == bytes.len()).then_some(out),
            _ => return None,
        }
    }
}

/// Deepest nesting of a member's value this path takes.
pub(super) const MAX_DEPTH: usize = 100;

/// A JSON string value's text (unescaped), or `None` for other values.
pub fn string(v: &RawValue) -> Option<Cow<'_, str>> {
    v.get().starts_with('"').then(|| text_value(v))
}

/// A string's text, or a number written as the map path writes it.
pub fn text_value(v: &RawValue) -> Cow<'_, str> {
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

    #[test]
    fn an_arrays_elements_come_with_their_text() {
        let text = " [ {\"a\":1} ,2,\"s\" , [3,{\"b\":[]}],{\"c\":\"}\"}\n]\n";
        let got = elements::<MaybeObject>(text).unwrap();
        let texts: Vec<&str> = got.iter().map(|(t, _)| *t).collect();
        assert_eq!(
            texts,
            ["{\"a\":1}", "2", "\"s\"", "[3,{\"b\":[]}]", "{\"c\":\"}\"}"]
        );
        // Read as a T where it is one: here an object, else skipped.
        let objects: Vec<bool> = got
            .iter()
            .map(|(_, m)| m.as_ref().unwrap().0.is_some())
            .collect();
        assert_eq!(objects, [true, false, false, false, true]);
        // An element that is no T comes without a value.
        let numbers = elements::<u32>("[1,\"x\",{}]").unwrap();
        assert_eq!(numbers, [("1", Some(1)), ("\"x\"", None), ("{}", None)]);
        assert_eq!(elements::<u32>(" [ ] ").unwrap(), []);
        for bad in ["", "{}", "[1,]", "[1 2]", "[1", "[1]x", "[,1]", "[{]"] {
            assert!(elements::<MaybeObject>(bad).is_none(), "{bad}");
        }
    }
}
