//! Beats (Lumberjack v2): what Filebeat's `output.logstash`, Logstash's
//! `lumberjack` output and pylogbeat speak to Logstash's beats input.
//!
//! A listener is bound to one tenant, like syslog: the protocol has no
//! keys, so it either requires client certificates of the tenant (TLS
//! with a `client_ca_file`) or says `unauthenticated = true`. Frames are
//! read by [`frame`]; each window's events become items (a JSON object
//! each; `@metadata` is transport metadata and is dropped, except its
//! `_id`, which becomes the event id), grouped by log type (`type`, or
//! the value of `type_field`), built, and appended to the WAL.
//!
//! **The ack is sent only once the window is durable**: that is what makes
//! a Beats client's "published" mean stored. Over a rate limit or with the
//! WAL full, the window is retried for up to [`MAX_RETRY`] while the
//! connection keeps the client waiting with keepalive acks (`2A 0`, as
//! Logstash sends), then the connection is closed and the client resends.
//! An event whose `@metadata._id` was stored before (a resend after a lost
//! ack) is not stored again. A malformed frame closes the connection with
//! a logged reason; nothing of its window is stored (nothing was acked).

pub mod config;
pub mod frame;

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use serde_json::value::RawValue;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::TenantConfig;
use crate::event::members;
use crate::event::object::ObjectText;
use crate::listen::stopped;
use crate::listen::tcp::Stream;
use crate::listen::tls::Tls;
use crate::pipeline::{Admission, Built, Claim, Claimed, Error, Item, Meta, Pipeline};
use crate::tenants::Route;
use crate::tenants::route::type_of_index;
use config::BeatsConfig;
use frame::{Limits, Window};

/// How long a window is retried (rate limit, WAL full) before the
/// connection is closed.
pub const MAX_RETRY: Duration = Duration::from_secs(60);
/// Keepalive acks while a window waits: within pylogbeat's 5 s timeout.
const KEEPALIVE: Duration = Duration::from_secs(2);
/// Longest `@metadata._id` taken as the event id.
const MAX_ID_BYTES: usize = 512;
/// Log types whose route is kept per listener, at most.
const MAX_CACHED_ROUTES: usize = 1024;

/// What every connection of one listener shares.
struct Listener {
    config: BeatsConfig,
    tenants: Vec<TenantConfig>,
    routes: Mutex<HashMap<String, Route>>,
    pipeline: Arc<Pipeline>,
    limits: Limits,
    max_line: usize,
}

impl Listener {
    fn route(&self, log_type: &str) -> Route {
        let mut routes = self.routes.lock().unwrap();
        if let Some(r) = routes.get(log_type) {
            return r.clone();
        }
        let route = self.config.route(&self.tenants, log_type);
        if routes.len() < MAX_CACHED_ROUTES {
            routes.insert(log_type.to_string(), route.clone());
        }
        route
    }
}

/// Accepts Beats connections until shutdown.
pub async fn serve(
    listener: TcpListener,
    config: BeatsConfig,
    tenants: Vec<TenantConfig>,
    pipeline: Arc<Pipeline>,
    tls: Option<Arc<Tls>>,
    shutdown: watch::Receiver<bool>,
) {
    let limits = pipeline.limits();
    let frame_limits = Limits {
        max_window: config.max_window,
        max_frame: limits.max_body_bytes.min(u32::MAX as usize) as u32,
        max_inflated: limits.max_decompressed_bytes,
    };
    let max_line = limits.max_line_bytes;
    let bound = crate::sources::BoundListener::new(
        "Beats",
        &config.tenant,
        config.tls.as_ref(),
        config.max_connections,
        config.idle_timeout,
    );
    let shared = Arc::new(Listener {
        config,
        tenants,
        routes: Mutex::new(HashMap::new()),
        pipeline: pipeline.clone(),
        limits: frame_limits,
        max_line,
    });
    let watch = shutdown.clone();
    super::serve_bound(
        listener,
        bound,
        pipeline,
        tls,
        shutdown,
        move |stream, peer| connection(stream, peer, shared.clone(), watch.clone()),
    )
    .await
}

async fn connection(
    stream: Stream,
    peer: SocketAddr,
    listener: Arc<Listener>,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let (read, mut write) = tokio::io::split(stream);
    let mut read = tokio::io::BufReader::with_capacity(64 * 1024, read);
    let idle = listener.config.idle_timeout;
    loop {
        let next = tokio::select! {
            w = tokio::time::timeout(idle, frame::read_window(&mut read, &listener.limits)) => w,
            _ = stopped(&mut shutdown) => return Ok(()),
        };
        let window = match next {
            Err(_) => {
                tracing::debug!(%peer, "Beats connection idle; closing");
                return Ok(());
            }
            Ok(Ok(None)) => return Ok(()),
            Ok(Ok(Some(w))) => w,
            Ok(Err(e)) => {
                tracing::warn!(%peer, error = %e, "Beats connection closed: bad frame; its window is not acked");
                return Err(std::io::Error::other(e.to_string()));
            }
        };
        let seq = window.ack();
        if !window.events.is_empty() {
            store(&listener, peer.ip(), window, &mut write).await?;
        }
        write.write_all(&frame::ack(seq)).await?;
        write.flush().await?;
    }
}

