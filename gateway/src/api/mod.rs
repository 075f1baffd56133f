//! HTTP API: the router, search, histogram, filters ([`filters`]), health,
//! readiness and metrics.
//! Every path that is not an API path goes to [`crate::ingest`].

pub mod error;
pub mod filters;
pub mod replay;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use time::OffsetDateTime;

use crate::Core;
use crate::config::parse_duration;
use crate::event::parse_time_text;
use crate::hot::search::{self, SearchRequest, unix_ms};
use crate::ingest::{self, auth::request_key};
use crate::telemetry::{EndpointLabel, HttpLabels, Metrics};
use error::{ApiError, RETRY_AFTER_SECS};

pub const DEFAULT_SEARCH_LIMIT: usize = 100;
pub const MAX_HISTOGRAM_BUCKETS: i64 = 10_000;

/// Shared by every handler. `core` is set once recovery is done; until
/// then `/readyz` and ingest answer 503.
pub struct AppState {
    pub core: OnceLock<Arc<Core>>,
    pub metrics: Arc<Metrics>,
}

impl AppState {
    fn core(&self) -> Result<&Arc<Core>, ApiError> {
        self.core.get().ok_or_else(|| {
            ApiError::Unavailable("recovering the write-ahead log; not ready yet".into())
        })
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/search", get(search_handler))
        .route("/api/v1/histogram", get(histogram_handler))
        .route("/api/v1/replay", get(replay::list).post(replay::start))
        .route(
            "/api/v1/replay/{id}",
            get(replay::get_one).delete(replay::cancel),
        )
        .route("/api/v1/filters", get(filters::list))
        .route(
            "/api/v1/filters/{name}",
            get(filters::get_one)
                .put(filters::put)
                .delete(filters::delete),
        )
        .fallback(ingest_handler)
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// Counts and times every request; logs method, path and status (never the
/// query string, which may hold a key).
async fn observe(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let endpoint = match req.uri().path() {
        "/healthz" | "/readyz" => "health",
        "/metrics" => "metrics",
        "/api/v1/search" => "search",
        "/api/v1/histogram" => "histogram",
        p if p.starts_with("/api/v1/filters") => "filters",
        p if p.starts_with("/api/v1/replay") => "replay",
        _ => "ingest",
    };
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

async fn ingest_handler(State(state): State<Arc<AppState>>, req: Request<Body>) -> Response {
    let core = match state.core() {
        Ok(core) => core.clone(),
        Err(e) => return e.into_response(),
    };
    if !ingest::route::is_ingest_path(&core.policy().tenants, req.uri().path()) {
        return ApiError::NotFound(format!("no route for `{}`", req.uri().path())).into_response();
    }
    ingest::handle(&core, req).await
}

async fn healthz() -> Response {
    (
        StatusCode::OK,
        axum::Json(serde_json::json!({"status": "ok"})),
    )
        .into_response()
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    match state.core.get() {
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, RETRY_AFTER_SECS.to_string())],
            axum::Json(
                serde_json::json!({"ready": false, "reason": "recovering the write-ahead log"}),
            ),
        )
            .into_response(),
        Some(core) => {
            let durable = core.wal.durable_lsn();
            axum::Json(serde_json::json!({
                "ready": true,
                "wal_bytes": core.wal.disk_bytes(),
                "wal_max_bytes": core.config.wal.max_bytes,
                "hot_index_lag_bytes": core.metrics.hot_index_lag_bytes.get(),
                "wal_durable_lsn": durable,
                "archive": core.archive.as_ref().map(|a| serde_json::json!({
                    "store": a.store.describe(),
                    "lag_bytes": durable.saturating_sub(a.status.checkpoint.load(std::sync::atomic::Ordering::Relaxed)),
                    "last_error": a.status.last_error.lock().unwrap_or_else(|e| e.into_inner()).clone(),
                })),
            }))
            .into_response()
        }
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    if let Some(core) = state.core.get() {
        state.metrics.wal_bytes.set(core.wal.disk_bytes() as i64);
        state
            .metrics
            .wal_torn_bytes
            .set(core.wal.torn_bytes() as i64);
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchParams {
    #[serde(default)]
    q: String,
    from: Option<String>,
    to: Option<String>,
    #[serde(rename = "type")]
    log_type: Option<String>,
    limit: Option<usize>,
    interval: Option<String>,
    /// Accepted here so that `?key=` works for search too.
    #[serde(rename = "key")]
    _key: Option<String>,
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

fn search_request(
    core: &Core,
    p: &SearchParams,
    now: OffsetDateTime,
) -> Result<SearchRequest, ApiError> {
    let from = p
        .from
        .as_deref()
        .map(|t| parse_time_param("from", t, now))
        .transpose()?;
    let to =
        p.to.as_deref()
            .map(|t| parse_time_param("to", t, now))
            .transpose()?;
    let limit = p.limit.unwrap_or(DEFAULT_SEARCH_LIMIT);
    if limit > core.config.search.max_limit {
        return Err(ApiError::BadRequest(format!(
            "`limit` is at most {} (search.max_limit)",
            core.config.search.max_limit
        )));
    }
    Ok(SearchRequest {
        query: p.q.clone(),
        from,
        to,
        log_type: p.log_type.clone(),
        limit,
    })
}

type Params = Result<Query<SearchParams>, axum::extract::rejection::QueryRejection>;

fn admin_tenant(
    core: &Core,
    req_headers: &axum::http::HeaderMap,
    query: Option<&str>,
) -> Result<String, ApiError> {
    Ok(core
        .policy()
        .tenants
        .authenticate_admin(request_key(req_headers, query))?
        .name
        .clone())
}

/// What search and histogram share: ready core, admin key → tenant, params.
fn admin_request(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    uri: &axum::http::Uri,
    params: Params,
) -> Result<(Arc<Core>, String, SearchParams), ApiError> {
    let core = state.core()?.clone();
    let tenant = admin_tenant(&core, headers, uri.query())?;
    let Query(p) = params.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    Ok((core, tenant, p))
}

/// Runs index reads on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, search::SearchError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(search_error)
}

async fn search_handler(
    State(state): State<Arc<AppState>>,
    headers: axum::http::HeaderMap,
    uri: axum::http::Uri,
    params: Params,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    use tracing::Instrument;
    let (core, tenant, p) = admin_request(&state, &headers, &uri, params)?;
    let span = tracing::info_span!("search", tenant = %tenant, hits = tracing::field::Empty);
    let request = search_request(&core, &p, OffsetDateTime::now_utc())?;
    let start = Instant::now();
    let result = blocking(move || search::search(&core.hot, &tenant, &request))
        .instrument(span.clone())
        .await?;
    span.record("hits", result.total);
    Ok(axum::Json(serde_json::json!({
        "total": result.total,
        "took_ms": start.elapsed().as_millis() as u64,
        "hits": result.hits,
    })))
}

fn search_error(e: search::SearchError) -> ApiError {
    match e {
        search::SearchError::Query(m) => ApiError::BadRequest(format!("invalid query: {m}")),
        other => ApiError::Internal(other.to_string()),
    }
}

/// Picks a round interval giving about 60 buckets over `span`.
fn auto_interval(span: Duration) -> Duration {
    const STEPS: &[u64] = &[
        1, 5, 10, 30, 60, 300, 600, 1800, 3600, 10800, 21600, 43200, 86400,
    ];
    let target = span.as_secs() / 60;
    let secs = STEPS
        .iter()
        .copied()
        .find(|&s| s >= target)
        .unwrap_or(86400);
    Duration::from_secs(secs)
}

async fn histogram_handler(
    State(state): State<Arc<AppState>>,
    headers: axum::http::HeaderMap,
    uri: axum::http::Uri,
    params: Params,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let (core, tenant, p) = admin_request(&state, &headers, &uri, params)?;
    let now = OffsetDateTime::now_utc();
    let mut request = search_request(&core, &p, now)?;
    let from = request.from.unwrap_or(now - Duration::from_secs(86_400));
    let to = request.to.unwrap_or(now);
    if to <= from {
        return Err(ApiError::BadRequest("`to` must be after `from`".into()));
    }
    request.from = Some(from);
    request.to = Some(to);
    let interval = match &p.interval {
        Some(text) => {
            parse_duration(text).map_err(|e| ApiError::BadRequest(format!("`interval`: {e}")))?
        }
        None => auto_interval((to - from).unsigned_abs()),
    };
    let interval_ms = interval.as_millis() as i64;
    if interval_ms <= 0 || (unix_ms(to) - unix_ms(from)) / interval_ms > MAX_HISTOGRAM_BUCKETS {
        return Err(ApiError::BadRequest(format!(
            "`interval` gives more than {MAX_HISTOGRAM_BUCKETS} buckets; choose a larger one"
        )));
    }
    let buckets =
        blocking(move || search::histogram(&core.hot, &tenant, &request, interval_ms)).await?;
    let buckets: Vec<_> = buckets
        .into_iter()
        .map(|(start, count)| {
            let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(start) * 1_000_000)
                .unwrap_or(now);
            serde_json::json!({"start": crate::event::format_time(t), "count": count})
        })
        .collect();
    Ok(axum::Json(
        serde_json::json!({"interval_ms": interval_ms, "buckets": buckets}),
    ))
}
