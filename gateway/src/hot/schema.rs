//! The hot index schema and event → document.
//!
//! Promoted fields are raw (exact-match) terms and fast fields, `message`
//! and `reason` are full text, every other field of the event is in the JSON
//! field `fields` (queried as `user.id:42`, or `fields.user.id:42` when the
//! name collides with a promoted field), and `_source` stores the event as
//! it is returned. `_lsn` (a fast column, not searchable) is the WAL
//! position of the event's record, so a reader can take only what was
//! indexed after a position ([`crate::alerts`] counts incrementally so).

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::{MapAccess, SeqAccess, Visitor};
use tantivy::schema::{
    DateOptions, DateTimePrecision, FAST, Field, JsonObjectOptions, OwnedValue, STRING, Schema,
    TEXT, TextFieldIndexing, TextOptions,
};
use tantivy::{DateTime, TantivyDocument};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Names a query may use directly; anything else is looked up in `fields`.
pub const PROMOTED: &[&str] = &[
    "id",
    "type",
    "timestamp",
    "received_at",
    "level",
    "service",
    "host",
    "request_id",
    "outcome",
    "reason",
    "message",
];

/// The name of the WAL position column.
pub const LSN_FIELD: &str = "_lsn";

#[derive(Clone)]
pub struct HotSchema {
    pub schema: Schema,
    /// The schema of partitions created before `_lsn` existed (they open
    /// with it; their events have no position).
    pub before_lsn: Schema,
    pub id: Field,
    pub timestamp: Field,
    pub received_at: Field,
    pub log_type: Field,
    pub level: Field,
    pub service: Field,
    pub host: Field,
    pub request_id: Field,
    pub outcome: Field,
    pub reason: Field,
    pub message: Field,
    pub fields: Field,
    pub source: Field,
    /// The end of the event's WAL record (the last field: partitions
    /// created before it existed have the same schema without it).
    pub lsn: Field,
}

impl Default for HotSchema {
    fn default() -> Self {
        Self::new()
    }
}

/// What the schema indexes beyond terms, for `index-bench` to weigh each
/// part's cost (the gateway uses the defaults).
#[derive(Debug, Clone, Copy)]
pub struct SchemaOptions {
    /// Positions on `message` (phrase queries).
    pub message_positions: bool,
    /// Positions on the nested fields (phrase queries on them).
    pub fields_positions: bool,
    /// Fast columns for every nested path (ranges, existence, aggregations).
    pub fields_fast: bool,
}

impl Default for SchemaOptions {
    fn default() -> Self {
        SchemaOptions {
            message_positions: true,
            fields_positions: true,
            fields_fast: true,
        }
    }
}

impl HotSchema {
    pub fn new() -> HotSchema {
        Self::with_options(SchemaOptions::default())
    }

    pub fn with_options(o: SchemaOptions) -> HotSchema {
        use tantivy::schema::IndexRecordOption::{WithFreqs, WithFreqsAndPositions};
        let record = |positions: bool| {
            if positions {
                WithFreqsAndPositions
            } else {
                WithFreqs
            }
        };
        let mut b = Schema::builder();
        let date = DateOptions::default()
            .set_indexed()
            .set_fast()
            .set_precision(DateTimePrecision::Milliseconds);
        let keyword = STRING | FAST;
        let id = b.add_text_field("id", STRING);
        let timestamp = b.add_date_field("timestamp", date.clone());
        let received_at = b.add_date_field("received_at", date);
        let log_type = b.add_text_field("type", keyword.clone());
        let level = b.add_text_field("level", keyword.clone());
        let service = b.add_text_field("service", keyword.clone());
        let host = b.add_text_field("host", keyword.clone());
        let request_id = b.add_text_field("request_id", keyword.clone());
        let outcome = b.add_text_field("outcome", keyword);
        let reason = b.add_text_field("reason", TEXT);
        let message = b.add_text_field(
            "message",
            TextOptions::default().set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer("default")
                    .set_index_option(record(o.message_positions)),
            ),
        );
        // Fast as well as indexed, so nested fields support ranges
        // (`fields.http.status:>=500`) and existence (`fields.user.id:*`).
        let mut json = JsonObjectOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer("default")
                .set_index_option(record(o.fields_positions)),
        );
        if o.fields_fast {
            json = json.set_fast("raw");
        }
        let fields = b.add_json_field("fields", json);
        let source = b.add_text_field("_source", TextOptions::default().set_stored());
        let lsn = b.add_u64_field(LSN_FIELD, FAST);
        let schema = b.build();
        let mut before = Schema::builder();
        for (_, entry) in schema.fields().filter(|(f, _)| *f != lsn) {
            before.add_field(entry.clone());
        }
        HotSchema {
            schema,
            before_lsn: before.build(),
            id,
            timestamp,
            received_at,
            log_type,
            level,
            service,
            host,
            request_id,
            outcome,
            reason,
            message,
            fields,
            source,
            lsn,
        }
    }

    /// Builds the document of one stored event (as written by [`crate::event`]).
    pub fn document(&self, event: &[u8]) -> Result<TantivyDocument, String> {
        self.read(event).map(|(_, _, doc)| doc)
    }

    /// The document of one stored event, with what a caller routes it by,
    /// from one pass over its JSON.
    pub fn parse(&self, event: &[u8]) -> Result<Parsed, String> {
        let (e, received_at, doc) = self.read(event)?;
        Ok(Parsed {
            id: e.id.into_owned(),
            log_type: e.log_type.into_owned(),
            received_at,
            doc,
        })
    }

    /// The stored event's own fields (borrowed), its receive time, and its
    /// document.
    fn read<'e>(
        &self,
        event: &'e [u8],
    ) -> Result<(StoredEvent<'e>, DateTime, TantivyDocument), String> {
        let mut e: StoredEvent = serde_json::from_slice(event).map_err(|e| e.to_string())?;
        let received_at = parse_date(&e.received_at)?;
        let mut doc = TantivyDocument::new();
        doc.add_text(self.id, &e.id);
        doc.add_date(self.timestamp, parse_date(&e.timestamp)?);
        doc.add_date(self.received_at, received_at);
        doc.add_text(self.log_type, &e.log_type);
        for (field, value) in [
            (self.level, &e.level),
            (self.service, &e.service),
            (self.host, &e.host),
            (self.request_id, &e.request_id),
            (self.outcome, &e.outcome),
            (self.reason, &e.reason),
            (self.message, &e.message),
        ] {
            if let Some(v) = value {
                doc.add_text(field, v);
            }
        }
        if let Some(FieldsValue(fields)) = e.fields.take() {
            doc.add_field_value(self.fields, &fields);
        }
        doc.add_text(
            self.source,
            std::str::from_utf8(event).map_err(|e| e.to_string())?,
        );
        Ok((e, received_at, doc))
    }
}

