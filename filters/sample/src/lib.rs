//! Keeps 1 in N events, chosen by a stable hash of a field: for noisy
//! debug logs. The same field value always gets the same verdict, on every
//! instance and after every restart, so all events of one request are kept
//! or dropped together.
//!
//! Config:
//!
//! - `rate`: N, an integer ≥ 1 (default 10; 1 keeps everything);
//! - `field`: dot path of the value hashed (default `request_id`). Text
//!   events, and JSON events where the field is missing, empty, null, an
//!   object or an array, are hashed on their raw bytes. A number is hashed
//!   as its JSON text, so `42` and `"42"` share a verdict;
//! - `levels`: optional comma list; when set, only events whose promoted
//!   level is one of them (ignoring ASCII case) are sampled, others kept;
//! - `types`: optional comma list of log types sampling applies to; events
//!   of other types are kept.
//!
//! Answers `Keep` or `Drop`; sets no field.
//!
//! The hash is 64-bit FNV-1a finished with MurmurHash3's `fmix64` (FNV-1a
//! alone mixes its last bytes poorly, and ids often differ only there); an
//! event is kept when the hash falls in the lowest 1/N of the 64-bit range.
//! Both are written out here and pinned by tests: changing them would change
//! which requests are kept.

use std::fmt::Write as _;

use logway_filter_sdk::{BatchContext, Config, Event, EventFormat, Filter, Verdict, export_filter};
use serde_json::{Map, Value as Json};

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// 64-bit FNV-1a, fed piecewise (also through `write!`, so a number is
/// hashed as its text without a `String`).
#[derive(Debug, Clone, Copy)]
pub struct StableHasher(u64);

impl Default for StableHasher {
    fn default() -> Self {
        StableHasher(FNV_OFFSET)
    }
}

impl StableHasher {
    pub fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(FNV_PRIME);
        }
    }

    /// The plain FNV-1a value.
    pub fn fnv1a(&self) -> u64 {
        self.0
    }

    /// The FNV-1a value mixed by `fmix64`, spread over all 64 bits.
    pub fn finish(&self) -> u64 {
        fmix64(self.0)
    }
}

impl std::fmt::Write for StableHasher {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.update(s.as_bytes());
        Ok(())
    }
}

/// MurmurHash3's 64-bit finalizer.
pub fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h
}

/// The stable hash of `bytes`.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut hasher = StableHasher::default();
    hasher.update(bytes);
    hasher.finish()
}

/// Whether a hash is kept at 1 in `rate`: it falls in the lowest `1/rate`
/// of the range (multiply-shift, so no modulo bias and the high bits, the
/// best mixed, decide).
pub fn keeps(hash: u64, rate: u64) -> bool {
    (u128::from(hash) * u128::from(rate)) >> 64 == 0
}

/// The value at a dot path of a JSON object.
fn lookup<'a>(obj: &'a Map<String, Json>, path: &str) -> Option<&'a Json> {
    let mut parts = path.split('.');
    let mut value = obj.get(parts.next()?)?;
    for part in parts {
        value = value.as_object()?.get(part)?;
    }
    Some(value)
}

/// Feeds a field value to the hasher; false when it cannot key the event.
fn hash_value(value: &Json, hasher: &mut StableHasher) -> bool {
    match value {
        Json::String(s) if !s.is_empty() => hasher.update(s.as_bytes()),
        // Writing to the hasher cannot fail.
        Json::Number(n) => {
            let _ = write!(hasher, "{n}");
        }
        Json::Bool(b) => hasher.update(if *b { b"true" } else { b"false" }),
        _ => return false,
    }
    true
}

/// The filter's settings.
pub struct Sample {
    rate: u64,
    field: String,
    /// Lowercase; empty when every level is sampled.
    levels: Vec<String>,
    /// Empty when every log type is sampled.
    types: Vec<String>,
}

impl Sample {
    /// Whether sampling applies to a batch of this log type.
    fn applies_to_type(&self, log_type: &str) -> bool {
        self.types.is_empty() || self.types.iter().any(|t| t == log_type)
    }

    /// Whether sampling applies to an event of this promoted level.
    fn applies_to_level(&self, level: Option<&str>) -> bool {
        self.levels.is_empty()
            || level.is_some_and(|l| self.levels.iter().any(|want| want.eq_ignore_ascii_case(l)))
    }

    /// The hash an event is sampled by: of its field, else of its raw
    /// bytes.
    pub fn event_hash(&self, event: &Event) -> u64 {
        let mut hasher = StableHasher::default();
        let keyed = matches!(event.format, EventFormat::Json)
            && event
                .json()
                .and_then(|obj| lookup(&obj, &self.field).map(|v| hash_value(v, &mut hasher)))
                .unwrap_or(false);
        if !keyed {
            hasher = StableHasher::default();
            hasher.update(&event.raw);
        }
        hasher.finish()
    }

    /// The verdict for one event of a batch sampling applies to.
    fn decide(&self, event: &Event) -> Verdict {
        // Checked before any parsing: both are cheap.
        if self.rate == 1 || !self.applies_to_level(event.promoted.level.as_deref()) {
            return Verdict::Keep;
        }
        if keeps(self.event_hash(event), self.rate) {
            Verdict::Keep
        } else {
            Verdict::Drop
        }
    }
}

impl Filter for Sample {
    fn new(config: &Config) -> Result<Self, String> {
        let rate: u64 = config.parse_or("rate", 10)?;
        if rate == 0 {
            return Err("config `rate`: must be an integer ≥ 1, got `0`".into());
        }
        let field = config
            .get("field")
            .map_or("request_id", str::trim)
            .to_string();
        if field.split('.').any(str::is_empty) {
            return Err(format!("config `field`: `{field}` is not a dot path"));
        }
        Ok(Sample {
            rate,
            field,
            levels: config
                .list("levels")
                .into_iter()
                .map(|l| l.to_ascii_lowercase())
                .collect(),
            types: config.list("types"),
        })
    }

    fn process(&mut self, ctx: &BatchContext, event: &Event) -> Verdict {
        if !self.applies_to_type(&ctx.log_type) {
            return Verdict::Keep;
        }
        self.decide(event)
    }

    /// The log type is the batch's: checked once.
    fn process_batch(&mut self, ctx: &BatchContext, events: &[Event]) -> Vec<Verdict> {
        if !self.applies_to_type(&ctx.log_type) {
            return events.iter().map(|_| Verdict::Keep).collect();
        }
        events.iter().map(|event| self.decide(event)).collect()
    }
}

export_filter!(Sample);

#[cfg(test)]
mod tests;
