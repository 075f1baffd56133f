//! OpenTelemetry logs over OTLP/HTTP: `POST /v1/logs`, what the OTel SDKs'
//! and the Collector's `otlphttp` exporters send, answered as OTLP says
//! ([`answer`]); OTLP/gRPC on a listener of its own ([`grpc`]).
//!
//! 1. Key (`Authorization: Bearer`, `X-Logway-Key`: what exporters set
//!    with their `headers` setting) → tenant.
//! 2. Content type (protobuf or JSON; the answer uses the same) and
//!    encoding (gzip, deflate, zstd), the body within limits.
//! 3. On the blocking pool: decompress, decode an
//!    `ExportLogsServiceRequest` (the `opentelemetry-proto` types, for
//!    both encodings; JSON by OTLP's mapping: hex ids, integer enums,
//!    64-bit integers as strings or numbers, unknown fields ignored), map
//!    each record to an event's object ([`map`]), and group the records
//!    by log type (`otlp.type_attributes`, else `otlp.default_type`; the
//!    tenant's route for that type, as an Elasticsearch index finds one).
//!    A body that does not decode is kept as one rejected event and
//!    answered 400.
//! 4. Every group's bytes and events against the rate limits before any
//!    is stored (429 + `Retry-After` stores nothing), then every group
//!    appended; the answer is sent once all are durable. Records the
//!    pipeline rejected (too large, too many fields) are counted in
//!    `partial_success`.

pub mod answer;
pub mod config;
pub mod grpc;
pub mod map;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::Request;
use axum::response::Response;
use axum::routing::post;
use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use prost::Message;

use crate::error::ApiError;
use crate::pipeline::{Authenticated, Item};
use crate::sources::groups::{self, Groups};
use crate::state::{AppState, Core};
use crate::tenants::key::request_key;
use answer::{Format, OtlpError};
use config::OtlpConfig;

/// The OTLP/HTTP logs path.
pub const LOGS_PATH: &str = "/v1/logs";

pub fn routes(config: &OtlpConfig) -> Router<Arc<AppState>> {
    if !config.enabled {
        return Router::new();
    }
    Router::new().route(LOGS_PATH, post(export).fallback(not_post))
}

async fn not_post() -> Response {
    OtlpError::from(ApiError::MethodNotAllowed(
        "OTLP/HTTP exports logs with POST".into(),
    ))
    .render(Format::Protobuf)
}

async fn export(State(state): State<Arc<AppState>>, req: Request<Body>) -> Response {
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok());
    let format = match Format::of(content_type) {
        Ok(f) => f,
        Err((f, e)) => return e.render(f),
    };
    let core = match state.core() {
        Ok(core) => core.clone(),
        Err(e) => return OtlpError::from(e).render(format),
    };
    match run(&core, req, format).await {
        Ok((rejected, reason)) => answer::success(format, rejected, reason.as_deref()),
        Err(e) => e.render(format),
    }
}

/// Stores the request's records; returns how many were rejected, and the
/// first reason.
async fn run(
    core: &Arc<Core>,
    req: Request<Body>,
    format: Format,
) -> Result<(u64, Option<String>), OtlpError> {
    let (parts, body) = req.into_parts();
    let key = request_key(&parts.headers, parts.uri.query());
    let config = core.config.otlp.clone();
    let (stored, malformed) = groups::ingest::<OtlpError, _>(
        core,
        &parts,
        body,
        key,
        groups::Decode::ByHeader,
        move |auth, decoded| {
            Ok(match prepare(auth, &config, decoded, format)? {
                Ok(groups) => (groups, None),
                Err((groups, e)) => (groups, Some(e)),
            })
        },
    )
    .await?;
    match malformed {
        Some(e) => Err(e),
        None => Ok((stored.rejected, stored.reason)),
    }
}

/// The body decoded, mapped and grouped by log type; or, for a body that
/// does not decode, the group keeping it as a rejected event and the
/// error to answer.
type Prepared<'a> = Result<Groups<'a>, (Groups<'a>, OtlpError)>;

fn prepare<'a>(
    auth: &Authenticated,
    config: &OtlpConfig,
    decoded: &'a Bytes,
    format: Format,
) -> Result<Prepared<'a>, OtlpError> {
    let request = match format {
        Format::Protobuf => ExportLogsServiceRequest::decode(&decoded[..])
            .map_err(|e| format!("the body is not an OTLP ExportLogsServiceRequest: {e}")),
        Format::Json => serde_json::from_slice::<ExportLogsServiceRequest>(decoded)
            .map_err(|e| format!("the body is not OTLP/JSON logs: {e}")),
    };
    let request = match request {
        Ok(r) => r,
        Err(reason) => {
            let mut groups = Groups::default();
            let item = Item::Bad {
                raw: std::borrow::Cow::Borrowed(&decoded[..]),
                reason: reason.clone(),
                kind: "otlp_malformed",
            };
            groups.push(auth, &config.default_type, 1, item, decoded.len())?;
            return Ok(Err((groups, OtlpError::bad_data(reason))));
        }
    };
    Ok(Ok(groups_of(auth, config, &request)?))
}

/// A decoded request's records mapped to events' objects and grouped by
/// log type (also what the gRPC service stores).
pub fn groups_of(
    auth: &Authenticated,
    config: &OtlpConfig,
    request: &ExportLogsServiceRequest,
) -> Result<Groups<'static>, OtlpError> {
    let records: usize = request
        .resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .map(|s| s.log_records.len())
        .sum();
    if records > config.max_records_per_request {
        return Err(ApiError::PayloadTooLarge(format!(
            "{records} log records in one request; at most {} (otlp.max_records_per_request)",
            config.max_records_per_request
        ))
        .into());
    }
    // An export with no records (an exporter's empty flush) stores nothing
    // and succeeds.
    let mut groups = Groups::default();
    let mut line = 0;
    for rl in &request.resource_logs {
        let resource = rl.resource.as_ref();
        for sl in &rl.scope_logs {
            let shared = map::Shared::new(resource, sl.scope.as_ref());
            for record in &sl.log_records {
                line += 1;
                let log_type = map::named_type(&config.type_attributes, record, resource)
                    .unwrap_or(&config.default_type);
                let bytes = record.encoded_len();
                let item = Item::Mapped(Box::new(map::record(record, &shared, bytes)));
                groups.push(auth, log_type, line, item, bytes)?;
            }
        }
    }
    Ok(groups)
}
