//! `/api/v1/alerts`: the tenant's alert rules and alerts (admin key).
//!
//! - `GET /api/v1/alerts/rules`: every rule with its source (config or
//!   API), state, mute, last evaluation and alerts;
//!   `GET /api/v1/alerts/rules/{name}`: one.
//! - `POST /api/v1/alerts/rules` creates a rule (409 if the name exists);
//!   `PUT /api/v1/alerts/rules/{name}` creates or replaces one;
//!   `DELETE /api/v1/alerts/rules/{name}` deletes one and resolves its
//!   firing alerts at the receivers. Config rules are read-only (409).
//! - `POST /api/v1/alerts/rules/{name}/mute` `{"until": "now+2h"}` holds
//!   back its firing notifications until then; `DELETE` ends the mute.
//! - `POST /api/v1/alerts/test` `{"rule": {…}, "from": "now-1h", "to":
//!   "now"}` evaluates a rule over that range now, without notifying.
//! - `GET /api/v1/alerts`: the pending and firing alerts, and the
//!   receivers with their deliveries.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;

use super::{admin_tenant, parse_time_param};
use crate::alerts::rule::RuleSpec;
use crate::alerts::{Alerts, AlertsError, evaluator};
use crate::error::ApiError;
use crate::state::{AppState, Core};

fn alerts_error(e: AlertsError) -> ApiError {
    match e {
        AlertsError::Invalid(e) if e.key == "query" && e.position.is_some() => {
            ApiError::InvalidQuery {
                message: e
                    .message
                    .strip_prefix("invalid query: ")
                    .unwrap_or(&e.message)
                    .to_string(),
                position: e.position,
            }
        }
        AlertsError::Invalid(e) => ApiError::BadRequest(format!("alert rule: {e}")),
        AlertsError::NotFound(_) => ApiError::NotFound(e.to_string()),
        AlertsError::Conflict(m) => ApiError::Conflict(m),
        AlertsError::Limit(m) => ApiError::BadRequest(m),
        AlertsError::Io(_) => ApiError::Internal(e.to_string()),
    }
}

fn spec(body: &[u8]) -> Result<RuleSpec, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("alert rule: {e}")))
}

fn tenant(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<(Arc<Core>, String), ApiError> {
    let core = state.core()?.clone();
    let tenant = admin_tenant(&core, headers, uri.query())?;
    Ok((core, tenant))
}

/// Runs a call that writes the state file off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, AlertsError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(alerts_error)
}

/// Runs a change to rule `name` (off the async workers), then reads the
/// rule's view.
async fn change<T: Send + 'static>(
    core: &Arc<Core>,
    tenant: &str,
    name: &str,
    f: impl FnOnce(&Alerts, &str, &str) -> Result<T, AlertsError> + Send + 'static,
) -> Result<(T, Option<serde_json::Value>), ApiError> {
    let (c, t, n) = (core.clone(), tenant.to_string(), name.to_string());
    let done = blocking(move || f(&c.alerts, &t, &n)).await?;
    Ok((done, core.alerts.get(tenant, name)))
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let (core, tenant) = tenant(&state, &headers, &uri)?;
    Ok(axum::Json(json!({ "rules": core.alerts.list(&tenant) })).into_response())
}

pub async fn get_one(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let (core, tenant) = tenant(&state, &headers, &uri)?;
    let view = core
        .alerts
        .get(&tenant, &name)
        .ok_or_else(|| ApiError::NotFound(format!("no alert rule `{name}`")))?;
    Ok(axum::Json(view).into_response())
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let (core, tenant) = tenant(&state, &headers, &uri)?;
    let spec = spec(&body)?;
    let name = spec.name.clone();
    let (_, view) = change(&core, &tenant, &name, |a, t, _| a.put(t, spec, false)).await?;
    Ok((StatusCode::CREATED, axum::Json(view)).into_response())
}

pub async fn put(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let (core, tenant) = tenant(&state, &headers, &uri)?;
    let mut value: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("alert rule: {e}")))?;
    match value.get("name") {
        None => value["name"] = name.clone().into(),
        Some(n) if n == name.as_str() => {}
        Some(n) => {
            return Err(ApiError::BadRequest(format!(
                "alert rule: the body's name {n} is not the path's `{name}`"
            )));
        }
    }
    let spec: RuleSpec = serde_json::from_value(value)
        .map_err(|e| ApiError::BadRequest(format!("alert rule: {e}")))?;
    let (created, view) = change(&core, &tenant, &name, |a, t, _| a.put(t, spec, true)).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(view)).into_response())
}

pub async fn delete(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let (core, tenant) = tenant(&state, &headers, &uri)?;
    blocking(move || core.alerts.delete(&tenant, &name)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MuteBody {
    until: String,
}

pub async fn mute(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let (core, tenant) = tenant(&state, &headers, &uri)?;
    let b: MuteBody =
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("mute: {e}")))?;
    let until = parse_time_param("until", &b.until, OffsetDateTime::now_utc())?;
    let ms = crate::hot::search::unix_ms(until);
    let (_, view) = change(&core, &tenant, &name, move |a, t, n| a.mute(t, n, Some(ms))).await?;
    Ok(axum::Json(view).into_response())
}

pub async fn unmute(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let (core, tenant) = tenant(&state, &headers, &uri)?;
    let (_, view) = change(&core, &tenant, &name, |a, t, n| a.mute(t, n, None)).await?;
    Ok(axum::Json(view).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestBody {
    rule: RuleSpec,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
}

pub async fn test(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let (core, tenant) = tenant(&state, &headers, &uri)?;
    let b: TestBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("test rule: {e}")))?;
    let now = OffsetDateTime::now_utc();
    let to = match &b.to {
        Some(t) => parse_time_param("to", t, now)?,
        None => now,
    };
    let from = match &b.from {
        Some(t) => parse_time_param("from", t, now)?,
        None => {
            let rule = core
                .alerts
                .check(&tenant, b.rule.clone())
                .map_err(alerts_error)?;
            to - time::Duration::try_from(rule.window).unwrap_or(time::Duration::HOUR)
        }
    };
    let result = blocking(move || {
        evaluator::test_rule(&core.alerts, &core.hot, &*core, &tenant, b.rule, from, to)
    })
    .await?;
    Ok(axum::Json(result).into_response())
}

pub async fn alerts(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let (core, tenant) = tenant(&state, &headers, &uri)?;
    let mut out = Vec::new();
    for rule in core.alerts.list(&tenant) {
        for a in rule["alerts"].as_array().into_iter().flatten() {
            let mut a = a.clone();
            a["rule"] = rule["rule"]["name"].clone();
            out.push(a);
        }
    }
    Ok(axum::Json(json!({
        "alerts": out,
        "receivers": core.alerts.receivers_of(&tenant),
    }))
    .into_response())
}
