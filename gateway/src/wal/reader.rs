//! Sequential readers over the durable log (the design notes are in
//! [`super`]).

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::record::{HEADER_BYTES, read_record};
use super::segment::{Segment, segment_path};
use super::{Lsn, Shared};

/// One record read back from the log.
pub struct Record {
    pub lsn: Lsn,
    /// LSN just past this record: a consumer that processed it checkpoints here.
    pub end: Lsn,
    pub payload: Vec<u8>,
}

/// Sequential reader over durable records; never reads past the durable
/// end, not even into its read-ahead buffer: past it, a recycled file still
/// holds old bytes that new records are about to overwrite.
pub struct WalReader {
    pub(super) shared: Arc<Shared>,
    pub(super) pos: Lsn,
    pub(super) file: Option<(Segment, BufReader<io::Take<File>>)>,
}

impl WalReader {
    /// Position of the next record.
    pub fn position(&self) -> Lsn {
        self.pos
    }

    /// Reads durable records until `max_bytes` of payload or the durable end.
    pub fn read_available(&mut self, max_bytes: usize) -> io::Result<Vec<Record>> {
        let mut out = Vec::new();
        let mut bytes = 0usize;
        while bytes < max_bytes {
            let durable = self.shared.durable.load(Ordering::Acquire);
            if self.pos >= durable {
                break;
            }
            // Find the segment holding `pos` (or the next one after a gap or trim).
            let segment = {
                let segs = self.shared.segments.lock().unwrap();
                segs.iter()
                    .copied()
                    .find(|s| s.end() > self.pos || s.start >= self.pos)
            };
            let Some(segment) = segment else { break };
            if segment.start > self.pos {
                self.pos = segment.start;
                self.file = None;
            }
            let limit = segment.end().min(durable);
            if self.pos >= limit {
                break;
            }
            let reopen = !matches!(&self.file, Some((s, _)) if s.start == segment.start);
            if reopen {
                let mut f = File::open(segment_path(&self.shared.dir, segment.start))?;
                f.seek(SeekFrom::Start(self.pos - segment.start))?;
                self.file = Some((segment, BufReader::with_capacity(1 << 20, f.take(0))));
            }
            let (_, reader) = self.file.as_mut().unwrap();
            // The file is read up to `limit` and no further.
            let file_pos = self.pos - segment.start + reader.buffer().len() as u64;
            reader
                .get_mut()
                .set_limit((limit - segment.start).saturating_sub(file_pos));
            match read_record(reader, self.pos, limit - self.pos)? {
                Ok(Some(payload)) => {
                    let end = self.pos + HEADER_BYTES + payload.len() as u64;
                    bytes += payload.len();
                    out.push(Record {
                        lsn: self.pos,
                        end,
                        payload,
                    });
                    self.pos = end;
                }
                Ok(None) => break,
                Err(reason) => {
                    // Only possible in a sealed segment damaged after it was
                    // fsynced: skip the rest of it, loudly.
                    tracing::error!(segment = segment.start, at = self.pos, %reason, "corrupt WAL record; skipping to the next segment");
                    self.shared
                        .torn_bytes
                        .fetch_add(segment.end().saturating_sub(self.pos), Ordering::Relaxed);
                    self.pos = segment.end();
                    self.file = None;
                }
            }
        }
        Ok(out)
    }
}
