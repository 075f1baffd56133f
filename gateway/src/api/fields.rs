//! `GET /api/v1/fields` (the field names of a tenant's events, of one type
//! or all) and `GET /api/v1/fields/values` (the top values of `field` over
//! the events `q` matches in `[from, to)`), for the UI's field sidebar.

use std::sync::Arc;

use axum::extract::State;
use serde_json::json;
use time::OffsetDateTime;

use super::search::{Params, admin_request, blocking};
use crate::error::ApiError;
use crate::hot::fields;
use crate::state::AppState;

/// Values `/api/v1/fields/values` returns unless `size` says otherwise.
pub const DEFAULT_VALUES: usize = 10;

pub async fn names(
    State(state): State<Arc<AppState>>,
    headers: axum::http::HeaderMap,
    uri: axum::http::Uri,
    params: Params,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let (core, tenant, _, request) =
        admin_request(&state, &headers, &uri, params, OffsetDateTime::now_utc())?;
    let names =
        blocking(move || fields::field_names(&core.hot, &tenant, request.log_type.as_deref()))
            .await?;
    let names: Vec<_> = names
        .into_iter()
        .map(|f| json!({"name": f.name, "promoted": f.promoted}))
        .collect();
    Ok(axum::Json(json!({ "fields": names })))
}

pub async fn values(
    State(state): State<Arc<AppState>>,
    headers: axum::http::HeaderMap,
    uri: axum::http::Uri,
    params: Params,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    let (core, tenant, p, request) =
        admin_request(&state, &headers, &uri, params, OffsetDateTime::now_utc())?;
    let Some(field) = p.field.clone().filter(|f| !f.trim().is_empty()) else {
        return Err(ApiError::BadRequest(
            "name the field: `field=user.id`".into(),
        ));
    };
    let size = p.size.unwrap_or(DEFAULT_VALUES);
    if size > fields::MAX_VALUES {
        return Err(ApiError::BadRequest(format!(
            "`size` is at most {}",
            fields::MAX_VALUES
        )));
    }
    let name = field.clone();
    let top =
        blocking(move || fields::top_values(&core.hot, &tenant, &request, &name, size)).await?;
    let values: Vec<_> = top
        .values
        .into_iter()
        .map(|(value, count)| json!({"value": value, "count": count}))
        .collect();
    Ok(axum::Json(json!({
        "field": field,
        "total": top.total,
        "values": values,
        "other": top.other,
    })))
}
