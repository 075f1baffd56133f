//! TCP syslog: RFC 5424 and RFC 3164 messages, octet-counting or newline
//! framing (RFC 6587), plain or over TLS (RFC 5425), into the same WAL
//! batches as HTTP ingest.
//!
//! A listener is bound to one tenant and log type in config. Syslog has no
//! keys: a listener either requires client certificates (TLS with a
//! `client_ca_file`; the certificate must carry a name the tenant lists in
//! `ingest_cert_names`) or is switched on with `unauthenticated = true`.
//! Framing and parsing live in the `logway-syslog` crate (`syslog/`, with
//! its fuzz targets); parsing uses `syslog_loose` (Vector's parser):
//! lenient, both RFCs.
//!
//! Delivery: syslog over TCP has no application-level ack. A connection
//! reads what is available and cuts the complete frames into batches of up
//! to [`MAX_BATCH`]. Up to [`BUILD_AHEAD`] batches are parsed and built at
//! once on the blocking pool while it reads on, and up to [`IN_FLIGHT`]
//! wait for their fsync, queued in the WAL in stream order. At those bounds
//! it stops reading, so a slow disk slows the senders (TCP backpressure)
//! instead of dropping messages. What was read is durable before it is
//! counted as received; what is still in a socket buffer when the process
//! dies is lost, as with any syslog receiver.
//!
//! With `filters`, a batch's messages go through the tenant's WASM chain as
//! JSON objects and then the HTTP ingest path's event building
//! ([`crate::ingest::build_filtered`]); without, events are written
//! straight from the parsed header ([`EventBuilder`]).
//!
//! An oversize frame (over `max_message_bytes`) or one that is not UTF-8 is
//! stored as a rejected event (its first `max_message_bytes` bytes) and the
//! connection continues: with octet counting the rest of the frame is
//! skipped, with newline framing everything up to the next newline.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use logway_syslog::{Frame, Framer};
use time::OffsetDateTime;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

use super::tls::{ClientCert, Tls};
use super::{accept_bounded, stopped};
use crate::Core;
use crate::batch::{self, BATCH_VERSION, BatchHeader};
use crate::config::SyslogConfig;
use crate::event::{self, EventContext, Promoted};
use crate::wal::WalError;

/// Frames per WAL batch at most.
const MAX_BATCH: usize = 2000;
const READ_CHUNK: usize = 256 * 1024;
/// WAL appends one connection may have waiting for their fsync while it
/// reads and parses on (order is kept: they are queued in order).
const IN_FLIGHT: usize = 4;
/// Batches one connection may have being built at once, on the blocking
/// pool, while it reads on: one busy connection can use both cores.
const BUILD_AHEAD: usize = 2;
/// Wait before retrying a WAL append refused for space.
const FULL_RETRY: Duration = Duration::from_millis(100);

/// Builds the stored events of syslog messages. Consecutive messages often
/// share a timestamp (RFC 3164 has whole seconds), so the last formatted
/// one is kept.
pub struct EventBuilder<'c> {
    ctx: &'c EventContext<'c>,
    now: OffsetDateTime,
    last_time: Option<(OffsetDateTime, String)>,
}

impl<'c> EventBuilder<'c> {
    pub fn new(ctx: &'c EventContext<'c>) -> Self {
        EventBuilder {
            ctx,
            now: ctx.received,
            last_time: None,
        }
    }

    /// The stored event of one message (see `logway_syslog` for the fields).
    pub fn event(&mut self, text: &str) -> Vec<u8> {
        let m = logway_syslog::parse(text, self.now);
        if let Some(t) = m.timestamp
            && self.last_time.as_ref().is_none_or(|(last, _)| *last != t)
        {
            self.last_time = Some((t, event::format_time(t)));
        }
        let timestamp = m
            .timestamp
            .and(self.last_time.as_ref().map(|(_, text)| text.as_str()));
        let promoted = Promoted {
            timestamp,
            level: m.level,
            service: m.service,
            host: m.host,
            message: m.message,
        };
        event::from_parts(promoted, m.fields, self.ctx)
    }
}

