//! GELF (Graylog Extended Log Format): what graypy, the GELF logging
//! libraries, Docker's `gelf` log driver and Logstash's gelf output send.
//!
//! - HTTP: `POST /gelf` on the HTTP listener, one message per request, key
//!   as for native ingest (`?key=` for clients without headers); 202 once
//!   durable.
//! - [`udp`]: chunked datagrams reassembled (at most 128 chunks, with a
//!   timeout and a memory bound); lossy by nature: every message dropped
//!   or left incomplete is counted in `logway_gelf_dropped_total`.
//! - [`tcp`]: NUL-terminated messages, plain or TLS, with backpressure:
//!   a connection reads on only once what it read is durable.
//!
//! A message may be zlib, gzip or plain JSON, told by its first bytes
//! (clients send `Content-Encoding: gzip,deflate` with zlib bodies).
//!
//! | GELF | Logway event |
//! |---|---|
//! | `short_message` | `message` (`full_message` when there is none) |
//! | `full_message` | `full_message` |
//! | `host` | `host` |
//! | `timestamp` (seconds with a fraction) | `timestamp` |
//! | `level` (syslog severity 0-7) | `level`: `emerg` … `debug`, as syslog's |
//! | `_name` (additional fields) | `name` |
//! | `facility`, `file`, `line`, … | fields of their own name |

pub mod config;
pub mod tcp;
pub mod udp;

use std::borrow::Cow;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::pipeline::{Admission, Item, Meta, Pipeline};
use crate::sources::groups::{self, Groups};
use crate::sources::http::body::{Encoding, Inflate, inflate};
use crate::state::AppState;
use crate::tenants::key::request_key;
use config::GelfConfig;

pub const HTTP_PATH: &str = "/gelf";

/// Syslog's severity names, as the syslog source writes them.
const LEVELS: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

pub fn routes(config: &GelfConfig) -> Router<Arc<AppState>> {
    if !config.enabled {
        return Router::new();
    }
    Router::new().route(HTTP_PATH, post(http))
}

async fn http(State(state): State<Arc<AppState>>, req: Request<Body>) -> Response {
    let core = match state.core() {
        Ok(core) => core.clone(),
        Err(e) => return e.into_response(),
    };
    // graypy sends and closes without reading the answer, which would
    // cancel this handler: the work runs in a task of its own, so a
    // message that was received is stored all the same.
    let task = tokio::spawn(async move { http_message(core, req).await });
    match task.await {
        Ok(Ok(())) => StatusCode::ACCEPTED.into_response(),
        Ok(Err(e)) => e.into_response(),
        Err(e) => ApiError::Internal(format!("GELF task failed: {e}")).into_response(),
    }
}

async fn http_message(core: Arc<crate::state::Core>, req: Request<Body>) -> Result<(), ApiError> {
    let (parts, body) = req.into_parts();
    let key = request_key(&parts.headers, parts.uri.query());
    let log_type = core.config.gelf.default_type.clone();
    let max = core.config.gelf.max_message_bytes;
    // One message, compressed or not whatever `Content-Encoding` says
    // (graypy sends `gzip,deflate` for zlib): `item` tells by its bytes.
    let (stored, _) = groups::ingest::<ApiError, _>(
        &core,
        &parts,
        body,
        key,
        groups::Decode::AsSent,
        move |auth, body| {
            let mut groups = Groups::default();
            groups.push(auth, &log_type, 1, item(body, max), body.len())?;
            Ok((groups, None))
        },
    )
    .await?;
    // A message a filter dropped: nothing to store, as the native routes say.
    if stored.events == 0 {
        return Err(crate::pipeline::Error::Empty.into());
    }
    match stored.reason {
        Some(r) if stored.rejected > stored.dead_lettered => Err(ApiError::BadRequest(format!(
            "not a GELF message (kept as a rejected event): {r}"
        ))),
        _ => Ok(()),
    }
}

