//! Loki's push API: `POST /loki/api/v1/push` (and the legacy
//! `/api/prom/push`), what Promtail, Grafana Alloy's `loki.write` and the
//! Loki client libraries send; `GET /ready`.
//!
//! 1. Key: `Authorization: Basic` (its password), `Bearer`,
//!    `X-Logway-Key` → tenant. An `X-Scope-OrgID` must name that tenant.
//! 2. Body: snappy-compressed (block format) `logproto.PushRequest` for
//!    `application/x-protobuf`; JSON otherwise (`{"streams":[{"stream":
//!    {…}, "values":[["<ns>", "<line>", {metadata}?]]}]}`, or the legacy
//!    `{"labels":"{…}", "entries":[{"ts", "line"}]}`), gzip allowed.
//! 3. Each entry → an event's object: its labels and structured metadata
//!    as fields (`service_name` → `service`, `detected_level` → `level`),
//!    a JSON-object line's members (as the native path reads a JSON
//!    line) or the line as `message`, the entry's time as `timestamp`.
//!    Log type from `loki.type_labels` (`job`, then `service_name`), else
//!    `loki.default_type`.
//! 4. All groups checked against the rate limits, then stored: 204 once
//!    durable. Entries the pipeline rejected are kept as rejected events
//!    and the answer is 400 naming them, as Loki answers a push with bad
//!    entries (the good ones are stored; clients do not retry a 400).
//!    429 and 503 carry `Retry-After`; errors are plain text, as Loki's.

pub mod config;
pub mod labels;
pub mod proto;

use std::borrow::Cow;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use prost::Message;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::event::object::{LinedText, ObjectText};
use crate::pipeline::{Authenticated, Item};
use crate::sources::groups::{self, Groups};
use crate::sources::http::body;
use crate::sources::http::header_str;
use crate::state::{AppState, Core};
use crate::tenants::key::{basic_password, request_key};
use config::LokiConfig;

pub const PUSH_PATH: &str = "/loki/api/v1/push";
pub const LEGACY_PUSH_PATH: &str = "/api/prom/push";
pub const READY_PATH: &str = "/ready";

pub fn routes(config: &LokiConfig) -> Router<Arc<AppState>> {
    if !config.enabled {
        return Router::new();
    }
    Router::new()
        .route(PUSH_PATH, post(push))
        .route(LEGACY_PUSH_PATH, post(push))
        .route(READY_PATH, get(ready))
}

async fn ready(State(state): State<Arc<AppState>>) -> Response {
    match state.core() {
        Ok(_) => (StatusCode::OK, "ready\n").into_response(),
        Err(e) => refused(e),
    }
}

async fn push(State(state): State<Arc<AppState>>, req: Request<Body>) -> Response {
    let core = match state.core() {
        Ok(core) => core.clone(),
        Err(e) => return refused(e),
    };
    match run(&core, req).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => refused(e),
    }
}

/// A refusal, said as Loki says it: a status and a line of text.
fn refused(e: ApiError) -> Response {
    e.respond((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{e}\n"),
    ))
}

async fn run(core: &Arc<Core>, req: Request<Body>) -> Result<(), ApiError> {
    let (parts, body) = req.into_parts();
    let key = basic_password(&parts.headers)
        .or_else(|| request_key(&parts.headers, parts.uri.query()).map(str::to_string));
    let org = header_str(&parts.headers, "x-scope-orgid").map(str::to_string);
    let protobuf = header_str(&parts.headers, "content-type")
        .map(body::mime)
        .is_some_and(|m| m == "application/x-protobuf");
    let config = core.config.loki.clone();
    let max = core.pipeline.limits().max_decompressed_bytes;
    let (stored, _) = groups::ingest::<ApiError, _>(
        core,
        &parts,
        body,
        key.as_deref(),
        groups::Decode::ByHeader,
        move |auth, decoded| {
            check_org(org.as_deref(), auth)?;
            let groups = if protobuf {
                prepare(auth, &config, &unsnappy(decoded, max)?, true)?
            } else {
                prepare(auth, &config, decoded, false)?
            };
            Ok((groups, None))
        },
    )
    .await?;
    stored.refusal("entries").map_or(Ok(()), Err)
}

/// Loki's tenant header: accepted when it names the key's tenant.
fn check_org(org: Option<&str>, auth: &Authenticated) -> Result<(), ApiError> {
    match org.map(str::trim) {
        Some(org) if !org.is_empty() && org != auth.tenant().name => {
            Err(ApiError::Forbidden(format!(
                "X-Scope-OrgID `{org}` is not the tenant of this key (`{}`)",
                auth.tenant().name
            )))
        }
        _ => Ok(()),
    }
}

