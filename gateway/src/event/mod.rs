//! The event model: what one stored event looks like.
//!
//! ```json
//! {"id":"01JD…","tenant":"acme","type":"mobile_logs",
//!  "received_at":"2026-11-21T10:00:00.123Z","timestamp":"2026-11-21T09:59:58Z",
//!  "level":"error","service":"checkout","host":"web-1","request_id":"abc",
//!  "message":"payment failed","fields":{"user":{"id":42},"status":500}}
//! ```
//!
//! Promoted fields are taken (and removed) from the event's own fields by
//! the first name present in the lists below; every other field stays under
//! `fields`, nested as sent. A rejected line is stored as an event with
//! `outcome: "rejected"`, `reason`, and its raw bytes as `message`
//! (`fields.raw_base64` instead when they are not UTF-8); an event a WASM
//! filter failed on likewise, with `outcome: "dead_letter"` and
//! `fields.filter`.

pub mod fields;
pub mod mapped;
pub mod members;
pub mod object;
pub mod raw;
pub mod times;

use std::borrow::Cow;

use serde::Serialize;
use serde_json::{Map, Value};
use time::OffsetDateTime;

pub use fields::{FieldNames, FieldsConfig, PromotedField};
pub use mapped::{FieldsText, Mapped, from_mapped};
pub use raw::from_json;
pub use times::{epoch_seconds, format_time, parse_event_time, parse_time_text};

/// What every event of one request shares.
#[derive(Clone)]
pub struct EventContext<'a> {
    pub tenant: &'a str,
    pub log_type: &'a str,
    pub received: OffsetDateTime,
    /// `received` formatted once per request.
    pub received_text: String,
    /// `X-Request-ID` of the HTTP request, for events that carry none.
    pub request_id: Option<&'a str>,
    pub max_fields: usize,
    /// Where events keep their promoted fields (the route's names).
    pub fields: &'a FieldNames,
}

impl<'a> EventContext<'a> {
    pub fn new(
        tenant: &'a str,
        log_type: &'a str,
        received: OffsetDateTime,
        request_id: Option<&'a str>,
        max_fields: usize,
    ) -> Self {
        EventContext {
            tenant,
            log_type,
            received,
            received_text: format_time(received),
            request_id,
            max_fields,
            fields: FieldNames::builtin(),
        }
    }

    /// The same, with a route's field names.
    pub fn with_fields(self, fields: &'a FieldNames) -> Self {
        EventContext { fields, ..self }
    }
}

/// An event's `fields`: a JSON map, or a parser's own serializable parts.
pub trait Fields: Serialize {
    fn is_empty(&self) -> bool;
}

impl Fields for Map<String, Value> {
    fn is_empty(&self) -> bool {
        Map::is_empty(self)
    }
}

impl Fields for logway_syslog::Fields<'_> {
    fn is_empty(&self) -> bool {
        logway_syslog::Fields::is_empty(self)
    }
}

#[derive(Serialize)]
struct Stored<'a, F: Fields = Map<String, Value>> {
    id: String,
    tenant: &'a str,
    #[serde(rename = "type")]
    log_type: &'a str,
    received_at: &'a str,
    timestamp: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    level: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    service: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Fields::is_empty")]
    fields: F,
}

fn new_id(ctx: &EventContext) -> String {
    ulid::Ulid::from_datetime(ctx.received.into()).to_string()
}

/// A new event id: a ULID of the receive time (ids are time-sortable).
pub fn new_event_id(received: OffsetDateTime) -> String {
    ulid::Ulid::from_datetime(received.into()).to_string()
}

impl<'a, F: Fields> Stored<'a, F> {
    /// An event with only what the request gives: id, tenant, type, times
    /// (its own time is unknown: `received_at`), request id, message.
    fn base(ctx: &'a EventContext, message: Option<&'a str>, fields: F) -> Stored<'a, F> {
        Stored {
            id: new_id(ctx),
            ..Stored::base_without_id(ctx, message, fields)
        }
    }

    /// [`Stored::base`] with an empty id, for a caller that sets its own.
    fn base_without_id(
        ctx: &'a EventContext,
        message: Option<&'a str>,
        fields: F,
    ) -> Stored<'a, F> {
        Stored {
            id: String::new(),
            tenant: ctx.tenant,
            log_type: ctx.log_type,
            received_at: &ctx.received_text,
            timestamp: &ctx.received_text,
            level: None,
            service: None,
            host: None,
            request_id: ctx.request_id.map(Cow::Borrowed),
            message,
            outcome: None,
            reason: None,
            fields,
        }
    }
}

