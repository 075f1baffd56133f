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
    let (stored, _) =
        groups::ingest::<ApiError, _>(core, &parts, body, key, move |auth, decoded| {
            Ok((
                prepare(auth, &config, decoded, query_tags.as_deref())?,
                None,
            ))
        })
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
    // Each item's own text: what the byte limits count and a bad item keeps.
    let items: Vec<&'a RawValue> = if text.trim_start().starts_with('[') {
        serde_json::from_str(text)
            .map_err(|e| bad_body(format!("the body is not a JSON array: {e}")))?
    } else {
        let one: &RawValue = serde_json::from_str(text)
            .map_err(|e| bad_body(format!("the body is not JSON: {e}")))?;
        // `{}` alone is the Agent's connectivity check: nothing to store.
        if one.get().trim() == "{}" {
            Vec::new()
        } else {
            vec![one]
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
    for (n, raw) in items.into_iter().enumerate() {
        let (item, log_type) = match serde_json::from_str::<Value>(raw.get()) {
            Ok(Value::Object(obj)) => {
                let (m, log_type) = map_item(obj, config, query_tags);
                (Item::Object(m, None), log_type)
            }
            _ => (
                Item::Bad {
                    raw: Cow::Borrowed(raw.get().as_bytes()),
                    reason: "a log item must be a JSON object".into(),
                    kind: "datadog_item",
                },
                config.default_type.clone(),
            ),
        };
        groups.push(auth, &log_type, n + 1, item, raw.get().len())?;
    }
    Ok(groups)
}

/// One intake item → the event's object and its log type.
fn map_item(
    mut obj: Map<String, Value>,
    config: &DatadogConfig,
    query_tags: Option<&str>,
) -> (Map<String, Value>, String) {
    let log_type = match obj.get(&config.type_field) {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        _ => config.default_type.clone(),
    };
    let mut m = Map::new();
    // A message that is a JSON object is read as the native path reads a
    // JSON line (the intake parses JSON messages too).
    match obj.remove("message") {
        Some(Value::String(s)) => groups::add_line(&mut m, &s),
        Some(other) => {
            m.insert("message".into(), other);
        }
        None => {}
    }
    if let Some(status) = obj.remove("status") {
        m.insert("level".into(), status);
    }
    if let Some(host) = obj.remove("hostname") {
        m.insert("host".into(), host);
    }
    // Milliseconds since the epoch: the event model reads them as they are.
    if let Some(t) = obj.remove("timestamp") {
        m.insert("timestamp".into(), t);
    }
    let mut tags = Map::new();
    let item_tags = match obj.remove("ddtags") {
        Some(Value::String(s)) => Some(s),
        _ => None,
    };
    for list in [query_tags, item_tags.as_deref()].into_iter().flatten() {
        for tag in list.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            match tag.split_once(':') {
                Some((k, v)) => tags.insert(k.to_string(), Value::from(v)),
                None => tags.insert(tag.to_string(), Value::Bool(true)),
            };
        }
    }
    if !tags.is_empty() {
        m.insert("tags".into(), Value::Object(tags));
    }
    for (k, v) in obj {
        m.entry(k).or_insert(v);
    }
    (m, log_type)
}
