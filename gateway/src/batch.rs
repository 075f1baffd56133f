//! # Batch: the payload of one WAL record
//!
//! One accepted request is one batch: a JSON header line, then the body:
//! one stored event per line (NDJSON), each a complete event as search
//! returns it.
//!
//! ```text
//! {"v":2,"tenant":"acme","type":"mobile_logs","received_ms":1700000000000,"n":2,"idempotency":{...}}\n
//! {"id":"01J...","tenant":"acme","type":"mobile_logs",...}\n
//! {"id":"01J...",...}\n
//! ```
//!
//! ## Compressed bodies (version 2)
//! A body of [`COMPRESS_MIN_BYTES`] or more is stored as one zstd frame
//! (level 1, content size in the frame header) of those lines. Event lines
//! always start with `{`, so a body starting with zstd's magic number
//! (`28 b5 2f fd`) is unambiguous. Stored events repeat their keys, tenant,
//! type and times, and compress 5-10x: the WAL writer, the one thread every
//! acknowledgement waits for, copies that much less into the page cache,
//! and the disk, the WAL's byte cap and the page cache hold that much more.
//! Version 1 batches (always plain) are still read; a build that only knew
//! version 1 refuses the WAL by its `FORMAT` (3) instead of skipping them.
//!
//! When filters gave some events another log type, the events are grouped
//! by type and `types` lists the groups in order
//! (`"types":[{"type":"web_logs","n":5},{"type":"audit","n":1}]`); without
//! it every event has the header's `type`.
//!
//! The header lets a consumer route the batch (tenant, type, received day)
//! and the idempotency table pick out retried requests without parsing the
//! events. Events are already the final JSON documents, so the hot index
//! stores them as they are and the archive can copy them byte for byte.

use serde::{Deserialize, Serialize};

use crate::wal::Class;

pub const BATCH_VERSION: u32 = 2;
/// Bodies from this size on are compressed (below it, zstd's frame and
/// context costs outweigh the bytes saved).
pub const COMPRESS_MIN_BYTES: usize = 2048;
const ZSTD_LEVEL: i32 = 1;
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// Largest body a compressed batch may claim (a WAL record's limit).
const MAX_BODY_BYTES: u64 = crate::wal::MAX_RECORD_BYTES;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BatchHeader {
    pub v: u32,
    pub tenant: String,
    #[serde(rename = "type")]
    pub log_type: String,
    /// When the gateway received the request, in Unix milliseconds.
    pub received_ms: i64,
    /// Number of event lines that follow.
    pub n: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency: Option<IdempotencyRecord>,
    /// Groups of events by log type, when they differ from `type`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<TypeRun>,
    /// Hashes of the client-chosen event ids first stored by this batch
    /// (`crate::pipeline::event_ids`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub event_ids: Vec<u64>,
    /// The route's delivery class (absent: `log`): the hot index commits
    /// event-class documents sooner.
    #[serde(default, skip_serializing_if = "Class::is_log")]
    pub class: Class,
}

impl BatchHeader {
    /// The header of a batch of `n` events of `tenant`, received at
    /// `received_ms`, of `log_type` unless `types` says otherwise.
    pub fn new(
        tenant: &str,
        log_type: &str,
        received_ms: i64,
        n: usize,
        types: Vec<TypeRun>,
        idempotency: Option<IdempotencyRecord>,
    ) -> BatchHeader {
        BatchHeader {
            v: BATCH_VERSION,
            tenant: tenant.to_string(),
            log_type: log_type.to_string(),
            received_ms,
            n,
            idempotency,
            types,
            event_ids: Vec::new(),
            class: Class::Log,
        }
    }
}

/// `n` consecutive events of one log type.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TypeRun {
    #[serde(rename = "type")]
    pub log_type: String,
    pub n: usize,
}

/// What a retry with the same `Idempotency-Key` is answered with.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IdempotencyRecord {
    pub key: String,
    /// xxh3 of the request body as received, to refuse a reused key.
    pub body_hash: u64,
    pub status: u16,
    pub body: String,
}