/// A snappy block (what Loki clients send), within `max` bytes.
fn unsnappy(body: &[u8], max: usize) -> Result<Bytes, ApiError> {
    let len = snap::raw::decompress_len(body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not snappy-compressed: {e}")))?;
    if len > max {
        return Err(ApiError::PayloadTooLarge(format!(
            "decompressed body is larger than {max} bytes (limits.max_decompressed_bytes)"
        )));
    }
    snap::raw::Decoder::new()
        .decompress_vec(body)
        .map(Bytes::from)
        .map_err(|e| ApiError::BadRequest(format!("the body is not snappy-compressed: {e}")))
}

/// One stream of a push, whatever its encoding.
struct Stream<'a> {
    labels: Vec<(String, Value)>,
    entries: Vec<Entry<'a>>,
}

enum Entry<'a> {
    Good {
        nanos: Option<i128>,
        line: Cow<'a, str>,
        metadata: Vec<(String, Value)>,
    },
    /// An entry that is not one; kept as a rejected event.
    Bad { raw: Vec<u8>, reason: String },
}

/// JSON pushes: Loki's current format and the legacy one.
#[derive(Deserialize)]
struct JsonPush {
    streams: Vec<JsonStream>,
}

#[derive(Deserialize)]
struct JsonStream {
    #[serde(default)]
    stream: Option<Map<String, Value>>,
    #[serde(default)]
    values: Vec<Value>,
    /// Legacy: `{job="x"}` and `entries`.
    #[serde(default)]
    labels: Option<String>,
    #[serde(default)]
    entries: Vec<LegacyEntry>,
}

#[derive(Deserialize)]
struct LegacyEntry {
    ts: String,
    line: String,
}

/// The push's entries grouped by log type (every item owned: the body may
/// be a buffer of the caller's).
fn prepare(
    auth: &Authenticated,
    config: &LokiConfig,
    decoded: &[u8],
    protobuf: bool,
) -> Result<Groups<'static>, ApiError> {
    let bad = |m: String| ApiError::BadRequest(m);
    let streams: Vec<Stream> = if protobuf {
        let push = proto::PushRequest::decode(decoded)
            .map_err(|e| bad(format!("the body is not a Loki PushRequest: {e}")))?;
        push.streams
            .into_iter()
            .map(|s| {
                let labels = labels::parse(&s.labels).map_err(bad)?;
                Ok(Stream {
                    labels: labels
                        .into_iter()
                        .map(|(k, v)| (k, Value::from(v)))
                        .collect(),
                    entries: s
                        .entries
                        .into_iter()
                        .map(|e| Entry::Good {
                            nanos: e.timestamp.map(|t| {
                                i128::from(t.seconds) * 1_000_000_000 + i128::from(t.nanos)
                            }),
                            line: Cow::Owned(e.line),
                            metadata: e
                                .structured_metadata
                                .into_iter()
                                .map(|p| (p.name, Value::from(p.value)))
                                .collect(),
                        })
                        .collect(),
                })
            })
            .collect::<Result<_, ApiError>>()?
    } else {
        let push: JsonPush = serde_json::from_slice(decoded)
            .map_err(|e| bad(format!("the body is not a Loki JSON push: {e}")))?;
        push.streams
            .into_iter()
            .map(json_stream)
            .collect::<Result<_, String>>()
            .map_err(bad)?
    };
    let entries: usize = streams.iter().map(|s| s.entries.len()).sum();
    if entries > config.max_entries_per_request {
        return Err(ApiError::PayloadTooLarge(format!(
            "{entries} entries in one push; at most {} (loki.max_entries_per_request)",
            config.max_entries_per_request
        )));
    }
    let mut groups = Groups::default();
    let mut line = 0;
    for s in streams {
        let labels = label_members(&s.labels);
        if s.labels.len() > config.max_labels_per_stream {
            return Err(bad(format!(
                "a stream has {} labels; at most {} (loki.max_labels_per_stream)",
                s.labels.len(),
                config.max_labels_per_stream
            )));
        }
        let log_type = config
            .type_labels
            .iter()
            .find_map(|name| {
                s.labels
                    .iter()
                    .find(|(k, _)| k == name)
                    .and_then(|(_, v)| match v {
                        Value::String(v) if !v.trim().is_empty() => Some(v.clone()),
                        Value::Number(n) => Some(n.to_string()),
                        _ => None,
                    })
            })
            .unwrap_or_else(|| config.default_type.clone());
        for entry in s.entries {
            line += 1;
            let (item, bytes) = match entry {
                Entry::Good {
                    nanos,
                    line: text,
                    metadata,
                } => {
                    let bytes = text.len();
                    let object = entry_object(&labels, nanos, &text, &metadata);
                    (Item::Lined(Box::new(object)), bytes)
                }
                Entry::Bad { raw, reason } => {
                    let bytes = raw.len();
                    let item = Item::Bad {
                        raw: Cow::Owned(raw),
                        reason,
                        kind: "loki_entry",
                    };
                    (item, bytes)
                }
            };
            groups.push(auth, &log_type, line, item, bytes)?;
        }
    }
    Ok(groups)
}

