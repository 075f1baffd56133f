//! TCP syslog: RFC 5424 and RFC 3164 messages, octet-counting or newline
//! framing (RFC 6587), plain or over TLS (RFC 5425), into the same WAL
//! batches as HTTP ingest.
//!
//! A listener is bound to one tenant and log type in config and has no
//! authentication, so it must be switched on with `unauthenticated = true`.
//! Parsing uses `syslog_loose` (Vector's parser): lenient, both RFCs.
//!
//! Delivery: syslog over TCP has no application-level ack. A connection
//! reads what is available, parses every complete frame, appends them as one
//! WAL batch and waits for the fsync before it reads again, so a slow disk
//! slows the senders (TCP backpressure) instead of dropping messages. What
//! was read is durable before it is counted as received; what is still in a
//! socket buffer when the process dies is lost, as with any syslog receiver.
//!
//! An oversize frame (over `max_message_bytes`) or one that is not UTF-8 is
//! stored as a rejected event (its first `max_message_bytes` bytes) and the
//! connection continues: with octet counting the rest of the frame is
//! skipped, with newline framing everything up to the next newline.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use time::OffsetDateTime;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use super::tls::Tls;
use super::{accept_bounded, stopped};
use crate::Core;
use crate::batch::{self, BATCH_VERSION, BatchHeader};
use crate::config::SyslogConfig;
use crate::event::{self, EventContext};
use crate::wal::WalError;

/// Frames per WAL batch at most.
const MAX_BATCH: usize = 2000;
const READ_CHUNK: usize = 256 * 1024;
/// WAL appends one connection may have waiting for their fsync while it
/// reads and parses on (order is kept: the WAL queue is FIFO).
const IN_FLIGHT: usize = 4;
/// Wait before retrying a WAL append refused for space.
const FULL_RETRY: Duration = Duration::from_millis(100);

/// One frame cut from the stream.
#[derive(Debug, PartialEq)]
pub enum Frame {
    Message(Vec<u8>),
    /// A frame over the size limit: its first bytes and its full length.
    Oversize(Vec<u8>, usize),
    /// The connection closed inside an octet-counted frame: what arrived.
    Truncated(Vec<u8>),
}

/// Cuts frames from a byte stream: octet counting (`LEN SP MSG`) when a
/// frame starts with a digit, else up to a newline. Its buffer holds at
/// most one read chunk plus `max_message_bytes`: longer frames are cut.
#[derive(Default)]
pub struct Framer {
    buf: Vec<u8>,
    /// Bytes of an oversize frame still to drop (octet counting).
    skip: usize,
    /// Dropping an oversize newline frame until its newline.
    skip_line: bool,
}

impl Framer {
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete frame, if any.
    pub fn next_frame(&mut self, max: usize) -> Option<Frame> {
        if self.skip > 0 {
            let n = self.skip.min(self.buf.len());
            self.buf.drain(..n);
            self.skip -= n;
            if self.skip > 0 {
                return None;
            }
        }
        if self.skip_line {
            match self.buf.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.buf.drain(..=i);
                    self.skip_line = false;
                }
                None => {
                    self.buf.clear();
                    return None;
                }
            }
        }
        // Blank lines between frames carry nothing.
        let start = self.buf.iter().position(|b| !b.is_ascii_whitespace())?;
        self.buf.drain(..start);
        if self.buf[0].is_ascii_digit() {
            let space = self.buf.iter().take(11).position(|&b| b == b' ');
            if let Some(sp) = space {
                if let Some(len) = std::str::from_utf8(&self.buf[..sp])
                    .ok()
                    .and_then(|s| s.parse::<usize>().ok())
                {
                    let body = sp + 1;
                    if len > max {
                        let keep = self.buf[body..].iter().take(max).copied().collect();
                        let have = self.buf.len() - body;
                        if have >= len {
                            self.buf.drain(..body + len);
                        } else {
                            self.skip = len - have;
                            self.buf.clear();
                        }
                        return Some(Frame::Oversize(keep, len));
                    }
                    if self.buf.len() < body + len {
                        return None;
                    }
                    let frame = self.buf[body..body + len].to_vec();
                    self.buf.drain(..body + len);
                    return Some(Frame::Message(frame));
                }
            } else if self.buf.len() < 11 {
                return None; // the length prefix may still be arriving
            }
            // A digit but no valid length: a newline-framed message.
        }
        match self.buf.iter().position(|&b| b == b'\n') {
            Some(i) if i <= max => {
                let mut frame: Vec<u8> = self.buf.drain(..=i).collect();
                frame.pop();
                if frame.last() == Some(&b'\r') {
                    frame.pop();
                }
                Some(Frame::Message(frame))
            }
            Some(i) => {
                let keep = self.buf[..max].to_vec();
                self.buf.drain(..=i);
                Some(Frame::Oversize(keep, i))
            }
            None if self.buf.len() > max => {
                let keep = self.buf[..max].to_vec();
                let len = self.buf.len();
                self.buf.clear();
                self.skip_line = true;
                Some(Frame::Oversize(keep, len))
            }
            None => None,
        }
    }
}

