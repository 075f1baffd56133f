//! Cutting one built batch into several payloads when the log takes
//! smaller ones than the batch (cluster mode: `cluster.max_record_bytes`;
//! the WAL takes any batch a request can make, so there it never cuts).
//!
//! Each part is a whole batch of its own (header line and events), cut at
//! event boundaries, with the type runs of its events. The request's
//! idempotency record and claimed event ids travel in the first part
//! only: they describe the request, not each part.

use std::ops::Range;

use crate::batch::{self, BatchHeader, TypeRun};

/// The payloads of `events` under `header`, each at most `max` bytes
/// unless one event alone is larger (its part is then larger, and the log
/// refuses it).
pub fn payloads(
    header: BatchHeader,
    events: &[Vec<u8>],
    max: usize,
    compress: bool,
) -> Vec<bytes::Bytes> {
    // Encoded once: the batch is what goes out whenever it fits, which is
    // always for the WAL.
    let whole = batch::encode(&header, events, compress);
    if whole.len() <= max || events.len() <= 1 {
        return vec![whole.into()];
    }
    let head = whole.iter().position(|&b| b == b'\n').map_or(0, |i| i + 1);
    let parts = ranges(events, max.saturating_sub(head));
    let mut out = Vec::with_capacity(parts.len());
    for (i, range) in parts.into_iter().enumerate() {
        let mut h = header.clone();
        h.n = range.len();
        h.types = runs_in(&header.types, range.clone());
        if i > 0 {
            h.idempotency = None;
            h.event_ids = Vec::new();
        }
        out.push(batch::encode(&h, &events[range], compress).into());
    }
    out
}

/// Consecutive ranges of `events` whose lines (each with its newline) fit
/// in `room` bytes; an event larger than `room` is a range of its own.
fn ranges(events: &[Vec<u8>], room: usize) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut used) = (0, 0);
    for (i, e) in events.iter().enumerate() {
        let size = e.len() + 1;
        if i > start && used + size > room {
            out.push(start..i);
            (start, used) = (i, 0);
        }
        used += size;
    }
    if start < events.len() {
        out.push(start..events.len());
    }
    out
}

/// The type runs of the events in `range`, from the runs of the whole
/// batch (empty when the whole has one type).
fn runs_in(types: &[TypeRun], range: Range<usize>) -> Vec<TypeRun> {
    let mut out = Vec::new();
    let mut at = 0;
    for run in types {
        let (lo, hi) = (at.max(range.start), (at + run.n).min(range.end));
        if lo < hi {
            out.push(TypeRun {
                log_type: run.log_type.clone(),
                n: hi - lo,
            });
        }
        at += run.n;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::IdempotencyRecord;

    fn events(sizes: &[usize]) -> Vec<Vec<u8>> {
        sizes.iter().map(|&n| vec![b'x'; n]).collect()
    }

    #[test]
    fn ranges_fill_each_part_and_give_a_large_event_its_own() {
        assert_eq!(ranges(&events(&[3, 3, 3]), 8), vec![0..2, 2..3]);
        assert_eq!(ranges(&events(&[3, 20, 3]), 8), vec![0..1, 1..2, 2..3]);
        assert_eq!(ranges(&events(&[3, 3]), 100), vec![0..2]);
        assert_eq!(ranges(&[], 8), Vec::<Range<usize>>::new());
    }

    #[test]
    fn runs_follow_the_cut() {
        let run = |t: &str, n| TypeRun {
            log_type: t.into(),
            n,
        };
        let types = vec![run("a", 2), run("b", 3), run("c", 1)];
        assert_eq!(runs_in(&types, 0..2), vec![run("a", 2)]);
        assert_eq!(runs_in(&types, 1..4), vec![run("a", 1), run("b", 2)]);
        assert_eq!(runs_in(&types, 4..6), vec![run("b", 1), run("c", 1)]);
        assert!(runs_in(&[], 0..3).is_empty());
    }

    #[test]
    fn parts_decode_to_the_whole_and_only_the_first_carries_the_request() {
        let lines: Vec<Vec<u8>> = (0..50)
            .map(|i| format!(r#"{{"id":"{i}","message":"{}"}}"#, "m".repeat(40)).into_bytes())
            .collect();
        let mut header = BatchHeader::new(
            "t",
            "app",
            0,
            lines.len(),
            Vec::new(),
            Some(IdempotencyRecord {
                key: "k".into(),
                body_hash: 1,
                status: 200,
                body: "{}".into(),
            }),
        );
        header.event_ids = vec![7];
        let parts = payloads(header.clone(), &lines, 1024, false);
        assert!(parts.len() > 2, "{}", parts.len());
        let mut all = Vec::new();
        for (i, p) in parts.iter().enumerate() {
            assert!(p.len() <= 1024, "part {i} is {} bytes", p.len());
            let b = batch::decode(p).unwrap();
            assert_eq!(b.header.n, b.events().count());
            assert_eq!(b.header.idempotency.is_some(), i == 0);
            assert_eq!(b.header.event_ids.is_empty(), i > 0);
            all.extend(b.events().map(<[u8]>::to_vec));
        }
        assert_eq!(all, lines);
        // Under the limit: one payload, as the WAL always gets.
        assert_eq!(payloads(header, &lines, 1 << 20, true).len(), 1);
    }
}
