//! The one HTTP router: the API's routes, then the sources' fixed protocol
//! paths, then the tenant fallback (every other path is a tenant's route,
//! `crate::sources::http`). A middleware counts and times every request.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};

use crate::api;
use crate::config::Config;
use crate::sources;
use crate::state::AppState;
use crate::telemetry::{EndpointLabel, HttpLabels};
use crate::tenants::route::GENERIC_PREFIX;

pub fn router(state: Arc<AppState>, config: &Config) -> Router {
    api::routes()
        .layer(middleware::from_fn_with_state(
            state.clone(),
            api::session::csrf_guard,
        ))
        .merge(crate::ui::routes(&config.ui))
        .merge(sources::routes(config))
        .fallback(tenant_path)
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// The router of the Elasticsearch API's own listener
/// (`elasticsearch.addr`): the API at its root.
pub fn elastic_router(state: Arc<AppState>, config: &Config) -> Router {
    sources::elastic::root_router(&config.elasticsearch)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            observe_elastic,
        ))
        .with_state(state)
}

/// What serves `path` if the gateway serves it itself (so no tenant route
/// may take it), for config validation.
pub fn reserved(path: &str) -> Option<&'static str> {
    if path.starts_with(api::PREFIX) || api::PATHS.contains(&path) {
        return Some("the HTTP API");
    }
    if path == "/" || path.starts_with(crate::ui::PREFIX) {
        return Some("the web UI");
    }
    if path.starts_with(GENERIC_PREFIX) {
        return Some("the generic route /v1/logs/{type}");
    }
    sources::FIXED_PATHS
        .iter()
        .find(|(paths, _)| paths.contains(&path))
        .map(|(_, source)| *source)
}

/// Every path the router does not know: a tenant's route.
async fn tenant_path(State(state): State<Arc<AppState>>, req: Request<Body>) -> Response {
    let core = match state.core() {
        Ok(core) => core.clone(),
        Err(e) => return e.into_response(),
    };
    sources::http::handle(&core.pipeline, core.config.server.request_timeout, req).await
}

async fn observe_elastic(state: State<Arc<AppState>>, req: Request, next: Next) -> Response {
    timed(state, "elasticsearch", req, next).await
}

/// Counts and times every request; logs method, path and status (never the
/// query string, which may hold a key).
async fn observe(state: State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let es = state
        .core
        .get()
        .is_some_and(|c| c.config.elasticsearch.serves(req.uri().path()));
    let endpoint = match req.uri().path() {
        _ if es => "elasticsearch",
        "/healthz" | "/readyz" => "health",
        "/metrics" => "metrics",
        "/api/v1/search" => "search",
        "/api/v1/histogram" => "histogram",
        "/api/v1/session" => "session",
        "/api/v1/tail" => "tail",
        "/api/v1/overview" | "/api/v1/config" => "admin",
        "/api/v1/cluster/partitions" => "cluster",
        p if p.starts_with("/api/v1/saved") => "saved",
        p if p.starts_with("/api/v1/fields") => "fields",
        "/" => "ui",
        p if p.starts_with(crate::ui::PREFIX) => "ui",
        p if p.starts_with("/api/v1/filters") => "filters",
        p if p.starts_with("/api/v1/replay") => "replay",
        _ => "ingest",
    };
    timed(state, endpoint, req, next).await
}

async fn timed(
    State(state): State<Arc<AppState>>,
    endpoint: &'static str,
    req: Request,
    next: Next,
) -> Response {
    // Formatted only when debug logging is on: this runs on every request.
    let debug = tracing::enabled!(tracing::Level::DEBUG)
        .then(|| (req.method().clone(), req.uri().path().to_string()));
    let start = Instant::now();
    let resp = next.run(req).await;
    let elapsed = start.elapsed();
    let status = resp.status().as_u16();
    state
        .metrics
        .http_requests
        .get_or_create(&HttpLabels {
            endpoint: endpoint.to_string(),
            status,
        })
        .inc();
    state
        .metrics
        .http_request_duration
        .get_or_create(&EndpointLabel {
            endpoint: endpoint.to_string(),
        })
        .observe(elapsed.as_secs_f64());
    if let Some((method, path)) = debug {
        tracing::debug!(%method, %path, status, micros = elapsed.as_micros() as u64, "request");
    }
    resp
}
