//! Uploaded filters: durable storage, versions, atomic swap, instance pools.
//!
//! # On disk
//!
//! ```text
//! {data_dir}/filters/{tenant}/{name}/v{N}.wasm    the component as uploaded
//! {data_dir}/filters/{tenant}/{name}/v{N}.cwasm   precompiled by this build
//! {data_dir}/filters/{tenant}/{name}/current.json {"version":N,"sha256":…,"size":…,"uploaded_at":…}
//! ```
//!
//! An upload writes `v{N}.wasm` and `v{N}.cwasm` (fsynced), then replaces
//! `current.json` by rename (fsynced with its directory): the rename is the
//! commit point, so a crash leaves either the old or the new version live.
//! Files of older versions are removed after the swap. At start every
//! `current.json` is loaded from its `.cwasm`; one that does not load (a
//! different gateway build) is compiled again from the `.wasm`.
//!
//! # In memory
//!
//! `(tenant, name)` → an `Arc` of the live version. A batch takes the `Arc`
//! once per chain step, so a swap never changes a batch's version midway:
//! in-flight batches finish on the old version, which is dropped with its
//! instances when the last one ends. Each version keeps a pool of idle
//! instances per route config (a worker takes one, uses it for a batch and
//! returns it), so instances are never created per event or per batch; an
//! instance that failed is dropped instead of returned.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use serde::{Deserialize, Serialize};
use sha2::Digest;

use super::config::FiltersConfig;
use super::engine::{Failure, FilterEngine, FilterPre, Instance, Owner, State, wit};
use crate::config::value::{FILTER_NAME_RULE, valid_filter_name};
use crate::telemetry::Metrics;

/// Idle instances kept per (version, route config); more are dropped.
const IDLE_INSTANCES: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{0}")]
    Invalid(String),
    #[error("no filter `{0}`")]
    NotFound(String),
    #[error("filter storage: {0}")]
    Io(#[from] std::io::Error),
    #[error("filter engine: {0}")]
    Engine(String),
}

/// What `current.json` records and the API lists.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    pub version: u64,
    pub sha256: String,
    pub size: u64,
    pub uploaded_at: String,
    /// Whether the filter may drop events ([`super::caps`]); versions
    /// stored before it was recorded were built without the declaration.
    #[serde(default = "may_drop_unless_declared")]
    pub may_drop: bool,
}

fn may_drop_unless_declared() -> bool {
    true
}

/// Counters of one filter across its versions (the API shows them).
#[derive(Debug, Default)]
pub struct Stats {
    pub batches: std::sync::atomic::AtomicU64,
    pub events_in: std::sync::atomic::AtomicU64,
    pub events_dropped: std::sync::atomic::AtomicU64,
    pub failures: std::sync::atomic::AtomicU64,
    pub last_error: Mutex<Option<LastError>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LastError {
    pub at: String,
    pub version: u64,
    pub reason: String,
}

/// One live version of one tenant's filter.
pub struct Loaded {
    pub meta: Meta,
    pub owner: Arc<Owner>,
    pub stats: Arc<Stats>,
    pre: FilterPre<State>,
    engine: Arc<FilterEngine>,
    pools: Mutex<Pools>,
}

/// Idle instances by route config.
type Pools = HashMap<Vec<(String, String)>, Vec<Instance>>;

impl Loaded {
    /// Runs one batch through this version with the route's `config`, on
    /// an idle instance or a new one. The instance goes back to the pool
    /// only when the call worked and `check` accepts the verdicts.
    pub fn process(
        &self,
        config: &[(String, String)],
        ctx: &wit::BatchContext,
        events: &[wit::Event],
        check: impl FnOnce(Vec<wit::Verdict>) -> Result<Vec<wit::Verdict>, Failure>,
    ) -> Result<Vec<wit::Verdict>, Failure> {
        let idle = self
            .pools
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(config)
            .and_then(Vec::pop);
        let mut instance = match idle {
            Some(i) => i,
            None => self.engine.instantiate(&self.pre, &self.owner, config)?,
        };
        let verdicts = check(self.engine.process(&mut instance, ctx, events)?)?;
        let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        let pool = pools.entry(config.to_vec()).or_default();
        if pool.len() < IDLE_INSTANCES {
            pool.push(instance);
        }
        Ok(verdicts)
    }

