//! Splunk's HTTP Event Collector: what Splunk forwarders' HEC output,
//! the Splunk logging libraries, Vector's and Fluent Bit's `splunk`
//! outputs send, answered as HEC answers.
//!
//! - `POST /services/collector/event` (also `/services/collector`,
//!   `/event/1.0`): JSON event objects, concatenated or whitespace-
//!   separated, each `{"time", "host", "source", "sourcetype", "index",
//!   "event", "fields"}`.
//! - `POST /services/collector/raw` (also `/raw/1.0`): lines of text; the
//!   metadata in the query (`sourcetype`, `source`, `host`, `index`).
//! - `GET /services/collector/health`: `{"text":"HEC is healthy","code":17}`.
//!
//! Key: `Authorization: Splunk <token>` (also `Bearer`, `X-Logway-Key`).
//! Success is `{"text":"Success","code":0}` once the events are durable.
//! An unusable event (not JSON, no `event`) is kept as a rejected event,
//! the others are stored, and the answer is HEC's error for it with its
//! `invalid-event-number`, as Splunk answers. Rate limits and a full WAL
//! are HEC's 503 "Server is busy" with `Retry-After`: the one status HEC
//! clients retry.

pub mod config;

use std::borrow::Cow;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use bytes::Bytes;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::event::members;
use crate::event::object::ObjectText;
use crate::pipeline::{Authenticated, Item};
use crate::sources::groups::{self, Groups};
use crate::sources::http::header_str;
use crate::state::{AppState, Core};
use crate::tenants::AccessError;
use crate::tenants::key::request_key;
use config::HecConfig;

pub const PREFIX: &str = "/services/collector";
/// Every path it serves (no tenant route may take one).
pub const PATHS: &[&str] = &[
    "/services/collector",
    "/services/collector/event",
    "/services/collector/event/1.0",
    "/services/collector/raw",
    "/services/collector/raw/1.0",
    "/services/collector/health",
    "/services/collector/health/1.0",
];

pub fn routes(config: &HecConfig) -> Router<Arc<AppState>> {
    if !config.enabled {
        return Router::new();
    }
    let event = |State(s): State<Arc<AppState>>, req: Request<Body>| collect(s, req, false);
    let raw = |State(s): State<Arc<AppState>>, req: Request<Body>| collect(s, req, true);
    Router::new()
        .route(PREFIX, any(event))
        .route(&format!("{PREFIX}/event"), any(event))
        .route(&format!("{PREFIX}/event/1.0"), any(event))
        .route(&format!("{PREFIX}/raw"), any(raw))
        .route(&format!("{PREFIX}/raw/1.0"), any(raw))
        .route(&format!("{PREFIX}/health"), get(health))
        .route(&format!("{PREFIX}/health/1.0"), get(health))
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    match state.core() {
        Ok(_) => HecError::new(StatusCode::OK, 17, "HEC is healthy").into_response(),
        Err(_) => HecError::busy(None).into_response(),
    }
}

async fn collect(state: Arc<AppState>, req: Request<Body>, raw: bool) -> Response {
    if req.method() != axum::http::Method::POST {
        return HecError::new(StatusCode::METHOD_NOT_ALLOWED, 6, "Invalid data format")
            .into_response();
    }
    let core = match state.core() {
        Ok(core) => core.clone(),
        Err(_) => return HecError::busy(None).into_response(),
    };
    match run(&core, req, raw).await {
        Ok(()) => HecError::new(StatusCode::OK, 0, "Success").into_response(),
        Err(e) => e.into_response(),
    }
}

/// HEC's answer: `{"text", "code"}` (and `invalid-event-number`).
#[derive(Debug)]
pub struct HecError {
    status: StatusCode,
    code: u16,
    text: String,
    invalid_event: Option<usize>,
    retry_after: Option<u64>,
}

impl HecError {
    fn new(status: StatusCode, code: u16, text: impl Into<String>) -> HecError {
        HecError {
            status,
            code,
            text: text.into(),
            invalid_event: None,
            retry_after: None,
        }
    }

    fn busy(retry_after: Option<u64>) -> HecError {
        HecError {
            retry_after: Some(retry_after.unwrap_or(crate::error::RETRY_AFTER_SECS)),
            ..HecError::new(StatusCode::SERVICE_UNAVAILABLE, 9, "Server is busy")
        }
    }
}

