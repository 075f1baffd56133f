//! Ingest: one HTTP request → one durable WAL batch → one answer.
//!
//! The path of a request, in order: [`route::is_ingest_path`] (404) →
//! [`auth`] (401) → [`route::resolve`] (403/404) → content type and encoding
//! (415) → body read within limits (413/408) → [`limit`] on bytes (429/413)
//! → [`idempotency`] (replay, 409, 422) → [`decode`] into items →
//! [`crate::event`] builds stored events (bad lines become rejected events)
//! → [`limit`] on events (429/413) → [`crate::wal`] append, which resolves
//! after fsync → 200 with per-line errors (400 if every line was rejected).
//! Only then is the client acknowledged.

pub mod auth;
pub mod decode;
pub mod idempotency;
pub mod limit;
pub mod route;

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use serde::Serialize;
use time::OffsetDateTime;

use crate::api::error::ApiError;
use crate::batch::{self, BATCH_VERSION, BatchHeader, IdempotencyRecord, TypeRun};
use crate::event::{self, EventContext};
use crate::filter;
use crate::listen::tls::ClientCert;
use crate::telemetry::{LimitLabels, TenantType};
use crate::{Core, Policy};
use decode::{BodyKind, Encoding, Item};
use idempotency::Lookup;

/// Per-line errors listed in one answer at most (all are counted).
pub const MAX_REPORTED_ERRORS: usize = 100;
const CORS_ALLOW_HEADERS: &str =
    "authorization, content-type, content-encoding, x-logway-key, idempotency-key, x-request-id";

#[derive(Debug, Serialize)]
pub struct LineError {
    pub line: usize,
    pub reason: String,
}

