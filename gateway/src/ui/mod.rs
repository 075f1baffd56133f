//! The web UI: static assets (`gateway/ui/`: HTML, CSS and plain ES
//! modules, no build step) embedded in the binary and served at `/` and
//! `/ui/{file}`. Everything it shows comes from the HTTP API
//! (`crate::api`), signed in by a session cookie (`crate::api::session`).
//!
//! Log content is attacker-controlled (browser beacons are public), so
//! every UI response carries a strict Content-Security-Policy: scripts and
//! styles only from the gateway's own files, no inline script, no
//! framing. The UI renders event data as text only.
//!
//! In debug builds `rust-embed` reads the files from `gateway/ui/` on disk
//! at each request, so a UI change shows on reload without a rebuild;
//! release builds embed them.

pub mod config;
pub mod saved;
pub mod session;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rust_embed::RustEmbed;

use crate::error::ApiError;

pub use config::UiConfig;

/// Where the UI's files are served (besides `/` for the page itself).
pub const PREFIX: &str = "/ui/";

/// The policy sent with every UI response.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

#[derive(RustEmbed)]
#[folder = "ui/"]
struct Assets;

/// The UI's routes (none when `ui.enabled` is off).
pub fn routes<S: Clone + Send + Sync + 'static>(config: &UiConfig) -> Router<S> {
    if !config.enabled {
        return Router::new();
    }
    Router::new()
        .route("/", get(index))
        .route("/ui/{*file}", get(asset))
}

async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    serve(&file, &headers)
}

fn serve(file: &str, headers: &HeaderMap) -> Response {
    let Some(content) = Assets::get(file) else {
        return ApiError::NotFound(format!("no UI file `{file}`")).into_response();
    };
    let etag = format!(
        "\"{}\"",
        content.metadata.sha256_hash()[..12]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let mut resp = if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        content.data.into_owned().into_response()
    };
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(media_type(file)),
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    // Revalidated every time (the names carry no hash): a new gateway's
    // UI is never mixed with an old one's cached modules.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    security_headers(h);
    resp
}

/// The headers every UI response carries.
pub fn security_headers(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

fn media_type(file: &str) -> &'static str {
    match file.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" => "application/json",
        _ => "application/octet-stream",
    }
}
