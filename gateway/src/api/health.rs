//! `/healthz` (the process is up), `/readyz` (recovered and serving, with
//! the WAL's and the consumers' positions) and `/metrics` (Prometheus).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::RETRY_AFTER_SECS;
use crate::state::AppState;

pub async fn healthz() -> Response {
    (
        StatusCode::OK,
        axum::Json(serde_json::json!({"status": "ok"})),
    )
        .into_response()
}

pub async fn readyz(State(state): State<Arc<AppState>>) -> Response {
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

pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
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
