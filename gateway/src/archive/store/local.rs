//! A local directory as an object store (the embedded default).
//!
//! A key is a relative path under the root (`a/b/c.ndjson.zst`). A put
//! writes a temporary file beside the target, fsyncs it, renames it over
//! the target and fsyncs the directory, so an object is either whole or
//! absent after a crash. Temporary files end in `.tmp` and are never
//! listed.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;

use super::{ObjectMeta, ObjectStore, StoreError};

pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    pub fn new(root: PathBuf) -> Result<LocalStore, StoreError> {
        std::fs::create_dir_all(&root).map_err(|e| {
            StoreError::Permanent(format!(
                "cannot create archive directory {}: {e}",
                root.display()
            ))
        })?;
        Ok(LocalStore { root })
    }

    fn path(&self, key: &str) -> Result<PathBuf, StoreError> {
        let valid = !key.is_empty()
            && !key.starts_with('/')
            && key
                .split('/')
                .all(|s| !s.is_empty() && s != "." && s != "..")
            && !key.ends_with(".tmp");
        if !valid {
            return Err(StoreError::Permanent(format!("invalid object key `{key}`")));
        }
        Ok(self.root.join(key))
    }
}

fn io_error(what: &str, e: std::io::Error) -> StoreError {
    StoreError::Transient(format!("{what}: {e}"))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Transient(format!("store task failed: {e}")))?
}

#[async_trait]
impl ObjectStore for LocalStore {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), StoreError> {
        let path = self.path(key)?;
        blocking(move || {
            use std::io::Write;
            let dir = path.parent().expect("a key has a file name");
            std::fs::create_dir_all(dir).map_err(|e| io_error("create directory", e))?;
            let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
            let mut f = std::fs::File::create(&tmp).map_err(|e| io_error("create", e))?;
            f.write_all(&body).map_err(|e| io_error("write", e))?;
            f.sync_all().map_err(|e| io_error("fsync", e))?;
            std::fs::rename(&tmp, &path).map_err(|e| io_error("rename", e))?;
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| io_error("fsync directory", e))
        })
        .await
    }

    async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        let path = self.path(key)?;
        let key = key.to_string();
        blocking(move || match std::fs::read(&path) {
            Ok(b) => Ok(Bytes::from(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(StoreError::NotFound(key)),
            Err(e) => Err(io_error("read", e)),
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        let root = self.root.clone();
        let prefix = prefix.to_string();
        blocking(move || {
            // Walk only the directory the prefix names, not the whole tree.
            let dir_part = prefix.rsplit_once('/').map_or("", |(d, _)| d);
            let start = if dir_part.is_empty() {
                root.clone()
            } else {
                root.join(dir_part)
            };
            let mut out = Vec::new();
            walk(&root, &start, &prefix, &mut out)?;
            out.sort_by(|a, b| a.key.cmp(&b.key));
            Ok(out)
        })
        .await
    }

    async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let dir = prefix.trim_end_matches('/');
        let path = if dir.is_empty() {
            self.root.clone()
        } else {
            self.path(dir)?
        };
        let prefix = prefix.to_string();
        blocking(move || {
            let entries = match std::fs::read_dir(&path) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(io_error("list", e)),
            };
            let mut out = Vec::new();
            for entry in entries {
                let entry = entry.map_err(|e| io_error("list", e))?;
                if entry.file_type().map_err(|e| io_error("list", e))?.is_dir()
                    && let Some(name) = entry.file_name().to_str()
                {
                    out.push(format!("{prefix}{name}/"));
                }
            }
            out.sort();
            Ok(out)
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = self.path(key)?;
        let root = self.root.clone();
        blocking(move || {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(io_error("delete", e)),
            }
            // Prune directories left empty (they are partitions).
            let mut dir = path.parent();
            while let Some(d) = dir {
                if d == root || std::fs::remove_dir(d).is_err() {
                    break;
                }
                dir = d.parent();
            }
            Ok(())
        })
        .await
    }

    fn describe(&self) -> String {
        self.root.display().to_string()
    }
}

fn walk(
    root: &Path,
    dir: &Path,
    prefix: &str,
    out: &mut Vec<ObjectMeta>,
) -> Result<(), StoreError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_error("list", e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| io_error("list", e))?;
        let path = entry.path();
        let Ok(rel) = path.strip_prefix(root) else {
            continue;
        };
        let Some(key) = rel
            .to_str()
            .map(|k| k.replace(std::path::MAIN_SEPARATOR, "/"))
        else {
            continue;
        };
        let ty = entry.file_type().map_err(|e| io_error("list", e))?;
        if ty.is_dir() {
            // Descend only where keys could still match the prefix.
            let as_dir = format!("{key}/");
            if as_dir.starts_with(prefix) || prefix.starts_with(&as_dir) {
                walk(root, &path, prefix, out)?;
            }
        } else if key.starts_with(prefix) && !key.ends_with(".tmp") {
            let size = entry.metadata().map_err(|e| io_error("list", e))?.len();
            out.push(ObjectMeta { key, size });
        }
    }
    Ok(())
}
