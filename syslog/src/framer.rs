//! Frames from a TCP byte stream (RFC 6587): octet counting (`LEN SP MSG`)
//! when a frame starts with a digit followed by a length and a space, else
//! non-transparent framing up to a newline (`\r\n` too).
//!
//! An oversize frame (over `max`) is reported with its first `max` bytes and
//! the stream goes on: with octet counting the rest of the frame is skipped,
//! with newline framing everything up to the next newline.

/// One frame cut from the stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    Message(Vec<u8>),
    /// A frame over the size limit: its first bytes and its length (as far
    /// as it had arrived when it was cut, for a newline frame).
    Oversize(Vec<u8>, usize),
    /// The stream ended inside an octet-counted frame: what arrived.
    Truncated(Vec<u8>),
}

/// Cuts frames from a byte stream. Its buffer holds at most what one
/// [`push`](Framer::push) adds plus `max` bytes: longer frames are cut.
///
/// Frames are read from a cursor into the buffer, which is compacted once
/// per push, so cutting a frame costs its own length, not the buffer's.
#[derive(Default)]
pub struct Framer {
    buf: Vec<u8>,
    /// Start of the unread bytes in `buf`.
    pos: usize,
    /// Bytes of an oversize octet-counted frame still to drop.
    skip: usize,
    /// Dropping an oversize newline frame until its newline.
    skip_line: bool,
}

/// The longest length prefix read: 10 digits (RFC 6587 allows any, but a
/// frame over 9,999,999,999 bytes is over every limit anyway).
const MAX_PREFIX: usize = 10;

enum Prefix {
    /// Octet counting: the frame's body starts at `body` and has `len` bytes.
    Counted { body: usize, len: usize },
    /// Not (yet) decidable: only digits have arrived.
    Incomplete,
    /// Newline framing.
    Newline,
}

/// Is `data` (starting at a non-space byte) an octet-counted frame?
fn prefix(data: &[u8]) -> Prefix {
    for (i, &b) in data.iter().enumerate().take(MAX_PREFIX + 1) {
        match b {
            b'0'..=b'9' => continue,
            b' ' if i > 0 => {
                // All digits, so it parses; it fits a usize by MAX_PREFIX.
                let len = std::str::from_utf8(&data[..i])
                    .ok()
                    .and_then(|s| s.parse::<usize>().ok());
                return match len {
                    Some(len) => Prefix::Counted { body: i + 1, len },
                    None => Prefix::Newline,
                };
            }
            _ => return Prefix::Newline,
        }
    }
    if data.len() <= MAX_PREFIX {
        Prefix::Incomplete
    } else {
        Prefix::Newline
    }
}

impl Framer {
    pub fn push(&mut self, data: &[u8]) {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Bytes pushed and not yet cut into frames.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The next complete frame, if any.
    pub fn next_frame(&mut self, max: usize) -> Option<Frame> {
        if self.skip > 0 {
            let n = self.skip.min(self.buffered());
            self.pos += n;
            self.skip -= n;
            if self.skip > 0 {
                return None;
            }
        }
        if self.skip_line {
            match memchr::memchr(b'\n', &self.buf[self.pos..]) {
                Some(i) => {
                    self.pos += i + 1;
                    self.skip_line = false;
                }
                None => {
                    self.pos = self.buf.len();
                    return None;
                }
            }
        }
        // Blank lines between frames carry nothing.
        match self.buf[self.pos..]
            .iter()
            .position(|b| !b.is_ascii_whitespace())
        {
            Some(start) => self.pos += start,
            None => {
                self.pos = self.buf.len();
                return None;
            }
        }
        let data = &self.buf[self.pos..];
        match prefix(data) {
            Prefix::Incomplete => None,
            Prefix::Counted { body, len } => {
                let have = data.len() - body;
                if len > max {
                    // Keep the first `max` bytes however the stream was cut.
                    if have < max {
                        return None;
                    }
                    let keep = data[body..body + max].to_vec();
                    if have >= len {
                        self.pos += body + len;
                    } else {
                        self.skip = len - have;
                        self.pos = self.buf.len();
                    }
                    return Some(Frame::Oversize(keep, len));
                }
                if have < len {
                    return None;
                }
                let frame = data[body..body + len].to_vec();
                self.pos += body + len;
                Some(Frame::Message(frame))
            }
            Prefix::Newline => match memchr::memchr(b'\n', data) {
                Some(i) if i <= max => {
                    let mut end = i;
                    if end > 0 && data[end - 1] == b'\r' {
                        end -= 1;
                    }
                    let frame = data[..end].to_vec();
                    self.pos += i + 1;
                    Some(Frame::Message(frame))
                }
                Some(i) => {
                    let keep = data[..max].to_vec();
                    self.pos += i + 1;
                    Some(Frame::Oversize(keep, i))
                }
                None if data.len() > max => {
                    let keep = data[..max].to_vec();
                    let len = data.len();
                    self.pos = self.buf.len();
                    self.skip_line = true;
                    Some(Frame::Oversize(keep, len))
                }
                None => None,
            },
        }
    }

    /// At the end of the stream: a last line without a newline is a
    /// message; a partial octet-counted frame is reported, not dropped.
    pub fn finish(&mut self, max: usize) -> Option<Frame> {
        let mut buf = std::mem::take(&mut self.buf);
        let rest = buf.split_off(std::mem::take(&mut self.pos));
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
    fn a_short_line_starting_with_digits_is_newline_framed() {
        // Digits then a newline, or then a letter: not a length prefix.
        assert_eq!(frames(&[b"12345\n"], 100), vec![msg("12345")]);
        assert_eq!(frames(&[b"42abc def\n"], 100), vec![msg("42abc def")]);
        // Only digits so far: wait for more.
        assert_eq!(frames(&[b"123"], 100), vec![]);
        // More than MAX_PREFIX digits is no length prefix.
        assert_eq!(
            frames(&[b"123456789012345 x\n"], 100),
            vec![msg("123456789012345 x")]
        );
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
        // A huge length prefix is an oversize frame, not an allocation.
        let all = frames(&[b"9999999999 abcde"], 5);
        assert_eq!(all, vec![Frame::Oversize(b"abcde".to_vec(), 9_999_999_999)]);
        // The kept head does not depend on how the stream was cut.
        let all = frames(&[b"20 aaa", b"aaaaa"], 5);
        assert_eq!(all, vec![Frame::Oversize(b"aaaaa".to_vec(), 20)]);
    }

    #[test]
    fn the_buffer_stays_bounded_while_dropping_an_oversize_line() {
        let mut f = Framer::default();
        f.push(b"<13>");
        for _ in 0..100 {
            f.push(&[b'x'; 1000]);
            while f.next_frame(64).is_some() {}
            assert!(f.buffered() <= 1000 + 64, "{}", f.buffered());
        }
        f.push(b"\n<13>next\n");
        assert_eq!(f.next_frame(64), Some(msg("<13>next")));
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
        // What was already cut is not reported again.
        let mut f = Framer::default();
        f.push(b"<13>a\n<13>b");
        assert_eq!(f.next_frame(100), Some(msg("<13>a")));
        assert_eq!(f.finish(100), Some(msg("<13>b")));
    }
}
