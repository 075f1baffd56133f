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
//! - [`otlp`]: OpenTelemetry logs over OTLP/HTTP (`POST /v1/logs`,
//!   protobuf or JSON) with OTLP's partial-success answers.
//! - [`loki`]: Loki's push API (snappy protobuf or JSON), 204 once durable.
//! - [`hec`]: Splunk's HTTP Event Collector (event and raw endpoints),
//!   HEC's codes.
//! - [`datadog`]: Datadog's logs intake (`/api/v2/logs`), 202 once durable.
//! - [`gelf`]: GELF over HTTP (`/gelf`), UDP (chunked) and TCP listeners.
//! - [`kafka`]: Kafka topics read into a tenant (`[[kafka_sources]]`),
//!   offsets committed once durable.
//! - [`groups`]: what the compat sources share: a request's items grouped
//!   by route, all limits checked before any batch is stored.
//! - [`object`]: an event's JSON object written as text from a protocol's
//!   parts, for the pipeline to build the event from (no map between).
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
pub mod datadog;
pub mod delimited;
pub mod elastic;
pub mod gelf;
pub mod groups;
pub mod hec;
pub mod http;
pub mod kafka;
pub mod loki;
pub mod otlp;
pub mod statsd;
pub mod syslog;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::value::{FILTER_NAME_RULE, invalid, valid_filter_name, valid_type_name};
use crate::config::{Config, ConfigError};
use crate::filter::FilterRef;
use crate::listen::tcp::{self, Stream};
use crate::listen::tls::{ClientCert, Tls, TlsConfig};
use crate::pipeline::Pipeline;
use crate::state::AppState;
use crate::tenants::config::TenantConfig;

/// Fixed paths of protocol endpoints and the source serving each (path
/// prefixes a source takes from config, like `elasticsearch.path`, are
/// refused by that source's config check).
pub const FIXED_PATHS: &[(&[&str], &str)] = &[
    (&[otlp::LOGS_PATH], "OTLP/HTTP logs"),
    (&[loki::PUSH_PATH, loki::LEGACY_PUSH_PATH], "Loki push"),
    (&[loki::READY_PATH], "Loki's readiness check"),
    (hec::PATHS, "Splunk HEC"),
    (&[datadog::V2_PATH, datadog::V1_PATH], "Datadog logs intake"),
    (&[gelf::HTTP_PATH], "GELF over HTTP"),
];

/// The routes of protocol endpoints at fixed paths and configured
/// prefixes, matched before the tenant fallback (see [`FIXED_PATHS`]).
pub fn routes(config: &Config) -> Router<Arc<AppState>> {
    Router::new()
        .merge(elastic::routes(&config.elasticsearch))
        .merge(otlp::routes(&config.otlp))
        .merge(loki::routes(&config.loki))
        .merge(hec::routes(&config.hec))
        .merge(datadog::routes(&config.datadog))
        .merge(gelf::routes(&config.gelf))
}

/// A stream listener bound to one tenant (syslog, Beats).
pub struct BoundListener {
    /// The protocol's name, for the log.
    pub protocol: &'static str,
    pub tenant: String,
    /// With a client CA, a connection's certificate must carry a name the
    /// tenant lists in `ingest_cert_names`.
    pub client_certs: bool,
    pub max_connections: usize,
    /// Also the TLS handshake's deadline.
    pub idle_timeout: Duration,
}

impl BoundListener {
    /// A listener of `tenant`: with a client CA in `tls`, connections
    /// need a certificate of that tenant.
    pub fn new(
        protocol: &'static str,
        tenant: &str,
        tls: Option<&TlsConfig>,
        max_connections: usize,
        idle_timeout: Duration,
    ) -> BoundListener {
        BoundListener {
            protocol,
            tenant: tenant.to_string(),
            client_certs: tls.is_some_and(|t| t.client_ca_file.is_some()),
            max_connections,
            idle_timeout,
        }
    }
}