impl Framer {
    /// At the end of the stream: a last line without a newline is a
    /// message; a partial octet-counted frame is reported, not dropped.
    pub fn finish(&mut self, max: usize) -> Option<Frame> {
        let rest = std::mem::take(&mut self.buf);
        if self.skip > 0 || self.skip_line {
            return None; // the tail of an oversize frame, already reported
        }
        let start = rest.iter().position(|b| !b.is_ascii_whitespace())?;
        let rest = &rest[start..];
        let keep = rest[..rest.len().min(max)].to_vec();
        let octet_counted = rest
            .iter()
            .position(|&b| b == b' ')
            .is_some_and(|sp| sp > 0 && rest[..sp].iter().all(u8::is_ascii_digit));
        Some(if octet_counted {
            Frame::Truncated(keep)
        } else if rest.len() > max {
            Frame::Oversize(keep, rest.len())
        } else {
            Frame::Message(keep)
        })
    }
}

/// Builds the stored event of one syslog message.
pub fn to_event(text: &str, ctx: &EventContext) -> Vec<u8> {
    let m = syslog_loose::parse_message(text, syslog_loose::Variant::Either);
    let mut obj = Map::new();
    if let Some(ts) = m.timestamp {
        obj.insert("timestamp".into(), Value::String(ts.to_rfc3339()));
    }
    if let Some(h) = m.hostname {
        obj.insert("host".into(), Value::String(h.to_string()));
    }
    if let Some(a) = m.appname {
        obj.insert("service".into(), Value::String(a.to_string()));
    }
    if let Some(s) = m.severity {
        obj.insert("level".into(), Value::String(s.as_str().to_string()));
    }
    if let Some(f) = m.facility {
        obj.insert("facility".into(), Value::String(f.as_str().to_string()));
    }
    match m.procid {
        Some(syslog_loose::ProcId::PID(pid)) => {
            obj.insert("procid".into(), Value::from(pid));
        }
        Some(syslog_loose::ProcId::Name(name)) => {
            obj.insert("procid".into(), Value::String(name.to_string()));
        }
        None => {}
    }
    if let Some(id) = m.msgid {
        obj.insert("msgid".into(), Value::String(id.to_string()));
    }
    if !m.structured_data.is_empty() {
        let mut sd = Map::new();
        for element in &m.structured_data {
            let params: Map<String, Value> = element
                .params
                .iter()
                .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
                .collect();
            sd.insert(element.id.to_string(), Value::Object(params));
        }
        obj.insert("sd".into(), Value::Object(sd));
    }
    obj.insert("message".into(), Value::String(m.msg.to_string()));
    event::from_object(obj, ctx)
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
                        Ok(Ok(stream)) => connection(stream, peer, &config, core, shutdown).await,
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

async fn connection<S: tokio::io::AsyncRead + Unpin>(
    mut stream: S,
    peer: SocketAddr,
    config: &SyslogConfig,
    core: Arc<Core>,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let mut framer = Framer::default();
    let mut chunk = vec![0u8; READ_CHUNK];
    let mut in_flight = std::collections::VecDeque::new();
    loop {
        let n = tokio::select! {
            read = tokio::time::timeout(config.idle_timeout, stream.read(&mut chunk)) => match read {
                Ok(r) => r?,
                Err(_) => {
                    tracing::debug!(%peer, "syslog connection idle; closing");
                    0
                }
            },
            _ = stopped(&mut shutdown) => 0,
        };
        if n > 0 {
            framer.push(&chunk[..n]);
        }
        // Parse every complete frame read so far, one WAL batch at a time.
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
            if in_flight.len() >= IN_FLIGHT {
                let oldest: tokio::task::JoinHandle<std::io::Result<()>> =
                    in_flight.pop_front().unwrap();
                oldest.await.map_err(std::io::Error::other)??;
            }
            let batch = build_batch(&core, config, frames);
            in_flight.push_back(tokio::spawn(store(core.clone(), config.clone(), batch)));
        }
        if n == 0 {
            // Everything read is durable before the connection is done.
            for pending in in_flight {
                pending.await.map_err(std::io::Error::other)??;
            }
            return Ok(());
        }
    }
}

