//! Native HTTP ingest: one request → one durable WAL batch → one answer.
//!
//! What this source does itself: the tenant-path check (404 before any key
//! is looked at), CORS (preflight and the allowed origin), content type and
//! encoding (415), the body read within limits (413/408), decoding into
//! items ([`body`]), and the answer ([`answer`]). Everything between is the
//! pipeline's (`crate::pipeline`): key and route, rate limits,
//! idempotency, filters, events, the WAL. The client is answered only
//! after the batch is durable.

pub mod answer;
pub mod body;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::listen::tls::ClientCert;
use crate::pipeline::{Caller, Meta, Pipeline, Recall};
use crate::tenants::config::RouteFormat;
use crate::tenants::{Policy, key::request_key, route};
use answer::IngestAnswer;
use body::{BodyKind, Encoding};

const CORS_ALLOW_HEADERS: &str =
    "authorization, content-type, content-encoding, x-logway-key, idempotency-key, x-request-id";

/// Answers an `OPTIONS` preflight or a `POST` on a tenant's path, inside an
/// `ingest` span (tenant, log type, events, status; exported over OTLP when
/// configured).
pub async fn handle(
    pipeline: &Arc<Pipeline>,
    request_timeout: Duration,
    req: Request<Body>,
) -> Response {
    use tracing::Instrument;
    use tracing::field::Empty;
    let span = tracing::info_span!(
        "ingest",
        path = %req.uri().path(),
        tenant = Empty,
        log_type = Empty,
        events = Empty,
        status = Empty
    );
    let resp = handle_request(pipeline, request_timeout, req)
        .instrument(span.clone())
        .await;
    span.record("status", resp.status().as_u16());
    resp
}

async fn handle_request(
    pipeline: &Arc<Pipeline>,
    timeout: Duration,
    req: Request<Body>,
) -> Response {
    let policy = pipeline.policy();
    if !route::is_ingest_path(&policy.tenants, req.uri().path()) {
        return ApiError::NotFound(format!("no route for `{}`", req.uri().path())).into_response();
    }
    let origin = header_str(req.headers(), header::ORIGIN.as_str()).map(str::to_string);
    if req.method() == Method::OPTIONS {
        return preflight(&policy, req.uri().path(), origin.as_deref());
    }
    if req.method() != Method::POST {
        return ApiError::MethodNotAllowed("send logs with POST".into()).into_response();
    }
    let mut allowed_origin = None;
    let result = ingest(
        pipeline,
        timeout,
        req,
        origin.as_deref(),
        &mut allowed_origin,
    )
    .await;
    let mut resp = match result {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    };
    if let Some(origin) = allowed_origin {
        let h = resp.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&origin) {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
            h.insert(header::VARY, HeaderValue::from_static("Origin"));
        }
    }
    resp
}

fn preflight(policy: &Policy, path: &str, origin: Option<&str>) -> Response {
    let Some(origin) = origin else {
        return (StatusCode::NO_CONTENT, [(header::ALLOW, "POST, OPTIONS")]).into_response();
    };
    let generic = path.starts_with(route::GENERIC_PREFIX);
    let allowed = policy
        .tenants
        .tenants
        .iter()
        .filter(|t| (generic && t.generic_route) || t.routes.contains_key(path))
        .any(|t| t.allows_origin(origin));
    if !allowed {
        return ApiError::Forbidden(format!("origin `{origin}` may not send logs to `{path}`"))
            .into_response();
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(origin) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(CORS_ALLOW_HEADERS),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    h.insert(header::VARY, HeaderValue::from_static("Origin"));
    resp
}

/// Who sent an HTTP request with `key`: its verified client certificate
/// and peer address, as the listener recorded them.
pub fn caller<'a>(parts: &'a axum::http::request::Parts, key: Option<&'a str>) -> Caller<'a> {
    Caller {
        key,
        cert: parts.extensions.get::<ClientCert>(),
        ip: parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip()),
    }
}

/// A header's value, when it is text.
pub fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn ingest(
    pipeline: &Arc<Pipeline>,
    timeout: Duration,
    req: Request<Body>,
    origin: Option<&str>,
    allowed_origin: &mut Option<String>,
) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let caller = caller(&parts, request_key(&parts.headers, parts.uri.query()));
    let caller = pipeline.authenticate(&caller)?;
    // The tenant's origins, also on a refused route's error.
    if let Some(o) = origin.filter(|o| caller.tenant().allows_origin(o)) {
        *allowed_origin = Some(o.to_string());
    }
    let adm = caller.route(parts.uri.path())?;
    let span = tracing::Span::current();
    span.record("tenant", adm.tenant.as_str());
    span.record("log_type", adm.route.log_type.as_str());
    let encoding = Encoding::from_header(header_str(&parts.headers, "content-encoding"))?;
    let kind = BodyKind::from_content_type(header_str(&parts.headers, "content-type"))?;
    let statsd = adm.route.format == RouteFormat::Statsd;
    if statsd && kind != BodyKind::Text {
        return Err(ApiError::UnsupportedMediaType(format!(
            "`{}` takes StatsD lines: send Content-Type text/plain",
            parts.uri.path()
        )));
    }
    let limits = pipeline.limits().clone();
    let body = body::read(body, limits.max_body_bytes, timeout).await?;
    pipeline.received(&adm, body.len())?;

    let ticket = match header_str(&parts.headers, "idempotency-key") {
        None => None,
        Some(key) => match pipeline.recall(&adm, key, &body)? {
            Recall::Answered { status, body } => {
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
                return Ok((
                    status,
                    [
                        (header::CONTENT_TYPE, "application/json"),
                        (
                            header::HeaderName::from_static("idempotent-replayed"),
                            "true",
                        ),
                    ],
                    body,
                )
                    .into_response());
            }
            Recall::First(ticket) => Some(ticket),
        },
    };
    let meta = Meta {
        request_id: header_str(&parts.headers, "x-request-id").map(str::to_string),
        ..Meta::now()
    };
    // Decompressing, filters and building events are CPU work: keep them
    // off the reactor.
    let worker = pipeline.clone();
    let (adm, built, points) = tokio::task::spawn_blocking(move || {
        let decoded = body::decompress(body, encoding, limits.max_decompressed_bytes)?;
        let (items, points) = if statsd {
            crate::sources::statsd::http::items(&decoded)
        } else {
            (
                body::items(&decoded, kind, limits.max_line_bytes),
                Vec::new(),
            )
        };
        let built = worker.build(&adm, items, &meta);
        Ok::<_, ApiError>((adm, built, points))
    })
    .await
    .map_err(|e| ApiError::Internal(format!("decoder task failed: {e}")))??;
    let answer = IngestAnswer::of(&built);
    let (status, text) = (answer.status(), answer.to_json());
    span.record("events", built.events.len());
    let answered = ticket.map(|t| t.answer(status, text.clone()));
    pipeline.store(&adm, built, answered).await?;
    // StatsD points, once durable, also go to the tenant's Prometheus series.
    if !points.is_empty() {
        pipeline
            .metrics()
            .statsd_series
            .update(&adm.tenant, &points);
    }
    Ok((
        StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
        [(header::CONTENT_TYPE, "application/json")],
        text,
    )
        .into_response())
}
