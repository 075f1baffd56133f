//! The `[ui]` section: the web UI's sign-in sessions.

use std::time::Duration;

use serde::Deserialize;

use crate::config::value::de_duration;

pub const DEFAULT_UI_SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
pub const DEFAULT_UI_MAX_SESSIONS: usize = 10_000;
pub const DEFAULT_UI_MAX_TAILS: usize = 100;
pub const DEFAULT_UI_TAIL_BUFFER_BYTES: usize = 1024 * 1024;
pub const DEFAULT_UI_TAIL_MAX_EVENTS_PER_SEC: u32 = 1000;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UiConfig {
    /// Serve the web UI at `/` (the API stays on either way).
    pub enabled: bool,
    /// How long a sign-in lasts; the session ends then, used or not.
    #[serde(deserialize_with = "de_duration")]
    pub session_ttl: Duration,
    /// Open sessions at most; past it, signing in ends the oldest one.
    pub max_sessions: usize,
    /// Live tails open at once (`GET /api/v1/tail`), for all tenants.
    pub max_tails: usize,
    /// Events one live tail may hold for a slow client; past it, events
    /// are skipped (and counted) rather than buffered.
    pub tail_buffer_bytes: usize,
    /// Events one live tail receives a second at most (a page shows no
    /// more); past it, events are skipped (and counted).
    pub tail_max_events_per_sec: u32,
}

impl Default for UiConfig {
    fn default() -> Self {
        UiConfig {
            enabled: true,
            session_ttl: DEFAULT_UI_SESSION_TTL,
            max_sessions: DEFAULT_UI_MAX_SESSIONS,
            max_tails: DEFAULT_UI_MAX_TAILS,
            tail_buffer_bytes: DEFAULT_UI_TAIL_BUFFER_BYTES,
            tail_max_events_per_sec: DEFAULT_UI_TAIL_MAX_EVENTS_PER_SEC,
        }
    }
}
