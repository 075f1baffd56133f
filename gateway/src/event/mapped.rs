//! Building a stored event from what a compat source already split: the
//! promoted fields its protocol carries in fields of their own (OTLP's
//! time, severity, resource `service.name` and `host.name`, trace id,
//! string body) and the other members, written once as the text of
//! `fields`.
//!
//! A source could write all of it as one object's text for
//! [`super::from_json`] (and does for routes with filters, and where this
//! path does not apply: [`Mapped::text`]); that writes every member, then
//! reads them all again to find what is promoted. Here nothing is read
//! again: the event is the same as [`super::from_json`] would build from
//! [`Mapped::text`] whenever no member left in `fields` could be promoted
//! by the route's names (each of its names is a name only of fields the
//! source promoted, by a later rank), no key is repeated, and nothing is
//! over the limits a map would refuse (`limits.max_fields_per_event`,
//! nesting). Otherwise [`from_mapped`] gives way and the caller builds
//! from the text, with the result the generic path gives.

use time::OffsetDateTime;

use super::members::MAX_DEPTH;
use super::object::ObjectText;
use super::{EventContext, FieldNames, PromotedField, Taken, format_time};

/// The names a source writes its promoted fields under in
/// [`Mapped::text`], in [`PromotedField::ALL`]'s order.
const NAMES: [&str; 6] = [
    "timestamp",
    "level",
    "service",
    "host",
    "request_id",
    "message",
];

/// An event as a source mapped it.
#[derive(Debug)]
pub struct Mapped {
    pub timestamp: Option<OffsetDateTime>,
    /// As sent (the stored event lowercases it).
    pub level: Option<String>,
    pub service: Option<String>,
    pub host: Option<String>,
    pub request_id: Option<String>,
    pub message: Option<String>,
    /// The other members, in order.
    pub fields: FieldsText,
}

/// The members of an event's `fields`, written as JSON text, with what
/// [`from_mapped`] checks of them.
#[derive(Debug)]
pub struct FieldsText {
    object: ObjectText,
    keys: Vec<String>,
    /// Leaf values (a map counts them for `limits.max_fields_per_event`).
    leaves: usize,
    /// The deepest nesting of arrays and objects in a value.
    depth: usize,
}

impl FieldsText {
    /// No members yet, with room for about `bytes` of them.
    pub fn with_capacity(bytes: usize) -> FieldsText {
        FieldsText {
            object: ObjectText::with_capacity(bytes),
            keys: Vec::new(),
            leaves: 0,
            depth: 0,
        }
    }

    /// A member whose value is `write`'s JSON text, with `leaves` leaf
    /// values nested `depth` deep (0: a scalar).
    pub fn member(
        &mut self,
        key: &str,
        leaves: usize,
        depth: usize,
        write: impl FnOnce(&mut ObjectText, &str),
    ) {
        write(&mut self.object, key);
        self.keys.push(key.to_string());
        self.leaves += leaves;
        self.depth = self.depth.max(depth);
    }

    /// A string member.
    pub fn str(&mut self, key: &str, value: &str) {
        self.member(key, 1, 0, |o, k| o.str(k, value));
    }
}

impl Mapped {
    /// Which promoted fields the source found, in [`NAMES`]' order.
    fn present(&self) -> [bool; 6] {
        [
            self.timestamp.is_some(),
            self.level.is_some(),
            self.service.is_some(),
            self.host.is_some(),
            self.request_id.is_some(),
            self.message.is_some(),
        ]
    }

    /// The event as one object's text: the members of `fields`, then the
    /// promoted ones under [`NAMES`] (what [`super::from_json`] builds the
    /// same event from).
    pub fn text(self) -> String {
        let mut o = self.fields.object;
        let promoted = [
            self.timestamp.map(format_time),
            self.level,
            self.service,
            self.host,
            self.request_id,
            self.message,
        ];
        for (name, value) in NAMES.iter().zip(promoted) {
            if let Some(v) = value {
                o.str(name, &v);
            }
        }
        o.finish()
    }
}

/// The stored event, or `Err` with the event and `id` given back when the
/// route's names or the limits make [`super::from_json`] of
/// [`Mapped::text`] another event (see the module's text).
pub fn from_mapped(
    m: Box<Mapped>,
    ctx: &EventContext,
    id: Option<String>,
) -> Result<Vec<u8>, (Box<Mapped>, Option<String>)> {
    let present = m.present();
    let leaves = m.fields.leaves + present.iter().filter(|&&p| p).count();
    let keys = &m.fields.keys;
    let repeated = (1..keys.len()).any(|i| keys[..i].contains(&keys[i]));
    if leaves > ctx.max_fields
        || m.fields.depth > MAX_DEPTH
        || repeated
        || !names_agree(ctx.fields, keys, &present)
    {
        return Err((m, id));
    }
    let Mapped {
        timestamp,
        level,
        service,
        host,
        request_id,
        message,
        fields,
    } = *m;
    let taken = Taken {
        timestamp: timestamp.map_or_else(|| ctx.received_text.clone(), format_time),
        level: level.map(Into::into),
        service: service.map(Into::into),
        host: host.map(Into::into),
        request_id: request_id.map(Into::into),
        message: message.map(Into::into),
    };
    let text = fields.object.finish();
    // `fields` is the stored event's last member: the event without it,
    // then the text written.
    let mut event = taken.store(ctx, id, serde_json::Map::new(), text.len() + 320);
    if text != "{}" {
        event.pop();
        event.extend_from_slice(b",\"fields\":");
        event.extend_from_slice(text.as_bytes());
        event.push(b'}');
    }
    Ok(event)
}

/// Whether the route's names take each promoted field from where the
/// source put it: the name it is written under in [`Mapped::text`] names
/// that field only ([`FieldNames::written_ranks`]), and any key in
/// `fields` that names a field (flat, or as the first part of a dotted
/// name) names only fields present under a name of an earlier rank.
fn names_agree(names: &FieldNames, keys: &[String], present: &[bool; 6]) -> bool {
    let Some(rank) = names.written_ranks() else {
        return false;
    };
    let before = |field: PromotedField, r: u8| {
        let i = field as usize;
        present[i] && rank[i] < r
    };
    keys.iter().all(|k| {
        names.candidates(k).all(|(f, r)| before(f, r))
            && names.dotted_under(k).all(|(f, r, _, _)| before(f, r))
    })
}

/// For [`FieldNames`] (once, when its names are set): the rank of each
/// of [`NAMES`] for its field, if each is a name of that field only.
pub(super) fn written_ranks(names: &FieldNames) -> Option<[u8; 6]> {
    let mut rank = [u8::MAX; 6];
    for (i, name) in NAMES.iter().enumerate() {
        for (field, r) in names.candidates(name) {
            if field as usize != i {
                return None;
            }
            rank[i] = r;
        }
    }
    Some(rank)
}
