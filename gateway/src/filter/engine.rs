//! The one wasmtime `Engine` and everything a filter call runs inside.
//!
//! Configured here and nowhere else: the component model, the pooling
//! allocator (instances come from preallocated slots, so creating one after
//! a trap is cheap), epoch interruption with a ticker thread (a batch gets
//! `filters.max_batch_time` of CPU, then traps), a stack cap, and per-store
//! `StoreLimits` (memory past `filters.max_memory_bytes` traps).
//!
//! A store holds one instance of one filter version of one tenant, so two
//! tenants never share a store. The linker offers the `logway:filter` host
//! interface and the WASI interfaces the Rust standard library links (stdio,
//! clocks, random, exit, an empty environment), backed by an empty WASI
//! context: no files, no network, no environment variables, stdout
//! discarded, stderr captured (64 KiB per instance) so a panic message can
//! be reported. Uploads importing anything else are refused.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wasmtime::component::{Component, HasData, HasSelf, Linker, ResourceTable};
use wasmtime::{
    Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimits,
    StoreLimitsBuilder, Trap,
};
use wasmtime_wasi::cli::{WasiCli, WasiCliView};
use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::random::WasiRandom;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::config::FiltersConfig;
use crate::telemetry::{FilterCounterLabels, FilterLabels, Metrics};

mod bindings {
    wasmtime::component::bindgen!({
        world: "filter",
        path: "../wit",
    });
}

use bindings::logway::filter::host;
pub use bindings::logway::filter::types as wit;
pub use bindings::{Filter as FilterBindings, FilterPre};

/// How often the ticker advances the epoch; deadlines are whole ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);
/// Captured stderr per instance (a panic message, a few debug prints).
const STDERR_CAPTURE_BYTES: usize = 64 * 1024;
/// Host calls (log and counter together) a filter may make per batch.
const HOST_CALLS_PER_BATCH: u32 = 1000;
/// `log` calls per batch, within the host-call budget.
const LOG_CALLS_PER_BATCH: u32 = 100;
const LOG_MESSAGE_BYTES: usize = 1024;
/// Distinct counter names one filter may create.
const COUNTER_NAMES_PER_FILTER: usize = 32;
/// WIT interfaces a filter may import: ours, and what Rust's std links.
const ALLOWED_IMPORTS: &[&str] = &[
    "logway:filter/host@",
    "logway:filter/types@",
    "wasi:cli/environment@",
    "wasi:cli/exit@",
    "wasi:cli/stdin@",
    "wasi:cli/stdout@",
    "wasi:cli/stderr@",
    "wasi:cli/terminal-",
    "wasi:clocks/",
    "wasi:random/",
    "wasi:io/",
];

/// Why a filter call did not produce usable verdicts. Every failure turns
/// the batch's events into dead letters; `kind` is the metric label.
#[derive(Debug, Clone)]
pub struct Failure {
    pub kind: &'static str,
    pub message: String,
}

