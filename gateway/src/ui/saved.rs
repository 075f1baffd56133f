//! Saved searches, per tenant: a name, an owner's note and the view
//! (query, type, range, columns), kept in `<data_dir>/saved_searches.json`
//! (replaced durably on each change). The alert rules will refer to them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// Saved searches one tenant may keep.
pub const MAX_PER_TENANT: usize = 1000;
/// Longest name, note or query, in bytes.
pub const MAX_TEXT_BYTES: usize = 4096;

/// One saved search.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedSearch {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub note: String,
    pub query: String,
    #[serde(rename = "type", default)]
    pub log_type: Option<String>,
    /// `now-1h`, or `{"from":…,"to":…}`: kept as the UI sent it.
    #[serde(default)]
    pub range: serde_json::Value,
    #[serde(default)]
    pub columns: Vec<String>,
    pub created_at: String,
}

/// Every tenant's saved searches.
pub struct SavedSearches {
    path: PathBuf,
    by_tenant: Mutex<BTreeMap<String, Vec<SavedSearch>>>,
}

#[derive(Debug, thiserror::Error)]
pub enum SavedError {
    #[error("{0}")]
    Invalid(String),
    #[error("no saved search `{0}`")]
    NotFound(String),
    #[error("cannot store saved searches: {0}")]
    Io(#[from] std::io::Error),
}

impl SavedSearches {
    /// Loads `<data_dir>/saved_searches.json` (none yet: empty).
    pub fn open(data_dir: &std::path::Path) -> std::io::Result<SavedSearches> {
        let path = data_dir.join("saved_searches.json");
        let by_tenant = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| std::io::Error::other(format!("{}: {e}", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(e),
        };
        Ok(SavedSearches {
            path,
            by_tenant: Mutex::new(by_tenant),
        })
    }

    pub fn list(&self, tenant: &str) -> Vec<SavedSearch> {
        self.lock().get(tenant).cloned().unwrap_or_default()
    }

    /// Adds one (its `id` and `created_at` are set here).
    pub fn add(&self, tenant: &str, mut s: SavedSearch) -> Result<SavedSearch, SavedError> {
        if s.name.trim().is_empty() {
            return Err(SavedError::Invalid("a saved search needs a name".into()));
        }
        for (what, text) in [("name", &s.name), ("note", &s.note), ("query", &s.query)] {
            if text.len() > MAX_TEXT_BYTES {
                return Err(SavedError::Invalid(format!(
                    "the {what} is longer than {MAX_TEXT_BYTES} bytes"
                )));
            }
        }
        let now = time::OffsetDateTime::now_utc();
        s.id = ulid::Ulid::from_datetime(now.into()).to_string();
        s.created_at = crate::event::format_time(now);
        let mut all = self.lock();
        let list = all.entry(tenant.to_string()).or_default();
        if list.len() >= MAX_PER_TENANT {
            return Err(SavedError::Invalid(format!(
                "a tenant keeps at most {MAX_PER_TENANT} saved searches; delete one first"
            )));
        }
        list.push(s.clone());
        if let Err(e) = self.save(&all) {
            all.get_mut(tenant).map(|l| l.pop());
            return Err(e.into());
        }
        Ok(s)
    }

    pub fn delete(&self, tenant: &str, id: &str) -> Result<(), SavedError> {
        let mut all = self.lock();
        let list = all.entry(tenant.to_string()).or_default();
        let Some(at) = list.iter().position(|s| s.id == id) else {
            return Err(SavedError::NotFound(id.to_string()));
        };
        let removed = list.remove(at);
        if let Err(e) = self.save(&all) {
            all.entry(tenant.to_string())
                .or_default()
                .insert(at, removed);
            return Err(e.into());
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<SavedSearch>>> {
        self.by_tenant.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn save(&self, all: &BTreeMap<String, Vec<SavedSearch>>) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(all).expect("saved searches serialize");
        crate::disk_format::replace_file(&self.path, &bytes)
    }
}