thread_local! {
    /// One compression context per thread, reused across batches.
    static COMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

thread_local! {
    /// One decompression context per thread (each consumer's), reused.
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// Encodes a header and the already-serialized event lines, compressing
/// the body when asked to (`wal.compression`) and it is large enough.
pub fn encode(header: &BatchHeader, events: &[Vec<u8>], compress: bool) -> Vec<u8> {
    let body_len = events.iter().map(|e| e.len() + 1).sum::<usize>();
    let mut out = Vec::with_capacity(256 + body_len);
    serde_json::to_writer(&mut out, header).expect("header serializes");
    out.push(b'\n');
    let body_start = out.len();
    for event in events {
        out.extend_from_slice(event);
        out.push(b'\n');
    }
    if !compress || body_len < COMPRESS_MIN_BYTES {
        return out;
    }
    let frame = COMPRESSOR.with_borrow_mut(|c| {
        let c = match c {
            Some(c) => c,
            None => c.insert(zstd::bulk::Compressor::new(ZSTD_LEVEL).ok()?),
        };
        c.compress(&out[body_start..]).ok()
    });
    // Compression in memory does not fail; if it ever did, plain is valid.
    if let Some(frame) = frame {
        out.truncate(body_start);
        out.extend_from_slice(&frame);
    }
    out
}

/// A decoded batch: the header and the event lines (borrowed from the
/// payload, or decompressed).
pub struct Batch<'a> {
    pub header: BatchHeader,
    body: std::borrow::Cow<'a, [u8]>,
}

impl Batch<'_> {
    pub fn events(&self) -> impl Iterator<Item = &[u8]> {
        self.body
            .split(|&b| b == b'\n')
            .filter(|line| !line.is_empty())
    }

    /// The events with their log type.
    pub fn typed_events(&self) -> impl Iterator<Item = (&str, &[u8])> {
        let header = &self.header;
        let mut types = header
            .types
            .iter()
            .flat_map(|r| std::iter::repeat_n(r.log_type.as_str(), r.n));
        self.events()
            .map(move |e| (types.next().unwrap_or(&header.log_type), e))
    }
}

/// Decodes a batch: its header, and its body (decompressed if it was
/// compressed; split into events when asked for).
pub fn decode(payload: &[u8]) -> Result<Batch<'_>, String> {
    let (header, raw) = decode_raw(payload)?;
    Batch::from_raw(header, raw)
}

/// A batch's body as stored: one zstd frame (which decompresses to the
/// event lines, each ending in `\n`), or the lines themselves.
pub enum RawBody<'a> {
    Frame(&'a [u8]),
    Plain(&'a [u8]),
}

impl RawBody<'_> {
    /// Bytes of event lines: a frame's content size as its header says.
    pub fn plain_len(&self) -> usize {
        match self {
            RawBody::Frame(f) => frame_content_size(f).map_or(f.len(), |n| n as usize),
            RawBody::Plain(p) => p.len(),
        }
    }
}

/// Decodes the header and says whether the body is one compressed frame,
/// without decompressing it: the archive copies such frames as they are.
pub fn decode_raw(payload: &[u8]) -> Result<(BatchHeader, RawBody<'_>), String> {
    let (header, body) = split(payload)?;
    Ok(if body.starts_with(&ZSTD_MAGIC) {
        (header, RawBody::Frame(body))
    } else {
        (header, RawBody::Plain(body))
    })
}