impl Failure {
    pub fn new(kind: &'static str, message: impl Into<String>) -> Failure {
        Failure {
            kind,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// What a store carries: the sandbox's WASI context and limits, and who the
/// instance belongs to (for tenant-scoped host calls).
pub struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
    stderr: MemoryOutputPipe,
    /// `stderr` bytes already reported.
    stderr_seen: usize,
    owner: Arc<Owner>,
    host_calls_left: u32,
    logs_left: u32,
    ignored: u64,
}

/// The tenant and filter an instance belongs to, shared by its instances.
pub struct Owner {
    pub tenant: String,
    pub filter: String,
    pub metrics: Arc<Metrics>,
    counter_names: Mutex<HashSet<String>>,
}

impl Owner {
    pub fn new(tenant: &str, filter: &str, metrics: Arc<Metrics>) -> Owner {
        Owner {
            tenant: tenant.to_string(),
            filter: filter.to_string(),
            metrics,
            counter_names: Mutex::new(HashSet::new()),
        }
    }

    pub fn labels(&self) -> FilterLabels {
        FilterLabels {
            tenant: self.tenant.clone(),
            filter: self.filter.clone(),
        }
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl State {
    fn take_host_call(&mut self) -> bool {
        if self.host_calls_left == 0 {
            self.ignored += 1;
            return false;
        }
        self.host_calls_left -= 1;
        true
    }

    /// What the guest wrote to stderr since the last report (a panic
    /// message, typically), trimmed.
    fn new_stderr(&mut self) -> String {
        let all = self.stderr.contents();
        let fresh = &all[self.stderr_seen.min(all.len())..];
        self.stderr_seen = all.len();
        let text = String::from_utf8_lossy(fresh);
        let text = text.trim();
        let start = text.len().saturating_sub(500);
        let start = (start..=text.len())
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(text.len());
        text[start..].to_string()
    }
}

impl host::Host for State {
    fn log(&mut self, level: host::LogLevel, message: String) {
        if self.logs_left == 0 {
            self.ignored += 1;
            return;
        }
        if !self.take_host_call() {
            return;
        }
        self.logs_left -= 1;
        let mut end = message.len().min(LOG_MESSAGE_BYTES);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        let (tenant, filter, text) = (&self.owner.tenant, &self.owner.filter, &message[..end]);
        match level {
            host::LogLevel::Trace => tracing::trace!(%tenant, %filter, "filter: {text}"),
            host::LogLevel::Debug => tracing::debug!(%tenant, %filter, "filter: {text}"),
            host::LogLevel::Info => tracing::info!(%tenant, %filter, "filter: {text}"),
            host::LogLevel::Warn => tracing::warn!(%tenant, %filter, "filter: {text}"),
            host::LogLevel::Error => tracing::error!(%tenant, %filter, "filter: {text}"),
        }
    }

    fn counter_add(&mut self, name: String, delta: u64) {
        if !self.take_host_call() {
            return;
        }
        let known = {
            let mut names = self
                .owner
                .counter_names
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            names.contains(&name)
                || (names.len() < COUNTER_NAMES_PER_FILTER
                    && name.len() <= 64
                    && names.insert(name.clone()))
        };
        if !known {
            self.ignored += 1;
            return;
        }
        self.owner
            .metrics
            .filter_counter
            .get_or_create(&FilterCounterLabels {
                tenant: self.owner.tenant.clone(),
                filter: self.owner.filter.clone(),
                name,
            })
            .inc_by(delta);
    }
}

impl wit::Host for State {}

/// The wasm I/O interfaces read and write streams kept in the store's table.
struct Io;

impl HasData for Io {
    type Data<'a> = &'a mut ResourceTable;
}

/// One live filter instance: its store and its exports.
pub struct Instance {
    store: Store<State>,
    exports: FilterBindings,
}

/// The engine, the linker and the sandbox limits, shared by every filter.
pub struct FilterEngine {
    engine: Engine,
    linker: Linker<State>,
    config: FiltersConfig,
    deadline_ticks: u64,
}

impl FilterEngine {
    /// Builds the engine and starts its epoch ticker (which stops when the
    /// engine is dropped).
    pub fn new(config: &FiltersConfig) -> wasmtime::Result<Arc<FilterEngine>> {
        let mut wt = wasmtime::Config::new();
        wt.wasm_component_model(true)
            .epoch_interruption(true)
            .max_wasm_stack(config.max_stack_bytes);
        let n = config.max_instances.max(1);
        let mut pool = PoolingAllocationConfig::default();
        // A Rust component is a handful of core modules (the program and
        // small shims), each with at most a memory and a table.
        pool.total_component_instances(n)
            .total_core_instances(n.saturating_mul(8))
            .total_memories(n.saturating_mul(2))
            .total_tables(n.saturating_mul(8))
            .max_memory_size(config.max_memory_bytes);
        wt.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&wt)?;

        let weak = engine.weak();
        std::thread::Builder::new()
            .name("filter-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })?;

        let mut linker = Linker::<State>::new(&engine);
        add_wasi_subset(&mut linker)?;
        FilterBindings::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s)?;
        let tick = EPOCH_TICK.as_nanos().max(1);
        let deadline_ticks = (config.max_batch_time.as_nanos().div_ceil(tick) as u64).max(1);
        Ok(Arc::new(FilterEngine {
            engine,
            linker,
            config: config.clone(),
            deadline_ticks,
        }))
    }

    pub fn config(&self) -> &FiltersConfig {
        &self.config
    }

    /// Validates and compiles an uploaded component, and checks it against
    /// the `filter` world: its imports are allowed, its exports are there.
    pub fn compile(&self, bytes: &[u8]) -> Result<(Component, FilterPre<State>), String> {
        if bytes.len() > self.config.max_upload_bytes {
            return Err(format!(
                "the component is {} bytes; the limit is {} (filters.max_upload_bytes)",
                bytes.len(),
                self.config.max_upload_bytes
            ));
        }
        if !bytes.starts_with(b"\0asm") {
            return Err("not a WebAssembly binary (no `\\0asm` header)".into());
        }
        let component = Component::new(&self.engine, bytes).map_err(|e| {
            format!(
                "not a valid WebAssembly component (build with `--target wasm32-wasip2`): {e:#}"
            )
        })?;
        let pre = self.prepare(&component)?;
        Ok((component, pre))
    }

    /// Checks a compiled component against the world and links it.
    pub fn prepare(&self, component: &Component) -> Result<FilterPre<State>, String> {
        let ty = component.component_type();
        for (name, _) in ty.imports(&self.engine) {
            if !ALLOWED_IMPORTS.iter().any(|p| name.starts_with(p)) {
                return Err(format!(
                    "the component imports `{name}`, which filters may not use (allowed: logway:filter/host, and wasi cli stdio, exit, environment, clocks, random, io)"
                ));
            }
        }
        let pre = self.linker.instantiate_pre(component).map_err(|e| {
            format!("the component's imports do not match the `logway:filter` world: {e:#}")
        })?;
        FilterPre::new(pre).map_err(|e| {
            format!(
                "the component does not export the `logway:filter` world (`init`, `process`): {e:#}"
            )
        })
    }

    /// Serializes a compiled component for fast loading at start.
    pub fn serialize(&self, component: &Component) -> wasmtime::Result<Vec<u8>> {
        component.serialize()
    }

    /// Loads a component serialized by this build of the gateway.
    ///
    /// # Safety
    /// `bytes` must come from [`FilterEngine::serialize`] (the gateway's own
    /// files): wasmtime trusts precompiled code.
    pub unsafe fn deserialize(&self, bytes: &[u8]) -> wasmtime::Result<Component> {
        // SAFETY: the caller passes bytes this gateway wrote itself.
        unsafe { Component::deserialize(&self.engine, bytes) }
    }

    /// Creates an instance and calls its `init` with the route's config.
    pub fn instantiate(
        &self,
        pre: &FilterPre<State>,
        owner: &Arc<Owner>,
        config: &[(String, String)],
    ) -> Result<Instance, Failure> {
        let stderr = MemoryOutputPipe::new(STDERR_CAPTURE_BYTES);
        let wasi = wasmtime_wasi::WasiCtx::builder()
            .stderr(stderr.clone())
            .allow_blocking_current_thread(false)
            .build();
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.config.max_memory_bytes)
            .trap_on_grow_failure(true)
            .build();
        let state = State {
            wasi,
            table: ResourceTable::new(),
            limits,
            stderr,
            stderr_seen: 0,
            owner: owner.clone(),
            host_calls_left: HOST_CALLS_PER_BATCH,
            logs_left: LOG_CALLS_PER_BATCH,
            ignored: 0,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline(self.deadline_ticks);
        let exports = pre
            .instantiate(&mut store)
            .map_err(|e| self.failure(&mut store, "instantiate", e))?;
        owner
            .metrics
            .filter_instances_created
            .get_or_create(&owner.labels())
            .inc();
        let mut instance = Instance { store, exports };
        instance.store.set_epoch_deadline(self.deadline_ticks);
        match instance.exports.call_init(&mut instance.store, config) {
            Ok(Ok(())) => Ok(instance),
            Ok(Err(message)) => Err(Failure::new(
                "init",
                format!("init refused its config: {message}"),
            )),
            Err(e) => Err(self.failure(&mut instance.store, "init", e)),
        }
    }

    /// Runs `process` on one batch within the CPU deadline. After an error
    /// the instance must be dropped (its state is unknown).
    pub fn process(
        &self,
        instance: &mut Instance,
        ctx: &wit::BatchContext,
        events: &[wit::Event],
    ) -> Result<Vec<wit::Verdict>, Failure> {
        let store = &mut instance.store;
        store.set_epoch_deadline(self.deadline_ticks);
        {
            let s = store.data_mut();
            s.host_calls_left = HOST_CALLS_PER_BATCH;
            s.logs_left = LOG_CALLS_PER_BATCH;
        }
        let result = instance.exports.call_process(&mut *store, ctx, events);
        let ignored = std::mem::take(&mut store.data_mut().ignored);
        if ignored > 0 {
            let owner = &store.data().owner;
            owner
                .metrics
                .filter_host_calls_ignored
                .get_or_create(&owner.labels())
                .inc_by(ignored);
        }
        result.map_err(|e| self.failure(store, "trap", e))
    }

    /// Names what went wrong in a call: CPU deadline, memory cap, stack, or
    /// a trap (with the guest's last stderr lines, e.g. its panic message).
    fn failure(
        &self,
        store: &mut Store<State>,
        default: &'static str,
        e: wasmtime::Error,
    ) -> Failure {
        let stderr = store.data_mut().new_stderr();
        let with_stderr = |m: String| {
            if stderr.is_empty() {
                m
            } else {
                format!("{m}; stderr: {stderr}")
            }
        };
        match e.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => Failure::new(
                "cpu",
                format!(
                    "filter ran past its CPU deadline of {:?} (filters.max_batch_time)",
                    self.config.max_batch_time
                ),
            ),
            Some(Trap::StackOverflow) => Failure::new(
                "trap",
                format!(
                    "filter overflowed its stack of {} bytes (filters.max_stack_bytes)",
                    self.config.max_stack_bytes
                ),
            ),
            Some(trap) => Failure::new(default, with_stderr(format!("filter trapped: {trap}"))),
            None if format!("{e:#}").contains("forcing trap when growing memory") => Failure::new(
                "memory",
                format!(
                    "filter grew past its memory cap of {} bytes (filters.max_memory_bytes)",
                    self.config.max_memory_bytes
                ),
            ),
            None => Failure::new(default, with_stderr(format!("filter failed: {e:#}"))),
        }
    }
}

/// The WASI interfaces a filter may use (see [`ALLOWED_IMPORTS`]); the
/// filesystem and sockets are deliberately absent.
fn add_wasi_subset(linker: &mut Linker<State>) -> wasmtime::Result<()> {
    use wasmtime_wasi::p2::bindings::{cli, clocks, random, sync};
    let l = linker;
    clocks::wall_clock::add_to_linker::<State, WasiClocks>(l, State::clocks)?;
    clocks::monotonic_clock::add_to_linker::<State, WasiClocks>(l, State::clocks)?;
    random::random::add_to_linker::<State, WasiRandom>(l, |t| t.wasi.random())?;
    random::insecure::add_to_linker::<State, WasiRandom>(l, |t| t.wasi.random())?;
    random::insecure_seed::add_to_linker::<State, WasiRandom>(l, |t| t.wasi.random())?;
    cli::exit::add_to_linker::<State, WasiCli>(l, State::cli)?;
    cli::environment::add_to_linker::<State, WasiCli>(l, State::cli)?;
    cli::stdin::add_to_linker::<State, WasiCli>(l, State::cli)?;
    cli::stdout::add_to_linker::<State, WasiCli>(l, State::cli)?;
    cli::stderr::add_to_linker::<State, WasiCli>(l, State::cli)?;
    cli::terminal_input::add_to_linker::<State, WasiCli>(l, State::cli)?;
    cli::terminal_output::add_to_linker::<State, WasiCli>(l, State::cli)?;
    cli::terminal_stdin::add_to_linker::<State, WasiCli>(l, State::cli)?;
    cli::terminal_stdout::add_to_linker::<State, WasiCli>(l, State::cli)?;
    cli::terminal_stderr::add_to_linker::<State, WasiCli>(l, State::cli)?;
    sync::io::error::add_to_linker::<State, Io>(l, |t| &mut t.table)?;
    sync::io::poll::add_to_linker::<State, Io>(l, |t| &mut t.table)?;
    sync::io::streams::add_to_linker::<State, Io>(l, |t| &mut t.table)?;
    Ok(())
}