    /// Records a failed batch in the stats (the metric is counted by the caller).
    pub fn record_failure(&self, failure: &Failure) {
        use std::sync::atomic::Ordering::Relaxed;
        self.stats.failures.fetch_add(1, Relaxed);
        *self
            .stats
            .last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(LastError {
            at: crate::event::format_time(time::OffsetDateTime::now_utc()),
            version: self.meta.version,
            reason: failure.message.clone(),
        });
    }
}

type Key = (String, String);

/// Every tenant's uploaded filters.
pub struct Registry {
    dir: PathBuf,
    config: FiltersConfig,
    metrics: Arc<Metrics>,
    /// Built on first use: a gateway without filters pays nothing.
    engine: OnceLock<Arc<FilterEngine>>,
    live: RwLock<HashMap<Key, Arc<Loaded>>>,
    stats: Mutex<HashMap<Key, Arc<Stats>>>,
    /// Uploads and deletes of one gateway go one at a time.
    write: Mutex<()>,
}

impl Registry {
    /// Opens `{data_dir}/filters` and loads every stored filter.
    pub fn open(
        data_dir: &Path,
        config: &FiltersConfig,
        metrics: Arc<Metrics>,
    ) -> Result<Registry, RegistryError> {
        let dir = data_dir.join("filters");
        std::fs::create_dir_all(&dir)?;
        let registry = Registry {
            dir,
            config: config.clone(),
            metrics,
            engine: OnceLock::new(),
            live: RwLock::new(HashMap::new()),
            stats: Mutex::new(HashMap::new()),
            write: Mutex::new(()),
        };
        for tenant in read_dir_names(&registry.dir)? {
            for name in read_dir_names(&registry.dir.join(&tenant))? {
                match registry.load_stored(&tenant, &name) {
                    Ok(loaded) => {
                        tracing::info!(%tenant, filter = %name, version = loaded.meta.version, "filter loaded");
                        registry.insert(&tenant, &name, loaded);
                    }
                    Err(e) => {
                        tracing::error!(%tenant, filter = %name, error = %e, "stored filter not loaded")
                    }
                }
            }
        }
        Ok(registry)
    }

    pub fn config(&self) -> &FiltersConfig {
        &self.config
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn engine(&self) -> Result<&Arc<FilterEngine>, RegistryError> {
        if let Some(e) = self.engine.get() {
            return Ok(e);
        }
        let engine =
            FilterEngine::new(&self.config).map_err(|e| RegistryError::Engine(format!("{e:#}")))?;
        Ok(self.engine.get_or_init(|| engine))
    }

    /// The live version of a tenant's filter.
    pub fn get(&self, tenant: &str, name: &str) -> Option<Arc<Loaded>> {
        self.live
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(tenant.to_string(), name.to_string()))
            .cloned()
    }

