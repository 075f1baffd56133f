//! The evaluator's tallies: one per [`Key`], shared by the rules that
//! count the same thing, dropped once no rule counts with it any more,
//! and written to `<data_dir>/alerts-tallies.json` every minute and at
//! shutdown, so that a restart resumes counting where the file left off
//! instead of counting every rule's window whole again.
//!
//! The file is a cache: one that is missing, unreadable or of another
//! version is logged and ignored (the rules' windows are then counted
//! whole once), and a tally whose partitions were removed or replaced
//! since starts over on its first update.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::rule::Rule;
use super::tally::{Key, Stored, Tally};

/// The file's name in the data directory.
pub const FILE: &str = "alerts-tallies.json";
/// The file's format; another is ignored.
const VERSION: u32 = 1;
/// How long a tally loaded from the file waits for a rule to use it.
const LOADED_WAIT: Duration = Duration::from_secs(600);

#[derive(Serialize, Deserialize)]
struct File {
    version: u32,
    tallies: Vec<Stored>,
}

struct Entry {
    tally: Tally,
    /// Loaded from the file at this time, and no rule has used it since.
    loaded: Option<Instant>,
}

pub struct Tallies {
    path: PathBuf,
    by_key: HashMap<Key, Entry>,
    /// (tenant, rule name) → the key the rule last counted with.
    users: HashMap<(String, String), Key>,
}

impl Tallies {
    /// The tallies written to `data_dir`, if it holds a readable file.
    pub fn load(data_dir: &Path) -> Tallies {
        let path = data_dir.join(FILE);
        let mut by_key = HashMap::new();
        let file = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<File>(&bytes).map_err(|e| e.to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(File {
                version: VERSION,
                tallies: Vec::new(),
            }),
            Err(e) => Err(e.to_string()),
        };
        match file {
            Ok(f) if f.version == VERSION => {
                let now = Instant::now();
                for tally in f.tallies.into_iter().filter_map(Tally::from_stored) {
                    let entry = Entry {
                        tally,
                        loaded: Some(now),
                    };
                    by_key.insert(entry.tally.key.clone(), entry);
                }
                if !by_key.is_empty() {
                    tracing::info!(tallies = by_key.len(), "alert rules resume their counts");
                }
            }
            Ok(f) => tracing::warn!(
                file = %path.display(),
                version = f.version,
                "alert tallies of another version ignored; windows are counted whole once"
            ),
            Err(e) => tracing::warn!(
                file = %path.display(),
                error = %e,
                "alert tallies unreadable, ignored; windows are counted whole once"
            ),
        }
        Tallies {
            path,
            by_key,
            users: HashMap::new(),
        }
    }

    /// The tally `rule` counts with (run with `query` over `types`),
    /// created or widened as it needs; `None` if it is counted whole.
    pub fn for_rule(
        &mut self,
        tenant: &str,
        rule: &Rule,
        query: &str,
        types: &[String],
    ) -> Option<&mut Tally> {
        let user = (tenant.to_string(), rule.name().to_string());
        let Some((key, span_ms)) = Key::of(tenant, rule, query, types) else {
            self.users.remove(&user);
            return None;
        };
        self.users.insert(user, key.clone());
        let entry = self.by_key.entry(key).or_insert_with_key(|key| Entry {
            tally: Tally::new(key.clone(), span_ms),
            loaded: None,
        });
        entry.tally.cover(span_ms);
        entry.loaded = None;
        Some(&mut entry.tally)
    }

    /// Drops the tallies no rule counts with: those of rules that no
    /// longer `exist` (by tenant and name) or now count something else,
    /// and those loaded from the file that no rule took up within ten
    /// minutes.
    pub fn prune(&mut self, exists: impl Fn(&(String, String)) -> bool) {
        self.users.retain(|user, _| exists(user));
        let used: std::collections::HashSet<&Key> = self.users.values().collect();
        self.by_key.retain(|key, e| {
            used.contains(key) || e.loaded.is_some_and(|at| at.elapsed() < LOADED_WAIT)
        });
    }

    #[cfg(test)]
    /// Tallies kept.
    pub fn kept(&self) -> usize {
        self.by_key.len()
    }

    /// Writes every tally (durably, by rename).
    pub fn save(&self) -> std::io::Result<()> {
        let file = File {
            version: VERSION,
            tallies: self.by_key.values().map(|e| e.tally.to_stored()).collect(),
        };
        let bytes = serde_json::to_vec(&file).expect("tallies serialize");
        crate::disk_format::replace_file(&self.path, &bytes)
    }
}