fn json_stream(s: JsonStream) -> Result<Stream<'static>, String> {
    let labels: Vec<(String, Value)> = match (s.stream, s.labels) {
        (Some(map), _) => map.into_iter().collect(),
        (None, Some(text)) => labels::parse(&text)?
            .into_iter()
            .map(|(k, v)| (k, Value::from(v)))
            .collect(),
        (None, None) => Vec::new(),
    };
    let mut entries: Vec<Entry> = s.values.into_iter().map(json_value).collect();
    entries.extend(
        s.entries
            .into_iter()
            .map(|e| match crate::event::parse_time_text(&e.ts) {
                Some(t) => Entry::Good {
                    nanos: Some(t.unix_timestamp_nanos()),
                    line: Cow::Owned(e.line),
                    metadata: Vec::new(),
                },
                None => Entry::Bad {
                    reason: format!("entry timestamp `{}` is not RFC 3339", e.ts),
                    raw: e.line.into_bytes(),
                },
            }),
    );
    Ok(Stream { labels, entries })
}

/// `["<ns>", "<line>"]` or `["<ns>", "<line>", {metadata}]`.
fn json_value(v: Value) -> Entry<'static> {
    let bad = |v: &Value, reason: &str| Entry::Bad {
        raw: serde_json::to_vec(v).unwrap_or_default(),
        reason: reason.to_string(),
    };
    let Value::Array(items) = &v else {
        return bad(&v, "a value must be [\"<unix ns>\", \"<line>\"]");
    };
    let nanos = match items.first() {
        Some(Value::String(s)) => s.parse::<i128>().ok(),
        Some(Value::Number(n)) => n.as_i64().map(i128::from),
        _ => None,
    };
    let (Some(nanos), Some(Value::String(line))) = (nanos, items.get(1)) else {
        return bad(&v, "a value must be [\"<unix ns>\", \"<line>\"]");
    };
    let metadata = match items.get(2) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        Some(_) => return bad(&v, "structured metadata must be an object"),
    };
    Entry::Good {
        nanos: Some(nanos),
        line: Cow::Owned(line.clone()),
        metadata,
    }
}

/// A stream's labels as the first members of its entries' objects, with
/// `service_name` and `detected_level` also as `service` and `level`
/// where the labels have none of those.
fn label_members(labels: &[(String, Value)]) -> ObjectText {
    let mut o = ObjectText::with_capacity(labels.iter().map(|(k, _)| k.len() + 24).sum());
    for (k, v) in labels {
        o.value(k, v);
    }
    for (from, to) in [("service_name", "service"), ("detected_level", "level")] {
        if !labels.iter().any(|(k, _)| k == to)
            && let Some((_, v)) = labels.iter().rev().find(|(k, _)| k == from)
        {
            o.value(to, v);
        }
    }
    o
}

/// An entry as an event's object (JSON text): the stream's labels, the
/// structured metadata, the line, the timestamp; a later member wins over
/// an earlier one of the same name.
fn entry_object(
    labels: &ObjectText,
    nanos: Option<i128>,
    line: &str,
    metadata: &[(String, Value)],
) -> LinedText {
    let mut o = labels.with_room(line.len() + 64);
    for (k, v) in metadata {
        o.value(k, v);
    }
    o.line(line);
    if let Some(t) = nanos.and_then(|n| time::OffsetDateTime::from_unix_timestamp_nanos(n).ok()) {
        o.str("timestamp", &crate::event::format_time(t));
    }
    o.finish_lined()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_metadata_line_and_time_the_later_winning() {
        let labels = label_members(&[
            ("job".into(), Value::from("j")),
            ("service_name".into(), Value::from("svc")),
            ("level".into(), Value::from("info")),
            ("detected_level".into(), Value::from("debug")),
        ]);
        let object = |line: &str| {
            let text = entry_object(
                &labels,
                Some(1_764_496_800_000_000_001),
                line,
                &[("pod".into(), Value::from("p-1"))],
            );
            match serde_json::from_str::<Value>(&text.text) {
                Ok(v) => v,
                Err(_) => serde_json::from_str::<Value>(&text.fallback().unwrap()).unwrap(),
            }
        };
        assert_eq!(
            object(r#"{"level":"error","msg":"m"}"#),
            serde_json::json!({"job":"j","service_name":"svc","level":"error",
                "detected_level":"debug","service":"svc","pod":"p-1","msg":"m",
                "timestamp":"2025-11-30T10:00:00.000000001Z"})
        );
        assert_eq!(object("plain")["message"], "plain");
        assert_eq!(object("{plain}")["message"], "{plain}");
        assert_eq!(object("plain")["level"], "info");
    }
}