/// Messages (as received: compressed or not) → one batch's events.
/// Blocking: call it off the reactor.
pub fn build(
    pipeline: &Pipeline,
    adm: &Admission,
    messages: &[&[u8]],
    max: usize,
) -> crate::pipeline::Built {
    let items = messages
        .iter()
        .enumerate()
        .map(|(i, m)| (i + 1, item(m, max)))
        .collect();
    pipeline.build(adm, items, &Meta::now())
}

/// One message → its item: the event's object, or why it is not one.
pub fn item(message: &[u8], max: usize) -> Item<'_> {
    let bad = |reason: String| Item::Bad {
        raw: Cow::Borrowed(message),
        reason,
        kind: "gelf",
    };
    let json = match decompress(message, max) {
        Ok(j) => j,
        Err(reason) => return bad(reason),
    };
    match serde_json::from_slice::<Value>(&json) {
        Ok(Value::Object(obj)) => Item::Object(map(obj), None),
        Ok(_) => bad("a GELF message must be a JSON object".into()),
        Err(e) => bad(format!("a GELF message must be JSON: {e}")),
    }
}

/// zlib, gzip or plain, by the first bytes; at most `max` bytes out.
fn decompress(message: &[u8], max: usize) -> Result<Cow<'_, [u8]>, String> {
    inflate(message, Encoding::sniff(message), max).map_err(|e| match e {
        Inflate::TooLarge => format!("message is larger than {max} bytes (gelf.max_message_bytes)"),
        Inflate::Corrupt(e) => format!("corrupt compressed GELF message: {e}"),
    })
}

/// A GELF object → the event's object.
fn map(obj: Map<String, Value>) -> Map<String, Value> {
    let mut m = Map::new();
    let mut full = None;
    for (k, v) in obj {
        match k.as_str() {
            "version" => {}
            "short_message" => {
                m.insert("message".into(), v);
            }
            "full_message" => full = Some(v),
            "timestamp" => {
                let t = crate::event::epoch_seconds(&v).map_or(v, Value::from);
                m.insert("timestamp".into(), t);
            }
            "level" => {
                let level = v
                    .as_u64()
                    .and_then(|n| LEVELS.get(n as usize))
                    .map_or(v, |name| Value::from(*name));
                m.insert("level".into(), level);
            }
            _ => match k.strip_prefix('_') {
                Some(name) if !name.is_empty() => {
                    m.insert(name.to_string(), v);
                }
                _ => {
                    m.insert(k, v);
                }
            },
        }
    }
    if let Some(full) = full {
        if m.contains_key("message") {
            m.insert("full_message".into(), full);
        } else {
            m.insert("message".into(), full);
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::io::Write;

    fn object(item: Item) -> Value {
        match item {
            Item::Object(m, _) => Value::Object(m),
            Item::Bad { reason, .. } => panic!("bad: {reason}"),
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn maps_a_message_in_every_encoding() {
        let msg = br#"{"version":"1.1","host":"h1","short_message":"disk full","full_message":"trace...","timestamp":1764496800.5,"level":3,"_user":"ana","facility":"app","line":12}"#;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(msg).unwrap();
        let zlib = z.finish().unwrap();
        let mut g = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        g.write_all(msg).unwrap();
        let gz = g.finish().unwrap();
        for bytes in [&msg[..], &zlib, &gz] {
            let v = object(item(bytes, 1 << 20));
            assert_eq!(
                v,
                json!({"host":"h1","message":"disk full","full_message":"trace...",
                       "timestamp":"2025-11-30T10:00:00.5Z","level":"err","user":"ana",
                       "facility":"app","line":12})
            );
        }
    }

    #[test]
    fn refuses_what_is_not_a_message() {
        assert!(matches!(item(b"[1,2]", 100), Item::Bad { .. }));
        assert!(matches!(item(b"not json", 100), Item::Bad { .. }));
        assert!(matches!(item(&[b' '; 200], 100), Item::Bad { .. }));
        let v = object(item(br#"{"full_message":"only full","level":9}"#, 100));
        assert_eq!(v, json!({"message":"only full","level":9}));
    }
}