/// Number of leaf values in a JSON value, counted through nesting.
fn count_leaves(v: &Value, limit: usize) -> usize {
    match v {
        Value::Object(m) => {
            let mut n = 0;
            for v in m.values() {
                n += count_leaves(v, limit);
                if n > limit {
                    break;
                }
            }
            n
        }
        Value::Array(a) => {
            let mut n = 0;
            for v in a {
                n += count_leaves(v, limit);
                if n > limit {
                    break;
                }
            }
            n
        }
        _ => 1,
    }
}

/// Refuses an event with more than `max_fields` leaf values.
pub fn check_fields(obj: &Map<String, Value>, max_fields: usize) -> Result<(), String> {
    let leaves: usize = obj.values().map(|v| count_leaves(v, max_fields)).sum();
    if leaves > max_fields {
        return Err(format!(
            "event has more than {max_fields} fields (limits.max_fields_per_event)"
        ));
    }
    Ok(())
}

/// Builds the stored event from one JSON object of the request (checked
/// with [`check_fields`] first); `id` is the id the client chose, if any.
pub fn from_object(mut obj: Map<String, Value>, ctx: &EventContext, id: Option<String>) -> Vec<u8> {
    let names = ctx.fields;
    // The first time field present decides; one we cannot read stays in
    // `fields` as sent, and the event keeps `received_at`.
    let timestamp = names
        .take_parsed(PromotedField::Timestamp, &mut obj, parse_event_time)
        .map_or_else(|| ctx.received_text.clone(), format_time);
    let mut text = |field| names.take_text(field, &mut obj).map(Cow::Owned);
    let level = text(PromotedField::Level);
    let service = text(PromotedField::Service);
    let host = text(PromotedField::Host);
    let request_id = text(PromotedField::RequestId);
    // A structured `message` stays in `fields`.
    let message = if names.first_is_string(PromotedField::Message, &obj) {
        names.take_text(PromotedField::Message, &mut obj)
    } else {
        None
    };
    Taken {
        timestamp,
        level,
        service,
        host,
        request_id,
        message: message.map(Cow::Owned),
    }
    .store(ctx, id, obj, 256)
}

/// The promoted fields taken out of an object ([`from_object`],
/// [`raw::from_json`]), as sent.
struct Taken<'a> {
    /// Formatted with [`format_time`] (the receive time if none was read).
    timestamp: String,
    level: Option<Cow<'a, str>>,
    service: Option<Cow<'a, str>>,
    host: Option<Cow<'a, str>>,
    request_id: Option<Cow<'a, str>>,
    message: Option<Cow<'a, str>>,
}

impl Taken<'_> {
    /// The stored event: these fields (the level lowercased, the request id
    /// else the request's) and what is left in `fields`; `capacity`: bytes
    /// to reserve for it.
    fn store<F: Fields>(
        self,
        ctx: &EventContext,
        id: Option<String>,
        fields: F,
        capacity: usize,
    ) -> Vec<u8> {
        let level = self.level.map(|l| {
            if l.bytes().any(|b| b.is_ascii_uppercase()) {
                Cow::Owned(l.to_ascii_lowercase())
            } else {
                l
            }
        });
        let stored = Stored {
            id: id.unwrap_or_else(|| new_id(ctx)),
            timestamp: &self.timestamp,
            level,
            service: self.service,
            host: self.host,
            request_id: self
                .request_id
                .or_else(|| ctx.request_id.map(Cow::Borrowed)),
            message: self.message.as_deref(),
            ..Stored::base_without_id(ctx, None, fields)
        };
        let mut out = Vec::with_capacity(capacity);
        serde_json::to_writer(&mut out, &stored).expect("event serializes");
        out
    }
}

/// The promoted fields a parser has already found (syslog), so building
/// the event needs no JSON map to search.
pub struct Promoted<'a> {
    /// Formatted with [`format_time`]; `None`: the receive time.
    pub timestamp: Option<&'a str>,
    /// Lowercase already.
    pub level: Option<&'a str>,
    pub service: Option<&'a str>,
    pub host: Option<&'a str>,
    pub message: &'a str,
}

/// Builds the stored event from parts a parser produced.
pub fn from_parts<F: Fields>(p: Promoted, fields: F, ctx: &EventContext) -> Vec<u8> {
    let stored = Stored {
        timestamp: p.timestamp.unwrap_or(&ctx.received_text),
        level: p.level.map(Cow::Borrowed),
        service: p.service.map(Cow::Borrowed),
        host: p.host.map(Cow::Borrowed),
        ..Stored::base(ctx, Some(p.message), fields)
    };
    serde_json::to_vec(&stored).expect("event serializes")
}