#[derive(Debug, Serialize)]
pub struct IngestAnswer {
    pub accepted: usize,
    pub rejected: usize,
    /// Events the route's filters dropped on purpose.
    #[serde(skip_serializing_if = "is_zero")]
    pub dropped: usize,
    /// Events a filter failed on, stored as dead letters (see `errors`).
    #[serde(skip_serializing_if = "is_zero")]
    pub dead_lettered: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<LineError>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub errors_truncated: bool,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Answers an `OPTIONS` preflight or a `POST` on an ingest path, inside an
/// `ingest` span (tenant, log type, events, status; exported over OTLP when
/// configured).
pub async fn handle(core: &Core, req: Request<Body>) -> Response {
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
    let resp = handle_request(core, req).instrument(span.clone()).await;
    span.record("status", resp.status().as_u16());
    resp
}

async fn handle_request(core: &Core, req: Request<Body>) -> Response {
    let policy = core.policy();
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if req.method() == Method::OPTIONS {
        return preflight(&policy, req.uri().path(), origin.as_deref());
    }
    if req.method() != Method::POST {
        return ApiError::MethodNotAllowed("send logs with POST".into()).into_response();
    }
    let mut allowed_origin = None;
    let result = ingest(core, &policy, req, origin.as_deref(), &mut allowed_origin).await;
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

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn ingest(
    core: &Core,
    policy: &Policy,
    req: Request<Body>,
    origin: Option<&str>,
    allowed_origin: &mut Option<String>,
) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path();
    let client_ip = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), |c| {
            c.0.ip()
        });
    let (tenant, _role) = policy.tenants.authenticate_request(
        auth::request_key(&parts.headers, parts.uri.query()),
        parts.extensions.get::<ClientCert>(),
    )?;
    if let Some(o) = origin.filter(|o| tenant.allows_origin(o)) {
        *allowed_origin = Some(o.to_string());
    }
    let route = route::resolve(&policy.tenants, tenant, path)?;
    let log_type = route.log_type.clone();
    let span = tracing::Span::current();
    span.record("tenant", tenant.name.as_str());
    span.record("log_type", log_type.as_str());
    let encoding = Encoding::from_header(header_str(&parts.headers, "content-encoding"))?;
    let kind = BodyKind::from_content_type(header_str(&parts.headers, "content-type"))?;
    let limits = &core.config.limits;

    let timeout = core.config.server.request_timeout;
    let body = read_body(body, limits.max_body_bytes, timeout).await?;
    let labels = TenantType::new(&tenant.name, &log_type);
    core.metrics
        .bytes_received
        .get_or_create(&labels)
        .inc_by(body.len() as u64);
    let limited = |refusal: limit::Refusal| {
        core.metrics
            .requests_limited
            .get_or_create(&LimitLabels {
                tenant: tenant.name.clone(),
                r#type: log_type.clone(),
                reason: refusal.reason,
            })
            .inc();
        refusal.error
    };
    policy
        .limits
        .check(
            &tenant.name,
            path,
            client_ip,
            limit::Unit::Bytes,
            body.len(),
        )
        .map_err(limited)?;

    let now = OffsetDateTime::now_utc();
    let now_ms = crate::now_ms();
    let idem_key = header_str(&parts.headers, "idempotency-key").map(str::to_string);
    let mut guard = None;
    let hash = if idem_key.is_some() {
        idempotency::body_hash(&body)
    } else {
        0
    };
    if let Some(key) = &idem_key {
        if key.is_empty() || key.len() > 255 {
            return Err(ApiError::BadRequest(
                "Idempotency-Key must be 1-255 characters".into(),
            ));
        }
        match core.idempotency.lookup(&tenant.name, key, hash, now_ms) {
            Lookup::Replay { status, body } => {
                core.metrics.idempotent_replays.inc();
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
            Lookup::Mismatch => {
                return Err(ApiError::Unprocessable(
                    "this Idempotency-Key was already used with a different body".into(),
                ));
            }
            Lookup::InFlight => {
                return Err(ApiError::Conflict(
                    "a request with this Idempotency-Key is still being processed; retry later"
                        .into(),
                ));
            }
            Lookup::New(g) => guard = Some(g),
        }
    }

    // Decompressing and building events is CPU work: keep it off the reactor.
    let tenant_name = tenant.name.clone();
    let request_id = header_str(&parts.headers, "x-request-id").map(str::to_string);
    let limits = limits.clone();
    let built = {
        let log_type = log_type.clone();
        let registry = core.filters.clone();
        let path = path.to_string();
        tokio::task::spawn_blocking(move || {
            let decoded = decode::decompress(body, encoding, limits.max_decompressed_bytes)?;
            let items = decode::items(&decoded, kind, limits.max_line_bytes);
            let ctx = EventContext::new(
                &tenant_name,
                &log_type,
                now,
                request_id.as_deref(),
                limits.max_fields_per_event,
            );
            if route.filters.is_empty() {
                return Ok::<_, ApiError>(build_events(items, &ctx, limits.max_line_bytes));
            }
            let info = filter::BatchInfo {
                tenant: &tenant_name,
                log_type: &log_type,
                route: &path,
                received_ms: now_ms,
                client_ip: Some(client_ip.to_string()),
            };
            Ok(build_filtered(
                items,
                &ctx,
                limits.max_line_bytes,
                &registry,
                &route.filters,
                &info,
            ))
        })
        .await
        .map_err(|e| ApiError::Internal(format!("decoder task failed: {e}")))??
    };
    let Built {
        events,
        answer,
        reject_reasons,
        types,
    } = built;
    if events.is_empty() {
        return Err(ApiError::BadRequest("the body holds no events".into()));
    }
    policy
        .limits
        .check(
            &tenant.name,
            path,
            client_ip,
            limit::Unit::Events,
            events.len(),
        )
        .map_err(limited)?;
    let status = if answer.accepted == 0 {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let answer_text = serde_json::to_string(&answer).expect("answer serializes");
    let idempotency = idem_key.map(|key| IdempotencyRecord {
        key,
        body_hash: hash,
        status: status.as_u16(),
        body: answer_text.clone(),
    });
    let header = BatchHeader {
        v: BATCH_VERSION,
        tenant: tenant.name.clone(),
        log_type: log_type.clone(),
        received_ms: now_ms,
        n: events.len(),
        idempotency: idempotency.clone(),
        types,
    };
    span.record("events", events.len());
    let payload = batch::encode(&header, &events, core.config.wal.compress());
    core.wal.append(payload).await?;

    core.metrics.count_stored(
        &tenant.name,
        &log_type,
        events.len() - reject_reasons.len(),
        &reject_reasons,
    );
    if let (Some(g), Some(r)) = (guard, &idempotency) {
        g.complete(r, now_ms);
    }
    Ok((
        status,
        [(header::CONTENT_TYPE, "application/json")],
        answer_text,
    )
        .into_response())
}

async fn read_body(body: Body, max: usize, timeout: Duration) -> Result<bytes::Bytes, ApiError> {
    let limited = http_body_util::Limited::new(body, max);
    match tokio::time::timeout(timeout, limited.collect()).await {
        Err(_) => Err(ApiError::RequestTimeout(timeout.as_secs())),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e))
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(ApiError::PayloadTooLarge(format!(
                "body is larger than {max} bytes (limits.max_body_bytes)"
            )))
        }
        Ok(Err(e)) => Err(ApiError::BadRequest(format!(
            "could not read the body: {e}"
        ))),
    }
}

/// A batch's stored events (also built by the syslog listener).
pub(crate) struct Built {
    pub events: Vec<Vec<u8>>,
    pub answer: IngestAnswer,
    /// Metric label of each rejected or dead-lettered event.
    pub reject_reasons: Vec<&'static str>,
    /// Groups by log type when filters retyped some events (see [`batch`]).
    pub types: Vec<TypeRun>,
}

/// Collects a request's stored events and its answer.
struct Builder<'c> {
    ctx: &'c EventContext<'c>,
    max_line: usize,
    events: Vec<Vec<u8>>,
    answer: IngestAnswer,
    reject_reasons: Vec<&'static str>,
}

impl<'c> Builder<'c> {
    fn new(ctx: &'c EventContext<'c>, max_line: usize, capacity: usize) -> Self {
        Builder {
            ctx,
            max_line,
            events: Vec::with_capacity(capacity),
            answer: IngestAnswer {
                accepted: 0,
                rejected: 0,
                dropped: 0,
                dead_lettered: 0,
                errors: Vec::new(),
                errors_truncated: false,
            },
            reject_reasons: Vec::new(),
        }
    }

