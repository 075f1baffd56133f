//! Datadog's logs intake: `POST /api/v2/logs` (and `/v1/input`, as older
//! agents send), what the Datadog Agent (`logs_dd_url`), its libraries'
//! `LogsApi.submit_log`, Vector's and Fluent Bit's `datadog` outputs send.
//!
//! Key: `DD-API-KEY` (also `Bearer`, `X-Logway-Key`, or `/v1/input/<key>`).
//! Body: a JSON array of items (`message`, `ddsource`, `ddtags`,
//! `hostname`, `service`, `status`, `timestamp`, anything else), gzip,
//! deflate or zstd; a single object is one item, and `{}` (the Agent's
//! connectivity check) stores nothing. Success is 202 `{}` once durable.
//! Unusable items are kept as rejected events and answered 400 with the
//! others stored (the Agent drops a 400 batch, so nothing is sent twice);
//! rate limits are 429 and a full WAL 503, with `Retry-After` (retried).

pub mod config;

use std::borrow::Cow;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::event::members;
use crate::event::object::{LinedText, ObjectText};
use crate::pipeline::{Authenticated, Item};
use crate::sources::groups::{self, Groups};
use crate::sources::http::header_str;
use crate::state::{AppState, Core};
use crate::tenants::key::request_key;
use config::DatadogConfig;

pub const V2_PATH: &str = "/api/v2/logs";
pub const V1_PATH: &str = "/v1/input";

pub fn routes(config: &DatadogConfig) -> Router<Arc<AppState>> {
    if !config.enabled {
        return Router::new();
    }
    Router::new()
        .route(V2_PATH, post(intake))
        .route(V1_PATH, post(intake))
        .route(&format!("{V1_PATH}/{{key}}"), post(intake))
}

async fn intake(State(state): State<Arc<AppState>>, req: Request<Body>) -> Response {
    let core = match state.core() {
        Ok(core) => core.clone(),
        Err(e) => return refused(e),
    };
    match run(&core, req).await {
        Ok(()) => (StatusCode::ACCEPTED, axum::Json(json!({}))).into_response(),
        Err(e) => refused(e),
    }
}

/// A refusal as the intake says it: `{"errors": ["..."]}`.
fn refused(e: ApiError) -> Response {
    e.respond(axum::Json(json!({"errors": [e.to_string()]})))
}

async fn run(core: &Arc<Core>, req: Request<Body>) -> Result<(), ApiError> {
    let (parts, body) = req.into_parts();
    let path_key = parts
        .uri
        .path()
        .strip_prefix(V1_PATH)
        .and_then(|r| r.strip_prefix('/'))
        .filter(|k| !k.is_empty());
    let key = header_str(&parts.headers, "dd-api-key")
        .or(path_key)
        .or_else(|| request_key(&parts.headers, parts.uri.query()));
    let query_tags = parts.uri.query().and_then(|q| {
        q.split('&')
            .find_map(|p| p.strip_prefix("ddtags="))
            .map(|v| {
                percent_encoding::percent_decode_str(v)
                    .decode_utf8_lossy()
                    .into_owned()
            })
    });
    let config = core.config.datadog.clone();
    let (stored, _) = groups::ingest::<ApiError, _>(
        core,
        &parts,
        body,
        key,
        groups::Decode::ByHeader,
        move |auth, decoded| {
            Ok((
                prepare(auth, &config, decoded, query_tags.as_deref())?,
                None,
            ))
        },
    )
    .await?;
    stored.refusal("items").map_or(Ok(()), Err)
}

