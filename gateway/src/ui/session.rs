//! The web UI's sign-in sessions, kept in memory (a restart signs
//! everyone out), at most `ui.max_sessions`, by the SHA-256 of their
//! token; the endpoints and the CSRF check are `crate::api::session`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, header};
use base64::Engine;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::UiConfig;

/// The session cookie's name.
pub const COOKIE: &str = "logway_session";

/// The signed-in sessions.
pub struct Sessions {
    ttl: Duration,
    max: usize,
    by_digest: Mutex<HashMap<[u8; 32], Session>>,
}

/// One sign-in.
#[derive(Clone)]
pub struct Session {
    /// The admin key signed in with (`None` in open mode).
    pub key: Option<String>,
    pub csrf: String,
    expires: Instant,
    pub expires_at: OffsetDateTime,
}

impl Sessions {
    pub fn new(config: &UiConfig) -> Sessions {
        Sessions {
            ttl: config.session_ttl,
            max: config.max_sessions.max(1),
            by_digest: Mutex::new(HashMap::new()),
        }
    }

    /// A new session for `key`; returns its cookie token.
    pub fn create(&self, key: Option<String>) -> (String, Session) {
        let token = random_token();
        let session = Session {
            key,
            csrf: random_token(),
            expires: Instant::now() + self.ttl,
            expires_at: OffsetDateTime::now_utc() + self.ttl,
        };
        let mut map = self.by_digest.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= self.max {
            let now = Instant::now();
            map.retain(|_, s| s.expires > now);
        }
        if map.len() >= self.max
            && let Some(oldest) = map.iter().min_by_key(|(_, s)| s.expires).map(|(d, _)| *d)
        {
            map.remove(&oldest);
        }
        map.insert(digest(&token), session.clone());
        (token, session)
    }

    /// The live session of a token.
    pub fn get(&self, token: &str) -> Option<Session> {
        let d = digest(token);
        let mut map = self.by_digest.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(&d) {
            Some(s) if s.expires > Instant::now() => Some(s.clone()),
            Some(_) => {
                map.remove(&d);
                None
            }
            None => None,
        }
    }

    pub fn remove(&self, token: &str) {
        self.by_digest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&digest(token));
    }

    /// How long a session lasts.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The session of a request's cookie, if it has a live one.
    pub fn of_request(&self, headers: &HeaderMap) -> Option<Session> {
        cookie_token(headers).and_then(|t| self.get(t))
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS random source");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The `logway_session` value of the request's `Cookie` headers.
pub fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE && !value.is_empty()).then_some(value)
        })
}
