//! Request body → items: reading (bounded in size and time),
//! decompression (bounded), content type, lines.
//!
//! Decompression reads at most `max_decompressed_bytes + 1` bytes, so a
//! bomb costs at most that much memory before it is refused with 413.

use std::borrow::Cow;
use std::io::Read;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http_body_util::BodyExt;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::pipeline::Item;

/// Reads the whole body: at most `max` bytes, within `timeout`.
pub async fn read(body: Body, max: usize, timeout: Duration) -> Result<Bytes, ApiError> {
    let limited = http_body_util::Limited::new(body, max);
    match tokio::time::timeout(timeout, limited.collect()).await {
        Err(_) => Err(ApiError::RequestTimeout(timeout.as_secs())),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e))
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(ApiError::PayloadTooLarge(format!(
                "body is larger than {max} bytes (limits.max_body_bytes)"
            )))
        }
        Ok(Err(e)) => Err(ApiError::BadRequest(format!(
            "could not read the body: {e}"
        ))),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    /// HTTP's `deflate`: a zlib stream, or (as some clients send) raw
    /// deflate, told apart by the zlib header.
    Deflate,
    Zstd,
}

impl Encoding {
    pub fn from_header(value: Option<&str>) -> Result<Encoding, ApiError> {
        match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            None | Some("") | Some("identity") => Ok(Encoding::Identity),
            Some("gzip") | Some("x-gzip") => Ok(Encoding::Gzip),
            Some("deflate") => Ok(Encoding::Deflate),
            Some("zstd") => Ok(Encoding::Zstd),
            Some(other) => Err(ApiError::UnsupportedMediaType(format!(
                "Content-Encoding `{other}` is not supported; use gzip, deflate, zstd or none"
            ))),
        }
    }
}

/// Decompresses `body` (an uncompressed body is passed through without a
/// copy); more than `max` bytes out → 413, corrupt → 400.
pub fn decompress(body: Bytes, encoding: Encoding, max: usize) -> Result<Bytes, ApiError> {
    if encoding == Encoding::Identity {
        return if body.len() > max {
            Err(too_large(max))
        } else {
            Ok(body)
        };
    }
    match inflate(&body, encoding, max) {
        Ok(out) => Ok(Bytes::from(out.into_owned())),
        Err(Inflate::TooLarge) => Err(too_large(max)),
        Err(Inflate::Corrupt(e)) => {
            let name = match encoding {
                Encoding::Gzip => "gzip",
                Encoding::Deflate => "deflate",
                _ => "zstd",
            };
            Err(ApiError::BadRequest(format!("corrupt {name} body: {e}")))
        }
    }
}

/// Why [`inflate`] gave up.
pub enum Inflate {
    /// More than the bound out.
    TooLarge,
    Corrupt(std::io::Error),
}

/// `data` decompressed (borrowed when it was not compressed), at most
/// `max` bytes out.
pub fn inflate(data: &[u8], encoding: Encoding, max: usize) -> Result<Cow<'_, [u8]>, Inflate> {
    let reader: Box<dyn Read + '_> = match encoding {
        Encoding::Identity if data.len() > max => return Err(Inflate::TooLarge),
        Encoding::Identity => return Ok(Cow::Borrowed(data)),
        Encoding::Gzip => Box::new(flate2::read::MultiGzDecoder::new(data)),
        Encoding::Deflate if is_zlib(data) => Box::new(flate2::read::ZlibDecoder::new(data)),
        Encoding::Deflate => Box::new(flate2::read::DeflateDecoder::new(data)),
        Encoding::Zstd => {
            Box::new(zstd::stream::read::Decoder::new(data).map_err(Inflate::Corrupt)?)
        }
    };
    let mut out = Vec::with_capacity((data.len() * 4).min(max));
    reader
        .take(max as u64 + 1)
        .read_to_end(&mut out)
        .map_err(Inflate::Corrupt)?;
    if out.len() > max {
        return Err(Inflate::TooLarge);
    }
    Ok(Cow::Owned(out))
}

impl Encoding {
    /// What `data` is, by its first bytes: gzip, zlib, else as it is (for
    /// protocols whose clients mislabel or do not label compression).
    pub fn sniff(data: &[u8]) -> Encoding {
        match data {
            [0x1f, 0x8b, ..] => Encoding::Gzip,
            _ if is_zlib(data) => Encoding::Deflate,
            _ => Encoding::Identity,
        }
    }
}