/// Accepts syslog connections until shutdown.
pub async fn serve(
    listener: TcpListener,
    config: SyslogConfig,
    core: Arc<Core>,
    tls: Option<Arc<Tls>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(config.max_connections.max(1)));
    // Shared by every connection and every batch's tasks.
    let config = Arc::new(config);
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let Some((stream, peer, permit)) = accept_bounded(&listener, &permits, &mut shutdown).await
        else {
            break;
        };
        let (core, config, shutdown, tls) =
            (core.clone(), config.clone(), shutdown.clone(), tls.clone());
        connections.spawn(async move {
            let result = match tls {
                None => connection(stream, peer, &config, core, shutdown).await,
                Some(tls) => {
                    match tokio::time::timeout(config.idle_timeout, tls.acceptor().accept(stream))
                        .await
                    {
                        Ok(Ok(stream)) => match check_client_cert(&core, &config, &stream) {
                            Ok(()) => connection(stream, peer, &config, core, shutdown).await,
                            Err(e) => {
                                tracing::warn!(%peer, error = %e, "syslog client refused");
                                Err(e)
                            }
                        },
                        Ok(Err(e)) => Err(e),
                        Err(_) => Err(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "TLS handshake timed out",
                        )),
                    }
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "syslog connection ended");
            }
            drop(permit);
        });
    }
    // Connections flush what they have read and close.
    while connections.join_next().await.is_some() {}
}

/// With a client CA, the connection's certificate must name a certificate
/// of the listener's tenant (`ingest_cert_names`).
fn check_client_cert<S>(
    core: &Core,
    config: &SyslogConfig,
    stream: &tokio_rustls::server::TlsStream<S>,
) -> std::io::Result<()> {
    if config
        .tls
        .as_ref()
        .is_none_or(|t| t.client_ca_file.is_none())
    {
        return Ok(());
    }
    let refused =
        |message: String| std::io::Error::new(std::io::ErrorKind::PermissionDenied, message);
    let cert = ClientCert::of(stream.get_ref().1)
        .ok_or_else(|| refused("no client certificate".into()))?;
    let policy = core.policy();
    match policy.tenants.tenant_of_cert(&cert) {
        Some(t) if t.name == config.tenant => Ok(()),
        _ => Err(refused(format!(
            "client certificate ({}) is not in tenant `{}`'s ingest_cert_names",
            cert.0.join(", "),
            config.tenant
        ))),
    }
}

