//! `/api/v1/saved`: the tenant's saved searches (`GET` lists, `POST`
//! `{"name", "note"?, "query", "type"?, "range"?, "columns"?}` adds one,
//! `DELETE /api/v1/saved/{id}` removes one). See [`crate::ui::saved`].

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::admin_tenant;
use crate::error::ApiError;
use crate::state::AppState;
use crate::ui::saved::{SavedError, SavedSearch};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    name: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    query: String,
    #[serde(rename = "type", default)]
    log_type: Option<String>,
    #[serde(default)]
    range: serde_json::Value,
    #[serde(default)]
    columns: Vec<String>,
}

fn saved_error(e: SavedError) -> ApiError {
    match e {
        SavedError::Invalid(m) => ApiError::BadRequest(m),
        SavedError::NotFound(_) => ApiError::NotFound(e.to_string()),
        SavedError::Io(_) => ApiError::Internal(e.to_string()),
    }
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let core = state.core()?;
    let tenant = admin_tenant(core, &headers, uri.query())?;
    Ok(axum::Json(json!({ "saved": core.saved.list(&tenant) })).into_response())
}

pub async fn add(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let core = state.core()?.clone();
    let tenant = admin_tenant(&core, &headers, uri.query())?;
    let b: Body = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("saved search: {e}")))?;
    if !b.query.trim().is_empty() {
        crate::hot::search::parse_query(&core.hot, &b.query)
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    }
    let search = SavedSearch {
        id: String::new(),
        name: b.name,
        note: b.note,
        query: b.query,
        log_type: b.log_type,
        range: b.range,
        columns: b.columns,
        created_at: String::new(),
    };
    let saved = tokio::task::spawn_blocking(move || core.saved.add(&tenant, search))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(saved_error)?;
    Ok((StatusCode::CREATED, axum::Json(saved)).into_response())
}

pub async fn delete(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let core = state.core()?.clone();
    let tenant = admin_tenant(&core, &headers, uri.query())?;
    tokio::task::spawn_blocking(move || core.saved.delete(&tenant, &id))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(saved_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
