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
//! are JSON text already checked as such (a `RawValue`'s). A protocol's
//! line that looks like a JSON object (`{…}`) is spliced in unchecked:
//! the pipeline reads the object's text anyway, and when it is not one
//! (so the line was not), builds the event from the same object with the
//! line as `message` instead ([`LinedText`]). The object's text is valid
//! exactly when the line is a JSON object: its members sit between
//! complete members, so anything but a list of members breaks it.

use serde::Serialize;

/// The object being written.
#[derive(Debug)]
pub struct ObjectText {
    buf: Vec<u8>,
    /// A line spliced in unchecked (see the module's text).
    spliced: Option<Spliced>,
}

/// Where a line was spliced in, to write it as `message` instead.
#[derive(Debug, Clone)]
pub struct Spliced {
    /// The line as sent, unless it is its spliced members in braces.
    line: Option<String>,
    /// Where its members are in the text.
    at: std::ops::Range<usize>,
}

impl Spliced {
    /// `text` (the object the line was spliced into) with the line as
    /// `message` instead of its members.
    pub fn fallback(&self, text: &str) -> String {
        let members = &text[self.at.clone()];
        let braced;
        let line = match &self.line {
            Some(line) => line.as_str(),
            None => {
                braced = format!("{{{members}}}");
                &braced
            }
        };
        let mut buf = Vec::with_capacity(text.len() + line.len() / 4 + 16);
        buf.extend_from_slice(&text.as_bytes()[..self.at.start]);
        string(&mut buf, "message");
        buf.push(b':');
        string(&mut buf, line);
        buf.extend_from_slice(&text.as_bytes()[self.at.end..]);
        String::from_utf8(buf).expect("JSON text of UTF-8 parts")
    }
}

/// An object's text with a line spliced in unchecked: `text`, else (when
/// `text` is not a JSON object) the fallback.
#[derive(Debug)]
pub struct LinedText {
    pub text: String,
    spliced: Option<Spliced>,
}

impl LinedText {
    /// The text, and where a line was spliced into it (none: `text` is the
    /// only object there is).
    pub fn into_parts(self) -> (String, Option<Spliced>) {
        (self.text, self.spliced)
    }

    /// The object with the line as `message`, if a line was spliced in.
    pub fn fallback(&self) -> Option<String> {
        Some(self.spliced.as_ref()?.fallback(&self.text))
    }
}

impl ObjectText {
    /// An empty object, with room for about `bytes` of members.
    pub fn with_capacity(bytes: usize) -> ObjectText {
        let mut buf = Vec::with_capacity(bytes + 2);
        buf.push(b'{');
        ObjectText { buf, spliced: None }
    }

    /// A copy of the members written so far, with room for about `bytes`
    /// more (members shared by several objects, written once).
    pub fn with_room(&self, bytes: usize) -> ObjectText {
        let mut buf = Vec::with_capacity(self.buf.len() + bytes + 1);
        buf.extend_from_slice(&self.buf);
        ObjectText {
            buf,
            spliced: self.spliced.clone(),
        }
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
        if let Some(inner) = braced(object) {
            self.splice(inner);
        }
    }

    /// Members' text, after a comma if any come before; where it went.
    fn splice(&mut self, members: &str) -> std::ops::Range<usize> {
        let members = members.trim();
        if !members.is_empty() && self.buf.len() > 1 {
            self.buf.push(b',');
        }
        let start = self.buf.len();
        self.buf.extend_from_slice(members.as_bytes());
        start..self.buf.len()
    }

    /// A line of a protocol (a Loki line, a HEC raw line, a Datadog
    /// message): a JSON object's members, as a JSON line on the native
    /// routes is read, else the line as `message`. A line that looks like
    /// an object is spliced in unchecked: finish with
    /// [`ObjectText::finish_lined`]. At most one line per object.
    pub fn line(&mut self, line: &str) {
        match braced(line) {
            Some(inner) if self.spliced.is_none() => {
                let at = self.splice(inner);
                // Kept only when the members in braces are not the line.
                let exact = line.len() == at.len() + 2;
                self.spliced = Some(Spliced {
                    line: (!exact).then(|| line.to_string()),
                    at,
                });
            }
            _ => self.str("message", line),
        }
    }

    /// The object's text (no line spliced in unchecked).
    pub fn finish(self) -> String {
        debug_assert!(self.spliced.is_none(), "finish_lined takes spliced lines");
        self.finish_lined().text
    }

    /// The object's text, and what to build instead if a line spliced in
    /// was not an object.
    pub fn finish_lined(mut self) -> LinedText {
        self.buf.push(b'}');
        LinedText {
            text: String::from_utf8(self.buf).expect("JSON text of UTF-8 parts"),
            spliced: self.spliced,
        }
    }
}

/// What is between the braces of a text that looks like an object.
fn braced(text: &str) -> Option<&str> {
    text.trim().strip_prefix('{')?.strip_suffix('}')
}

fn string(buf: &mut Vec<u8>, s: &str) {
    serde_json::to_writer(buf, s).expect("a string serializes");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// The object the pipeline builds from: the text if it is one, else
    /// the fallback.
    fn resolved(o: ObjectText) -> Value {
        let lined = o.finish_lined();
        match serde_json::from_str::<Value>(&lined.text) {
            Ok(v @ Value::Object(_)) => v,
            _ => serde_json::from_str(&lined.fallback().unwrap()).unwrap(),
        }
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
            o.str("ts", "t");
            resolved(o)
        };
        assert_eq!(
            line(r#"{"level":"warn","n":1}"#),
            serde_json::json!({"job":"j","level":"warn","n":1,"ts":"t"})
        );
        assert_eq!(line(" {} "), serde_json::json!({"job":"j","ts":"t"}));
        for text in [
            "plain text",
            "{not json",
            r#"{"a":1} trailing"#,
            "[1]",
            r#"{"a":1},"b":{"c":2}"#,
            r#"{"a":1}}"#,
            r#"{"a":1,}"#,
            "{",
            "{}}",
            " { not json } ",
        ] {
            assert_eq!(
                line(text),
                serde_json::json!({"job":"j","message":text,"ts":"t"}),
                "{text}"
            );
        }
        // What only a full parse reads: the same members, or the message.
        assert_eq!(
            line(r#"{"e":"\u00e9","x":1.5e3}"#),
            serde_json::json!({"job":"j","e":"é","x":1500.0,"ts":"t"})
        );
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(150), "]".repeat(150));
        assert_eq!(
            line(&deep),
            serde_json::json!({"job":"j","message":deep,"ts":"t"})
        );
        let empty = ObjectText::with_capacity(0);
        assert_eq!(empty.finish(), "{}");
    }
}