    fn report(&mut self, line: usize, reason: String) {
        if self.answer.errors.len() < MAX_REPORTED_ERRORS {
            self.answer.errors.push(LineError { line, reason });
        } else {
            self.answer.errors_truncated = true;
        }
    }

    /// A line the client got wrong: kept as a rejected event.
    fn reject(&mut self, raw: &[u8], line: usize, kind: &'static str, reason: String) {
        self.events
            .push(event::rejected(raw, line, &reason, self.max_line, self.ctx));
        self.answer.rejected += 1;
        self.reject_reasons.push(kind);
        self.report(line, reason);
    }

    /// An event a filter failed on: kept as a dead letter.
    fn dead_letter(&mut self, d: filter::DeadLetter) {
        self.events.push(event::dead_letter(
            &d.raw,
            d.line,
            &d.filter,
            &d.reason,
            self.max_line,
            self.ctx,
        ));
        self.answer.dead_lettered += 1;
        self.reject_reasons.push("filter_failed");
        self.report(d.line, d.reason);
    }

    /// A decoded object, unless it has too many fields.
    fn object(
        &mut self,
        obj: serde_json::Map<String, serde_json::Value>,
        line: usize,
        ctx: &EventContext,
    ) -> bool {
        match event::check_fields(&obj, ctx.max_fields) {
            Ok(()) => {
                self.events.push(event::from_object(obj, ctx));
                true
            }
            Err(reason) => {
                let raw = serde_json::to_vec(&obj).unwrap_or_default();
                self.reject(&raw, line, "too_many_fields", reason);
                false
            }
        }
    }

    fn finish(self, types: Vec<TypeRun>) -> Built {
        Built {
            events: self.events,
            answer: self.answer,
            reject_reasons: self.reject_reasons,
            types,
        }
    }
}

fn build_events(items: Vec<(usize, Item<'_>)>, ctx: &EventContext, max_line: usize) -> Built {
    let mut b = Builder::new(ctx, max_line, items.len());
    for (line, item) in items {
        match item {
            Item::Object(obj, _) => {
                if b.object(obj, line, ctx) {
                    b.answer.accepted += 1;
                }
            }
            Item::Text(text) => {
                b.events.push(event::from_text(text, ctx));
                b.answer.accepted += 1;
            }
            Item::Bad { raw, reason, kind } => b.reject(&raw, line, kind, reason),
        }
    }
    b.finish(Vec::new())
}

/// Decoded items through the route's filter chain, then stored events.
/// `accepted` counts the request's lines that decoded; what the filters
/// did with them is in `dropped`, `dead_lettered` and the errors.
pub(crate) fn build_filtered(
    items: Vec<(usize, Item<'_>)>,
    ctx: &EventContext,
    max_line: usize,
    registry: &filter::Registry,
    chain: &[crate::config::FilterRef],
    info: &filter::BatchInfo,
) -> Built {
    let mut b = Builder::new(ctx, max_line, items.len());
    let mut pending = Vec::with_capacity(items.len());
    for (line, item) in items {
        let (doc, raw) = match item {
            Item::Object(obj, raw) => (filter::Doc::Object(obj), raw.map(<[u8]>::to_vec)),
            Item::Text(text) => (filter::Doc::Text(text.to_string()), None),
            Item::Bad { raw, reason, kind } => {
                b.reject(&raw, line, kind, reason);
                continue;
            }
        };
        b.answer.accepted += 1;
        pending.push(filter::Pending {
            line,
            doc,
            raw,
            log_type: None,
        });
    }
    let out = filter::chain::run(registry, chain, info, pending);
    b.answer.dropped = out.dropped;
    for d in out.dead {
        b.dead_letter(d);
    }
    // Events of the route's type first, then each type a filter gave.
    let mut events = out.events;
    events.sort_by(|a, b| a.log_type.cmp(&b.log_type));
    let mut types = Vec::new();
    let mut events = events.into_iter().peekable();
    while let Some(first) = events.next() {
        let group_type = first.log_type.clone();
        let log_type = group_type.as_deref().unwrap_or(ctx.log_type);
        let typed = EventContext {
            log_type,
            ..ctx.clone()
        };
        let before = b.events.len();
        let mut next = Some(first);
        while let Some(ev) = next {
            match ev.doc {
                filter::Doc::Object(obj) => {
                    b.object(obj, ev.line, &typed);
                }
                filter::Doc::Text(text) => b.events.push(event::from_text(&text, &typed)),
            }
            next = events.next_if(|e| e.log_type == group_type);
        }
        types.push(TypeRun {
            log_type: log_type.to_string(),
            n: b.events.len() - before,
        });
    }
    if types.iter().all(|t| t.log_type == ctx.log_type) {
        return b.finish(Vec::new());
    }
    // Rejected and dead-lettered events, pushed first, keep the route's type.
    let head = b.events.len() - types.iter().map(|t| t.n).sum::<usize>();
    if head > 0 {
        types.insert(
            0,
            TypeRun {
                log_type: ctx.log_type.to_string(),
                n: head,
            },
        );
    }
    b.finish(types)
}
