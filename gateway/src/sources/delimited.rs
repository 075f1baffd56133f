//! Messages of a byte stream cut at a delimiter byte, each at most `max`
//! bytes: GELF over TCP (NUL) and StatsD over TCP (newline). A message
//! longer than `max` comes out once as [`Frame::TooLong`] (its first
//! `max + 1` bytes, for the source to keep or count) and the rest of it,
//! up to the next delimiter, is skipped.

/// One message of the stream.
pub enum Frame {
    Whole(Vec<u8>),
    /// The first `max + 1` bytes of a message past `max`.
    TooLong(Vec<u8>),
}

pub struct Delimited {
    delim: u8,
    max: usize,
    pending: Vec<u8>,
    /// Inside a message already given out as too long.
    skipping: bool,
}

impl Delimited {
    pub fn new(delim: u8, max: usize) -> Delimited {
        Delimited {
            delim,
            max,
            pending: Vec::new(),
            skipping: false,
        }
    }

    /// Adds to `out` the messages `chunk` completes, in order (blank ones
    /// are left out).
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<Frame>) {
        let mut parts = chunk.split(|&b| b == self.delim).peekable();
        while let Some(part) = parts.next() {
            // Every part but the last ended at a delimiter.
            let ended = parts.peek().is_some();
            if self.skipping {
                self.skipping = !ended;
                continue;
            }
            self.pending.extend_from_slice(part);
            if self.pending.len() > self.max {
                self.pending.truncate(self.max + 1);
                out.push(Frame::TooLong(std::mem::take(&mut self.pending)));
                self.skipping = !ended;
                continue;
            }
            if ended {
                let m = std::mem::take(&mut self.pending);
                if !m.iter().all(u8::is_ascii_whitespace) {
                    out.push(Frame::Whole(m));
                }
            }
        }
    }

    /// At the stream's end: a last message without its delimiter.
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        let m = std::mem::take(&mut self.pending);
        (!m.is_empty() && !self.skipping).then_some(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(d: &mut Delimited, chunk: &[u8]) -> Vec<(bool, Vec<u8>)> {
        let mut out = Vec::new();
        d.push(chunk, &mut out);
        out.into_iter()
            .map(|f| match f {
                Frame::Whole(m) => (true, m),
                Frame::TooLong(m) => (false, m),
            })
            .collect()
    }

    #[test]
    fn messages_across_chunks_and_one_too_long_skipped_to_its_end() {
        let mut d = Delimited::new(b'\n', 4);
        assert_eq!(frames(&mut d, b"ab\ncd"), [(true, b"ab".to_vec())]);
        assert_eq!(
            frames(&mut d, b"\n \nlonger"),
            [(true, b"cd".to_vec()), (false, b"longe".to_vec())]
        );
        assert!(frames(&mut d, b"still").is_empty());
        assert_eq!(frames(&mut d, b"more\nok\nlast"), [(true, b"ok".to_vec())]);
        assert_eq!(d.finish(), Some(b"last".to_vec()));
        assert_eq!(d.finish(), None);
    }
}