/// Builds the stored event for a plain text line: the line is the message.
pub fn from_text(line: &str, ctx: &EventContext) -> Vec<u8> {
    serde_json::to_vec(&Stored::base(ctx, Some(line), Map::new())).expect("event serializes")
}

/// Builds the stored event for a line that could not be accepted: its raw
/// bytes (up to `keep` bytes) and the reason, so nothing is silently lost.
pub fn rejected(raw: &[u8], line: usize, reason: &str, keep: usize, ctx: &EventContext) -> Vec<u8> {
    kept_raw(raw, line, "rejected", reason, None, keep, ctx)
}

/// Builds the stored event for an event a filter failed on: `outcome:
/// "dead_letter"`, the reason, `fields.filter`, and the event's bytes as
/// the filter got them.
pub fn dead_letter(
    raw: &[u8],
    line: usize,
    filter: &str,
    reason: &str,
    keep: usize,
    ctx: &EventContext,
) -> Vec<u8> {
    kept_raw(raw, line, "dead_letter", reason, Some(filter), keep, ctx)
}

fn kept_raw(
    raw: &[u8],
    line: usize,
    outcome: &str,
    reason: &str,
    filter: Option<&str>,
    keep: usize,
    ctx: &EventContext,
) -> Vec<u8> {
    let kept = &raw[..raw.len().min(keep)];
    let mut fields = Map::new();
    fields.insert("line".into(), Value::from(line));
    fields.insert("raw_bytes".into(), Value::from(raw.len()));
    if kept.len() < raw.len() {
        fields.insert("raw_truncated".into(), Value::Bool(true));
    }
    if let Some(f) = filter {
        fields.insert("filter".into(), Value::String(f.to_string()));
    }
    let text = match std::str::from_utf8(kept) {
        Ok(s) => Some(s),
        Err(_) => {
            fields.insert("raw_base64".into(), Value::String(base64(kept)));
            None
        }
    };
    let stored = Stored {
        outcome: Some(outcome),
        reason: Some(reason),
        ..Stored::base(ctx, text, fields)
    };
    serde_json::to_vec(&stored).expect("event serializes")
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> EventContext<'static> {
        EventContext::new(
            "t",
            "web_logs",
            OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
            Some("hdr-1"),
            100,
        )
    }

    fn build(v: Value) -> Value {
        let Value::Object(m) = v else { panic!() };
        serde_json::from_slice(&from_object(m, &ctx(), None)).unwrap()
    }

    #[test]
    fn promotes_known_fields_and_keeps_the_rest_nested() {
        let e = build(
            json!({"ts": 1_600_000_000_123i64, "severity": "WARN", "app": "cart",
            "hostname": "h1", "RequestKey": "rk", "msg": "hi", "user": {"id": 7}}),
        );
        assert_eq!(e["timestamp"], "2020-09-13T12:26:40.123Z");
        assert_eq!(e["level"], "warn");
        assert_eq!(e["service"], "cart");
        assert_eq!(e["host"], "h1");
        assert_eq!(e["request_id"], "rk");
        assert_eq!(e["message"], "hi");
        assert_eq!(e["fields"], json!({"user": {"id": 7}}));
        assert_eq!(e["received_at"], "2023-11-14T22:13:20Z");
    }

    #[test]
    fn header_request_id_fills_in_and_unknown_time_is_kept() {
        let e = build(json!({"time": "yesterday", "message": "x"}));
        assert_eq!(e["request_id"], "hdr-1");
        assert_eq!(e["timestamp"], e["received_at"]);
        assert_eq!(e["fields"]["time"], "yesterday");
    }

    #[test]
    fn too_many_fields_is_an_error() {
        let many: Map<String, Value> = (0..101).map(|i| (format!("f{i}"), json!(i))).collect();
        assert!(
            check_fields(&many, 100)
                .unwrap_err()
                .contains("max_fields_per_event")
        );
        assert!(check_fields(&many, 101).is_ok());
    }

    #[test]
    fn rejected_keeps_raw_bytes() {
        let e: Value =
            serde_json::from_slice(&rejected(b"{bad", 3, "invalid JSON", 100, &ctx())).unwrap();
        assert_eq!(e["outcome"], "rejected");
        assert_eq!(e["message"], "{bad");
        assert_eq!(e["fields"]["line"], 3);
        let e: Value =
            serde_json::from_slice(&rejected(&[0xff, 0xfe], 1, "invalid UTF-8", 100, &ctx()))
                .unwrap();
        assert_eq!(e["fields"]["raw_base64"], "//4=");
    }
}
