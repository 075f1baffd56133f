//! The framer on any byte stream, cut anywhere: it never panics, its buffer
//! and its frames stay within the size limit, and it finds the same frames whether the stream arrives
//! whole or in pieces (an oversize newline frame's reported length aside:
//! it is what had arrived when the frame was cut).
#![no_main]

use libfuzzer_sys::fuzz_target;
use logway_syslog::{Frame, Framer};

fn normalize(f: Frame) -> Frame {
    match f {
        Frame::Oversize(head, _) => Frame::Oversize(head, 0),
        other => other,
    }
}

fn run(chunks: &[&[u8]], max: usize) -> Vec<Frame> {
    let mut framer = Framer::default();
    let mut out = Vec::new();
    for chunk in chunks {
        framer.push(chunk);
        while let Some(f) = framer.next_frame(max) {
            out.push(normalize(f));
        }
        // Unread bytes: at most one frame's length prefix and head.
        assert!(framer.buffered() <= max + 11, "{}", framer.buffered());
    }
    out.extend(framer.finish(max).map(normalize));
    out
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let max = usize::from(data[0] % 64) + 1;
    let step = usize::from(data[1] % 16) + 1;
    let stream = &data[2..];
    let whole = run(&[stream], max);
    let pieces: Vec<&[u8]> = stream.chunks(step).collect();
    assert_eq!(whole, run(&pieces, max));
    for frame in &whole {
        match frame {
            Frame::Message(m) | Frame::Oversize(m, _) | Frame::Truncated(m) => {
                assert!(m.len() <= max)
            }
        }
    }
});
