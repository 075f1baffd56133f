//! What the UI's admin pages show, read-only: `GET /api/v1/overview`
//! (ingest per log type from the gateway's own metrics, WAL size, index
//! and archive lag, the archive's last error) and `GET /api/v1/config`
//! (the tenant's routes, limits and the listeners; never a key).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use serde_json::{Value, json};

use super::admin_tenant;
use crate::error::ApiError;
use crate::state::AppState;

/// The rejection reason of events a filter failed on (dead letters).
const DEAD_LETTER_REASON: &str = "filter_failed";

/// Per log type: (events received, bytes received, rejected by reason).
type PerType = BTreeMap<String, (f64, f64, BTreeMap<String, f64>)>;

/// The last overview each tenant asked for: rates are the change since.
static LAST: Mutex<Option<HashMap<String, Sampled>>> = Mutex::new(None);

/// When a tenant's overview was read, and its events received per type.
type Sampled = (Instant, BTreeMap<String, f64>);

fn label<'a>(labels: &'a [(String, String)], name: &str) -> Option<&'a str> {
    labels
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

pub async fn overview(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<axum::Json<Value>, ApiError> {
    let core = state.core()?;
    let tenant = admin_tenant(core, &headers, uri.query())?;
    let mut per_type = PerType::new();
    let mut gauges: HashMap<String, f64> = HashMap::new();
    for (name, labels, value) in core.metrics.samples() {
        if labels.is_empty() {
            gauges.insert(name, value);
            continue;
        }
        if label(&labels, "tenant") != Some(tenant.as_str()) {
            continue;
        }
        let Some(t) = label(&labels, "type") else {
            continue;
        };
        let entry = per_type.entry(t.to_string()).or_default();
        match name.as_str() {
            "logway_events_received_total" => entry.0 += value,
            "logway_bytes_received_total" => entry.1 += value,
            "logway_events_rejected_total" => {
                let reason = label(&labels, "reason").unwrap_or("").to_string();
                *entry.2.entry(reason).or_default() += value;
            }
            _ => {}
        }
    }
    let now = Instant::now();
    let received: BTreeMap<String, f64> = per_type.iter().map(|(t, v)| (t.clone(), v.0)).collect();
    let before = {
        let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
        last.get_or_insert_with(HashMap::new)
            .insert(tenant.clone(), (now, received.clone()))
    };
    let types: Vec<Value> = per_type
        .into_iter()
        .map(|(t, (events, bytes, rejected))| {
            let rate = before.as_ref().and_then(|(at, counts)| {
                let secs = now.duration_since(*at).as_secs_f64();
                (secs >= 0.5).then(|| (events - counts.get(&t).copied().unwrap_or(0.0)) / secs)
            });
            // Counters are whole numbers; the exposition prints them as floats.
            let count = |x: f64| x.max(0.0).round() as u64;
            let dead = rejected.get(DEAD_LETTER_REASON).copied().map_or(0, count);
            let by_reason: BTreeMap<&String, u64> =
                rejected.iter().map(|(r, n)| (r, count(*n))).collect();
            let rejected: u64 = by_reason
                .iter()
                .filter(|(r, _)| r.as_str() != DEAD_LETTER_REASON)
                .map(|(_, n)| n)
                .sum();
            json!({
                "type": t,
                "events_per_s": rate,
                "received": count(events),
                "bytes": count(bytes),
                "rejected": rejected,
                "dead_lettered": dead,
                "rejected_by_reason": by_reason,
            })
        })
        .collect();
    let gauge = |n: &str| gauges.get(n).copied();
    let archive_error = core.archive.as_ref().and_then(|a| {
        a.status
            .last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    });
    Ok(axum::Json(json!({
        "types": types,
        "wal": {"bytes": core.wal.disk_bytes(), "max_bytes": core.config.wal.max_bytes},
        "index": {"lag_bytes": gauge("logway_hot_index_lag_bytes")},
        "archive": {
            "enabled": core.archive.is_some(),
            "lag_bytes": gauge("logway_archive_lag_bytes"),
            "last_error": archive_error,
        },
        "live_tails": core.tail.open_tails(),
    })))
}

pub async fn config(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<axum::Json<Value>, ApiError> {
    let core = state.core()?;
    let tenant = admin_tenant(core, &headers, uri.query())?;
    let c = &core.config;
    let Some(t) = c.tenants.iter().find(|t| t.name == tenant) else {
        return Err(ApiError::NotFound(format!("no tenant `{tenant}`")));
    };
    let routes: Vec<Value> = t
        .routes
        .iter()
        .map(|r| {
            json!({
                "path": r.path,
                "type": r.log_type,
                "filters": r.filters.iter().map(|f| &f.name).collect::<Vec<_>>(),
                "rate_limit": r.rate_limit,
            })
        })
        .collect();
    let mut listeners = vec![json!({
        "kind": "http", "addr": c.server.http_addr.to_string(), "tls": c.server.tls.is_some(),
    })];
    if let Some(addr) = c.elasticsearch.addr {
        listeners.push(json!({"kind": "elasticsearch", "addr": addr.to_string(), "tls": c.elasticsearch.tls.is_some()}));
    }
    for l in c.syslog.iter().filter(|l| l.tenant == tenant) {
        listeners.push(json!({"kind": "syslog", "addr": l.addr.to_string(), "type": l.log_type, "tls": l.tls.is_some()}));
    }
    for l in c.beats.iter().filter(|l| l.tenant == tenant) {
        listeners.push(json!({"kind": "beats", "addr": l.addr.to_string(), "type": l.log_type, "tls": l.tls.is_some()}));
    }
    Ok(axum::Json(json!({
        "tenant": {
            "name": t.name,
            "generic_route": t.generic_route,
            "routes": routes,
            "rate_limit": t.rate_limit.as_ref().or(c.rate_limits.tenant.as_ref()),
            "client_rate_limit": t.client_rate_limit.as_ref().or(c.rate_limits.client.as_ref()),
            "ingest_keys": t.ingest_keys.len(),
            "admin_keys": t.admin_keys.len(),
            "cors_origins": t.cors_origins,
        },
        "limits": {
            "max_body_bytes": c.limits.max_body_bytes,
            "max_line_bytes": c.limits.max_line_bytes,
            "max_decompressed_bytes": c.limits.max_decompressed_bytes,
            "max_fields_per_event": c.limits.max_fields_per_event,
        },
        "listeners": listeners,
    })))
}