async fn connection<S: tokio::io::AsyncRead + Unpin>(
    mut stream: S,
    peer: SocketAddr,
    config: &Arc<SyslogConfig>,
    core: Arc<Core>,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let mut framer = Framer::default();
    let mut chunk = vec![0u8; READ_CHUNK];
    // Batches being built, then waiting for their fsync; each in stream order.
    let mut building: VecDeque<JoinHandle<Batch>> = VecDeque::new();
    let mut storing: VecDeque<JoinHandle<std::io::Result<()>>> = VecDeque::new();
    // A failed read ends the connection like its end does: what was read
    // is still stored, then the error is returned.
    let mut failed = None;
    loop {
        // Read on, and queue each batch in the WAL as soon as it is built.
        let next = tokio::select! {
            built = async { building.front_mut().expect("not empty").await }, if !building.is_empty() => {
                Next::Built(built)
            }
            read = tokio::time::timeout(config.idle_timeout, stream.read(&mut chunk)) => match read {
                Ok(Ok(n)) => Next::Read(n),
                Ok(Err(e)) => {
                    failed = Some(e);
                    Next::Read(0)
                }
                Err(_) => {
                    tracing::debug!(%peer, "syslog connection idle; closing");
                    Next::Read(0)
                }
            },
            _ = stopped(&mut shutdown) => Next::Read(0),
        };
        let n = match next {
            Next::Built(built) => {
                building.pop_front();
                let batch = built.map_err(std::io::Error::other)?;
                submit(&core, config, batch, &mut storing).await?;
                continue;
            }
            Next::Read(n) => n,
        };
        if n > 0 {
            framer.push(&chunk[..n]);
        }
        // Every complete frame read so far, one batch at a time.
        loop {
            let mut frames = Vec::new();
            while frames.len() < MAX_BATCH {
                match framer.next_frame(config.max_message_bytes) {
                    Some(f) => frames.push(f),
                    None => break,
                }
            }
            if n == 0 && frames.len() < MAX_BATCH {
                frames.extend(framer.finish(config.max_message_bytes));
            }
            if frames.is_empty() {
                break;
            }
            if building.len() >= BUILD_AHEAD {
                let built = building.pop_front().expect("not empty");
                let batch = built.await.map_err(std::io::Error::other)?;
                submit(&core, config, batch, &mut storing).await?;
            }
            // Parsing, event building, filters and compression are CPU work
            // of their own: off the reactor, and beside the next read.
            let (core, config) = (core.clone(), config.clone());
            building.push_back(tokio::task::spawn_blocking(move || {
                if config.filters.is_empty() {
                    build_batch(&core, &config, frames)
                } else {
                    build_filtered_batch(&core, &config, peer, frames)
                }
            }));
        }
        if n == 0 {
            // Everything read is durable before the connection is done.
            for built in building {
                let batch = built.await.map_err(std::io::Error::other)?;
                submit(&core, config, batch, &mut storing).await?;
            }
            for pending in storing {
                pending.await.map_err(std::io::Error::other)??;
            }
            return failed.map_or(Ok(()), Err);
        }
    }
}

/// What a connection does next: read bytes (0: the end), or queue the
/// batch that finished building first.
enum Next {
    Read(usize),
    Built(Result<Batch, tokio::task::JoinError>),
}

/// Queues a batch in the WAL behind the connection's earlier ones (waiting,
/// not dropping, while the WAL is full) and leaves a task waiting for its
/// fsync, which then counts it as received; at most [`IN_FLIGHT`] wait at
/// once.
async fn submit(
    core: &Arc<Core>,
    config: &Arc<SyslogConfig>,
    batch: Batch,
    storing: &mut VecDeque<JoinHandle<std::io::Result<()>>>,
) -> std::io::Result<()> {
    if storing.len() >= IN_FLIGHT {
        let oldest = storing.pop_front().expect("not empty");
        oldest.await.map_err(std::io::Error::other)??;
    }
    let durable = loop {
        match core.wal.submit(batch.payload.clone()) {
            Ok(durable) => break durable,
            Err(WalError::Full { .. } | WalError::QueueFull) => {
                tokio::time::sleep(FULL_RETRY).await;
            }
            Err(e) => return Err(std::io::Error::other(e.to_string())),
        }
    };
    let (core, config) = (core.clone(), config.clone());
    storing.push_back(tokio::spawn(async move {
        let mut result = durable.await;
        // A full disk fails the write after it was queued: queue it again
        // (behind what the connection sent since).
        while let Err(WalError::DiskFull | WalError::Full { .. } | WalError::QueueFull) = result {
            tokio::time::sleep(FULL_RETRY).await;
            result = core.wal.append(batch.payload.clone()).await;
        }
        result.map_err(|e| std::io::Error::other(e.to_string()))?;
        core.metrics.count_stored(
            &config.tenant,
            &config.log_type,
            batch.accepted,
            &batch.rejected,
        );
        Ok(())
    }));
    Ok(())
}

/// A parsed WAL batch and what to count once it is durable.
struct Batch {
    payload: bytes::Bytes,
    accepted: usize,
    rejected: Vec<&'static str>,
}