impl From<ApiError> for HecError {
    fn from(e: ApiError) -> Self {
        match &e {
            ApiError::Access(AccessError::NoKey) => {
                HecError::new(StatusCode::UNAUTHORIZED, 2, "Token is required")
            }
            ApiError::Access(AccessError::UnknownKey | AccessError::UnknownCert(_)) => {
                HecError::new(StatusCode::FORBIDDEN, 4, "Invalid token")
            }
            ApiError::Access(AccessError::NoRoute(m) | AccessError::BadType(m)) => {
                HecError::new(StatusCode::BAD_REQUEST, 7, format!("Incorrect index: {m}"))
            }
            ApiError::Access(AccessError::Forbidden(m)) | ApiError::Forbidden(m) => {
                HecError::new(StatusCode::FORBIDDEN, 4, format!("Invalid token: {m}"))
            }
            ApiError::RateLimited { retry_after, .. } => HecError::busy(Some(*retry_after)),
            ApiError::Unavailable(_) => HecError::busy(e.retry_after()),
            ApiError::PayloadTooLarge(m) => {
                HecError::new(StatusCode::PAYLOAD_TOO_LARGE, 6, m.clone())
            }
            ApiError::Internal(_) => HecError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                8,
                "Internal server error",
            ),
            ApiError::RequestTimeout(_) => {
                HecError::new(StatusCode::REQUEST_TIMEOUT, 6, e.to_string())
            }
            _ => HecError::new(
                StatusCode::BAD_REQUEST,
                6,
                format!("Invalid data format: {e}"),
            ),
        }
    }
}

impl From<crate::pipeline::Error> for HecError {
    fn from(e: crate::pipeline::Error) -> Self {
        ApiError::from(e).into()
    }
}

impl IntoResponse for HecError {
    fn into_response(self) -> Response {
        let mut body = json!({"text": self.text, "code": self.code});
        if let Some(n) = self.invalid_event {
            body["invalid-event-number"] = Value::from(n);
        }
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

/// `Authorization: Splunk <token>`, else the usual places.
fn hec_key<'a>(headers: &'a HeaderMap, query: Option<&'a str>) -> Option<&'a str> {
    header_str(headers, "authorization")
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("splunk").then(|| token.trim())
        })
        .or_else(|| request_key(headers, query))
}

async fn run(core: &Arc<Core>, req: Request<Body>, raw: bool) -> Result<(), HecError> {
    let (parts, body) = req.into_parts();
    let key = hec_key(&parts.headers, parts.uri.query());
    let query = parts.uri.query().map(query_pairs).unwrap_or_default();
    let config = core.config.hec.clone();
    let (stored, invalid) = groups::ingest::<HecError, _>(
        core,
        &parts,
        body,
        key,
        groups::Decode::ByHeader,
        move |auth, decoded| {
            if decoded.iter().all(u8::is_ascii_whitespace) {
                return Err(HecError::new(StatusCode::BAD_REQUEST, 5, "No data"));
            }
            if raw {
                Ok((prepare_raw(auth, &config, decoded, &query)?, None))
            } else {
                prepare_events(auth, &config, decoded)
            }
        },
    )
    .await?;
    if let Some(e) = invalid {
        return Err(e);
    }
    match stored.refusal("events") {
        Some(e) => Err(HecError::new(
            StatusCode::BAD_REQUEST,
            6,
            format!("Invalid data format: {e}"),
        )),
        None => Ok(()),
    }
}

fn query_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| {
            let v = percent_encoding::percent_decode_str(&v.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned();
            (k.to_string(), v)
        })
        .collect()
}

