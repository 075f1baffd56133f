//! A `_bulk` body → its actions, each with its source line.
//!
//! NDJSON: an action line `{"index":{"_index":"x","_id":"1"}}` (or
//! `create`, `update`, `delete`), then, except for `delete`, a source line.
//! Blank lines between actions are skipped. A line that is not an action
//! where one is expected makes the whole request malformed, as in
//! Elasticsearch (`illegal_argument_exception`); an action whose source
//! line is missing at the end of the body is answered on its own.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::event::members::{self, Key};

/// Longest `_id` Elasticsearch accepts, in bytes.
pub const MAX_ID_BYTES: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Index,
    Create,
    Update,
    Delete,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Index => "index",
            Op::Create => "create",
            Op::Update => "update",
            Op::Delete => "delete",
        }
    }

    fn parse(name: &str) -> Option<Op> {
        Some(match name {
            "index" => Op::Index,
            "create" => Op::Create,
            "update" => Op::Update,
            "delete" => Op::Delete,
            _ => return None,
        })
    }
}

/// One action of the request.
#[derive(Debug)]
pub struct Action<'a> {
    pub op: Op,
    /// `_index` of the action line, if any (else the URL's).
    pub index: Option<Cow<'a, str>>,
    /// `_id`, if any (a number is taken as its digits).
    pub id: Option<String>,
    /// 1-based line of the action.
    pub line: usize,
    /// The source line (its number and bytes); `None` for `delete`, or
    /// when the body ended before it.
    pub source: Option<(usize, &'a [u8])>,
}

/// The request is not a bulk request at `line`.
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed {
    pub line: usize,
    pub reason: String,
}

/// An action's metadata, borrowing the line.
#[derive(Deserialize)]
struct Meta<'a> {
    #[serde(rename = "_index", borrow)]
    index: Option<Key<'a>>,
    #[serde(rename = "_id", borrow)]
    id: Option<&'a RawValue>,
}

/// An action line, `{"<op>": {<meta>}}`, read once per document without
/// a map: its first member, and whether another follows.
struct ActionLine<'a> {
    name: Cow<'a, str>,
    meta: Meta<'a>,
    more: bool,
}

impl<'de> Deserialize<'de> for ActionLine<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Option<ActionLine<'de>>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an action object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let Some(Key(name)) = map.next_key()? else {
                    return Ok(None);
                };
                let meta = map.next_value()?;
                let more = map.next_key::<IgnoredAny>()?.is_some();
                if more {
                    // The rest is read for the syntax only.
                    map.next_value::<IgnoredAny>()?;
                    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                }
                Ok(Some(ActionLine { name, meta, more }))
            }
        }
        d.deserialize_map(V)?
            .ok_or_else(|| serde::de::Error::custom("no action"))
    }
}

/// The body's lines: (1-based number, bytes without `\r\n`).
pub fn lines(body: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    body.split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .enumerate()
        .map(|(i, l)| (i + 1, l))
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

/// Splits a bulk body into its actions, in order.
pub fn parse(body: &[u8]) -> Result<Vec<Action<'_>>, Malformed> {
    let mut actions = Vec::new();
    let mut lines = lines(body).peekable();
    while let Some((n, line)) = lines.next() {
        if is_blank(line) {
            continue;
        }
        let (op, meta) = action(line).map_err(|reason| Malformed { line: n, reason })?;
        let source = match op {
            Op::Delete => None,
            // A trailing empty "line" after the last newline is no source.
            _ => lines
                .next()
                .filter(|(_, l)| !(l.is_empty() && lines.peek().is_none())),
        };
        actions.push(Action {
            op,
            index: meta.index,
            id: meta.id,
            line: n,
            source,
        });
    }
    Ok(actions)
}

struct ActionMeta<'a> {
    index: Option<Cow<'a, str>>,
    id: Option<String>,
}

fn action(line: &[u8]) -> Result<(Op, ActionMeta<'_>), String> {
    let parsed: ActionLine = serde_json::from_slice(line).map_err(|e| {
        format!(
            "Malformed action/metadata line: expected {{\"index\":{{\"_index\":…}}}} or create, update, delete ({e})"
        )
    })?;
    if parsed.more {
        return Err("Malformed action/metadata line: expected exactly one action".into());
    }
    let name = parsed.name;
    let Some(op) = Op::parse(&name) else {
        return Err(format!(
            "Malformed action/metadata line: unknown action [{name}]; expected index, create, update or delete"
        ));
    };
    let id = match parsed.meta.id {
        None => None,
        Some(raw) => match raw.get().as_bytes()[0] {
            b'"' | b'-' | b'0'..=b'9' => Some(members::text_value(raw).into_owned()),
            _ => {
                return Err(format!(
                    "Malformed action/metadata line: _id must be a string, not {}",
                    raw.get()
                ));
            }
        },
    };
    Ok((
        op,
        ActionMeta {
            index: parsed.meta.index.map(|k| k.0),
            id,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_pair_with_their_sources() {
        let body = b"{\"index\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{\"m\":1}\n\n{\"delete\":{\"_id\":2}}\r\n{\"create\":{}}\n{\"m\":2}\n";
        let actions = parse(body).unwrap();
        assert_eq!(actions.len(), 3);
        assert_eq!(actions[0].op, Op::Index);
        assert_eq!(actions[0].index.as_deref(), Some("a"));
        assert_eq!(actions[0].id.as_deref(), Some("1"));
        assert_eq!(actions[0].source, Some((2, &b"{\"m\":1}"[..])));
        assert_eq!(actions[1].op, Op::Delete);
        assert_eq!(actions[1].id.as_deref(), Some("2"));
        assert_eq!(actions[1].source, None);
        assert_eq!(actions[2].line, 5);
        assert_eq!(actions[2].source, Some((6, &b"{\"m\":2}"[..])));
    }

    #[test]
    fn a_missing_last_source_is_the_actions_own_problem() {
        let actions = parse(b"{\"index\":{}}\n{\"a\":1}\n{\"index\":{}}\n").unwrap();
        assert_eq!(actions.len(), 2);
        assert!(actions[1].source.is_none());
        // Without the final newline, too.
        let actions = parse(b"{\"index\":{}}").unwrap();
        assert!(actions[0].source.is_none());
    }

    #[test]
    fn a_line_that_is_no_action_makes_the_request_malformed() {
        for (body, line) in [
            (&b"{\"index\":{}}\n{}\nnot json\n"[..], 3),
            (b"{\"upsert\":{}}\n{}\n", 1),
            (b"{\"index\":{},\"create\":{}}\n{}\n", 1),
            (b"[1]\n", 1),
            (b"{\"index\":{\"_index\":5}}\n{}\n", 1),
            (b"{\"index\":{\"_id\":[1]}}\n{}\n", 1),
        ] {
            let err = parse(body).unwrap_err();
            assert_eq!(err.line, line, "{}", String::from_utf8_lossy(body));
            assert!(err.reason.starts_with("Malformed action/metadata line"));
        }
    }
}
