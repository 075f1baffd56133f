//! # Logway: a WebAssembly-extensible edge ingestion gateway for logs
//!
//! ## Layout, in the order an event travels
//!
//! - [`listen`]: sockets, connection bounds, timeouts and TLS.
//! - [`sources`]: one folder per input protocol ([`sources::http`],
//!   [`sources::syslog`]): decode what the client sent into items, answer
//!   in the protocol's terms.
//! - [`pipeline`]: the only way into the WAL, the same for every source:
//!   key → tenant and route ([`tenants`]), rate limits, idempotency, the
//!   route's WASM filter chain ([`filter`]), stored events ([`event`]),
//!   one sealed batch ([`batch`]), the WAL append; one outcome per item.
//! - [`wal`]: the batch is fsynced (group commit); only then is the client
//!   answered. Its consumers ([`wal::consumer`]) read it from their own
//!   checkpoints, at `server.background_nice`:
//!   - [`hot`]: the indexer fills per-tenant, per-type, per-day tantivy
//!     partitions; search and histogram read them;
//!   - [`archive`]: the archive writer uploads every event as NDJSON + zstd
//!     objects to a local directory or S3;
//!   - the idempotency table ([`pipeline::idempotency`]);
//!   - [`tail`]: live tails read the durable end and push what matches
//!     (no checkpoint);
//!   - [`derived`]: metrics derived from logs, counted from the durable
//!     end (no checkpoint) and written back as metric points.
//! - [`replay`]: jobs that read archived ranges back into rehydrated hot
//!   partitions.
//! - [`api`]: the HTTP API (search, histogram, filters, replay, health,
//!   metrics, the UI's sessions); [`error`] is the one place errors become
//!   HTTP statuses; [`ui`] serves the web UI's files, which call the API.
//! - [`server`]: start-up, recovery, the router, periodic tasks and the
//!   written shutdown order; [`state`] is what handlers share.
//! - [`config`] assembles the sections each module defines beside itself;
//!   [`cli`] is the `logway` command; [`telemetry`] logs, traces and
//!   metrics; [`disk_format`] the on-disk format versions; [`background`]
//!   the background threads' priority.
//!
//! ## The dependency rule
//!
//! Lower layers never import higher ones (checked by `.ci/check-deps`;
//! `docs/architecture.md` has the full table):
//! - `listen` imports no `sources`, `pipeline`, `api` or `server`;
//! - `pipeline` uses `tenants`, `filter`, `event`, `batch`, `wal`, and
//!   nothing of HTTP (no `axum`, no [`error`]);
//! - `sources` use `pipeline`, `tenants`, `listen`, never `api` or `server`;
//! - `api` uses no `sources`; only `server` (and `config`, which
//!   assembles sections) sees everything.
//!
//! [`server::start`] is the single entry point used by `main` and by the
//! tests.

pub mod alerts;
pub mod api;
pub mod archive;
pub mod background;
pub mod batch;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod derived;
pub mod disk_format;
pub mod error;
pub mod event;
pub mod filter;
pub mod hot;
pub mod listen;
pub mod outbound;
pub mod pipeline;
pub mod replay;
pub mod server;
pub mod sources;
pub mod state;
pub mod tail;
pub mod telemetry;
pub mod tenants;
pub mod ui;
pub mod wal;
pub mod webhooks;

pub use config::Config;
pub use server::{Gateway, start};

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}