fn prepare<'a>(
    auth: &Authenticated,
    config: &DatadogConfig,
    decoded: &'a Bytes,
    query_tags: Option<&str>,
) -> Result<Groups<'a>, ApiError> {
    let bad_body = |m: String| ApiError::BadRequest(m);
    let text = std::str::from_utf8(decoded)
        .map_err(|e| bad_body(format!("the body is not UTF-8: {e}")))?;
    // Each item's own text: what the byte limits count and a bad item
    // keeps. An array's items are read with their text in one pass.
    let items: Vec<(&'a str, Option<Intake<'a>>)> = if text.trim_start().starts_with('[') {
        match members::elements::<Intake>(text) {
            Some(items) => items,
            None => {
                // Not an array: serde_json says where and why.
                let e = serde_json::from_str::<Vec<&RawValue>>(text)
                    .err()
                    .map_or_else(|| "not read".to_string(), |e| e.to_string());
                return Err(bad_body(format!("the body is not a JSON array: {e}")));
            }
        }
    } else {
        let one: &RawValue = serde_json::from_str(text)
            .map_err(|e| bad_body(format!("the body is not JSON: {e}")))?;
        // `{}` alone is the Agent's connectivity check: nothing to store.
        if one.get().trim() == "{}" {
            Vec::new()
        } else {
            vec![(one.get(), None)]
        }
    };
    if items.len() > config.max_items_per_request {
        return Err(ApiError::PayloadTooLarge(format!(
            "{} items in one request; at most {} (datadog.max_items_per_request)",
            items.len(),
            config.max_items_per_request
        )));
    }
    let mut groups = Groups::default();
    for (n, (raw, read)) in items.into_iter().enumerate() {
        // An item the one pass did not read: its members, if an object.
        let read = read.or_else(|| members::members(raw).map(Intake::from_members));
        let (built, log_type) = match read {
            Some(intake) => {
                let (text, log_type) = map_item(intake, config, query_tags);
                (Item::Lined(Box::new(text)), log_type)
            }
            None => (
                Item::Bad {
                    raw: Cow::Borrowed(raw.as_bytes()),
                    reason: "a log item must be a JSON object".into(),
                    kind: "datadog_item",
                },
                config.default_type.clone(),
            ),
        };
        groups.push(auth, &log_type, n + 1, built, raw.len())?;
    }
    Ok(groups)
}

/// An intake item's members, and its message's text when it is a string
/// (read unescaped in the same pass).
struct Intake<'a> {
    /// The members but a string message.
    members: Vec<(Cow<'a, str>, &'a RawValue)>,
    message: Option<Cow<'a, str>>,
}

impl<'a> Intake<'a> {
    fn from_members(members: Vec<(Cow<'a, str>, &'a RawValue)>) -> Intake<'a> {
        Intake {
            members,
            message: None,
        }
    }

    /// The message: the last one, as a map keeps the last of a repeated
    /// key; a string's text, else its JSON.
    fn message(&self) -> Option<Result<Cow<'a, str>, &'a RawValue>> {
        match members::last(&self.members, "message") {
            Some(v) => Some(members::string(v).ok_or(v)),
            None => self.message.clone().map(Ok),
        }
    }
}

/// One pass over an item: an object whose messages are strings (anything
/// else is read again as members, by [`members::members`]).
impl<'de> serde::Deserialize<'de> for Intake<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{MapAccess, Visitor};
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Intake<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a log item")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Intake<'de>, A::Error> {
                let mut intake = Intake::from_members(Vec::with_capacity(8));
                while let Some(members::Key(k)) = map.next_key()? {
                    if k == "message" {
                        intake.message = Some(map.next_value::<members::Key>()?.0);
                    } else {
                        intake.members.push((k, map.next_value()?));
                    }
                }
                Ok(intake)
            }
        }
        d.deserialize_map(V)
    }
}

/// The members an intake item's mapping takes; the others are kept as
/// they are, unless a mapped member has their name.
const MAPPED: [&str; 5] = ["message", "status", "hostname", "timestamp", "ddtags"];