/// What a listener bound to a tenant and log type is, for the checks
/// every such listener's config shares ([`check_bound`]).
pub struct BoundConfig<'a> {
    /// Its key in the config, e.g. `syslog[0]`.
    pub at: String,
    /// Why it needs `unauthenticated` or client certificates, e.g. "syslog
    /// has no authentication".
    pub no_keys: &'a str,
    pub tenant: &'a str,
    pub log_type: &'a str,
    pub unauthenticated: bool,
    pub tls: Option<&'a TlsConfig>,
    pub filters: &'a [FilterRef],
}

/// The checks of a listener bound to a tenant (syslog, Beats, GELF): it
/// accepts anyone only when it says so, names a tenant that exists and a
/// valid log type, and names its filters validly.
pub fn check_bound(c: BoundConfig, tenants: &[TenantConfig]) -> Result<(), ConfigError> {
    let at = |key: &str| format!("{}.{key}", c.at);
    let client_certs = c.tls.is_some_and(|t| t.client_ca_file.is_some());
    if !c.unauthenticated && !client_certs {
        return Err(invalid(
            &at("unauthenticated"),
            format!(
                "{}: set `unauthenticated = true` to accept anyone who can reach this address, or require client certificates (`tls.client_ca_file`)",
                c.no_keys
            ),
        ));
    }
    if !tenants.iter().any(|t| t.name == c.tenant) {
        return Err(invalid(&at("tenant"), format!("no tenant `{}`", c.tenant)));
    }
    if !valid_type_name(c.log_type) {
        return Err(invalid(
            &at("type"),
            format!("`{}` is not a valid log type", c.log_type),
        ));
    }
    for (k, f) in c.filters.iter().enumerate() {
        if !valid_filter_name(&f.name) {
            return Err(invalid(
                &at(&format!("filters[{k}].name")),
                format!("`{}` {FILTER_NAME_RULE}", f.name),
            ));
        }
    }
    Ok(())
}

/// Accepts a bound listener's connections (`crate::listen::tcp`), refuses
/// a client certificate that is not its tenant's, and runs `handle` on
/// each other connection.
pub async fn serve_bound<H, F>(
    listener: TcpListener,
    bound: BoundListener,
    pipeline: Arc<Pipeline>,
    tls: Option<Arc<Tls>>,
    shutdown: watch::Receiver<bool>,
    handle: H,
) where
    H: Fn(Stream, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = std::io::Result<()>> + Send + 'static,
{
    let (max_connections, idle_timeout) = (bound.max_connections, bound.idle_timeout);
    let bound = Arc::new(bound);
    tcp::serve(
        listener,
        max_connections,
        tls,
        idle_timeout,
        shutdown,
        move |stream, peer, cert: Option<ClientCert>| {
            let (bound, pipeline, handle) = (bound.clone(), pipeline.clone(), handle.clone());
            async move {
                if let Err(e) = check_cert(&pipeline, &bound, cert.as_ref()) {
                    tracing::warn!(%peer, error = %e, protocol = bound.protocol, "client refused");
                    return Err(e);
                }
                handle(stream, peer).await
            }
        },
    )
    .await
}

fn check_cert(
    pipeline: &Pipeline,
    bound: &BoundListener,
    cert: Option<&ClientCert>,
) -> std::io::Result<()> {
    if !bound.client_certs {
        return Ok(());
    }
    let refused =
        |message: String| std::io::Error::new(std::io::ErrorKind::PermissionDenied, message);
    let cert = cert.ok_or_else(|| refused("no client certificate".into()))?;
    let policy = pipeline.policy();
    match policy.tenants.tenant_of_cert(cert) {
        Some(t) if t.name == bound.tenant => Ok(()),
        _ => Err(refused(format!(
            "client certificate ({}) is not in tenant `{}`'s ingest_cert_names",
            cert.0.join(", "),
            bound.tenant
        ))),
    }
}
