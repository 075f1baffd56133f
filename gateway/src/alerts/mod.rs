//! # Alerts: rules evaluated over the hot tier, delivered to receivers
//!
//! ```text
//! rules (config + API) ──► evaluator thread (background_nice, one rule at a time)
//!                              │ eval: counts / groups / terms over the tenant's hot partitions;
//!                              │ tally: per-step counts (shared by the rules counting the same),
//!                              │ updated with what was indexed since; kept in <data_dir>/alerts-tallies.json
//!                              ▼
//!                          state machine (pending → firing → resolved), per rule and group
//!                              │ notifications into the outbox
//!                              ▼
//!                          <data_dir>/alerts.json (rules, states, mutes, outbox), replaced durably
//!                              │
//!                              ▼
//!                          a delivery task per receiver (Alertmanager, webhook v4, Slack),
//!                          retried with backoff; removed from the outbox once delivered
//! ```
//!
//! - [`rule`]: what a rule is and how it is checked; [`config`]: the
//!   `[alerts]` section and the tenants' receivers and rules.
//! - [`eval`]: one evaluation; [`tally`]: the counts a rule keeps between
//!   evaluations, so that each counts only what is new; [`tallies`]: the
//!   evaluator's tallies, shared and saved; [`state`]: the state machine;
//!   [`notify`]: what receivers are sent; [`deliver`]: sending it;
//!   [`evaluator`]: the schedule; [`view`]: what the API shows.
//!
//! The outbox is kept with the states in one file, written before anything
//! is sent: a restart neither loses a notification nor sends one twice
//! (unless it stopped in the middle of a delivery, which is then sent
//! again: at least once).

pub mod config;
pub mod deliver;
pub mod eval;
pub mod evaluator;
pub mod notify;
pub mod rule;
pub mod seen;
pub mod state;
pub mod tallies;
pub mod tally;
pub mod view;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::hot::HotSchema;
use crate::telemetry::Metrics;
use config::{AlertsConfig, ReceiverConfig, ReceiverKind};
use notify::Outgoing;
use rule::{Rule, RuleError, RuleSpec};
use state::{Phase, RuleAlerts};

const FILE: &str = "alerts.json";

/// What `alerts.json` holds.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Stored {
    /// Rules created through the API, per tenant.
    #[serde(default)]
    rules: BTreeMap<String, Vec<RuleSpec>>,
    /// Alert states and mutes, per tenant and rule.
    #[serde(default)]
    state: BTreeMap<String, BTreeMap<String, RuleAlerts>>,
    /// Notifications not yet delivered, oldest first.
    #[serde(default)]
    outbox: Vec<Outgoing>,
    #[serde(default)]
    seq: u64,
}

/// Where a rule comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Config,
    Api,
}

/// A rule's last evaluation, as the API and `/metrics` show it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RuleStatus {
    pub last_evaluation: Option<String>,
    pub last_duration_ms: Option<u64>,
    /// ok, error or over_budget.
    pub last_result: Option<String>,
    pub last_error: Option<String>,
    /// Groups the last evaluation found active.
    pub active_groups: usize,
    pub evaluations: u64,
    pub missed: u64,
}

struct Entry {
    rule: Arc<Rule>,
    source: Source,
    status: RuleStatus,
    next_due: Instant,
}

/// A receiver's deliveries, as the API shows them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReceiverStatus {
    pub last_success: Option<String>,
    pub last_error: Option<String>,
    pub consecutive_failures: u64,
    pub dropped: u64,
}

/// Everything under one lock.
struct Book {
    stored: Stored,
    /// (tenant, rule name) → rule.
    rules: BTreeMap<(String, String), Entry>,
    receivers: BTreeMap<(String, String), ReceiverStatus>,
    /// Bumped on each change to `stored`.
    generation: u64,
}