/// A stored event parsed for indexing.
pub struct Parsed {
    pub id: String,
    pub log_type: String,
    pub received_at: DateTime,
    pub doc: TantivyDocument,
}

#[derive(Deserialize)]
struct StoredEvent<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    timestamp: Cow<'a, str>,
    #[serde(borrow)]
    received_at: Cow<'a, str>,
    #[serde(rename = "type", borrow)]
    log_type: Cow<'a, str>,
    #[serde(default, borrow)]
    level: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    service: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    host: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    request_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    outcome: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    reason: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    message: Option<Cow<'a, str>>,
    #[serde(default)]
    fields: Option<FieldsValue>,
}

/// `fields`, read straight into tantivy's value with the typing of
/// `OwnedValue::from(serde_json::Value)`: integers as i64 when they fit,
/// strings in RFC 3339 form as dates. Without a JSON map in between, which
/// was a tenth of the work of turning a stored event into a document.
struct FieldsValue(OwnedValue);

impl<'de> Deserialize<'de> for FieldsValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(FieldsVisitor).map(FieldsValue)
    }
}

struct FieldsVisitor;

impl<'de> Visitor<'de> for FieldsVisitor {
    type Value = OwnedValue;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<OwnedValue, E> {
        Ok(OwnedValue::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<OwnedValue, E> {
        Ok(OwnedValue::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<OwnedValue, E> {
        Ok(OwnedValue::I64(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<OwnedValue, E> {
        Ok(i64::try_from(v).map_or(OwnedValue::U64(v), OwnedValue::I64))
    }
    fn visit_f64<E>(self, v: f64) -> Result<OwnedValue, E> {
        Ok(OwnedValue::F64(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<OwnedValue, E> {
        Ok(text_value(v).unwrap_or_else(|| OwnedValue::Str(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<OwnedValue, E> {
        Ok(text_value(&v).unwrap_or(OwnedValue::Str(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OwnedValue, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(FieldsValue(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(OwnedValue::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OwnedValue, A::Error> {
        let mut entries: Vec<(String, OwnedValue)> =
            Vec::with_capacity(map.size_hint().unwrap_or(0));
        // Stored events never repeat a key (they are written from maps); a
        // hand-made one that does has both values indexed, like an array.
        while let Some((key, FieldsValue(v))) = map.next_entry::<String, FieldsValue>()? {
            entries.push((key, v));
        }
        Ok(OwnedValue::Object(entries))
    }
}

/// A string that reads as an RFC 3339 time is a date (as tantivy types it).
fn text_value(text: &str) -> Option<OwnedValue> {
    if !text.as_bytes().first()?.is_ascii_digit() {
        return None;
    }
    let t = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    DateTime::try_from_utc(t.to_offset(time::UtcOffset::UTC)).map(OwnedValue::Date)
}

fn parse_date(text: &str) -> Result<DateTime, String> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map(DateTime::from_utc)
        .map_err(|e| format!("bad time `{text}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Object keys in order, so two values compare regardless of key order.
    fn sorted(v: OwnedValue) -> OwnedValue {
        match v {
            OwnedValue::Object(mut entries) => {
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                OwnedValue::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
            }
            OwnedValue::Array(items) => OwnedValue::Array(items.into_iter().map(sorted).collect()),
            v => v,
        }
    }

    #[test]
    fn fields_read_directly_are_typed_as_tantivy_types_json() {
        let text = r#"{"user":{"id":42,"name":"ana","neg":-7},"big":18446744073709551615,
            "ratio":0.25,"ok":true,"none":null,"tags":["a",1,{"b":"2026-11-21T10:00:00+01:00"}],
            "at":"2026-11-21T09:00:00.123Z","digits":"42abc","esc":"a\"b\u00e9"}"#;
        let FieldsValue(direct) = serde_json::from_str(text).unwrap();
        let via_map: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(text).unwrap();
        assert_eq!(sorted(direct), sorted(OwnedValue::from(via_map)));
    }
}