    /// A tenant's filters, by name.
    pub fn list(&self, tenant: &str) -> Vec<(String, Arc<Loaded>)> {
        let mut out: Vec<_> = self
            .live
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .map(|((_, n), l)| (n.clone(), l.clone()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Validates, compiles, stores durably and swaps in a new version.
    /// Blocking (compilation takes a while): call from a blocking thread.
    pub fn upload(&self, tenant: &str, name: &str, bytes: &[u8]) -> Result<Meta, RegistryError> {
        self.upload_declared(tenant, name, bytes, super::caps::may_drop(bytes))
    }

    /// [`Registry::upload`] of a component whose declaration
    /// ([`super::caps::may_drop`]) the caller has read already.
    pub fn upload_declared(
        &self,
        tenant: &str,
        name: &str,
        bytes: &[u8],
        may_drop: bool,
    ) -> Result<Meta, RegistryError> {
        if !valid_filter_name(name) {
            return Err(RegistryError::Invalid(format!(
                "filter name `{name}` {FILTER_NAME_RULE}"
            )));
        }
        let engine = self.engine()?;
        let (component, pre) = engine.compile(bytes).map_err(RegistryError::Invalid)?;
        let compiled = engine
            .serialize(&component)
            .map_err(|e| RegistryError::Engine(format!("{e:#}")))?;

        let _write = self.write.lock().unwrap_or_else(|e| e.into_inner());
        let dir = self.dir.join(tenant).join(name);
        std::fs::create_dir_all(&dir)?;
        let version = read_meta(&dir).map_or(1, |m| m.version + 1);
        let meta = Meta {
            version,
            sha256: hex(&sha2::Sha256::digest(bytes)),
            size: bytes.len() as u64,
            uploaded_at: crate::event::format_time(time::OffsetDateTime::now_utc()),
            may_drop,
        };
        write_durably(&dir.join(format!("v{version}.wasm")), bytes)?;
        write_durably(&dir.join(format!("v{version}.cwasm")), &compiled)?;
        let meta_json = serde_json::to_vec_pretty(&meta).expect("meta serializes");
        write_durably(&dir.join("current.json"), &meta_json)?;
        sync_dir(&dir)?;
        sync_dir(&self.dir.join(tenant))?;
        let loaded = self.loaded(tenant, name, meta.clone(), pre);
        self.insert(tenant, name, loaded);
        remove_old_versions(&dir, version);
        tracing::info!(%tenant, filter = %name, version, size = meta.size, "filter uploaded");
        Ok(meta)
    }

    /// Removes a tenant's filter (its files and its live version).
    pub fn delete(&self, tenant: &str, name: &str) -> Result<(), RegistryError> {
        let _write = self.write.lock().unwrap_or_else(|e| e.into_inner());
        let key = (tenant.to_string(), name.to_string());
        if self
            .live
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key)
            .is_none()
        {
            return Err(RegistryError::NotFound(name.to_string()));
        }
        self.stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key);
        let dir = self.dir.join(tenant).join(name);
        std::fs::remove_dir_all(&dir)?;
        sync_dir(&self.dir.join(tenant))?;
        tracing::info!(%tenant, filter = %name, "filter deleted");
        Ok(())
    }

    /// Drops every idle instance of every filter, freeing their slots of
    /// the pooling allocator (when `filters.max_instances` is reached).
    pub fn drop_idle_instances(&self) {
        let live = self.live.read().unwrap_or_else(|e| e.into_inner());
        for loaded in live.values() {
            loaded
                .pools
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clear();
        }
    }

    fn insert(&self, tenant: &str, name: &str, loaded: Loaded) {
        self.live
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert((tenant.to_string(), name.to_string()), Arc::new(loaded));
    }

    fn loaded(&self, tenant: &str, name: &str, meta: Meta, pre: FilterPre<State>) -> Loaded {
        let stats = self
            .stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((tenant.to_string(), name.to_string()))
            .or_default()
            .clone();
        Loaded {
            meta,
            owner: Arc::new(Owner::new(tenant, name, self.metrics.clone())),
            stats,
            pre,
            engine: self
                .engine
                .get()
                .expect("engine built before loading")
                .clone(),
            pools: Mutex::new(HashMap::new()),
        }
    }

    fn load_stored(&self, tenant: &str, name: &str) -> Result<Loaded, RegistryError> {
        let dir = self.dir.join(tenant).join(name);
        let meta = read_meta(&dir).ok_or_else(|| {
            RegistryError::Invalid(format!("{} has no readable current.json", dir.display()))
        })?;
        let engine = self.engine()?;
        let cwasm = dir.join(format!("v{}.cwasm", meta.version));
        // SAFETY: `.cwasm` files are written only by `upload` above, from
        // `Component::serialize` of this engine configuration.
        let precompiled = std::fs::read(&cwasm)
            .ok()
            .and_then(|bytes| unsafe { engine.deserialize(&bytes) }.ok());
        let component = match precompiled {
            Some(c) => c,
            None => {
                let wasm = std::fs::read(dir.join(format!("v{}.wasm", meta.version)))?;
                let (component, _) = engine.compile(&wasm).map_err(RegistryError::Invalid)?;
                if let Ok(bytes) = engine.serialize(&component) {
                    write_durably(&cwasm, &bytes)?;
                }
                component
            }
        };
        let pre = engine.prepare(&component).map_err(RegistryError::Invalid)?;
        Ok(self.loaded(tenant, name, meta, pre))
    }
}

fn read_meta(dir: &Path) -> Option<Meta> {
    serde_json::from_slice(&std::fs::read(dir.join("current.json")).ok()?).ok()
}

fn read_dir_names(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir()
            && let Some(name) = entry.file_name().to_str()
        {
            names.push(name.to_string());
        }
    }
    Ok(names)
}

/// Writes `path` through a temporary file, fsync and rename.
fn write_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

fn remove_old_versions(dir: &Path, keep: u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let version = name
            .strip_prefix('v')
            .and_then(|r| r.split('.').next())
            .and_then(|v| v.parse::<u64>().ok());
        if version.is_some_and(|v| v != keep) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
