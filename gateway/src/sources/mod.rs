//! # Sources: one folder per input protocol
//!
//! A source turns its protocol into pipeline calls and back: it frames and
//! decodes what the client sent into [`crate::pipeline::Item`]s, maps the
//! client's credentials to a [`crate::pipeline::Caller`] (or is a listener
//! bound to one tenant), and renders the pipeline's outcomes and refusals
//! in its protocol's own terms. Everything between (tenant, route, rate
//! limits, idempotency, filters, events, the WAL) is the pipeline's, the
//! same for every source; sockets, connection bounds and TLS are
//! `crate::listen`'s.
//!
//! - [`http`]: native HTTP ingest on tenant routes (JSON, NDJSON, text;
//!   CORS for browsers; the per-line answer).
//! - [`elastic`]: the Elasticsearch API (`_bulk`, single documents, the
//!   handshake clients make), under a path prefix and on a listener of
//!   its own.
//! - [`syslog`]: TCP syslog listeners (RFC 5424/3164, TLS).
//! - [`beats`]: Beats (Lumberjack v2) listeners, what Filebeat's
//!   `output.logstash` sends; acked once durable.
//!
//! ## Adding a source
//!
//! 1. A folder `sources/<protocol>/`: decoding into items, the answer, and
//!    the mapping of [`crate::pipeline::Error`] to the protocol's statuses
//!    (for HTTP, `crate::error` is the one mapping to reuse). Its config
//!    section, if any, in `sources/<protocol>/config.rs`, added to
//!    `crate::config::Config`.
//! 2. An HTTP protocol with fixed paths (`/_bulk`, `/loki/api/v1/push`,
//!    OTLP's `/v1/logs`, …): its routes in [`routes`], matched before the
//!    tenant fallback, and the paths in [`FIXED_PATHS`] so that no tenant
//!    route can take them (config validation refuses it). A socket
//!    protocol: its listener started in `crate::server`, beside syslog's,
//!    with `crate::listen::tcp` doing the accepting.
//! 3. Tests in the integration suite driving a real client of that
//!    protocol, and a guide page under `docs/guides/`.
//!
//! The dependency rule (`docs/architecture.md`): sources use the
//! pipeline, tenants and listen; nothing below the sources uses them.

pub mod beats;
pub mod elastic;
pub mod http;
pub mod syslog;

use std::sync::Arc;

use axum::Router;

use crate::config::Config;
use crate::state::AppState;

/// Fixed paths of protocol endpoints and the source serving each (path
/// prefixes a source takes from config, like `elasticsearch.path`, are
/// refused by that source's config check).
pub const FIXED_PATHS: &[(&str, &str)] = &[];

/// The routes of protocol endpoints at fixed paths and configured
/// prefixes, matched before the tenant fallback (see [`FIXED_PATHS`]).
pub fn routes(config: &Config) -> Router<Arc<AppState>> {
    Router::new().merge(elastic::routes(&config.elasticsearch))
}

/// For a listener bound to `tenant` (syslog, Beats): with a client CA, the
/// connection's certificate must carry a name the tenant lists in
/// `ingest_cert_names`.
pub fn check_listener_cert(
    pipeline: &crate::pipeline::Pipeline,
    tenant: &str,
    tls: Option<&crate::listen::tls::TlsConfig>,
    cert: Option<&crate::listen::tls::ClientCert>,
) -> std::io::Result<()> {
    if tls.is_none_or(|t| t.client_ca_file.is_none()) {
        return Ok(());
    }
    let refused =
        |message: String| std::io::Error::new(std::io::ErrorKind::PermissionDenied, message);
    let cert = cert.ok_or_else(|| refused("no client certificate".into()))?;
    let policy = pipeline.policy();
    match policy.tenants.tenant_of_cert(cert) {
        Some(t) if t.name == tenant => Ok(()),
        _ => Err(refused(format!(
            "client certificate ({}) is not in tenant `{tenant}`'s ingest_cert_names",
            cert.0.join(", ")
        ))),
    }
}
