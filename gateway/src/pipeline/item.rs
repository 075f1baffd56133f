//! What a source hands the pipeline (items) and what it gets back (one
//! outcome per item, in order).

use std::borrow::Cow;

use serde_json::{Map, Value};

/// One unit of a request, as a source decoded it. Each comes with its
/// 1-based line (or array element, or frame) number, for error reports.
#[derive(Debug)]
pub enum Item<'a> {
    /// A JSON object, with its bytes as sent when it was a line of its own
    /// (filters get those instead of a re-serialization).
    Object(Map<String, Value>, Option<&'a [u8]>),
    /// The text of what should be one JSON object, not parsed yet (as
    /// sent, or written by a source from its protocol's parts): the
    /// pipeline builds the stored event from the text directly when it can
    /// ([`crate::event::from_json`]), else parses it with
    /// [`Item::from_json_text`] (which words what is wrong with it).
    Json(Cow<'a, str>),
    /// An event a source mapped from its protocol's own fields
    /// ([`crate::event::Mapped`]): built without reading its members again
    /// when the route's names allow ([`crate::event::from_mapped`]), else
    /// as [`Item::Json`] of its text.
    Mapped(Box<crate::event::Mapped>),
    /// An object's text with a protocol's line spliced in unchecked
    /// ([`crate::event::object::LinedText`]): as [`Item::Json`], and when
    /// the text is not an object, its fallback (the line as `message`).
    Lined(Box<crate::event::object::LinedText>),
    /// A line of text: the event's message.
    Text(&'a str),
    /// A stored event the source built itself from a parser's parts (syslog
    /// without filters: no JSON map on the way). Only for routes without
    /// filters; on a filtered route it becomes a dead letter.
    Event(Vec<u8>),
    /// Something the client got wrong, kept as a rejected event. `kind` is
    /// a short label for metrics, `reason` the message for the client.
    Bad {
        raw: Cow<'a, [u8]>,
        reason: String,
        kind: &'static str,
    },
}

impl<'a> Item<'a> {
    /// The item a JSON line or element makes: an object, or a bad item
    /// saying why it is not one.
    /// (A text a source wrote gives filters a re-serialization.)
    pub fn from_json_text(text: Cow<'a, str>) -> Item<'a> {
        let raw = match text {
            Cow::Borrowed(t) => Cow::Borrowed(t.as_bytes()),
            Cow::Owned(t) => Cow::Owned(t.into_bytes()),
        };
        let parsed = serde_json::from_slice::<Value>(&raw);
        match (parsed, raw) {
            (Ok(Value::Object(m)), Cow::Borrowed(sent)) => Item::Object(m, Some(sent)),
            (Ok(Value::Object(m)), Cow::Owned(_)) => Item::Object(m, None),
            (Ok(_), raw) => Item::Bad {
                raw,
                kind: "not_object",
                reason: "line is JSON but not an object".into(),
            },
            (Err(e), raw) => Item::Bad {
                raw,
                kind: "invalid_json",
                reason: format!("invalid JSON: {e}"),
            },
        }
    }

    /// The object's text of a [`Item::Json`] or [`Item::Lined`] item.
    pub fn object_text(&self) -> Option<&str> {
        match self {
            Item::Json(text) => Some(text),
            Item::Lined(lined) => Some(&lined.text),
            _ => None,
        }
    }

    /// An item whose text is yet to be parsed ([`Item::Json`],
    /// [`Item::Lined`], [`Item::Mapped`]) parsed into an object or a bad
    /// item (a lined text that is not an object: its fallback); others as
    /// they are.
    pub fn parse_text(self) -> Item<'a> {
        match self {
            Item::Json(text) => Item::from_json_text(text),
            Item::Mapped(m) => Item::from_json_text(Cow::Owned(m.text())),
            Item::Lined(lined) => {
                let (text, spliced) = lined.into_parts();
                match (Item::from_json_text(Cow::Owned(text)), spliced) {
                    (Item::Bad { raw, .. }, Some(s)) => {
                        let text = std::str::from_utf8(&raw).expect("a text's bytes");
                        Item::from_json_text(Cow::Owned(s.fallback(text)))
                    }
                    (item, _) => item,
                }
            }
            other => other,
        }
    }
}

/// What became of one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Stored as one or more events (a filter may have split or retyped it).
    Stored,
    /// Unusable as sent; stored as a rejected event with the reason.
    Rejected { reason: String },
    /// A filter dropped it on purpose (the only silent discard; counted).
    Dropped,
    /// A filter failed on it; stored as a dead letter with the reason.
    DeadLetter { reason: String },
}

impl Outcome {
    /// Precedence when one item has several fates (a split whose parts
    /// fared differently): what the client must hear about wins.
    fn rank(&self) -> u8 {
        match self {
            Outcome::Dropped => 0,
            Outcome::Stored => 1,
            Outcome::Rejected { .. } | Outcome::DeadLetter { .. } => 2,
        }
    }

    /// Replaces `self` with `other` if `other` outranks it.
    pub(super) fn merge(&mut self, other: Outcome) {
        if other.rank() > self.rank() {
            *self = other;
        }
    }
}