/// What one frame is: a message's text, or a rejected event's bytes (its
/// head), reason and metric label.
enum Framed<'a> {
    Text(&'a str),
    Rejected(&'a [u8], String, &'static str),
}

fn framed(frame: &Frame, max: usize) -> Framed<'_> {
    match frame {
        Frame::Message(bytes) => match std::str::from_utf8(bytes) {
            Ok(text) => Framed::Text(text),
            Err(_) => Framed::Rejected(bytes, "syslog message is not UTF-8".into(), "invalid_utf8"),
        },
        Frame::Truncated(head) => Framed::Rejected(
            head,
            "the connection closed inside an octet-counted frame".into(),
            "truncated_frame",
        ),
        Frame::Oversize(head, len) => Framed::Rejected(
            head,
            format!("syslog message of {len} bytes is over syslog.max_message_bytes ({max})"),
            "line_too_long",
        ),
    }
}

fn context<'a>(core: &Core, config: &'a SyslogConfig, now: OffsetDateTime) -> EventContext<'a> {
    EventContext::new(
        &config.tenant,
        &config.log_type,
        now,
        None,
        core.config.limits.max_fields_per_event,
    )
}

/// The WAL batch of a listener's stored events.
fn batch(
    core: &Core,
    config: &SyslogConfig,
    received_ms: i64,
    events: Vec<Vec<u8>>,
    types: Vec<crate::batch::TypeRun>,
    rejected: Vec<&'static str>,
) -> Batch {
    let header = BatchHeader {
        v: BATCH_VERSION,
        tenant: config.tenant.clone(),
        log_type: config.log_type.clone(),
        received_ms,
        n: events.len(),
        idempotency: None,
        types,
    };
    Batch {
        payload: batch::encode(&header, &events, core.config.wal.compress()).into(),
        accepted: events.len() - rejected.len(),
        rejected,
    }
}

/// Without filters: events straight from the parsed header.
fn build_batch(core: &Core, config: &SyslogConfig, frames: Vec<Frame>) -> Batch {
    let ctx = context(core, config, OffsetDateTime::now_utc());
    let mut builder = EventBuilder::new(&ctx);
    let mut events = Vec::with_capacity(frames.len());
    let mut rejected: Vec<&'static str> = Vec::new();
    let max = config.max_message_bytes;
    for (i, frame) in frames.iter().enumerate() {
        match framed(frame, max) {
            Framed::Text(text) => events.push(builder.event(text)),
            Framed::Rejected(raw, reason, kind) => {
                events.push(event::rejected(raw, i + 1, &reason, max, &ctx));
                rejected.push(kind);
            }
        }
    }
    batch(core, config, crate::now_ms(), events, Vec::new(), rejected)
}

/// With filters: each message becomes the JSON object an HTTP client
/// would have sent for it (`timestamp`, `host`, `service`, `level`,
/// `message` and the syslog fields), which the listener's chain sees and
/// the HTTP ingest path turns into stored events (retyping, drops and dead
/// letters included).
fn build_filtered_batch(
    core: &Core,
    config: &SyslogConfig,
    peer: SocketAddr,
    frames: Vec<Frame>,
) -> Batch {
    use crate::ingest::decode::Item;
    let now = OffsetDateTime::now_utc();
    let received_ms = crate::now_ms();
    let ctx = context(core, config, now);
    let max = config.max_message_bytes;
    let items = frames
        .iter()
        .enumerate()
        .map(|(i, frame)| {
            let item = match framed(frame, max) {
                Framed::Text(text) => Item::Object(message_object(text, now), None),
                Framed::Rejected(raw, reason, kind) => Item::Bad {
                    raw: raw.into(),
                    reason,
                    kind,
                },
            };
            (i + 1, item)
        })
        .collect();
    let route = format!("syslog:{}", config.addr);
    let info = crate::filter::BatchInfo {
        tenant: &config.tenant,
        log_type: &config.log_type,
        route: &route,
        received_ms,
        client_ip: Some(peer.ip().to_string()),
    };
    let built =
        crate::ingest::build_filtered(items, &ctx, max, &core.filters, &config.filters, &info);
    batch(
        core,
        config,
        received_ms,
        built.events,
        built.types,
        built.reject_reasons,
    )
}

