//! The HTTP API: search and histogram ([`search`]), metric series
//! ([`metrics`]), WASM filters
//! ([`filters`]), replay jobs ([`replay`]), alert rules ([`alerts`]), health, readiness and metrics
//! ([`health`]). Admin endpoints take a tenant's admin key and act on that
//! tenant only. Ingest paths are the sources' (`crate::sources`); the
//! router that puts both together is `crate::server::router`.

pub mod alerts;
pub mod fanout;
pub mod fields;
pub mod filters;
pub mod health;
pub mod metrics;
pub mod overview;
pub mod replay;
pub mod saved;
pub mod search;
pub mod session;
pub mod tail;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use time::OffsetDateTime;

use crate::config::parse_duration;
use crate::error::ApiError;
use crate::event::parse_time_text;
use crate::state::{AppState, Core};

/// Where the API lives: no tenant route may start with it.
pub const PREFIX: &str = "/api/";
/// The health and metrics paths, outside [`PREFIX`].
pub const PATHS: &[&str] = &["/healthz", "/readyz", "/metrics"];

/// The API's routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/api/v1/search", get(search::search))
        .route("/api/v1/histogram", get(search::histogram))
        .route("/api/v1/metrics/query", get(metrics::query))
        .route("/api/v1/metrics/prometheus", get(metrics::prometheus))
        .route("/api/v1/cluster/partitions", get(search::partitions))
        .route("/api/v1/fields", get(fields::names))
        .route("/api/v1/tail", get(tail::tail))
        .route("/api/v1/overview", get(overview::overview))
        .route("/api/v1/config", get(overview::config))
        .route("/api/v1/saved", get(saved::list).post(saved::add))
        .route("/api/v1/saved/{id}", axum::routing::delete(saved::delete))
        .route("/api/v1/fields/values", get(fields::values))
        .route("/api/v1/replay", get(replay::list).post(replay::start))
        .route(
            "/api/v1/replay/{id}",
            get(replay::get_one).delete(replay::cancel),
        )
        .route(
            "/api/v1/session",
            get(session::current)
                .post(session::sign_in)
                .delete(session::sign_out),
        )
        .route("/api/v1/alerts", get(alerts::alerts))
        .route(
            "/api/v1/alerts/rules",
            get(alerts::list).post(alerts::create),
        )
        .route(
            "/api/v1/alerts/rules/{name}",
            get(alerts::get_one).put(alerts::put).delete(alerts::delete),
        )
        .route(
            "/api/v1/alerts/rules/{name}/mute",
            axum::routing::post(alerts::mute).delete(alerts::unmute),
        )
        .route("/api/v1/alerts/test", axum::routing::post(alerts::test))
        .route("/api/v1/filters", get(filters::list))
        .route(
            "/api/v1/filters/{name}",
            get(filters::get_one)
                .put(filters::put)
                .delete(filters::delete),
        )
        .route(
            "/api/v1/filters/{name}/test",
            axum::routing::post(filters::test),
        )
}

/// The tenant of a request's admin key.
pub fn admin_tenant(
    core: &Core,
    req_headers: &axum::http::HeaderMap,
    query: Option<&str>,
) -> Result<String, ApiError> {
    let key = session::request_or_session_key(core, req_headers, query);
    Ok(core
        .policy()
        .tenants
        .authenticate_admin(key.as_deref())?
        .name
        .clone())
}

/// Reads "now", "now-15m", "now+1h", RFC 3339, "YYYY-MM-DD HH:MM:SS" or epoch digits.
pub fn parse_time_param(
    name: &str,
    text: &str,
    now: OffsetDateTime,
) -> Result<OffsetDateTime, ApiError> {
    let text = text.trim();
    if text == "now" {
        return Ok(now);
    }
    if let Some(ago) = text.strip_prefix("now-") {
        let d = parse_duration(ago).map_err(|e| ApiError::BadRequest(format!("`{name}`: {e}")))?;
        return Ok(now - d);
    }
    if let Some(ahead) = text.strip_prefix("now+") {
        let d =
            parse_duration(ahead).map_err(|e| ApiError::BadRequest(format!("`{name}`: {e}")))?;
        return Ok(now + d);
    }
    parse_time_text(text).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "`{name}` = `{text}` is not a time: use RFC 3339, epoch seconds or milliseconds, `now`, `now-15m` or `now+1h`"
        ))
    })
}
