//! Where a key is in an HTTP request: `Authorization: Bearer <key>`, an
//! `X-Logway-Key` header, or a `key` query parameter (for
//! `navigator.sendBeacon`, which cannot set headers). Sources whose clients
//! send keys elsewhere (a protocol's own header) read them themselves.

use axum::http::HeaderMap;

/// The key of a request, from headers or the `key` query parameter.
pub fn request_key<'a>(headers: &'a HeaderMap, query: Option<&'a str>) -> Option<&'a str> {
    if let Some(v) = headers.get("authorization").and_then(|v| v.to_str().ok())
        && let Some(k) = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
    {
        return Some(k.trim());
    }
    if let Some(v) = headers.get("x-logway-key").and_then(|v| v.to_str().ok()) {
        return Some(v.trim());
    }
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("key="))
        .filter(|k| !k.is_empty())
}

/// The password of `Authorization: Basic base64(user:password)`: clients
/// of compat protocols with only a user-and-password setting (Loki's,
/// Elasticsearch's) carry the key there; the user name is not checked.
pub fn basic_password(headers: &HeaderMap) -> Option<String> {
    use base64::Engine;
    let value = headers.get("authorization")?.to_str().ok()?.trim();
    let (scheme, credentials) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(credentials.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    text.split_once(':').map(|(_, key)| key.to_string())
}
