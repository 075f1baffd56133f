//! The record format: `len: u32 LE | crc: u32 LE | payload[len]`, the CRC
//! taken over the record's LSN, the length and the payload (the design
//! notes are in [`super`]).

use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::path::Path;

use super::Lsn;

pub const HEADER_BYTES: u64 = 8;
/// Largest record; a request is bounded well below this by the body limits.
pub const MAX_RECORD_BYTES: u64 = 256 * 1024 * 1024;

pub(super) fn checksum(lsn: Lsn, len: u32, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&lsn.to_le_bytes());
    h.update(&len.to_le_bytes());
    h.update(payload);
    h.finalize()
}

pub(super) fn encode(buf: &mut Vec<u8>, lsn: Lsn, payload: &[u8]) {
    let len = payload.len() as u32;
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&checksum(lsn, len, payload).to_le_bytes());
    buf.extend_from_slice(payload);
}

/// Reads the record at `lsn`, the reader's position. `Ok(None)` means a
/// clean end; `Err` means a torn or corrupt record (with a reason).
pub(super) fn read_record(
    r: &mut impl Read,
    lsn: Lsn,
    limit: u64,
) -> io::Result<Result<Option<Vec<u8>>, String>> {
    if limit == 0 {
        return Ok(Ok(None));
    }
    if limit < HEADER_BYTES {
        return Ok(Err(format!(
            "{limit} trailing bytes, shorter than a record header"
        )));
    }
    let mut header = [0u8; 8];
    r.read_exact(&mut header)?;
    let len = u32::from_le_bytes(header[0..4].try_into().unwrap());
    let crc = u32::from_le_bytes(header[4..8].try_into().unwrap());
    if u64::from(len) > MAX_RECORD_BYTES || u64::from(len) > limit - HEADER_BYTES {
        return Ok(Err(format!(
            "record length {len} runs past the end of the segment"
        )));
    }
    let mut payload = vec![0u8; len as usize];
    r.read_exact(&mut payload)?;
    if checksum(lsn, len, &payload) != crc {
        return Ok(Err("record checksum mismatch".to_string()));
    }
    Ok(Ok(Some(payload)))
}

/// Scans the segment starting at `start`; returns the length of its valid
/// prefix and of its file.
pub(super) fn valid_prefix(path: &Path, start: Lsn) -> io::Result<(u64, u64)> {
    let file_len = fs::metadata(path)?.len();
    let mut r = BufReader::with_capacity(1 << 20, File::open(path)?);
    let mut pos = 0u64;
    loop {
        match read_record(&mut r, start + pos, file_len - pos)? {
            Ok(Some(p)) => pos += HEADER_BYTES + p.len() as u64,
            Ok(None) => return Ok((pos, file_len)),
            Err(_) => return Ok((pos, file_len)),
        }
    }
}
