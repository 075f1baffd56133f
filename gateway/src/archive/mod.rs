//! # Cold archive: every event, as NDJSON + zstd, in an object store
//!
//! The archive writer ([`writer`]) is a WAL consumer with its own
//! checkpoint, independent of the hot index: a slow or unreachable store
//! delays only the archive (the WAL keeps the data, within `wal.max_bytes`),
//! never acks or search.
//!
//! ## Object keys
//!
//! ```text
//! {prefix}/tenant={tenant}/type={type}/dt={YYYY-MM-DD}/hour={HH}/{start:020}-{end:020}-{writer}.ndjson.zst
//! logs/tenant=acme/type=web_logs/dt=2026-11-21/hour=09/00000000000001048576-00000000000002097152-01KAKX3M8Q6V2J9T4W5Y7Z0B1C.ndjson.zst
//! ```
//!
//! - `dt` and `hour` are the UTC day and hour the gateway *received* the
//!   events (as for hot partitions), so a replay of a time range lists only
//!   the hour prefixes it needs, and cold retention deletes whole days.
//! - `start-end` is the WAL range `[start, end)` the object was cut from.
//!   The writer cuts the log into *rounds*; a round's events are grouped by
//!   partition and each group becomes one object. Before uploading a round
//!   the writer records `{start, end}` durably (`archive-state.json`), so
//!   after a crash or an outage the same range is cut again into the same
//!   objects with the same keys: a retried upload overwrites, never
//!   duplicates.
//! - `writer` is an id (a ULID) the data directory's archive writer picks
//!   once and keeps in its state file: two gateways sharing a bucket, or
//!   one rebuilt with an empty data directory (its WAL starting at 0
//!   again), never write the same key.
//!
//! ## Object format
//!
//! zstd-compressed NDJSON: one stored event per line, byte for byte as
//! search returns it (`id`, `tenant`, `type`, `received_at`, `timestamp`,
//! promoted fields, `fields`). `zstd -d < object | jq .` reads it. Events
//! keep their `id`, so a consumer (replay) can drop duplicates.
//!
//! The object is a sequence of zstd frames (the format allows any number;
//! every zstd reader decompresses them as one stream). A WAL batch whose
//! body is compressed (`wal.compression`, batches of 2 KiB or more) and of
//! one log type is copied as the frame it already is: the writer neither
//! decompresses nor compresses it again, which was a sixth of the
//! gateway's CPU under load. Other events (small batches, batches filters
//! split across types) are collected and compressed into frames of their
//! own (level 3). Objects are about an eighth larger than one level-3
//! stream of the same events (`archive-bench`: 205 MB of events → 19.9
//! MB, was 17.6 MB), for a fourteenth of the CPU (see `docs/performance/`).
//!
//! ## Sizing
//!
//! A round ends when its events reach `archive.max_object_bytes`
//! (uncompressed, all partitions together: that bounds the writer's
//! memory) or when it has been open `archive.max_object_age`; objects are
//! at most that large and that old.

pub mod config;
pub mod retention;
pub mod store;
pub mod writer;

use time::OffsetDateTime;

/// The partition an event's object belongs to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartitionKey {
    pub tenant: String,
    pub log_type: String,
    /// UTC day and hour received.
    pub date: time::Date,
    pub hour: u8,
}

impl PartitionKey {
    pub fn new(tenant: &str, log_type: &str, received: OffsetDateTime) -> PartitionKey {
        let utc = received.to_offset(time::UtcOffset::UTC);
        PartitionKey {
            tenant: tenant.to_string(),
            log_type: log_type.to_string(),
            date: utc.date(),
            hour: utc.hour(),
        }
    }

    /// `{prefix}/tenant=…/type=…/dt=…/hour=…/`
    pub fn prefix(&self, prefix: &str) -> String {
        format!(
            "{}hour={:02}/",
            day_prefix(prefix, &self.tenant, &self.log_type, self.date),
            self.hour
        )
    }

    /// The key of the object holding this partition's events of WAL range
    /// `[start, end)` of `writer`.
    pub fn object_key(&self, prefix: &str, start: u64, end: u64, writer: &str) -> String {
        format!(
            "{}{start:020}-{end:020}-{writer}.ndjson.zst",
            self.prefix(prefix)
        )
    }
}

/// `{prefix}/tenant=…/type=…/dt=YYYY-MM-DD/`
pub fn day_prefix(prefix: &str, tenant: &str, log_type: &str, date: time::Date) -> String {
    format!(
        "{prefix}/tenant={tenant}/type={log_type}/dt={:04}-{:02}-{:02}/",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// `{prefix}/tenant=…/type=…/`
pub fn type_prefix(prefix: &str, tenant: &str, log_type: &str) -> String {
    format!("{prefix}/tenant={tenant}/type={log_type}/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_documented_layout() {
        let received = time::macros::datetime!(2026-11-21 09:59:59.9 +01:00);
        let key = PartitionKey::new("acme", "web_logs", received);
        assert_eq!(key.hour, 8);
        assert_eq!(
            key.object_key("logs", 1_048_576, 2_097_152, "01KAKX3M8Q6V2J9T4W5Y7Z0B1C"),
            "logs/tenant=acme/type=web_logs/dt=2026-11-21/hour=08/00000000000001048576-00000000000002097152-01KAKX3M8Q6V2J9T4W5Y7Z0B1C.ndjson.zst"
        );
    }
}