/// Concatenated event objects → items grouped by type; the first unusable
/// event's error, if any (it and the others like it are kept as rejected
/// events).
fn prepare_events<'a>(
    auth: &Authenticated,
    config: &HecConfig,
    decoded: &'a Bytes,
) -> Result<(Groups<'a>, Option<HecError>), HecError> {
    let mut groups = Groups::default();
    let mut first_invalid: Option<HecError> = None;
    // Each event read once: its members, or what else it is.
    let mut stream =
        serde_json::Deserializer::from_slice(decoded).into_iter::<members::MaybeObject>();
    let mut n = 0;
    loop {
        let start = stream.byte_offset();
        let next = stream.next();
        let Some(next) = next else { break };
        if n == config.max_events_per_request {
            return Err(ApiError::PayloadTooLarge(format!(
                "more than {} events in one request (hec.max_events_per_request)",
                config.max_events_per_request
            ))
            .into());
        }
        let end = stream.byte_offset();
        let raw_text = &decoded[start..end.max(start)];
        let (item, log_type) = match next.map(|v| v.0) {
            Ok(Some(members)) => match event_object(&members, config) {
                Ok((text, log_type)) => (Item::Json(Cow::Owned(text)), log_type),
                Err((code, text)) => {
                    first_invalid.get_or_insert_with(|| invalid(code, &text, n));
                    (bad(raw_text, text), config.default_type.clone())
                }
            },
            Ok(None) => {
                let text = "Invalid data format: an event must be a JSON object".to_string();
                first_invalid.get_or_insert_with(|| invalid(6, &text, n));
                (bad(raw_text, text), config.default_type.clone())
            }
            Err(e) => {
                // The rest of the body cannot be read: kept as one rejected event.
                let text = format!("Invalid data format: {e}");
                first_invalid.get_or_insert_with(|| invalid(6, &text, n));
                groups.push(
                    auth,
                    &config.default_type,
                    n + 1,
                    bad(&decoded[start..], text),
                    decoded.len() - start,
                )?;
                break;
            }
        };
        groups.push(auth, &log_type, n + 1, item, raw_text.len())?;
        n += 1;
    }
    Ok((groups, first_invalid))
}

fn invalid(code: u16, text: &str, n: usize) -> HecError {
    HecError {
        invalid_event: Some(n),
        ..HecError::new(StatusCode::BAD_REQUEST, code, text)
    }
}

fn bad(raw: &[u8], reason: String) -> Item<'_> {
    Item::Bad {
        raw: Cow::Borrowed(raw),
        reason,
        kind: "hec_event",
    }
}

/// The metadata members of a HEC event object, each kept when not null.
const META: [&str; 4] = ["host", "source", "sourcetype", "index"];

/// One HEC event object (its members) → the event's object as JSON text
/// and its log type, or HEC's code and text for why it is unusable.
/// The object: `fields`' members, then `event`'s (or `event` as
/// `message`), `time` as `timestamp`, then the metadata; a later member
/// wins over an earlier one of the same name.
fn event_object(
    members: &[(Cow<'_, str>, &RawValue)],
    config: &HecConfig,
) -> Result<(String, String), (u16, String)> {
    // A repeated member: the last one counts, as in a map.
    let last = |name: &str| members::last(members, name);
    let blank = || (13, "Event field cannot be blank".to_string());
    let event = match last("event") {
        None => return Err((12, "Event field is required".into())),
        Some(e) if e.get() == "null" => return Err(blank()),
        Some(e) if members::string(e).is_some_and(|s| s.trim().is_empty()) => return Err(blank()),
        Some(e) => e,
    };
    let fields = last("fields").filter(|f| f.get().starts_with('{'));
    let mut o = ObjectText::with_capacity(members.iter().map(|(_, v)| v.get().len() + 16).sum());
    if let Some(f) = fields {
        o.members_of(f.get());
    }
    match event.get().as_bytes()[0] {
        b'{' => o.members_of(event.get()),
        b'"' => o.raw("message", event.get()),
        _ => {
            let other: Value = serde_json::from_str(event.get()).unwrap_or_default();
            o.str("message", &other.to_string());
        }
    }
    if let Some(t) = last("time")
        .and_then(|t| serde_json::from_str::<Value>(t.get()).ok())
        .and_then(|t| crate::event::epoch_seconds(&t))
    {
        o.str("timestamp", &t);
    }
    let meta: Vec<(&str, &RawValue)> = META
        .iter()
        .filter_map(|k| last(k).filter(|v| v.get() != "null").map(|v| (*k, v)))
        .collect();
    for (k, v) in &meta {
        o.raw(k, v.get());
    }
    // The type field (a metadata name) as the object has it last.
    let type_value = match meta.iter().find(|(k, _)| *k == config.type_field) {
        Some((_, v)) => Some(*v),
        None => {
            member(Some(event), &config.type_field).or_else(|| member(fields, &config.type_field))
        }
    };
    let log_type = type_value
        .and_then(members::string)
        .filter(|s| !s.trim().is_empty())
        .map_or_else(|| config.default_type.clone(), Cow::into_owned);
    Ok((o.finish(), log_type))
}

/// The last member `name` of the JSON object `object`, if it is one.
fn member<'v>(object: Option<&'v RawValue>, name: &str) -> Option<&'v RawValue> {
    members::last(&members::members(object?.get())?, name)
}