/// Makes a window durable, retrying what a retry can fix (rate limit, WAL
/// full, an id another connection is storing) with keepalive acks.
async fn store<W: AsyncWrite + Unpin>(
    listener: &Arc<Listener>,
    ip: IpAddr,
    window: Window,
    write: &mut W,
) -> std::io::Result<()> {
    let window = Arc::new(window);
    let start = Instant::now();
    loop {
        let (l, w) = (listener.clone(), window.clone());
        let prepared = tokio::task::spawn_blocking(move || prepare(&l, ip, &w))
            .await
            .map_err(std::io::Error::other)?;
        let wait = match try_store(&listener.pipeline, prepared).await {
            Ok(()) => return Ok(()),
            Err(Retry::After(wait, why)) if start.elapsed() < MAX_RETRY => {
                tracing::debug!(%ip, reason = %why, "Beats window waits");
                wait
            }
            Err(Retry::After(_, why)) | Err(Retry::Never(why)) => {
                tracing::warn!(%ip, reason = %why, "Beats window not stored; closing the connection (the client resends)");
                return Err(std::io::Error::other(why));
            }
        };
        write.write_all(&frame::ack(0)).await?;
        write.flush().await?;
        tokio::time::sleep(wait.min(KEEPALIVE)).await;
    }
}

enum Retry {
    After(Duration, String),
    Never(String),
}

/// One log type's share of a window.
struct Ready {
    adm: Admission,
    built: Built,
    claimed: Claimed,
    /// Bytes of its events as sent.
    bytes: usize,
}

struct Prepared {
    groups: Vec<Ready>,
    /// Some id is being stored by another connection right now.
    in_flight: bool,
}

async fn try_store(pipeline: &Arc<Pipeline>, prepared: Prepared) -> Result<(), Retry> {
    let retry = |e: Error| match e.retry_in() {
        Some(wait) => Retry::After(wait, e.to_string()),
        None => Retry::Never(e.to_string()),
    };
    if prepared.in_flight {
        return Err(Retry::After(
            Duration::from_millis(100),
            "an event id is being stored by another connection".into(),
        ));
    }
    for g in &prepared.groups {
        pipeline.received(&g.adm, g.bytes).map_err(retry)?;
        if !g.built.events.is_empty() {
            pipeline
                .check_events(&g.adm, g.built.events.len())
                .map_err(retry)?;
        }
    }
    let stores = prepared.groups.into_iter().map(|g| async move {
        if g.built.events.is_empty() {
            return Ok(());
        }
        pipeline
            .store_checked(&g.adm, g.built, None, Some(g.claimed))
            .await
    });
    for result in futures_util::future::join_all(stores).await {
        result.map_err(retry)?;
    }
    Ok(())
}

