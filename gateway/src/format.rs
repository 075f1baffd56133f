//! `FORMAT` files: the on-disk format version of a data directory (the WAL,
//! the hot tier), so a build never misreads what another build wrote.

use std::fs::{self, File};
use std::io;
use std::path::Path;

pub const FILE: &str = "FORMAT";

/// What `dir/FORMAT` says, when it is not `expected`.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The file names another version.
    #[error("format {found}")]
    Other { found: String },
    /// No file, but the directory already holds data: written by a build
    /// from before format files.
    #[error("no format file")]
    Unmarked,
}

/// Checks `dir/FORMAT` against `expected`. A directory without one is
/// marked as `expected` (durably) when it holds no data yet.
pub fn check(dir: &Path, expected: &str, has_data: bool) -> Result<(), FormatError> {
    let path = dir.join(FILE);
    match fs::read_to_string(&path) {
        Ok(found) if found.trim() == expected => Ok(()),
        Ok(found) => Err(FormatError::Other {
            found: found.trim().to_string(),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound && has_data => Err(FormatError::Unmarked),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let tmp = dir.join("FORMAT.tmp");
            fs::write(&tmp, format!("{expected}\n"))?;
            File::open(&tmp)?.sync_all()?;
            fs::rename(&tmp, &path)?;
            File::open(dir)?.sync_all()?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}