/// A zlib header (RFC 1950): deflate, a window size, and a check value.
fn is_zlib(body: &[u8]) -> bool {
    matches!(body, [cmf, flg, ..] if cmf & 0x0f == 8 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0)
}

fn too_large(max: usize) -> ApiError {
    ApiError::PayloadTooLarge(format!(
        "decompressed body is larger than {max} bytes (limits.max_decompressed_bytes)"
    ))
}

/// A `Content-Type`'s media type, lowercased, without parameters.
pub fn mime(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// One JSON object or a JSON array of them (NDJSON accepted too).
    Json,
    /// One JSON object per line.
    Ndjson,
    /// One event per line; a line that parses as a JSON object is one.
    Text,
}

impl BodyKind {
    pub fn from_content_type(value: Option<&str>) -> Result<BodyKind, ApiError> {
        let Some(value) = value else {
            return Ok(BodyKind::Text);
        };
        match mime(value).as_str() {
            "" | "text/plain" => Ok(BodyKind::Text),
            "application/json" => Ok(BodyKind::Json),
            "application/x-ndjson"
            | "application/ndjson"
            | "application/jsonl"
            | "application/jsonlines"
            | "application/x-jsonlines" => Ok(BodyKind::Ndjson),
            other => Err(ApiError::UnsupportedMediaType(format!(
                "Content-Type `{other}` is not supported; use application/json, application/x-ndjson or text/plain{}",
                if other == "application/x-www-form-urlencoded" {
                    " (curl -d sends this type: add -H 'Content-Type: application/json' or use --data-binary with text/plain)"
                } else {
                    ""
                }
            ))),
        }
    }
}

/// Splits a decompressed body into items, each with its 1-based line
/// (or array element) number.
pub fn items(body: &[u8], kind: BodyKind, max_line: usize) -> Vec<(usize, Item<'_>)> {
    if kind == BodyKind::Json {
        let start = body.iter().position(|b| !b.is_ascii_whitespace());
        // An array's elements are checked here as JSON; each object's
        // members are read when its event is built.
        if start.map(|i| body[i]) == Some(b'[') {
            match serde_json::from_slice::<Vec<&RawValue>>(body) {
                Ok(elements) => return array_items(elements),
                Err(e) => {
                    return vec![(
                        1,
                        Item::Bad {
                            raw: Cow::Borrowed(body),
                            kind: "invalid_json",
                            reason: format!("invalid JSON array: {e}"),
                        },
                    )];
                }
            }
        }
        if body.len() <= max_line {
            match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(m)) => return vec![(1, Item::Object(m, Some(body)))],
                Ok(_) => {
                    return vec![(
                        1,
                        Item::Bad {
                            raw: Cow::Borrowed(body),
                            kind: "not_object",
                            reason: "body is JSON but neither an object nor an array of objects"
                                .into(),
                        },
                    )];
                }
                // Not one JSON document: maybe NDJSON sent as application/json.
                Err(_) => {}
            }
        }
    }
    lines(body)
        .enumerate()
        .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace))
        .map(|(i, line)| (i + 1, item_of_line(line, kind, max_line)))
        .collect()
}

fn array_items(elements: Vec<&RawValue>) -> Vec<(usize, Item<'_>)> {
    elements
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let text = v.get();
            let item = match text.as_bytes().first() {
                Some(b'{') => Item::Json(Cow::Borrowed(text)),
                Some(b'"') => {
                    let mut m = Map::new();
                    let s = serde_json::from_str::<String>(text).unwrap_or_default();
                    m.insert("message".into(), Value::String(s));
                    Item::Object(m, None)
                }
                _ => Item::Bad {
                    raw: Cow::Borrowed(text.as_bytes()),
                    kind: "not_object",
                    reason: "array element is not an object or a string".into(),
                },
            };
            (i + 1, item)
        })
        .collect()
}

fn lines(body: &[u8]) -> impl Iterator<Item = &[u8]> {
    body.split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
}

/// One line as an item of a body of `kind` (bad lines: [`Item::Bad`]);
/// a line that looks like a JSON object is handed on as [`Item::Json`],
/// for the pipeline to parse.
pub fn line_item(line: &[u8], kind: BodyKind, max_line: usize) -> Item<'_> {
    item_of_line(line, kind, max_line)
}

