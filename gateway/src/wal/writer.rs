//! The writer thread: group commit. It takes every append waiting at that
//! moment, event-class ones first, writes them in one `write`, calls
//! `fdatasync` once, then answers all of them (the design notes are in
//! [`super`]).

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::mpsc;

use super::record::{HEADER_BYTES, encode};
use super::segment::rotate;
use super::{Append, Lsn, Msg, Shared, WalError};

/// Bytes one group commit writes at most before it fsyncs.
const GROUP_COMMIT_MAX_BYTES: usize = 16 * 1024 * 1024;

/// The writer thread; join it after dropping every [`Wal`] handle.
pub struct WalWriterThread(pub(super) std::thread::JoinHandle<()>);

impl WalWriterThread {
    pub fn join(self) {
        let _ = self.0.join();
    }
}

pub(super) fn run(shared: Arc<Shared>, mut file: File, mut rx: mpsc::Receiver<Msg>) {
    let mut buf: Vec<u8> = Vec::new();
    let mut group: Vec<(Lsn, Append)> = Vec::new();
    let mut closing = false;
    loop {
        let first = match next_waiting(&shared, &mut rx, &mut closing) {
            Some(a) => a,
            None if closing => break,
            None => match rx.blocking_recv() {
                Some(Msg::Append(a)) => a,
                Some(Msg::Wake) => continue,
                Some(Msg::Close) | None => {
                    // Events queued before the stop are still written.
                    closing = true;
                    continue;
                }
            },
        };
        let mut next = Some(first);
        // Take everything waiting now, up to a byte budget, for one fsync.
        let mut taken = 0usize;
        while let Some(append) = next.take() {
            taken += append.payload.len();
            let size = append.payload.len() as u64 + HEADER_BYTES;
            let (seg_start, seg_len) = {
                let segs = shared.segments.lock().unwrap();
                let last = segs.last().unwrap();
                (last.start, last.len)
            };
            let written = seg_len + buf.len() as u64;
            if written > 0 && written + size > shared.opts.segment_bytes {
                // Seal the current segment: flush what is buffered, then rotate.
                let result =
                    flush(&shared, &mut file, &mut buf).and_then(|_| rotate(&shared, &mut file));
                if let Err(e) = result {
                    fail_all(&shared, &mut group, &e);
                    buf.clear();
                }
                let lsn = shared.segments.lock().unwrap().last().unwrap().end();
                encode(&mut buf, lsn, &append.payload);
                group.push((lsn, append));
            } else {
                encode(&mut buf, seg_start + written, &append.payload);
                group.push((seg_start + written, append));
            }
            if taken < GROUP_COMMIT_MAX_BYTES {
                next = next_waiting(&shared, &mut rx, &mut closing);
            }
        }
        match flush(&shared, &mut file, &mut buf) {
            Ok(()) => {
                for (lsn, append) in group.drain(..) {
                    let size = append.payload.len() as u64 + HEADER_BYTES;
                    shared.pending_bytes.fetch_sub(size, Ordering::Relaxed);
                    let _ = append.done.send(Ok(lsn));
                }
            }
            Err(e) => fail_all(&shared, &mut group, &e),
        }
        buf.clear();
    }
    rx.close();
    // Anything that raced in after the close marker is refused, not lost.
    let mut late: Vec<Append> = {
        let mut lane = shared.events.lock().unwrap();
        lane.closed = true;
        lane.queue.drain(..).collect()
    };
    while let Ok(msg) = rx.try_recv() {
        if let Msg::Append(a) = msg {
            late.push(a);
        }
    }
    for a in late {
        shared
            .pending_bytes
            .fetch_sub(a.payload.len() as u64 + HEADER_BYTES, Ordering::Relaxed);
        let _ = a.done.send(Err(WalError::Closed));
    }
    // A recycled file still holds its old records past the durable end: cut
    // them at a clean stop, so the next start finds no tail to cut (after a
    // crash the scan at open still does).
    let durable_len = shared.segments.lock().unwrap().last().unwrap().len;
    if file.metadata().is_ok_and(|m| m.len() > durable_len) {
        let _ = file.set_len(durable_len);
    }
    let _ = file.sync_all();
    shared.closed.store(true, Ordering::Release);
    let _guard = shared.wake.0.lock().unwrap();
    shared.wake.1.notify_all();
}

/// The next append waiting: the event lane's first, then the channel's
/// (none after the close marker). Sets `closing` at the marker.
fn next_waiting(
    shared: &Shared,
    rx: &mut mpsc::Receiver<Msg>,
    closing: &mut bool,
) -> Option<Append> {
    loop {
        if let Some(a) = shared.events.lock().unwrap().queue.pop_front() {
            return Some(a);
        }
        if *closing {
            return None;
        }
        match rx.try_recv() {
            Ok(Msg::Append(a)) => return Some(a),
            // Its event was in the lane, and is taken or gone.
            Ok(Msg::Wake) => continue,
            Ok(Msg::Close) => *closing = true,
            Err(_) => return None,
        }
    }
}

/// Writes `buf` to the active segment and fsyncs; on failure the segment is
/// cut back to its last durable length so no partial record stays behind.
fn flush(shared: &Shared, file: &mut File, buf: &mut Vec<u8>) -> io::Result<()> {
    if buf.is_empty() {
        return Ok(());
    }
    let result = file.write_all(buf).and_then(|_| file.sync_data());
    let mut segs = shared.segments.lock().unwrap();
    let last = segs.last_mut().unwrap();
    match result {
        Ok(()) => {
            last.len += buf.len() as u64;
            shared
                .disk_bytes
                .fetch_add(buf.len() as u64, Ordering::Relaxed);
            shared.durable.store(last.end(), Ordering::Release);
            drop(segs);
            buf.clear();
            let _guard = shared.wake.0.lock().unwrap();
            shared.wake.1.notify_all();
            Ok(())
        }
        Err(e) => {
            let durable_len = last.len;
            drop(segs);
            let _ = file.set_len(durable_len);
            let _ = file.seek(SeekFrom::Start(durable_len));
            buf.clear();
            Err(e)
        }
    }
}

fn fail_all(shared: &Shared, group: &mut Vec<(Lsn, Append)>, e: &io::Error) {
    tracing::error!(error = %e, "WAL write failed");
    let disk_full =
        e.raw_os_error() == Some(libc::ENOSPC) || e.kind() == io::ErrorKind::StorageFull;
    for (_, append) in group.drain(..) {
        let size = append.payload.len() as u64 + HEADER_BYTES;
        shared.pending_bytes.fetch_sub(size, Ordering::Relaxed);
        let err = if disk_full {
            WalError::DiskFull
        } else {
            WalError::Io(io::Error::new(e.kind(), e.to_string()))
        };
        let _ = append.done.send(Err(err));
    }
}
