//! Cold retention: whole days of a log type are deleted from the archive
//! once they are older than the type's retention (`archive.retention_by_type`,
//! else the tenant's `cold_retention`, else `archive.retention`), counted like the hot tier's from the end
//! of the day the events were received. The gateway enforces it itself
//! (test S3 servers, MinIO without lifecycle rules, local directories):
//! it walks `tenant=` → `type=` → `dt=` prefixes and deletes the objects
//! under expired days, every [`EVERY`].

use std::time::Duration;

use time::OffsetDateTime;

use super::config::ArchiveConfig;
use super::store::{ObjectStore, StoreError};
use crate::telemetry::Metrics;

/// How often retention runs.
pub const EVERY: Duration = Duration::from_secs(600);

/// True when every event of `day` is older than `retention` at `now`.
pub fn expired(day: time::Date, retention: Duration, now: OffsetDateTime) -> bool {
    let end_of_day = day
        .next_day()
        .map_or(OffsetDateTime::UNIX_EPOCH, |d| d.midnight().assume_utc());
    end_of_day + retention <= now
}

fn segment<'a>(dir: &'a str, name: &str) -> Option<&'a str> {
    dir.trim_end_matches('/')
        .rsplit('/')
        .next()?
        .strip_prefix(name)?
        .strip_prefix('=')
}

/// Deletes expired days; returns the number of objects deleted.
pub async fn enforce(
    store: &dyn ObjectStore,
    config: &ArchiveConfig,
    now: OffsetDateTime,
    metrics: &Metrics,
) -> Result<u64, StoreError> {
    let mut deleted = 0;
    let day_format = time::macros::format_description!("[year]-[month]-[day]");
    for tenant_dir in store.list_dirs(&format!("{}/", config.prefix)).await? {
        let Some(tenant) = segment(&tenant_dir, "tenant") else {
            continue;
        };
        for type_dir in store.list_dirs(&tenant_dir).await? {
            let Some(log_type) = segment(&type_dir, "type") else {
                continue;
            };
            let Some(retention) = config.retention_for(tenant, log_type) else {
                continue;
            };
            for day_dir in store.list_dirs(&type_dir).await? {
                let Some(day) =
                    segment(&day_dir, "dt").and_then(|d| time::Date::parse(d, day_format).ok())
                else {
                    continue;
                };
                if !expired(day, retention, now) {
                    continue;
                }
                let objects = store.list(&day_dir).await?;
                for o in &objects {
                    store.delete(&o.key).await?;
                }
                deleted += objects.len() as u64;
                metrics.archive_objects_deleted.inc_by(objects.len() as u64);
                tracing::info!(prefix = %day_dir, objects = objects.len(), "cold retention: day deleted");
            }
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_expires_retention_after_it_ends() {
        let day = time::macros::date!(2026 - 11 - 10);
        let week = Duration::from_secs(7 * 86_400);
        assert!(!expired(
            day,
            week,
            time::macros::datetime!(2026-11-17 23:59 UTC)
        ));
        assert!(expired(
            day,
            week,
            time::macros::datetime!(2026-11-18 00:00 UTC)
        ));
    }
}