/// `/raw`: each line one event, with the query's metadata.
fn prepare_raw<'a>(
    auth: &Authenticated,
    config: &HecConfig,
    decoded: &'a Bytes,
    query: &[(String, String)],
) -> Result<Groups<'a>, HecError> {
    let meta: Vec<(&str, &str)> = query
        .iter()
        .filter(|(k, _)| matches!(k.as_str(), "host" | "source" | "sourcetype" | "index"))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let log_type = meta
        .iter()
        .find(|(k, v)| *k == config.type_field && !v.trim().is_empty())
        .map_or(config.default_type.as_str(), |(_, v)| v);
    let mut groups = Groups::default();
    let lines = decoded
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace));
    for (n, line) in lines.enumerate() {
        if n == config.max_events_per_request {
            return Err(ApiError::PayloadTooLarge(format!(
                "more than {} events in one request (hec.max_events_per_request)",
                config.max_events_per_request
            ))
            .into());
        }
        let item = match std::str::from_utf8(line) {
            Ok(text) => {
                let mut o = ObjectText::with_capacity(text.len() + 64);
                for (k, v) in &meta {
                    o.str(k, v);
                }
                o.line(text);
                Item::Lined(Box::new(o.finish_lined()))
            }
            Err(_) => bad(line, "Invalid data format: a line is not UTF-8".into()),
        };
        groups.push(auth, log_type, n + 1, item, line.len())?;
    }
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(text: &str) -> Result<(Value, String), (u16, String)> {
        let members = members::members(text).unwrap();
        event_object(&members, &HecConfig::default())
            .map(|(o, t)| (serde_json::from_str(&o).unwrap(), t))
    }

    #[test]
    fn fields_then_event_then_time_and_metadata_the_later_winning() {
        let (o, log_type) = object(
            r#"{"time":1764496800.5,"host":"h1","sourcetype":"st","index":null,"other":1,
                "fields":{"a":1,"level":"x"},"event":{"a":2,"message":"m","sourcetype":"inner"}}"#,
        )
        .unwrap();
        assert_eq!(
            o,
            json!({"a":2,"level":"x","message":"m","sourcetype":"st","host":"h1",
                   "timestamp":"2025-11-30T10:00:00.5Z"})
        );
        assert_eq!(log_type, "st");
        // No metadata: the type field from the event, else from `fields`.
        let (_, t) =
            object(r#"{"event":{"sourcetype":"inner"},"fields":{"sourcetype":"f"}}"#).unwrap();
        assert_eq!(t, "inner");
        let (o, t) = object(r#"{"event":"a \"line\"","fields":{"sourcetype":"f"}}"#).unwrap();
        assert_eq!(
            (o["message"].as_str(), t.as_str()),
            (Some("a \"line\""), "f")
        );
        let (o, t) = object(r#"{"event":[1, 2]}"#).unwrap();
        assert_eq!((o["message"].as_str(), t.as_str()), (Some("[1,2]"), "hec"));
    }

    #[test]
    fn an_event_missing_or_blank_is_hec_s_error() {
        assert_eq!(object(r#"{"host":"h"}"#).unwrap_err().0, 12);
        assert_eq!(object(r#"{"event":null}"#).unwrap_err().0, 13);
        assert_eq!(object(r#"{"event":" \t"}"#).unwrap_err().0, 13);
        // The last of a repeated member counts, as in a map.
        assert_eq!(object(r#"{"event":"x","event":null}"#).unwrap_err().0, 13);
    }
}