/// A parsed WAL batch and what to count once it is durable.
struct Batch {
    payload: bytes::Bytes,
    accepted: usize,
    rejected: Vec<&'static str>,
}

fn build_batch(core: &Core, config: &SyslogConfig, frames: Vec<Frame>) -> Batch {
    let now = OffsetDateTime::now_utc();
    let limits = &core.config.limits;
    let ctx = EventContext::new(
        &config.tenant,
        &config.log_type,
        now,
        None,
        limits.max_fields_per_event,
    );
    let mut events = Vec::with_capacity(frames.len());
    let mut rejected: Vec<&'static str> = Vec::new();
    let max = config.max_message_bytes;
    for (i, frame) in frames.into_iter().enumerate() {
        let mut reject = |raw: &[u8], reason: &str, kind: &'static str| {
            events.push(event::rejected(raw, i + 1, reason, max, &ctx));
            rejected.push(kind);
        };
        match frame {
            Frame::Message(bytes) => match std::str::from_utf8(&bytes) {
                Ok(text) => events.push(to_event(text, &ctx)),
                Err(_) => reject(&bytes, "syslog message is not UTF-8", "invalid_utf8"),
            },
            Frame::Truncated(head) => reject(
                &head,
                "the connection closed inside an octet-counted frame",
                "truncated_frame",
            ),
            Frame::Oversize(head, len) => reject(
                &head,
                &format!("syslog message of {len} bytes is over syslog.max_message_bytes ({max})"),
                "line_too_long",
            ),
        }
    }
    let header = BatchHeader {
        v: BATCH_VERSION,
        tenant: config.tenant.clone(),
        log_type: config.log_type.clone(),
        received_ms: crate::now_ms(),
        n: events.len(),
        idempotency: None,
        types: Vec::new(),
    };
    Batch {
        payload: batch::encode(&header, &events).into(),
        accepted: events.len() - rejected.len(),
        rejected,
    }
}