impl<'a> Batch<'a> {
    /// The batch of a header and its body (decompressed if need be).
    pub fn from_raw(header: BatchHeader, raw: RawBody<'a>) -> Result<Batch<'a>, String> {
        let body = match raw {
            RawBody::Plain(body) => std::borrow::Cow::Borrowed(body),
            RawBody::Frame(frame) => {
                let size = match frame_content_size(frame) {
                    Some(size) if size <= MAX_BODY_BYTES => size as usize,
                    Some(size) => return Err(format!("compressed batch claims {size} bytes")),
                    None => return Err("compressed batch without its content size".into()),
                };
                let plain = DECOMPRESSOR
                    .with_borrow_mut(|d| {
                        let d = match d {
                            Some(d) => d,
                            None => d.insert(zstd::bulk::Decompressor::new()?),
                        };
                        d.decompress(frame, size)
                    })
                    .map_err(|e| format!("bad compressed batch body: {e}"))?;
                std::borrow::Cow::Owned(plain)
            }
        };
        Ok(Batch { header, body })
    }
}

fn frame_content_size(frame: &[u8]) -> Option<u64> {
    zstd::zstd_safe::get_frame_content_size(frame)
        .ok()
        .flatten()
}

/// Decodes the header only, for consumers that never look at events.
pub fn decode_header(payload: &[u8]) -> Result<BatchHeader, String> {
    split(payload).map(|(header, _)| header)
}

fn split(payload: &[u8]) -> Result<(BatchHeader, &[u8]), String> {
    let at = payload
        .iter()
        .position(|&b| b == b'\n')
        .ok_or("batch has no header line")?;
    let header: BatchHeader =
        serde_json::from_slice(&payload[..at]).map_err(|e| format!("bad batch header: {e}"))?;
    if !(1..=BATCH_VERSION).contains(&header.v) {
        return Err(format!("unknown batch version {}", header.v));
    }
    Ok((header, &payload[at + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let header = BatchHeader {
            v: BATCH_VERSION,
            tenant: "t".into(),
            log_type: "web_logs".into(),
            received_ms: 5,
            n: 2,
            idempotency: None,
            types: vec![
                TypeRun {
                    log_type: "web_logs".into(),
                    n: 1,
                },
                TypeRun {
                    log_type: "audit".into(),
                    n: 1,
                },
            ],
            event_ids: vec![7, u64::MAX],
            class: Class::Event,
        };
        let bytes = encode(
            &header,
            &[b"{\"a\":1}".to_vec(), b"{\"b\":2}".to_vec()],
            true,
        );
        let batch = decode(&bytes).unwrap();
        assert_eq!(batch.header, header);
        let events: Vec<_> = batch.events().collect();
        assert_eq!(events, vec![&b"{\"a\":1}"[..], &b"{\"b\":2}"[..]]);
        let types: Vec<_> = batch.typed_events().map(|(t, _)| t).collect();
        assert_eq!(types, ["web_logs", "audit"]);
    }

    fn header(n: usize) -> BatchHeader {
        BatchHeader {
            v: BATCH_VERSION,
            tenant: "t".into(),
            log_type: "syslog".into(),
            received_ms: 5,
            n,
            idempotency: None,
            types: Vec::new(),
            event_ids: Vec::new(),
            class: Class::Log,
        }
    }

    #[test]
    fn a_large_body_is_compressed_and_reads_back_the_same() {
        let events: Vec<Vec<u8>> = (0..500)
            .map(|i| format!(r#"{{"id":"{i:026}","tenant":"t","type":"syslog","message":"request {i} served in {}ms"}}"#, i * 7 % 300).into_bytes())
            .collect();
        let plain: usize = events.iter().map(|e| e.len() + 1).sum();
        let bytes = encode(&header(events.len()), &events, true);
        let body_at = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
        assert!(bytes[body_at..].starts_with(&ZSTD_MAGIC));
        assert!(
            bytes.len() - body_at < plain / 4,
            "{} of {plain}",
            bytes.len()
        );
        let batch = decode(&bytes).unwrap();
        assert_eq!(batch.header, header(events.len()));
        let got: Vec<&[u8]> = batch.events().collect();
        let want: Vec<&[u8]> = events.iter().map(Vec::as_slice).collect();
        assert_eq!(got, want);
        assert_eq!(decode_header(&bytes).unwrap(), header(events.len()));
    }

    #[test]
    fn without_compression_a_large_body_stays_plain() {
        let events: Vec<Vec<u8>> = (0..200)
            .map(|i| format!(r#"{{"n":{i},"message":"some text to compress"}}"#).into_bytes())
            .collect();
        let bytes = encode(&header(events.len()), &events, false);
        let batch = decode(&bytes).unwrap();
        assert!(matches!(batch.body, std::borrow::Cow::Borrowed(_)));
        assert_eq!(batch.events().count(), 200);
    }

    #[test]
    fn a_small_body_stays_plain() {
        let bytes = encode(&header(1), &[b"{\"a\":1}".to_vec()], true);
        assert!(bytes.ends_with(b"\n{\"a\":1}\n"));
    }

    #[test]
    fn version_1_batches_still_read() {
        let v1 = b"{\"v\":1,\"tenant\":\"t\",\"type\":\"x\",\"received_ms\":5,\"n\":2}\n{\"a\":1}\n{\"b\":2}\n";
        let batch = decode(v1).unwrap();
        assert_eq!(batch.header.v, 1);
        assert_eq!(batch.events().count(), 2);
        let v3 = b"{\"v\":3,\"tenant\":\"t\",\"type\":\"x\",\"received_ms\":5,\"n\":0}\n";
        assert!(decode(v3).err().unwrap().contains("version 3"));
    }

    #[test]
    fn a_damaged_compressed_body_is_an_error_not_events() {
        let events: Vec<Vec<u8>> = (0..200)
            .map(|i| format!(r#"{{"n":{i},"message":"some text to compress"}}"#).into_bytes())
            .collect();
        let mut bytes = encode(&header(events.len()), &events, true);
        let cut = bytes.len() - 10;
        bytes.truncate(cut);
        assert!(decode(&bytes).is_err());
    }
}
