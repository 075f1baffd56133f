//! Lumberjack v2 frames, as Filebeat (go-lumber), Logstash's beats input
//! and pylogbeat speak them. Every integer is a big-endian u32; every frame
//! starts with the version byte `'2'` and a type byte:
//!
//! - `2W count`: a window of `count` events follows;
//! - `2J seq len payload`: one event, a JSON document;
//! - `2C len zlib`: a zlib stream (with header) that inflates to more
//!   frames (normally all the window's `J` frames);
//! - `2A seq` (server → client): everything up to `seq` is stored.
//!
//! The server acks the highest sequence number of a window (Filebeat
//! restarts at 1 each window; pylogbeat counts on across windows and waits
//! for exactly its last one). There is no error frame: a malformed frame
//! closes the connection, and the client resends what was not acked.

use std::io::Read;

use tokio::io::{AsyncRead, AsyncReadExt};

pub const VERSION: u8 = b'2';

/// Bounds on what one connection may send.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Events in one window.
    pub max_window: u32,
    /// Bytes of one `J` payload or one `C` frame as sent.
    pub max_frame: u32,
    /// Bytes a `C` frame may inflate to.
    pub max_inflated: usize,
}

/// One window's events: (sequence number, JSON payload).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Window {
    pub events: Vec<(u32, Vec<u8>)>,
}

impl Window {
    /// The number to ack: the highest sequence number (0 for an empty
    /// window).
    pub fn ack(&self) -> u32 {
        self.events.iter().map(|(seq, _)| *seq).max().unwrap_or(0)
    }
}

/// Why a connection is closed.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("{0}")]
    Protocol(String),
    #[error("connection closed in the middle of a window")]
    Truncated,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The ack frame for `seq`, six bytes (written in one write: pylogbeat
/// reads it byte by byte but expects it whole).
pub fn ack(seq: u32) -> [u8; 6] {
    let mut out = [VERSION, b'A', 0, 0, 0, 0];
    out[2..].copy_from_slice(&seq.to_be_bytes());
    out
}

/// Reads the next window; `None` when the client closed the connection
/// between windows.
pub async fn read_window<R: AsyncRead + Unpin>(
    r: &mut R,
    limits: &Limits,
) -> Result<Option<Window>, FrameError> {
    let mut head = [0u8; 2];
    match r.read_exact(&mut head[..1]).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    read(r, &mut head[1..]).await?;
    check_version(head[0])?;
    if head[1] != b'W' {
        return Err(FrameError::Protocol(format!(
            "expected a window frame (2W), got type {:?}",
            head[1] as char
        )));
    }
    let count = read_u32(r).await?;
    if count > limits.max_window {
        return Err(FrameError::Protocol(format!(
            "window of {count} events is over the limit of {}",
            limits.max_window
        )));
    }
    let mut window = Window {
        events: Vec::with_capacity(count.min(4096) as usize),
    };
    while window.events.len() < count as usize {
        read(r, &mut head).await?;
        check_version(head[0])?;
        match head[1] {
            b'J' => {
                let seq = read_u32(r).await?;
                let len = frame_len(read_u32(r).await?, limits)?;
                let mut payload = vec![0; len];
                read(r, &mut payload).await?;
                window.events.push((seq, payload));
            }
            b'C' => {
                let len = frame_len(read_u32(r).await?, limits)?;
                let mut compressed = vec![0; len];
                read(r, &mut compressed).await?;
                let inflated = inflate(&compressed, limits.max_inflated)?;
                parse_frames(&inflated, limits, &mut window.events, 0)?;
            }
            other => {
                return Err(FrameError::Protocol(format!(
                    "unexpected frame type {:?} inside a window",
                    other as char
                )));
            }
        }
        if window.events.len() > count as usize {
            return Err(FrameError::Protocol(format!(
                "the window announced {count} events and sent more"
            )));
        }
    }
    Ok(Some(window))
}

/// The frames inside an inflated `C` frame: `J`, or a nested `C`.
fn parse_frames(
    mut buf: &[u8],
    limits: &Limits,
    out: &mut Vec<(u32, Vec<u8>)>,
    depth: u8,
) -> Result<(), FrameError> {
    let incomplete = || FrameError::Protocol("a compressed frame ends inside a frame".into());
    while !buf.is_empty() {
        if buf.len() < 2 {
            return Err(incomplete());
        }
        check_version(buf[0])?;
        match buf[1] {
            b'J' => {
                let seq = be_u32(buf.get(2..6).ok_or_else(incomplete)?);
                let len = frame_len(be_u32(buf.get(6..10).ok_or_else(incomplete)?), limits)?;
                let payload = buf.get(10..10 + len).ok_or_else(incomplete)?;
                out.push((seq, payload.to_vec()));
                buf = &buf[10 + len..];
            }
            b'C' if depth == 0 => {
                let len = frame_len(be_u32(buf.get(2..6).ok_or_else(incomplete)?), limits)?;
                let inner = buf.get(6..6 + len).ok_or_else(incomplete)?;
                parse_frames(&inflate(inner, limits.max_inflated)?, limits, out, 1)?;
                buf = &buf[6 + len..];
            }
            other => {
                return Err(FrameError::Protocol(format!(
                    "unexpected frame type {:?} inside a compressed frame",
                    other as char
                )));
            }
        }
        if out.len() > limits.max_window as usize {
            return Err(FrameError::Protocol(
                "more events than the window allows".into(),
            ));
        }
    }
    Ok(())
}

/// zlib (RFC 1950) → bytes, refusing more than `max`.
fn inflate(compressed: &[u8], max: usize) -> Result<Vec<u8>, FrameError> {
    let mut out = Vec::new();
    let mut decoder = flate2::read::ZlibDecoder::new(compressed).take(max as u64 + 1);
    decoder
        .read_to_end(&mut out)
        .map_err(|e| FrameError::Protocol(format!("compressed frame is not valid zlib: {e}")))?;
    if out.len() > max {
        return Err(FrameError::Protocol(format!(
            "compressed frame inflates past {max} bytes (limits.max_decompressed_bytes)"
        )));
    }
    Ok(out)
}

fn check_version(v: u8) -> Result<(), FrameError> {
    if v == VERSION {
        return Ok(());
    }
    Err(FrameError::Protocol(if v == b'1' {
        "Lumberjack v1 (logstash-forwarder) is not supported; use a Beats client (v2)".into()
    } else {
        format!("not a Lumberjack v2 frame (version byte {v:#04x})")
    }))
}

fn frame_len(len: u32, limits: &Limits) -> Result<usize, FrameError> {
    if len == 0 || len > limits.max_frame {
        return Err(FrameError::Protocol(format!(
            "frame length {len} is outside 1..={}",
            limits.max_frame
        )));
    }
    Ok(len as usize)
}

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

async fn read<R: AsyncRead + Unpin>(r: &mut R, buf: &mut [u8]) -> Result<(), FrameError> {
    r.read_exact(buf).await.map(|_| ()).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            FrameError::Truncated
        } else {
            FrameError::Io(e)
        }
    })
}

