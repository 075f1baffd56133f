//! `/api/v1/filters`: a tenant's WASM filters (admin key, own tenant only).
//!
//! - `PUT /api/v1/filters/{name}` with the component as the body: checks,
//!   compiles, stores durably and swaps in a new version (201 for a new
//!   filter, 200 for a new version).
//! - `GET /api/v1/filters` and `GET /api/v1/filters/{name}`: version,
//!   sha256, size, upload time, the routes using it, and stats (batches,
//!   events, drops, failures, last error).
//!   A filter that may drop events is refused with 409 while an
//!   event-class route of the tenant names it.
//! - `DELETE /api/v1/filters/{name}`: refused with 409 while a route of the
//!   tenant names it, unless `?force=true`.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use serde_json::{Value, json};

use super::admin_tenant;
use crate::error::ApiError;
use crate::filter::RegistryError;
use crate::filter::registry::Loaded;
use crate::state::AppState;
use crate::state::Core;

fn registry_error(e: RegistryError) -> ApiError {
    match e {
        RegistryError::Invalid(m) => ApiError::BadRequest(format!("filter refused: {m}")),
        RegistryError::NotFound(m) => {
            ApiError::NotFound(format!("no filter `{m}` for this tenant"))
        }
        other => ApiError::Internal(other.to_string()),
    }
}

/// The tenant's routes and syslog listeners whose chain names `filter`.
/// The chains of `tenant` that name `filter`: routes by path, listeners
/// by kind and address (`syslog:…`, `beats:…`, `gelf:…`, `kafka:…`).
fn routes_using(core: &Core, tenant: &str, filter: &str) -> Vec<String> {
    core.policy()
        .tenants
        .chains(&core.config)
        .into_iter()
        .filter(|(_, c)| c.tenant == tenant && c.filters.iter().any(|f| f.name == filter))
        .map(|(_, c)| c.name)
        .collect()
}

fn describe(core: &Core, tenant: &str, name: &str, loaded: &Loaded) -> Value {
    let s = &loaded.stats;
    let last_error = s
        .last_error
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    json!({
        "name": name,
        "version": loaded.meta.version,
        "sha256": loaded.meta.sha256,
        "size": loaded.meta.size,
        "uploaded_at": loaded.meta.uploaded_at,
        "may_drop": loaded.meta.may_drop,
        "used_by": routes_using(core, tenant, name),
        "stats": {
            "batches": s.batches.load(Relaxed),
            "events_in": s.events_in.load(Relaxed),
            "events_dropped": s.events_dropped.load(Relaxed),
            "failures": s.failures.load(Relaxed),
            "last_error": last_error,
        },
    })
}

/// The tenant's live version of filter `name`, or 404.
fn uploaded(core: &Core, tenant: &str, name: &str) -> Result<Arc<Loaded>, ApiError> {
    core.filters
        .get(tenant, name)
        .ok_or_else(|| registry_error(RegistryError::NotFound(name.to_string())))
}

fn admin(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<(Arc<Core>, String), ApiError> {
    let core = state.core()?.clone();
    let tenant = admin_tenant(&core, headers, uri.query())?;
    Ok((core, tenant))
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let (core, tenant) = admin(&state, &headers, &uri)?;
    let filters: Vec<Value> = core
        .filters
        .list(&tenant)
        .iter()
        .map(|(name, l)| describe(&core, &tenant, name, l))
        .collect();
    Ok(axum::Json(json!({ "filters": filters })).into_response())
}

pub async fn get_one(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let (core, tenant) = admin(&state, &headers, &uri)?;
    let loaded = uploaded(&core, &tenant, &name)?;
    Ok(axum::Json(describe(&core, &tenant, &name, &loaded)).into_response())
}

pub async fn put(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Result<Response, ApiError> {
    let (core, tenant) = admin(&state, &headers, &uri)?;
    let max = core.config.filters.max_upload_bytes;
    let bytes = match http_body_util::Limited::new(body, max).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return Err(ApiError::PayloadTooLarge(format!(
                "the component is larger than {max} bytes (filters.max_upload_bytes)"
            )));
        }
        Err(e) => {
            return Err(ApiError::BadRequest(format!(
                "could not read the body: {e}"
            )));
        }
    };
    let may_drop = crate::filter::caps::may_drop(&bytes);
    let chains = core.policy().tenants.event_chains(&core.config);
    crate::filter::caps::check_upload(&chains, &tenant, &name, may_drop)
        .map_err(|e| ApiError::Conflict(e.to_string()))?;
    let existed = core.filters.get(&tenant, &name).is_some();
    let registry = core.filters.clone();
    let (t, n) = (tenant.clone(), name.clone());
    let meta =
        tokio::task::spawn_blocking(move || registry.upload_declared(&t, &n, &bytes, may_drop))
            .await
            .map_err(|e| ApiError::Internal(format!("upload task failed: {e}")))?
            .map_err(registry_error)?;
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let mut body = serde_json::to_value(&meta).expect("meta serializes");
    body["name"] = json!(name);
    body["used_by"] = json!(routes_using(&core, &tenant, &name));
    Ok((status, axum::Json(body)).into_response())
}

pub async fn delete(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let (core, tenant) = admin(&state, &headers, &uri)?;
    let force = uri
        .query()
        .is_some_and(|q| q.split('&').any(|p| p == "force=true" || p == "force=1"));
    let used_by = routes_using(&core, &tenant, &name);
    if !used_by.is_empty() && !force {
        return Err(ApiError::Conflict(format!(
            "filter `{name}` is used by route(s) {}; remove it from their chains or delete with ?force=true (their events then become dead letters)",
            used_by.join(", ")
        )));
    }
    let registry = core.filters.clone();
    tokio::task::spawn_blocking(move || registry.delete(&tenant, &name))
        .await
        .map_err(|e| ApiError::Internal(format!("delete task failed: {e}")))?
        .map_err(registry_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Largest body `POST …/{name}/test` reads.
pub const MAX_TEST_BYTES: usize = 1024 * 1024;

/// `POST /api/v1/filters/{name}/test?type=`: the uploaded version over the
/// body's lines (NDJSON or text, at most 1000), before a route uses it:
/// `{"results": [{"line": 1, "verdict": "keep"}, …]}`. Nothing is stored.
pub async fn test(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Result<Response, ApiError> {
    let (core, tenant) = admin(&state, &headers, &uri)?;
    let loaded = uploaded(&core, &tenant, &name)?;
    let bytes = http_body_util::Limited::new(body, MAX_TEST_BYTES)
        .collect()
        .await
        .map_err(|_| {
            ApiError::PayloadTooLarge(format!(
                "test with at most {MAX_TEST_BYTES} bytes of events"
            ))
        })?
        .to_bytes();
    let text = String::from_utf8(bytes.to_vec())
        .map_err(|_| ApiError::BadRequest("the events are not UTF-8 text".into()))?;
    let log_type = uri
        .query()
        .and_then(|q| q.split('&').find_map(|p| p.strip_prefix("type=")))
        .unwrap_or("test_logs")
        .to_string();
    let results = tokio::task::spawn_blocking(move || {
        crate::filter::local::test_uploaded(&loaded, &tenant, &log_type, &text)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("test task failed: {e}")))?
    .map_err(|e| ApiError::Unprocessable(format!("the filter failed: {e}")))?;
    Ok(axum::Json(json!({ "results": results })).into_response())
}