/// One log type's events of a window.
struct TypeGroup {
    log_type: String,
    /// (line, item).
    items: Vec<(usize, Item<'static>)>,
    /// Client ids: (position in `items`, id).
    ids: Vec<(usize, String)>,
    /// Bytes of its events as sent.
    bytes: usize,
}

/// A window's events → items grouped by log type → built (blocking).
fn prepare(listener: &Listener, ip: IpAddr, window: &Window) -> Prepared {
    let config = &listener.config;
    let pipeline = &listener.pipeline;
    let mut groups: Vec<TypeGroup> = Vec::new();
    for (i, (_, payload)) in window.events.iter().enumerate() {
        let (log_type, item, id) = event_item(payload, config, listener.max_line);
        let g = match groups.iter().position(|g| g.log_type == log_type) {
            Some(g) => g,
            None => {
                groups.push(TypeGroup {
                    log_type,
                    items: Vec::new(),
                    ids: Vec::new(),
                    bytes: 0,
                });
                groups.len() - 1
            }
        };
        let g = &mut groups[g];
        if let Some(id) = id {
            g.ids.push((g.items.len(), id));
        }
        g.items.push((i + 1, item));
        g.bytes += payload.len();
    }
    let mut in_flight = false;
    let groups = groups
        .into_iter()
        .map(|g| {
            let adm = pipeline.admit_listener(
                &config.tenant,
                format!("beats:{}", config.addr),
                listener.route(&g.log_type),
                Some(ip),
            );
            // Ids stored before are left out; one in flight elsewhere
            // makes the window wait.
            let c = pipeline.claim_items(&adm, g.items, g.ids);
            in_flight |= c.refused.iter().any(|r| r.2 == Claim::InFlight);
            let built = pipeline.build_with_ids(&adm, c.items, &Meta::now(), c.ids);
            Ready {
                bytes: g.bytes,
                adm,
                built,
                claimed: c.claimed,
            }
        })
        .collect();
    Prepared { groups, in_flight }
}

/// One event's JSON → its log type, item and client id (`@metadata._id`).
fn event_item(
    payload: &[u8],
    config: &BeatsConfig,
    max_line: usize,
) -> (String, Item<'static>, Option<String>) {
    let default_type = config.log_type.clone();
    let bad = |kind: &'static str, reason: String| Item::Bad {
        raw: std::borrow::Cow::Owned(payload.to_vec()),
        reason,
        kind,
    };
    if payload.len() > max_line {
        let reason = format!("event is longer than {max_line} bytes (limits.max_line_bytes)");
        return (default_type, bad("line_too_long", reason), None);
    }
    // An object: its members as sent, without `@metadata`, for the
    // pipeline to build the event from that text (`event::from_json`).
    let text = std::str::from_utf8(payload).ok();
    if let Some(all) = text.and_then(members::members) {
        let metadata = members::last(&all, "@metadata");
        let id = metadata
            .and_then(|m| members::last(&members::members(m.get())?, "_id"))
            .and_then(members::string)
            .filter(|id| !id.is_empty() && id.len() <= MAX_ID_BYTES)
            .map(Cow::into_owned);
        let log_type = config
            .type_field
            .as_deref()
            .and_then(|f| member_text(&all, f))
            .and_then(|t| type_of_index(&t))
            .unwrap_or(default_type);
        let mut o = ObjectText::with_capacity(payload.len());
        for (k, v) in all.iter().filter(|(k, _)| k != "@metadata") {
            o.raw(k, v.get());
        }
        return (log_type, Item::Json(Cow::Owned(o.finish())), id);
    }
    // Not an object (whatever `members` refuses, a full parse refuses
    // too): the full parse words why.
    let (kind, reason) = match serde_json::from_slice::<Value>(payload) {
        Err(e) => ("invalid_json", format!("invalid JSON: {e}")),
        Ok(_) => ("not_object", "event is JSON but not an object".to_string()),
    };
    (default_type, bad(kind, reason), None)
}

/// A string member by a dotted name, spelt flat or nested.
fn member_text(all: &[(Cow<'_, str>, &RawValue)], name: &str) -> Option<String> {
    if let Some(s) = members::last(all, name).and_then(members::string) {
        return Some(s.into_owned());
    }
    let mut parts = name.split('.');
    let mut value = members::last(all, parts.next()?)?;
    for part in parts {
        value = members::last(&members::members(value.get())?, part)?;
    }
    members::string(value).map(Cow::into_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(type_field: Option<&str>) -> BeatsConfig {
        let toml = format!(
            "addr = \"127.0.0.1:0\"\ntenant = \"t\"\ntype = \"beats\"\nunauthenticated = true\n{}",
            type_field.map_or(String::new(), |f| format!("type_field = \"{f}\"\n"))
        );
        toml::from_str(&toml).unwrap()
    }

    #[test]
    fn metadata_gives_the_id_and_a_field_the_type() {
        let c = config(Some("event.dataset"));
        let (ty, item, id) = event_item(
            br#"{"@metadata":{"beat":"filebeat","_id":"abc"},"event":{"dataset":"nginx.access"},"message":"m"}"#,
            &c,
            1000,
        );
        assert_eq!(ty, "nginx_access");
        assert_eq!(id.as_deref(), Some("abc"));
        let Item::Json(text) = item else { panic!() };
        assert_eq!(
            text,
            r#"{"event":{"dataset":"nginx.access"},"message":"m"}"#
        );
        // A repeated `@metadata` (the last counts), a name spelt flat.
        let (ty, _, id) = event_item(
            br#"{"@metadata":{"_id":"a"},"@metadata":{"_id":"b"},"event.dataset":"flat"}"#,
            &c,
            1000,
        );
        assert_eq!((ty.as_str(), id.as_deref()), ("flat", Some("b")));
        let (_, item, _) = event_item(b"[1]", &c, 1000);
        assert!(matches!(
            item,
            Item::Bad {
                kind: "not_object",
                ..
            }
        ));
        let (ty, item, id) = event_item(b"{not json", &c, 1000);
        assert_eq!((ty.as_str(), id), ("beats", None));
        assert!(matches!(
            item,
            Item::Bad {
                kind: "invalid_json",
                ..
            }
        ));
        let (ty, _, _) = event_item(
            br#"{"fields":{"type":"x"}}"#,
            &config(Some("fields.type")),
            1000,
        );
        assert_eq!(ty, "x");
        let (ty, _, _) = event_item(br#"{"fields":{"type":"x"}}"#, &config(None), 1000);
        assert_eq!(ty, "beats");
    }
}