/// A parsed message as the JSON object a filter sees.
fn message_object(text: &str, now: OffsetDateTime) -> serde_json::Map<String, serde_json::Value> {
    use serde_json::Value;
    let m = logway_syslog::parse(text, now);
    let mut object = match serde_json::to_value(&m.fields) {
        Ok(Value::Object(fields)) => fields,
        _ => serde_json::Map::new(),
    };
    let mut put = |key: &str, value: Option<&str>| {
        if let Some(v) = value {
            object.insert(key.to_string(), Value::String(v.to_string()));
        }
    };
    put("timestamp", m.timestamp.map(event::format_time).as_deref());
    put("host", m.host);
    put("service", m.service);
    put("level", m.level);
    put("message", Some(m.message));
    object
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn to_event(text: &str) -> Value {
        let ctx = EventContext::new("t", "syslog", OffsetDateTime::now_utc(), None, 100);
        serde_json::from_slice(&EventBuilder::new(&ctx).event(text)).unwrap()
    }

    #[test]
    fn rfc5424_and_rfc3164_fields_land_in_the_event_model() {
        let e = to_event(
            r#"<165>1 2026-11-21T10:00:00.123Z web-1 checkout 4242 ID47 [exampleSDID@32473 iut="3" eventSource="App"] payment failed"#,
        );
        assert_eq!(e["timestamp"], "2026-11-21T10:00:00.123Z");
        assert_eq!(e["host"], "web-1");
        assert_eq!(e["service"], "checkout");
        assert_eq!(e["level"], "notice");
        assert_eq!(e["message"], "payment failed");
        assert_eq!(e["fields"]["procid"], 4242);
        assert_eq!(e["fields"]["msgid"], "ID47");
        assert_eq!(e["fields"]["facility"], "local4");
        assert_eq!(e["fields"]["sd"]["exampleSDID@32473"]["iut"], "3");
        let e = to_event(
            "<38>Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186",
        );
        assert_eq!(e["host"], "LabSZ");
        assert_eq!(e["service"], "sshd");
        assert_eq!(e["fields"]["procid"], 24200);
        assert_eq!(e["level"], "info");
        assert_eq!(e["message"], "Invalid user webmaster from 173.234.31.186");
    }

    #[test]
    fn consecutive_messages_with_one_timestamp_share_its_text_but_not_others() {
        let ctx = EventContext::new("t", "syslog", OffsetDateTime::now_utc(), None, 100);
        let mut b = EventBuilder::new(&ctx);
        let times: Vec<String> = [
            "<13>1 2026-11-21T10:00:00Z h a - - - one",
            "<13>1 2026-11-21T10:00:00Z h a - - - two",
            "<13>1 2026-11-21T10:00:01Z h a - - - three",
            "<13>no time at all",
        ]
        .iter()
        .map(|m| {
            let e: Value = serde_json::from_slice(&b.event(m)).unwrap();
            e["timestamp"].as_str().unwrap().to_string()
        })
        .collect();
        assert_eq!(times[0], "2026-11-21T10:00:00Z");
        assert_eq!(times[1], "2026-11-21T10:00:00Z");
        assert_eq!(times[2], "2026-11-21T10:00:01Z");
        assert_eq!(times[3], ctx.received_text);
    }

    #[test]
    fn garbage_never_panics() {
        for input in [
            "",
            "<",
            "<999>",
            "<13>1",
            "12345678901234567890 x",
            "\u{0}\u{1}",
            "<13>1 - - - - - -",
        ] {
            let e = to_event(input);
            assert!(e["id"].is_string());
        }
    }
}
