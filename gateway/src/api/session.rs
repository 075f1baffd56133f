//! `/api/v1/session`: the web UI's sign-in with an admin key.
//!
//! - `POST` `{"key": "…"}` (JSON only) checks the key as every admin call
//!   does and answers the tenant, a CSRF token and the expiry, with a
//!   `logway_session` cookie: `HttpOnly` (page scripts never see it),
//!   `SameSite=Strict` (other sites' pages never send it), `Secure` when
//!   the gateway serves TLS, `Path=/`, `Max-Age` = `ui.session_ttl`.
//! - `GET` answers the same for the current session (401 without one; in
//!   open mode, the embedded defaults with no keys, the default tenant and
//!   `"open": true`).
//! - `DELETE` signs out.
//!
//! The server keeps the sessions in memory (a restart signs everyone out),
//! at most `ui.max_sessions`, by the SHA-256 of their token. A session
//! holds its key and checks it again on every call, so removing or
//! changing a key in the config ends its sessions at the next reload.
//!
//! CSRF: with the cookie, a call whose method changes state must carry the
//! session's token in `X-Logway-CSRF` ([`csrf_guard`]); a page on another
//! site cannot read it. Calls with a key in a header need none.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::error::ApiError;
use crate::state::{AppState, Core};
use crate::tenants::AccessError;
use crate::tenants::key::request_key;
use crate::ui::session::{COOKIE, Session, cookie_token};

/// The header that carries a session's CSRF token.
pub const CSRF_HEADER: &str = "x-logway-csrf";

/// The key a request authenticates with: its own (header or `key`
/// parameter), else its session's.
pub fn request_or_session_key(
    core: &Core,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Option<String> {
    if let Some(k) = request_key(headers, query) {
        return Some(k.to_string());
    }
    core.sessions.of_request(headers).and_then(|s| s.key)
}

fn equal_in_constant_time(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Refuses a state-changing call made with the session cookie and without
/// the session's CSRF token. Signing in is exempt (it takes JSON only,
/// which a cross-site form cannot send).
pub async fn csrf_guard(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let sign_in = req.method() == Method::POST && req.uri().path() == "/api/v1/session";
    if !safe
        && !sign_in
        && request_key(req.headers(), req.uri().query()).is_none()
        && let Ok(core) = state.core()
        && let Some(session) = core.sessions.of_request(req.headers())
    {
        let sent = req
            .headers()
            .get(CSRF_HEADER)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if !equal_in_constant_time(sent, session.csrf.as_bytes()) {
            return ApiError::Forbidden(format!(
                "a call made with the session cookie needs the session's CSRF token in the {CSRF_HEADER} header"
            ))
            .into_response();
        }
    }
    next.run(req).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    key: String,
}

fn describe(tenant: &str, session: Option<&Session>, open: bool) -> serde_json::Value {
    json!({
        "tenant": tenant,
        "csrf": session.map(|s| s.csrf.as_str()),
        "expires_at": session.map(|s| crate::event::format_time(s.expires_at)),
        "open": open,
    })
}

fn cookie(core: &Core, value: &str, max_age: u64) -> HeaderValue {
    let secure = if core.config.server.tls.is_some() {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .expect("a token is base64url")
}

pub async fn sign_in(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let core = state.core()?.clone();
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"));
    if !json {
        return Err(ApiError::UnsupportedMediaType(
            "sign in with a JSON body {\"key\": \"…\"} (Content-Type: application/json)".into(),
        ));
    }
    let SignIn { key } = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("sign-in body: {e}")))?;
    let policy = core.policy();
    let open = policy.tenants.is_open();
    let tenant = policy
        .tenants
        .authenticate_admin(Some(key.trim()))?
        .name
        .clone();
    let (token, session) = core
        .sessions
        .create((!open).then(|| key.trim().to_string()));
    let mut resp = axum::Json(describe(&tenant, Some(&session), open)).into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        cookie(&core, &token, core.sessions.ttl().as_secs()),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

pub async fn current(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let core = state.core()?.clone();
    let policy = core.policy();
    let open = policy.tenants.is_open();
    let session = core.sessions.of_request(&headers);
    let tenant = match &session {
        Some(s) => policy.tenants.authenticate_admin(s.key.as_deref())?,
        None if open => policy.tenants.authenticate_admin(None)?,
        None => return Err(AccessError::NoKey.into()),
    };
    let mut resp = axum::Json(describe(&tenant.name, session.as_ref(), open)).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

pub async fn sign_out(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let core = state.core()?.clone();
    if let Some(token) = cookie_token(&headers) {
        core.sessions.remove(token);
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, cookie(&core, "", 0));
    Ok(resp)
}
