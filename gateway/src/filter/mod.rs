//! WASM filters: tenant-uploaded components that see each batch after
//! decoding and before the WAL, so the WAL holds what they decided.
//!
//! - [`engine`]: the one wasmtime `Engine` (pooling allocator, epoch
//!   deadline, memory and stack caps), the sandboxed store, the host calls;
//! - [`registry`]: uploads stored durably per tenant, versions swapped
//!   atomically, pools of idle instances;
//! - [`chain`]: a route's filters run in order over one batch; verdicts
//!   applied; failures turned into dead letters;
//! - [`caps`]: what a component declares (whether it may drop events);
//! - [`local`]: `logway filter test`, a filter over local events;
//! - [`config`]: the `[filters]` sandbox bounds and a route's filter list.
//!
//! The interface is the `filter` world in `wit/filter.wit`; `sdk/` is the
//! Rust crate filters are written with.

pub mod caps;
pub mod chain;
pub mod config;
pub mod engine;
pub mod local;
pub mod registry;

pub use chain::{BatchInfo, DeadLetter, Doc, Pending};
pub use config::{FilterRef, FiltersConfig};
pub use registry::{Registry, RegistryError};
