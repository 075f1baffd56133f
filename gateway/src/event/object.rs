//! An event's JSON object, written as text member by member as a compat
//! source maps its protocol's parts (labels, attributes, metadata, the
//! line), for the pipeline to build the stored event from that text
//! ([`crate::pipeline::Item::Json`], [`crate::event::from_json`]) without
//! a `serde_json` map in between.
//!
//! Members are written in the order a map would have had them inserted:
//! a key written twice is the same as a map's second insert (the later
//! wins), since the pipeline gives an object with a repeated key to a
//! map. Values are either written here (strings, `Serialize` values) or
//! are JSON text already checked as such (a `RawValue`'s, a line that
//! [`crate::event::members::is_object`] accepted).

use serde::Serialize;
use serde_json::Value;

use crate::event::members;

/// The object being written.
#[derive(Debug)]
pub struct ObjectText {
    buf: Vec<u8>,
}

impl ObjectText {
    /// An empty object, with room for about `bytes` of members.
    pub fn with_capacity(bytes: usize) -> ObjectText {
        let mut buf = Vec::with_capacity(bytes + 2);
        buf.push(b'{');
        ObjectText { buf }
    }

    /// A copy of the members written so far, with room for about `bytes`
    /// more (members shared by several objects, written once).
    pub fn with_room(&self, bytes: usize) -> ObjectText {
        let mut buf = Vec::with_capacity(self.buf.len() + bytes + 1);
        buf.extend_from_slice(&self.buf);
        ObjectText { buf }
    }

    fn key(&mut self, key: &str) {
        if self.buf.len() > 1 {
            self.buf.push(b',');
        }
        string(&mut self.buf, key);
        self.buf.push(b':');
    }

    /// A string member.
    pub fn str(&mut self, key: &str, value: &str) {
        self.key(key);
        string(&mut self.buf, value);
    }

    /// A member whose value is JSON text already valid (a `RawValue`'s).
    pub fn raw(&mut self, key: &str, json: &str) {
        self.key(key);
        self.buf.extend_from_slice(json.as_bytes());
    }

    /// A member serialized by `serde_json`.
    pub fn value<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) {
        self.key(key);
        serde_json::to_writer(&mut self.buf, value).expect("a value serializes");
    }

    /// The members of `object`, the text of a JSON object already valid.
    pub fn members_of(&mut self, object: &str) {
        let inner = object
            .trim()
            .strip_prefix('{')
            .and_then(|o| o.strip_suffix('}'))
            .unwrap_or_default()
            .trim();
        if inner.is_empty() {
            return;
        }
        if self.buf.len() > 1 {
            self.buf.push(b',');
        }
        self.buf.extend_from_slice(inner.as_bytes());
    }

    /// A line of a protocol (a Loki line, a HEC raw line, a Datadog
    /// message): a JSON object's members, as a JSON line on the native
    /// routes is read, else the line as `message`.
    pub fn line(&mut self, line: &str) {
        if !line.trim_start().starts_with('{') {
            return self.str("message", line);
        }
        match members::is_object(line) {
            Some(true) => self.members_of(line),
            Some(false) => self.str("message", line),
            // Only a full parse tells (deep, big numbers, `\u` escapes).
            None => match serde_json::from_str::<Value>(line) {
                Ok(Value::Object(m)) => {
                    for (k, v) in &m {
                        self.value(k, v);
                    }
                }
                _ => self.str("message", line),
            },
        }
    }

    /// The object's text.
    pub fn finish(mut self) -> String {
        self.buf.push(b'}');
        String::from_utf8(self.buf).expect("JSON text of UTF-8 parts")
    }
}

fn string(buf: &mut Vec<u8>, s: &str) {
    serde_json::to_writer(buf, s).expect("a string serializes");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(o: ObjectText) -> Value {
        serde_json::from_str(&o.finish()).unwrap()
    }

    #[test]
    fn writes_members_in_order_and_escapes() {
        let mut o = ObjectText::with_capacity(64);
        o.str("a \"q\"", "line\n\u{1}");
        o.raw("n", "[1, 2]");
        o.value("v", &serde_json::json!({"x": true}));
        o.members_of(" { \"m\" : 1 } ");
        o.members_of("{}");
        let text = o.finish();
        assert_eq!(
            text,
            r#"{"a \"q\"":"line\n\u0001","n":[1, 2],"v":{"x":true},"m" : 1}"#
        );
        assert!(serde_json::from_str::<Value>(&text).is_ok());
    }

    #[test]
    fn a_line_is_an_object_s_members_or_the_message() {
        let line = |l: &str| {
            let mut o = ObjectText::with_capacity(0);
            o.str("job", "j");
            o.line(l);
            parsed(o)
        };
        assert_eq!(
            line(r#"{"level":"warn","n":1}"#),
            serde_json::json!({"job":"j","level":"warn","n":1})
        );
        for text in ["plain text", "{not json", r#"{"a":1} trailing"#, "[1]"] {
            assert_eq!(line(text), serde_json::json!({"job":"j","message":text}));
        }
        // What only a full parse reads: the same members, or the message.
        assert_eq!(
            line(r#"{"e":"\u00e9","x":1.5e3}"#),
            serde_json::json!({"job":"j","e":"é","x":1500.0})
        );
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(150), "]".repeat(150));
        assert_eq!(line(&deep), serde_json::json!({"job":"j","message":deep}));
        let empty = ObjectText::with_capacity(0);
        assert_eq!(empty.finish(), "{}");
    }
}
