//! `/api/v1/replay`: archived events back into the hot tier (admin key,
//! own tenant only). See [`crate::replay`].
//!
//! - `POST /api/v1/replay` `{"type"?, "from", "to", "query"?}` → 202 with the job;
//! - `GET /api/v1/replay` lists the tenant's jobs, `GET …/{id}` shows one
//!   (objects, events, bytes, rate, ETA, errors);
//! - `DELETE …/{id}` cancels it (what is indexed stays).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;

use super::{admin_tenant, parse_time_param};
use crate::config::valid_type_name;
use crate::error::ApiError;
use crate::replay::ReplayRequest;
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    #[serde(rename = "type")]
    log_type: Option<String>,
    from: String,
    to: String,
    /// Only events matching this search query.
    query: Option<String>,
}

pub async fn start(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let core = state.core()?.clone();
    let tenant = admin_tenant(&core, &headers, uri.query())?;
    if core.config.cluster.enabled {
        // A node's rehydrated partitions belong to no topic partition, so
        // the cluster's search would not find them (docs/cluster.md).
        return Err(ApiError::NotImplemented(
            "replay is not available in cluster mode yet: replayed events would not be found by the cluster's search (docs/cluster.md#replay)".into(),
        ));
    }
    let body: Body = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("replay body: {e}")))?;
    let query = body.query.filter(|q| !q.trim().is_empty());
    if let Some(q) = &query {
        crate::hot::search::parse_query(&core.hot, q)
            .map_err(|e| ApiError::BadRequest(format!("invalid query: {e}")))?;
    }
    let now = OffsetDateTime::now_utc();
    let from = parse_time_param("from", &body.from, now)?;
    let to = parse_time_param("to", &body.to, now)?;
    if from >= to {
        return Err(ApiError::BadRequest("`from` must be before `to`".into()));
    }
    if let Some(t) = &body.log_type
        && !valid_type_name(t)
    {
        return Err(ApiError::BadRequest(format!("log type `{t}` is not valid")));
    }
    let archive = core.archive.as_ref().ok_or_else(|| {
        ApiError::Unavailable("the archive is disabled (archive.enabled = false)".into())
    })?;
    let job = core
        .replays
        .start(
            &tenant,
            ReplayRequest {
                log_type: body.log_type,
                from,
                to,
                query,
            },
            archive.store.clone(),
            core.config.archive.prefix.clone(),
            core.hot.clone(),
        )
        .map_err(|e| ApiError::Internal(format!("cannot start the replay: {e}")))?;
    Ok((StatusCode::ACCEPTED, axum::Json(job.progress())).into_response())
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let core = state.core()?.clone();
    let tenant = admin_tenant(&core, &headers, uri.query())?;
    let jobs: Vec<_> = core
        .replays
        .list(&tenant)
        .iter()
        .map(|j| j.progress())
        .collect();
    Ok(axum::Json(json!({ "jobs": jobs })).into_response())
}

/// The tenant's job `id` (another tenant's is 404).
fn job(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
    id: &str,
) -> Result<Arc<crate::replay::Job>, ApiError> {
    let core = state.core()?;
    let tenant = admin_tenant(core, headers, uri.query())?;
    core.replays
        .get(&tenant, id)
        .ok_or_else(|| ApiError::NotFound(format!("no replay job `{id}` for this tenant")))
}

pub async fn get_one(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let job = job(&state, &headers, &uri, &id)?;
    Ok(axum::Json(job.progress()).into_response())
}

pub async fn cancel(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let job = job(&state, &headers, &uri, &id)?;
    job.cancel();
    Ok(axum::Json(job.progress()).into_response())
}
