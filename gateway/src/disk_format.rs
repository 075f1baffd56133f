//! `FORMAT` files: the on-disk format version of a data directory (the WAL,
//! the hot tier), so a build never misreads what another build wrote.

use std::fs::{self, File};
use std::io;
use std::path::Path;

pub const FILE: &str = "FORMAT";

#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("{0}")]
    Io(#[from] io::Error),
    /// Another format: what to tell the operator.
    #[error("{0}")]
    Refused(String),
}

/// Checks `dir/FORMAT` against `expected`. A directory of an older format
/// this build also reads (`upgrades`) is marked as `expected` from now on,
/// so a build that only knew the older one refuses it instead of misreading
/// what this one writes. A directory without a FORMAT file is marked as
/// `expected` (durably) when it holds no data yet; with data, it was
/// written by a build from before format files, and `unmarked` says what
/// to do about it.
pub fn check(
    dir: &Path,
    expected: &str,
    upgrades: &[&str],
    has_data: bool,
    unmarked: &str,
) -> Result<(), FormatError> {
    let path = dir.join(FILE);
    match fs::read_to_string(&path) {
        Ok(found) if found.trim() == expected => Ok(()),
        Ok(found) if upgrades.contains(&found.trim()) => {
            tracing::info!(dir = %dir.display(), from = found.trim(), to = expected, "format upgraded");
            mark(dir, expected)
        }
        Ok(found) => Err(FormatError::Refused(format!(
            "{} says format {}, this build reads format {expected}",
            path.display(),
            found.trim()
        ))),
        Err(e) if e.kind() == io::ErrorKind::NotFound && has_data => Err(FormatError::Refused(
            format!("{} {unmarked}", dir.display()),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => mark(dir, expected),
        Err(e) => Err(e.into()),
    }
}

/// Writes `dir/FORMAT` durably.
fn mark(dir: &Path, format: &str) -> Result<(), FormatError> {
    replace_file(&dir.join(FILE), format!("{format}\n").as_bytes())?;
    Ok(())
}

/// Replaces a small file durably: write a temporary beside it, fsync,
/// rename over it, fsync the directory. A crash leaves the old file or
/// the new one, never a torn one.
pub fn replace_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, bytes)?;
    File::open(&tmp)?.sync_all()?;
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}