/// One intake item (its members) → the event's object as JSON text and
/// its log type. The object: the item's other members, then the message
/// (a JSON object's members, as the native path reads a JSON line; the
/// intake parses JSON messages too), `status` as `level`, `hostname` as
/// `host`, `timestamp` (milliseconds since the epoch: the event model
/// reads them as they are), the tags; a later member wins over an earlier
/// one of the same name.
fn map_item(
    intake: Intake<'_>,
    config: &DatadogConfig,
    query_tags: Option<&str>,
) -> (LinedText, String) {
    let members = &intake.members;
    // A repeated member: the last one counts, as in a map.
    let last = |name: &str| members::last(members, name);
    let log_type = last(&config.type_field)
        .and_then(members::string)
        .filter(|s| !s.trim().is_empty())
        .map_or_else(|| config.default_type.clone(), Cow::into_owned);
    let message_len = intake.message.as_ref().map_or(0, |m| m.len());
    let mut o = ObjectText::with_capacity(
        members
            .iter()
            .map(|(_, v)| v.get().len() + 16)
            .sum::<usize>()
            + message_len
            + 16,
    );
    for (k, v) in members {
        if !MAPPED.contains(&k.as_ref()) {
            o.raw(k, v.get());
        }
    }
    match intake.message() {
        Some(Ok(line)) => o.line(&line),
        Some(Err(json)) => o.raw("message", json.get()),
        None => {}
    }
    if let Some(status) = last("status") {
        o.raw("level", status.get());
    }
    if let Some(host) = last("hostname") {
        o.raw("host", host.get());
    }
    if let Some(t) = last("timestamp") {
        o.raw("timestamp", t.get());
    }
    let item_tags = last("ddtags").and_then(members::string);
    let mut tags = Map::new();
    for list in [query_tags, item_tags.as_deref()].into_iter().flatten() {
        for tag in list.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            match tag.split_once(':') {
                Some((k, v)) => tags.insert(k.to_string(), Value::from(v)),
                None => tags.insert(tag.to_string(), Value::Bool(true)),
            };
        }
    }
    if !tags.is_empty() {
        o.value("tags", &tags);
    }
    (o.finish_lined(), log_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_item_maps_with_the_mapped_members_winning() {
        let text = r#"{"message":"{\"level\":\"info\",\"host\":\"x\",\"a\":1}","status":"warn",
            "hostname":"h","ddsource":"nginx","ddtags":"env:prod, canary","a":0,"service":"s",
            "timestamp":1764496800123}"#;
        let members = members::members(text).unwrap();
        let (o, log_type) = map_item(
            Intake::from_members(members),
            &DatadogConfig::default(),
            Some("team:core"),
        );
        let o: Value = serde_json::from_str(&o.text).unwrap();
        assert_eq!(
            o,
            json!({"a":1,"level":"warn","host":"h","ddsource":"nginx","service":"s",
                   "timestamp":1764496800123u64,
                   "tags":{"team":"core","env":"prod","canary":true}})
        );
        assert_eq!(log_type, "nginx");
        let members = members::members(r#"{"message":"plain","ddsource":" "}"#).unwrap();
        let (o, log_type) = map_item(
            Intake::from_members(members),
            &DatadogConfig::default(),
            None,
        );
        assert_eq!(o.text, r#"{"ddsource":" ","message":"plain"}"#);
        assert_eq!(log_type, DatadogConfig::default().default_type);
    }

    #[test]
    fn one_pass_reads_items_as_their_members_do() {
        let body = r#"[{"message":"{\"a\":1,\"m\":\"x\\ny\"}","ddsource":"s","ddtags":"k:v"},
            {"message":"first","hostname":"h","message":"last \u00e9"},
            {"message":{"an":"object"},"status":"error"},
            {"message":"s","message":7},
            {"service":"no message"}, 5, "text", {"message":"{not json}"}]"#;
        let items = members::elements::<Intake>(body).unwrap();
        assert_eq!(items.len(), 8);
        // Items with a non-string message, and non-objects, are not read
        // in the one pass.
        let read: Vec<bool> = items.iter().map(|(_, i)| i.is_some()).collect();
        assert_eq!(read, [true, true, false, false, true, false, false, true]);
        let config = DatadogConfig::default();
        for (raw, intake) in items {
            let Some(intake) = intake else { continue };
            let again = Intake::from_members(members::members(raw).unwrap());
            let (one, one_type) = map_item(intake, &config, Some("q:1"));
            let (two, two_type) = map_item(again, &config, Some("q:1"));
            assert_eq!(
                (&one.text, one.fallback()),
                (&two.text, two.fallback()),
                "{raw}"
            );
            assert_eq!(one_type, two_type);
        }
    }
}
