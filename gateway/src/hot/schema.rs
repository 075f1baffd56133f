//! The hot index schema and event → document.
//!
//! Promoted fields are raw (exact-match) terms and fast fields, `message`
//! and `reason` are full text, every other field of the event is in the JSON
//! field `fields` (queried as `user.id:42`, or `fields.user.id:42` when the
//! name collides with a promoted field), and `_source` stores the event as
//! it is returned.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::{Map, Value};
use tantivy::schema::{
    DateOptions, DateTimePrecision, FAST, Field, JsonObjectOptions, STRING, Schema, TEXT,
    TextFieldIndexing, TextOptions,
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

#[derive(Clone)]
pub struct HotSchema {
    pub schema: Schema,
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
}

impl Default for HotSchema {
    fn default() -> Self {
        Self::new()
    }
}

impl HotSchema {
    pub fn new() -> HotSchema {
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
        let message = b.add_text_field("message", TEXT);
        // Fast as well as indexed, so nested fields support ranges
        // (`http.status:>=500`) and existence (`user.id:*`).
        let json = JsonObjectOptions::default()
            .set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer("default")
                    .set_index_option(tantivy::schema::IndexRecordOption::WithFreqsAndPositions),
            )
            .set_fast("raw");
        let fields = b.add_json_field("fields", json);
        let source = b.add_text_field("_source", TextOptions::default().set_stored());
        HotSchema {
            schema: b.build(),
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
        }
    }

    /// Builds the document of one stored event (as written by [`crate::event`]).
    pub fn document(&self, event: &[u8]) -> Result<TantivyDocument, String> {
        self.parse(event).map(|p| p.doc)
    }

    /// The document of one stored event, with what a caller routes it by,
    /// from one pass over its JSON.
    pub fn parse(&self, event: &[u8]) -> Result<Parsed, String> {
        let e: StoredEvent = serde_json::from_slice(event).map_err(|e| e.to_string())?;
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
        if let Some(fields) = e.fields {
            doc.add_field_value(self.fields, &tantivy::schema::OwnedValue::from(fields));
        }
        doc.add_text(
            self.source,
            std::str::from_utf8(event).map_err(|e| e.to_string())?,
        );
        Ok(Parsed {
            id: e.id.into_owned(),
            log_type: e.log_type.into_owned(),
            received_at,
            doc,
        })
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
    fields: Option<Map<String, Value>>,
}

fn parse_date(text: &str) -> Result<DateTime, String> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map(DateTime::from_utc)
        .map_err(|e| format!("bad time `{text}`: {e}"))
}