impl Book {
    /// Notifications queued for a tenant's receiver.
    fn queued(&self, tenant: &str, receiver: &str) -> usize {
        self.stored
            .outbox
            .iter()
            .filter(|o| o.tenant == tenant && o.receiver == receiver)
            .count()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AlertsError {
    #[error("{0}")]
    Invalid(RuleError),
    #[error("no alert rule `{0}`")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Limit(String),
    #[error("cannot store the alert state: {0}")]
    Io(#[from] std::io::Error),
}

pub struct Alerts {
    pub config: AlertsConfig,
    schema: HotSchema,
    /// Where links in notifications point.
    pub external_url: String,
    /// Where `alerts.json` and the tallies' file are.
    pub data_dir: PathBuf,
    book: Mutex<Book>,
    /// The generation last written to the file.
    written: Mutex<u64>,
    /// Notifications up to this `seq` are in the file: only those are
    /// sent, so none goes out that a crash could forget it sent.
    persisted_seq: std::sync::atomic::AtomicU64,
    /// (tenant, name) → receiver.
    pub receivers: BTreeMap<(String, String), ReceiverConfig>,
    /// Wakes the delivery tasks (the outbox's generation).
    pub wake: tokio::sync::watch::Sender<u64>,
    pub metrics: Arc<Metrics>,
}

impl Alerts {
    /// Loads `<data_dir>/alerts.json` and the config's rules and receivers.
    pub fn open(config: &Config, metrics: Arc<Metrics>) -> anyhow::Result<Arc<Alerts>> {
        let data: &Path = &config.storage.data_dir;
        let path = data.join(FILE);
        let mut stored: Stored = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Stored::default(),
            Err(e) => return Err(e.into()),
        };
        let schema = HotSchema::new();
        let mut receivers = BTreeMap::new();
        let mut rules = BTreeMap::new();
        let now = Instant::now();
        let none = config::TenantAlerts::default();
        for t in &config.tenants {
            let own = config.alerts.tenants.get(&t.name).unwrap_or(&none);
            for r in &own.receivers {
                receivers.insert((t.name.clone(), r.name.clone()), r.clone());
            }
            let names = own.receiver_names();
            let api = stored.rules.get(&t.name).into_iter().flatten();
            let specs = own
                .rules
                .iter()
                .map(|s| (s, Source::Config))
                .chain(api.map(|s| (s, Source::Api)));
            for (spec, source) in specs {
                let key = (t.name.clone(), spec.name.clone());
                if rules.contains_key(&key) {
                    tracing::warn!(tenant = %t.name, rule = %spec.name, "an API rule has the name of a config rule; the config's wins");
                    continue;
                }
                match Rule::check(spec.clone(), &schema, &names) {
                    Ok(rule) => {
                        rules.insert(
                            key,
                            Entry {
                                rule: Arc::new(rule),
                                source,
                                status: RuleStatus::default(),
                                next_due: now,
                            },
                        );
                    }
                    Err(e) => {
                        tracing::error!(tenant = %t.name, rule = %spec.name, error = %e, "alert rule no longer valid (a receiver removed from the config?); not evaluated");
                    }
                }
            }
        }
        // States of rules that are gone, and notifications of receivers
        // that are gone, are dropped.
        for (tenant, by_rule) in stored.state.iter_mut() {
            by_rule.retain(|name, _| rules.contains_key(&(tenant.clone(), name.clone())));
        }
        stored
            .outbox
            .retain(|o| receivers.contains_key(&(o.tenant.clone(), o.receiver.clone())));
        let external_url = config
            .alerts
            .external_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", config.server.http_addr))
            .trim_end_matches('/')
            .to_string();
        let (wake, _) = tokio::sync::watch::channel(0);
        let persisted_seq = std::sync::atomic::AtomicU64::new(stored.seq);
        let alerts = Arc::new(Alerts {
            config: config.alerts.clone(),
            schema,
            external_url,
            data_dir: data.to_path_buf(),
            book: Mutex::new(Book {
                stored,
                rules,
                receivers: BTreeMap::new(),
                generation: 0,
            }),
            written: Mutex::new(0),
            persisted_seq,
            receivers,
            wake,
            metrics,
        });
        alerts.publish_gauges();
        Ok(alerts)
    }

    fn lock(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes the file if it changed since the last write (durably, by
    /// rename). Writers queue on `written`, so a newer state is never
    /// overwritten by an older one.
    pub fn persist(&self) -> std::io::Result<()> {
        let mut written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        let (generation, seq, bytes) = {
            let book = self.lock();
            if *written >= book.generation {
                return Ok(());
            }
            let bytes = serde_json::to_vec(&book.stored).expect("alert state serializes");
            (book.generation, book.stored.seq, bytes)
        };
        crate::disk_format::replace_file(&self.data_dir.join(FILE), &bytes)?;
        *written = generation;
        self.persisted_seq
            .store(seq, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    /// The receiver names a tenant's rules may use.
    fn receiver_names(&self, tenant: &str) -> Vec<String> {
        self.receivers
            .keys()
            .filter(|(t, _)| t == tenant)
            .map(|(_, n)| n.clone())
            .collect()
    }

    /// Checks a spec for `tenant` (the API's create and test calls).
    pub fn check(&self, tenant: &str, spec: RuleSpec) -> Result<Rule, AlertsError> {
        Rule::check(spec, &self.schema, &self.receiver_names(tenant)).map_err(AlertsError::Invalid)
    }

    /// Creates or replaces an API rule; `Ok(true)` if it was created.
    pub fn put(&self, tenant: &str, spec: RuleSpec, replace: bool) -> Result<bool, AlertsError> {
        let rule = self.check(tenant, spec)?;
        let key = (tenant.to_string(), rule.spec.name.clone());
        {
            let mut book = self.lock();
            let created = match book.rules.get(&key) {
                Some(e) if e.source == Source::Config => {
                    return Err(AlertsError::Conflict(format!(
                        "rule `{}` is defined in the config file; change it there",
                        key.1
                    )));
                }
                Some(_) if !replace => {
                    return Err(AlertsError::Conflict(format!(
                        "rule `{}` exists; PUT /api/v1/alerts/rules/{{name}} replaces it",
                        key.1
                    )));
                }
                Some(_) => false,
                None => {
                    let count = book.rules.keys().filter(|(t, _)| t == tenant).count();
                    if count >= self.config.max_rules_per_tenant {
                        return Err(AlertsError::Limit(format!(
                            "the tenant has {count} alert rules, the most alerts.max_rules_per_tenant allows"
                        )));
                    }
                    true
                }
            };
            let list = book.stored.rules.entry(tenant.to_string()).or_default();
            list.retain(|s| s.name != key.1);
            list.push(rule.spec.clone());
            let status = book
                .rules
                .remove(&key)
                .map(|e| e.status)
                .unwrap_or_default();
            book.rules.insert(
                key,
                Entry {
                    rule: Arc::new(rule),
                    source: Source::Api,
                    status,
                    next_due: Instant::now(),
                },
            );
            book.generation += 1;
            drop(book);
            self.persist()?;
            Ok(created)
        }
    }

    /// Deletes an API rule; its firing alerts are resolved at receivers.
    pub fn delete(&self, tenant: &str, name: &str) -> Result<(), AlertsError> {
        let key = (tenant.to_string(), name.to_string());
        let mut book = self.lock();
        match book.rules.get(&key) {
            None => return Err(AlertsError::NotFound(name.into())),
            Some(e) if e.source == Source::Config => {
                return Err(AlertsError::Conflict(format!(
                    "rule `{name}` is defined in the config file; remove it there"
                )));
            }
            Some(_) => {}
        }
        let entry = book.rules.remove(&key).expect("checked above");
        if let Some(list) = book.stored.rules.get_mut(tenant) {
            list.retain(|s| s.name != name);
        }
        let state = book
            .stored
            .state
            .get_mut(tenant)
            .and_then(|m| m.remove(name))
            .unwrap_or_default();
        // Resolve what receivers were told is firing.
        let mut gone = RuleAlerts {
            muted_until_ms: None,
            ..state
        };
        let now = crate::now_ms();
        let changes = state::advance(&mut gone, &entry.rule, &[], now, |_, _| BTreeMap::new());
        evaluator::enqueue(self, &mut book, tenant, &entry.rule, &changes, None, now);
        self.forget_gauges(tenant, name);
        book.generation += 1;
        drop(book);
        self.persist()?;
        self.wake.send_modify(|g| *g += 1);
        Ok(())
    }

    /// Mutes a rule's notifications until `until_ms` (`None`: unmutes).
    pub fn mute(&self, tenant: &str, name: &str, until_ms: Option<i64>) -> Result<(), AlertsError> {
        let key = (tenant.to_string(), name.to_string());
        let mut book = self.lock();
        if !book.rules.contains_key(&key) {
            return Err(AlertsError::NotFound(name.into()));
        }
        book.stored
            .state
            .entry(key.0)
            .or_default()
            .entry(key.1)
            .or_default()
            .muted_until_ms = until_ms;
        book.generation += 1;
        drop(book);
        self.persist()?;
        Ok(())
    }

    fn forget_gauges(&self, tenant: &str, rule: &str) {
        for state in ["pending", "firing"] {
            self.metrics
                .alerts
                .alerts
                .remove(&crate::telemetry::alerts::StateLabels {
                    tenant: tenant.into(),
                    rule: rule.into(),
                    state: state.into(),
                });
        }
    }

    /// Notifications up to this `seq` are written to the file.
    pub fn persisted_seq(&self) -> u64 {
        self.persisted_seq
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Sets the alert and queue gauges from the states.
    fn publish_gauges(&self) {
        let book = self.lock();
        for (tenant, receiver) in self.receivers.keys() {
            let queued = book.queued(tenant, receiver);
            self.metrics
                .alerts
                .queued
                .get_or_create(&crate::telemetry::alerts::ReceiverLabels {
                    tenant: tenant.clone(),
                    receiver: receiver.clone(),
                })
                .set(queued as i64);
        }
        for (tenant, name) in book.rules.keys() {
            let state = book.stored.state.get(tenant).and_then(|m| m.get(name));
            for phase in [Phase::Pending, Phase::Firing] {
                let n = state.map_or(0, |s| {
                    s.alerts.values().filter(|a| a.phase == phase).count()
                });
                self.metrics
                    .alerts
                    .alerts
                    .get_or_create(&crate::telemetry::alerts::StateLabels {
                        tenant: tenant.clone(),
                        rule: name.clone(),
                        state: match phase {
                            Phase::Pending => "pending",
                            Phase::Firing => "firing",
                        }
                        .into(),
                    })
                    .set(n as i64);
            }
        }
    }
}

/// Whether a receiver of this kind hears of every firing alert at each
/// resend (Alertmanager) or only of changes and repeats.
pub fn resends(kind: ReceiverKind) -> bool {
    kind == ReceiverKind::Alertmanager
}

/// The evaluator thread and the delivery tasks of a running gateway.
pub struct Running {
    alerts: Arc<Alerts>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    evaluator: Option<std::thread::JoinHandle<()>>,
    deliveries: Vec<tokio::task::JoinHandle<()>>,
}

/// A tenant's saved searches, as rules name them: the query and the log
/// type of the one with this id.
pub trait SavedQueries: Send + Sync {
    fn saved_query(&self, tenant: &str, id: &str) -> Option<(String, Option<String>)>;
}

/// Starts evaluating (at priority `nice`) and delivering; nothing when
/// `alerts.enabled` is off.
pub fn start(
    alerts: &Arc<Alerts>,
    hot: Arc<crate::hot::HotIndex>,
    saved: Arc<dyn SavedQueries>,
    nice: i32,
) -> std::io::Result<Running> {
    let alerts = alerts.clone();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (evaluator, deliveries) = if alerts.config.enabled {
        (
            Some(evaluator::spawn(
                alerts.clone(),
                hot,
                saved,
                stop.clone(),
                nice,
            )?),
            deliver::start(&alerts),
        )
    } else {
        (None, Vec::new())
    };
    Ok(Running {
        alerts,
        stop,
        evaluator,
        deliveries,
    })
}

impl Running {
    /// Stops the evaluator (which writes the state) and the deliveries.
    pub async fn stop(self) {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        for d in &self.deliveries {
            d.abort();
        }
        if let Some(e) = self.evaluator {
            let _ = tokio::task::spawn_blocking(move || e.join()).await;
        }
        let alerts = self.alerts;
        let _ = tokio::task::spawn_blocking(move || alerts.persist()).await;
    }
}
