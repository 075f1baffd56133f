//! Segment files: `{start_lsn:020}.wal`, the scan at open that cuts a
//! torn tail, rotation into a recycled (`.free`) or new file, and trimming
//! what every consumer has passed (the design notes are in [`super`]).

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};

use super::record::valid_prefix;
use super::{Lsn, MAX_FREE, Shared, WalError, WalOptions};
use crate::disk_format::{self, FormatError};

pub(super) const FORMAT: &str = "3";
/// Formats this build reads and marks as [`FORMAT`] at open: 2 differs only
/// in its batches (all version 1, which are still read).
const READS_FORMATS: &[&str] = &["2"];

#[derive(Debug, Clone, Copy)]
pub(super) struct Segment {
    pub start: Lsn,
    /// Valid bytes in the file (for the active segment: durable bytes).
    pub len: u64,
}

impl Segment {
    pub fn end(&self) -> Lsn {
        self.start + self.len
    }
}

pub(super) fn segment_path(dir: &Path, start: Lsn) -> PathBuf {
    dir.join(format!("{start:020}.wal"))
}

pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Refuses a WAL of another format; marks a new one.
fn check_format(dir: &Path, has_segments: bool) -> Result<(), WalError> {
    disk_format::check(
        dir,
        FORMAT,
        READS_FORMATS,
        has_segments,
        "holds segments of WAL format 1 (an earlier build); let that build drain it (its consumers catch up on start), then remove the directory",
    )
    .map_err(|e| match e {
        FormatError::Io(e) => WalError::Io(e),
        FormatError::Refused(m) => WalError::Format(m),
    })
}

/// Opens (or creates) the segments in `dir`, cutting a torn tail: the
/// WAL's state, and the active segment positioned at its end.
pub(super) fn open_dir(dir: &Path, opts: WalOptions) -> Result<(Shared, File), WalError> {
    fs::create_dir_all(dir)?;
    let names: Vec<String> = fs::read_dir(dir)?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    let mut starts: Vec<Lsn> = names
        .iter()
        .filter_map(|name| name.strip_suffix(".wal")?.parse().ok())
        .collect();
    starts.sort_unstable();
    check_format(dir, !starts.is_empty())?;
    let free: Vec<PathBuf> = names
        .iter()
        .filter(|name| name.ends_with(".free"))
        .map(|name| dir.join(name))
        .collect();
    let mut segments = Vec::new();
    let mut torn = 0u64;
    let mut disk = 0u64;
    for (i, &start) in starts.iter().enumerate() {
        let path = segment_path(dir, start);
        let len = if i + 1 == starts.len() {
            let (valid, file_len) = valid_prefix(&path, start)?;
            if valid < file_len {
                tracing::warn!(segment = %path.display(), cut = file_len - valid, "cutting torn WAL tail");
                let f = OpenOptions::new().write(true).open(&path)?;
                f.set_len(valid)?;
                f.sync_all()?;
                torn += file_len - valid;
            }
            valid
        } else {
            fs::metadata(&path)?.len()
        };
        disk += len;
        segments.push(Segment { start, len });
    }
    let (file, durable) = match segments.last() {
        Some(last) => {
            let mut f = OpenOptions::new()
                .write(true)
                .open(segment_path(dir, last.start))?;
            f.seek(SeekFrom::End(0))?;
            (f, last.end())
        }
        None => {
            let f = File::create(segment_path(dir, 0))?;
            sync_dir(dir)?;
            segments.push(Segment { start: 0, len: 0 });
            (f, 0)
        }
    };
    let shared = Shared {
        dir: dir.to_path_buf(),
        opts,
        segments: Mutex::new(segments),
        durable: AtomicU64::new(durable),
        disk_bytes: AtomicU64::new(disk),
        pending_bytes: AtomicU64::new(0),
        torn_bytes: AtomicU64::new(torn),
        free: Mutex::new(free),
        consumers: Mutex::new(BTreeMap::new()),
        wake: (Mutex::new(()), Condvar::new()),
        closed: AtomicBool::new(false),
        events: Default::default(),
    };
    Ok((shared, file))
}

/// Recycles or deletes the sealed segments that end at or before `min`.
pub(super) fn trim(shared: &Shared, min: Lsn) -> io::Result<()> {
    let mut doomed = Vec::new();
    {
        let mut segments = shared.segments.lock().unwrap();
        while segments.len() > 1 && segments[0].end() <= min {
            doomed.push(segments.remove(0));
        }
    }
    for seg in &doomed {
        let path = segment_path(&shared.dir, seg.start);
        let mut free = shared.free.lock().unwrap();
        if free.len() < MAX_FREE {
            let to = path.with_extension("free");
            fs::rename(&path, &to)?;
            free.push(to);
        } else {
            fs::remove_file(path)?;
        }
        drop(free);
        shared.disk_bytes.fetch_sub(seg.len, Ordering::Relaxed);
    }
    if !doomed.is_empty() {
        sync_dir(&shared.dir)?;
    }
    Ok(())
}

pub(super) fn rotate(shared: &Shared, file: &mut File) -> io::Result<()> {
    let (start, len) = {
        let segs = shared.segments.lock().unwrap();
        let last = segs.last().unwrap();
        (last.end(), last.len)
    };
    // A reused file may be longer than what this segment holds.
    if file.metadata()?.len() > len {
        file.set_len(len)?;
    }
    file.sync_all()?;
    let path = segment_path(&shared.dir, start);
    let reuse = shared.free.lock().unwrap().pop();
    let new = match reuse {
        Some(free) => {
            fs::rename(&free, &path)?;
            OpenOptions::new().write(true).open(&path)?
        }
        None => File::create(&path)?,
    };
    sync_dir(&shared.dir)?;
    *file = new;
    shared
        .segments
        .lock()
        .unwrap()
        .push(Segment { start, len: 0 });
    Ok(())
}