/// Appends a batch, waiting (not dropping) while the WAL is full, then
/// counts it as received.
async fn store(core: Arc<Core>, config: SyslogConfig, batch: Batch) -> std::io::Result<()> {
    loop {
        match core.wal.append(batch.payload.clone()).await {
            Ok(_) => break,
            Err(WalError::Full { .. } | WalError::QueueFull | WalError::DiskFull) => {
                tokio::time::sleep(FULL_RETRY).await;
            }
            Err(e) => return Err(std::io::Error::other(e.to_string())),
        }
    }
    core.metrics.count_stored(
        &config.tenant,
        &config.log_type,
        batch.accepted,
        &batch.rejected,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(input: &[&[u8]], max: usize) -> Vec<Frame> {
        let mut f = Framer::default();
        let mut out = Vec::new();
        for part in input {
            f.push(part);
            while let Some(frame) = f.next_frame(max) {
                out.push(frame);
            }
        }
        out
    }

    fn msg(s: &str) -> Frame {
        Frame::Message(s.as_bytes().to_vec())
    }

    #[test]
    fn octet_counting_and_newline_framing_mix_and_split_anywhere() {
        let stream: &[u8] = b"5 hello<13>newline one\r\n11 hello world\n<14>two\n";
        let all = frames(&[stream], 100);
        assert_eq!(
            all,
            vec![
                msg("hello"),
                msg("<13>newline one"),
                msg("hello world"),
                msg("<14>two")
            ]
        );
        // The same bytes, one at a time.
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(frames(&bytes, 100), all);
    }

    #[test]
    fn oversize_frames_are_cut_and_the_stream_goes_on() {
        let all = frames(&[b"20 aaaaaaaaaaaaaaaaaaaa3 abc", b"bbbbbbbbbbbb\nok\n"], 5);
        assert_eq!(
            all,
            vec![
                Frame::Oversize(b"aaaaa".to_vec(), 20),
                msg("abc"),
                Frame::Oversize(b"bbbbb".to_vec(), 12),
                msg("ok")
            ]
        );
        // Octet-counted frame larger than what has arrived: the rest is skipped.
        let all = frames(&[b"30 xxxxxxxx", b"xxxxxxxxxxxxxxxxxxxxxx", b"2 ok"], 5);
        assert_eq!(all, vec![Frame::Oversize(b"xxxxx".to_vec(), 30), msg("ok")]);
    }

    #[test]
    fn the_end_of_the_stream_keeps_a_last_line_and_reports_a_cut_frame() {
        let mut f = Framer::default();
        f.push(b"<13>no newline at the end");
        assert_eq!(f.next_frame(100), None);
        assert_eq!(f.finish(100), Some(msg("<13>no newline at the end")));
        let mut f = Framer::default();
        f.push(b"50 <13>only part of it");
        assert_eq!(f.next_frame(100), None);
        assert_eq!(
            f.finish(100),
            Some(Frame::Truncated(b"50 <13>only part of it".to_vec()))
        );
        assert_eq!(Framer::default().finish(100), None);
    }

    #[test]
    fn rfc5424_and_rfc3164_fields_land_in_the_event_model() {
        let ctx = EventContext::new("t", "syslog", OffsetDateTime::now_utc(), None, 100);
        let e: Value = serde_json::from_slice(&to_event(
            r#"<165>1 2026-11-21T10:00:00.123Z web-1 checkout 4242 ID47 [exampleSDID@32473 iut="3" eventSource="App"] payment failed"#,
            &ctx,
        ))
        .unwrap();
        assert_eq!(e["timestamp"], "2026-11-21T10:00:00.123Z");
        assert_eq!(e["host"], "web-1");
        assert_eq!(e["service"], "checkout");
        assert_eq!(e["level"], "notice");
        assert_eq!(e["message"], "payment failed");
        assert_eq!(e["fields"]["procid"], 4242);
        assert_eq!(e["fields"]["msgid"], "ID47");
        assert_eq!(e["fields"]["facility"], "local4");
        assert_eq!(e["fields"]["sd"]["exampleSDID@32473"]["iut"], "3");
        let e: Value = serde_json::from_slice(&to_event(
            "<38>Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186",
            &ctx,
        ))
        .unwrap();
        assert_eq!(e["host"], "LabSZ");
        assert_eq!(e["service"], "sshd");
        assert_eq!(e["fields"]["procid"], 24200);
        assert_eq!(e["level"], "info");
        assert_eq!(e["message"], "Invalid user webmaster from 173.234.31.186");
    }

    #[test]
    fn garbage_never_panics() {
        let ctx = EventContext::new("t", "syslog", OffsetDateTime::now_utc(), None, 100);
        for input in [
            "",
            "<",
            "<999>",
            "<13>1",
            "12345678901234567890 x",
            "\u{0}\u{1}",
            "<13>1 - - - - - -",
        ] {
            let _ = to_event(input, &ctx);
            let _ = frames(&[input.as_bytes()], 8);
        }
    }
}
