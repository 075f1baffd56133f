//! # Batch: the payload of one WAL record
//!
//! One accepted request is one batch: a JSON header line, then one stored
//! event per line (NDJSON), each a complete event as search returns it.
//!
//! ```text
//! {"v":1,"tenant":"acme","type":"mobile_logs","received_ms":1700000000000,"n":2,"idempotency":{...}}\n
//! {"id":"01J...","tenant":"acme","type":"mobile_logs",...}\n
//! {"id":"01J...",...}\n
//! ```
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

pub const BATCH_VERSION: u32 = 1;

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

/// Encodes a header and the already-serialized event lines.
pub fn encode(header: &BatchHeader, events: &[Vec<u8>]) -> Vec<u8> {
    let size = events.iter().map(|e| e.len() + 1).sum::<usize>() + 256;
    let mut out = Vec::with_capacity(size);
    serde_json::to_writer(&mut out, header).expect("header serializes");
    out.push(b'\n');
    for event in events {
        out.extend_from_slice(event);
        out.push(b'\n');
    }
    out
}

/// A decoded batch: the header and a borrowed view of the event lines.
pub struct Batch<'a> {
    pub header: BatchHeader,
    body: &'a [u8],
}

impl<'a> Batch<'a> {
    pub fn events(&self) -> impl Iterator<Item = &'a [u8]> {
        self.body
            .split(|&b| b == b'\n')
            .filter(|line| !line.is_empty())
    }

    /// The events with their log type.
    pub fn typed_events(&self) -> impl Iterator<Item = (&str, &'a [u8])> {
        let header = &self.header;
        let mut types = header
            .types
            .iter()
            .flat_map(|r| std::iter::repeat_n(r.log_type.as_str(), r.n));
        self.events()
            .map(move |e| (types.next().unwrap_or(&header.log_type), e))
    }
}

/// Decodes the header only; the events stay as bytes until asked for.
pub fn decode(payload: &[u8]) -> Result<Batch<'_>, String> {
    let split = payload
        .iter()
        .position(|&b| b == b'\n')
        .ok_or("batch has no header line")?;
    let header: BatchHeader =
        serde_json::from_slice(&payload[..split]).map_err(|e| format!("bad batch header: {e}"))?;
    if header.v != BATCH_VERSION {
        return Err(format!("unknown batch version {}", header.v));
    }
    Ok(Batch {
        header,
        body: &payload[split + 1..],
    })
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
        };
        let bytes = encode(&header, &[b"{\"a\":1}".to_vec(), b"{\"b\":2}".to_vec()]);
        let batch = decode(&bytes).unwrap();
        assert_eq!(batch.header, header);
        let events: Vec<_> = batch.events().collect();
        assert_eq!(events, vec![&b"{\"a\":1}"[..], &b"{\"b\":2}"[..]]);
        let types: Vec<_> = batch.typed_events().map(|(t, _)| t).collect();
        assert_eq!(types, ["web_logs", "audit"]);
    }
}