fn item_of_line(line: &[u8], kind: BodyKind, max_line: usize) -> Item<'_> {
    if line.len() > max_line {
        return Item::Bad {
            raw: Cow::Borrowed(line),
            kind: "line_too_long",
            reason: format!("line is longer than {max_line} bytes (limits.max_line_bytes)"),
        };
    }
    let text = match std::str::from_utf8(line) {
        Ok(t) => t,
        Err(e) => {
            return Item::Bad {
                raw: Cow::Borrowed(line),
                kind: "invalid_utf8",
                reason: format!("invalid UTF-8 at byte {}", e.valid_up_to()),
            };
        }
    };
    let looks_json = text.trim_start().starts_with('{');
    match kind {
        BodyKind::Text if !looks_json => Item::Text(text),
        BodyKind::Text => match serde_json::from_str::<Map<String, Value>>(text) {
            Ok(m) => Item::Object(m, Some(line)),
            // A text line that merely starts with '{' is still a message.
            Err(_) => Item::Text(text),
        },
        BodyKind::Json | BodyKind::Ndjson if looks_json => Item::Json(Cow::Borrowed(text)),
        BodyKind::Json | BodyKind::Ndjson => Item::from_json_text(Cow::Borrowed(text)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn json_object_array_and_ndjson() {
        assert_eq!(items(br#"{"a":1}"#, BodyKind::Json, 1000).len(), 1);
        assert_eq!(
            items(br#"[{"a":1},{"b":2},"text"]"#, BodyKind::Json, 1000).len(),
            3
        );
        let v = items(b"{\"a\":1}\n{\"b\":2}\n\n{bad\n", BodyKind::Json, 1000);
        assert_eq!(v.len(), 3);
        // A line that looks like an object is parsed by the pipeline,
        // which words what is wrong with it.
        assert!(matches!(&v[2], (4, Item::Json(t)) if t == "{bad"));
        assert!(matches!(
            Item::from_json_text(Cow::Borrowed("{bad")),
            Item::Bad {
                kind: "invalid_json",
                ..
            }
        ));
        let v = items(b"[1]\n\"s\"\n", BodyKind::Ndjson, 1000);
        assert!(matches!(
            &v[0],
            (
                1,
                Item::Bad {
                    kind: "not_object",
                    ..
                }
            )
        ));
    }

    #[test]
    fn text_lines_become_messages_or_objects() {
        let v = items(
            b"plain line\r\n{\"level\":\"info\"}\n{not json\n",
            BodyKind::Text,
            1000,
        );
        assert!(matches!(v[0].1, Item::Text("plain line")));
        assert!(matches!(v[1].1, Item::Object(_, Some(_))));
        assert!(matches!(v[2].1, Item::Text("{not json")));
    }

    #[test]
    fn long_lines_and_bad_utf8_are_bad_items() {
        let v = items(
            b"short\nthis line is too long\n\xff\xfe\n",
            BodyKind::Text,
            10,
        );
        assert!(matches!(v[0].1, Item::Text(_)));
        assert!(matches!(&v[1].1, Item::Bad { reason, .. } if reason.contains("max_line_bytes")));
        assert!(matches!(&v[2].1, Item::Bad { reason, .. } if reason.contains("UTF-8")));
    }

    #[test]
    fn gzip_bomb_is_refused_with_bounded_output() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&vec![b'a'; 50 << 20]).unwrap();
        let bomb = enc.finish().unwrap();
        assert!(bomb.len() < 200_000);
        let err = decompress(Bytes::from(bomb), Encoding::Gzip, 1 << 20).unwrap_err();
        assert!(matches!(err, ApiError::PayloadTooLarge(_)));
        let err = decompress(
            Bytes::from_static(b"\x1f\x8b\x08garbage"),
            Encoding::Gzip,
            1 << 20,
        )
        .unwrap_err();
        assert!(matches!(err, ApiError::BadRequest(_)));
    }

    #[test]
    fn content_types_and_encodings() {
        assert_eq!(
            BodyKind::from_content_type(Some("text/plain;charset=UTF-8")).unwrap(),
            BodyKind::Text
        );
        assert!(BodyKind::from_content_type(Some("application/xml")).is_err());
        assert!(Encoding::from_header(Some("br")).is_err());
        assert_eq!(Encoding::from_header(Some("zstd")).unwrap(), Encoding::Zstd);
    }
}
