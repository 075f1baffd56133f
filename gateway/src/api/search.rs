//! `GET /api/v1/search` (pages by `search_after`, the `next` cursor of the
//! page before) and `GET /api/v1/histogram` (`by=level` splits each bucket
//! by level): the hot tier, read on the blocking pool, for the admin key's
//! tenant.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use serde::Deserialize;
use time::OffsetDateTime;

use super::{admin_tenant, parse_time_param};
use crate::config::parse_duration;
use crate::error::ApiError;
use crate::hot::search::{self as engine, SearchRequest, unix_ms};
use crate::state::{AppState, Core};

pub const DEFAULT_SEARCH_LIMIT: usize = 100;
pub const MAX_HISTOGRAM_BUCKETS: i64 = 10_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchParams {
    /// The query (empty: everything).
    #[serde(default)]
    q: String,
    from: Option<String>,
    to: Option<String>,
    #[serde(rename = "type")]
    log_type: Option<String>,
    limit: Option<usize>,
    interval: Option<String>,
    /// The `next` cursor of the previous page.
    search_after: Option<String>,
    /// `level`: each histogram bucket split by level.
    by: Option<String>,
    /// Cluster mode: only these topic partitions (`0,3`), answered from
    /// this node's index alone (a searcher's request to its peers).
    partitions: Option<String>,
    /// For `/api/v1/fields/values`: the field and how many values.
    pub(super) field: Option<String>,
    pub(super) size: Option<usize>,
    /// Accepted here so that `?key=` works for search too.
    #[serde(rename = "key")]
    _key: Option<String>,
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
    let after = p
        .search_after
        .as_deref()
        .filter(|c| !c.is_empty())
        .map(|c| {
            engine::Cursor::decode(c).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "`search_after` = `{c}` is not a cursor: pass the `next` of the previous page"
                ))
            })
        })
        .transpose()?;
    let partitions = p
        .partitions
        .as_deref()
        .map(|list| {
            list.split(',')
                .filter(|s| !s.is_empty())
                .map(|s| s.trim().parse::<u32>())
                .collect::<Result<std::collections::BTreeSet<u32>, _>>()
                .map_err(|_| {
                    ApiError::BadRequest(format!(
                        "`partitions` = `{list}`: a comma-separated list of topic partitions"
                    ))
                })
        })
        .transpose()?;
    Ok(SearchRequest {
        query: p.q.clone(),
        from,
        to,
        log_type: p.log_type.clone(),
        limit,
        after,
        partitions,
    })
}

pub(super) type Params = Result<Query<SearchParams>, axum::extract::rejection::QueryRejection>;

/// What every call over the hot tier shares (search, histogram, fields,
/// tail): ready core, admin key → tenant, params, and the search they ask
/// for as of `now`.
pub(super) type AdminRequest = (Arc<Core>, String, SearchParams, SearchRequest);

pub(super) fn admin_request(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    uri: &axum::http::Uri,
    params: Params,
    now: OffsetDateTime,
) -> Result<AdminRequest, ApiError> {
    let core = state.core()?.clone();
    let tenant = admin_tenant(&core, headers, uri.query())?;
    let Query(p) = params.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let request = search_request(&core, &p, now)?;
    Ok((core, tenant, p, request))
}

/// Runs index reads on the blocking pool.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, engine::SearchError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(search_error)
}

pub async fn search(
    State(state): State<Arc<AppState>>,
    headers: axum::http::HeaderMap,
    uri: axum::http::Uri,
    params: Params,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let (core, tenant, _, request) =
        admin_request(&state, &headers, &uri, params, OffsetDateTime::now_utc())?;
    let key =
        super::session::request_or_session_key(&core, &headers, uri.query()).unwrap_or_default();
    Ok(axum::Json(answer(&core, &tenant, &key, request).await?))
}

/// A search's answer as `GET /api/v1/search` gives it: over the cluster
/// when this node fans out (asking the peers with `key`), else from this
/// node's hot tier.
pub(super) async fn answer(
    core: &Arc<Core>,
    tenant: &str,
    key: &str,
    request: SearchRequest,
) -> Result<serde_json::Value, ApiError> {
    use tracing::Instrument;
    if super::fanout::fans_out(core, &request) {
        return super::fanout::search(core, tenant, key, request).await;
    }
    let span = tracing::info_span!("search", tenant = %tenant, hits = tracing::field::Empty);
    let start = Instant::now();
    let (hot, tenant) = (core.hot.clone(), tenant.to_string());
    let result = blocking(move || engine::search(&hot, &tenant, &request))
        .instrument(span.clone())
        .await?;
    span.record("hits", result.total);
    Ok(serde_json::json!({
        "total": result.total,
        "took_ms": start.elapsed().as_millis() as u64,
        "hits": result.hits,
        "next": result.next.map(|c| c.encode()),
    }))
}

/// `GET /api/v1/cluster/partitions`: the topic partitions this node
/// indexes (what a searcher asks its peers first).
pub async fn partitions(
    State(state): State<Arc<AppState>>,
    headers: axum::http::HeaderMap,
    uri: axum::http::Uri,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let core = state.core()?.clone();
    admin_tenant(&core, &headers, uri.query())?;
    Ok(axum::Json(super::fanout::owned(&core)))
}

fn search_error(e: engine::SearchError) -> ApiError {
    match e {
        engine::SearchError::Query(message) => ApiError::InvalidQuery {
            message,
            position: None,
        },
        engine::SearchError::Syntax { message, position } => ApiError::InvalidQuery {
            message,
            position: Some(position),
        },
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

pub async fn histogram(
    State(state): State<Arc<AppState>>,
    headers: axum::http::HeaderMap,
    uri: axum::http::Uri,
    params: Params,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let now = OffsetDateTime::now_utc();
    let (core, tenant, p, mut request) = admin_request(&state, &headers, &uri, params, now)?;
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
    let by_level = match p.by.as_deref() {
        None | Some("") => false,
        Some("level") => true,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "`by` = `{other}`: a histogram splits by `level` only"
            )));
        }
    };
    if super::fanout::fans_out(&core, &request) {
        let key = super::session::request_or_session_key(&core, &headers, uri.query())
            .unwrap_or_default();
        return Ok(axum::Json(
            super::fanout::histogram(&core, &tenant, &key, request, interval_ms, by_level).await?,
        ));
    }
    let buckets = local_buckets(&core, &tenant, request, interval_ms, by_level).await?;
    Ok(axum::Json(
        serde_json::json!({"interval_ms": interval_ms, "buckets": buckets}),
    ))
}

/// This node's histogram buckets, as the API answers them.
pub(super) async fn local_buckets(
    core: &Arc<Core>,
    tenant: &str,
    request: SearchRequest,
    interval_ms: i64,
    by_level: bool,
) -> Result<Vec<serde_json::Value>, ApiError> {
    let now = OffsetDateTime::now_utc();
    let (hot, tenant) = (core.hot.clone(), tenant.to_string());
    let buckets = blocking(move || {
        crate::hot::histogram::histogram(&hot, &tenant, &request, interval_ms, by_level)
    })
    .await?;
    Ok(buckets
        .into_iter()
        .map(|b| {
            let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(b.start_ms) * 1_000_000)
                .unwrap_or(now);
            let mut out =
                serde_json::json!({"start": crate::event::format_time(t), "count": b.count});
            if let Some(levels) = b.by_level {
                out["by"] = serde_json::json!(levels);
            }
            out
        })
        .collect())
}