async fn read_u32<R: AsyncRead + Unpin>(r: &mut R) -> Result<u32, FrameError> {
    let mut b = [0u8; 4];
    read(r, &mut b).await?;
    Ok(u32::from_be_bytes(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const LIMITS: Limits = Limits {
        max_window: 100,
        max_frame: 1 << 20,
        max_inflated: 1 << 20,
    };

    fn json(seq: u32, payload: &str) -> Vec<u8> {
        let mut f = vec![b'2', b'J'];
        f.extend_from_slice(&seq.to_be_bytes());
        f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        f.extend_from_slice(payload.as_bytes());
        f
    }

    fn compressed(inner: &[u8]) -> Vec<u8> {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(3));
        z.write_all(inner).unwrap();
        let z = z.finish().unwrap();
        let mut f = vec![b'2', b'C'];
        f.extend_from_slice(&(z.len() as u32).to_be_bytes());
        f.extend_from_slice(&z);
        f
    }

    fn window(n: u32) -> Vec<u8> {
        let mut f = vec![b'2', b'W'];
        f.extend_from_slice(&n.to_be_bytes());
        f
    }

    async fn parse(bytes: &[u8]) -> Result<Option<Window>, FrameError> {
        read_window(&mut &bytes[..], &LIMITS).await
    }

    #[tokio::test]
    async fn plain_and_compressed_windows() {
        let mut plain = window(2);
        plain.extend(json(1, "{\"a\":1}"));
        plain.extend(json(2, "{\"a\":2}"));
        let w = parse(&plain).await.unwrap().unwrap();
        assert_eq!(w.events.len(), 2);
        assert_eq!(w.ack(), 2);
        // pylogbeat: one C frame per window, sequence numbers counting on.
        let mut inner = json(26, "{\"b\":1}");
        inner.extend(json(27, "{\"b\":2}"));
        let mut zipped = window(2);
        zipped.extend(compressed(&inner));
        let w = parse(&zipped).await.unwrap().unwrap();
        assert_eq!(w.events[1], (27, b"{\"b\":2}".to_vec()));
        assert_eq!(w.ack(), 27);
        assert!(
            parse(b"").await.unwrap().is_none(),
            "a close between windows"
        );
    }

    #[tokio::test]
    async fn bad_frames_are_errors() {
        let mut truncated = window(2);
        truncated.extend(json(1, "{}"));
        assert!(matches!(
            parse(&truncated).await,
            Err(FrameError::Truncated)
        ));
        assert!(
            parse(&window(10_000_000))
                .await
                .unwrap_err()
                .to_string()
                .contains("over the limit")
        );
        let mut v1 = b"1W".to_vec();
        v1.extend_from_slice(&1u32.to_be_bytes());
        assert!(parse(&v1).await.unwrap_err().to_string().contains("v1"));
        let mut zero = window(1);
        zero.extend_from_slice(b"2J\0\0\0\x01\0\0\0\0");
        assert!(
            parse(&zero)
                .await
                .unwrap_err()
                .to_string()
                .contains("frame length 0")
        );
        // A bomb: 2 MiB of zeros in one J frame, inflating past the limit.
        let mut bomb = window(1);
        bomb.extend(compressed(&json(1, &"0".repeat(2 << 20))));
        assert!(
            parse(&bomb)
                .await
                .unwrap_err()
                .to_string()
                .contains("inflates past")
        );
        let mut garbage = window(1);
        garbage.extend_from_slice(b"2C\0\0\0\x04abcd");
        assert!(
            parse(&garbage)
                .await
                .unwrap_err()
                .to_string()
                .contains("zlib")
        );
        let mut cut = window(1);
        let mut inner = json(1, "{}");
        inner.truncate(inner.len() - 1);
        cut.extend(compressed(&inner));
        assert!(
            parse(&cut)
                .await
                .unwrap_err()
                .to_string()
                .contains("ends inside")
        );
    }
}
