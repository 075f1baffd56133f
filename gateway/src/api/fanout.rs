//! The searcher role (cluster mode): a search or histogram asks every node
//! which topic partitions it indexes (`GET /api/v1/cluster/partitions`),
//! picks one node per partition (the one indexed furthest, this node on a
//! tie), has each node search its share (`partitions=`, which a node
//! answers from its own index without asking further), and merges:
//! hits newest first across nodes, totals and buckets summed. A partition
//! no node answered for is named in `missing_partitions` with
//! `partial: true`, or the search is refused with 503 when
//! `cluster.strict_search` (`docs/cluster.md`, "Searcher").
//!
//! A peer is asked with the caller's own admin key: every node has the
//! same tenants, so a node answers a peer as it answers the caller.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use serde_json::{Value, json};

use super::search::local_buckets;
use crate::cluster::Role;
use crate::error::ApiError;
use crate::event::format_time;
use crate::hot::search::{self as engine, Cursor, SearchRequest};
use crate::state::Core;

/// Whether a request is fanned out: cluster mode with the searcher role,
/// and not already one node's share.
pub fn fans_out(core: &Core, req: &SearchRequest) -> bool {
    let c = &core.config.cluster;
    c.enabled && c.roles.contains(&Role::Searcher) && req.partitions.is_none()
}

/// The topic partitions this node indexes now, each with its indexed
/// offset.
fn indexed(core: &Core) -> BTreeMap<u32, u64> {
    core.hot
        .owned()
        .unwrap_or_default()
        .into_iter()
        .map(|p| (p, core.hot.kafka_checkpoint(p).unwrap_or(0)))
        .collect()
}

/// `GET /api/v1/cluster/partitions`: this node, the topic partitions it
/// indexes now, each with its indexed offset, and whether it runs the
/// singleton jobs.
pub fn owned(core: &Core) -> Value {
    json!({
        "node": core.node_id,
        "partitions": indexed(core),
        "singletons": core.leads_singletons(),
    })
}

/// Who searches which partitions.
struct Plan {
    /// `None`: this node.
    shares: Vec<(Option<String>, BTreeSet<u32>)>,
    missing: BTreeSet<u32>,
}

fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(reqwest::Client::new)
}

/// The peers' base URLs (`dns:name:port` resolved to every address).
async fn peer_urls(core: &Core) -> Vec<String> {
    let mut out = Vec::new();
    for peer in &core.config.cluster.peers {
        match peer.strip_prefix("dns:") {
            None => out.push(peer.trim_end_matches('/').to_string()),
            Some(name) => match tokio::net::lookup_host(name).await {
                Ok(addrs) => out.extend(addrs.map(|a| format!("http://{a}"))),
                Err(e) => tracing::warn!(peer, error = %e, "cannot resolve the peers"),
            },
        }
    }
    out
}

/// `GET {base}{path}?{query}` with the caller's key, within
/// `cluster.peer_timeout`; a peer that does not answer (in time, with a
/// 2xx) is logged and `None`.
async fn ask(
    core: &Core,
    base: &str,
    path: &str,
    key: &str,
    query: &[(&str, String)],
) -> Option<Value> {
    let answer = get(core, base, path, key, query).await;
    if let Err(e) = &answer {
        tracing::warn!(peer = %base, path, error = %e, "peer did not answer");
    }
    answer.ok()
}

async fn get(
    core: &Core,
    base: &str,
    path: &str,
    key: &str,
    query: &[(&str, String)],
) -> Result<Value, String> {
    let response = client()
        .get(format!("{base}{path}"))
        .bearer_auth(key)
        .query(query)
        .timeout(core.config.cluster.peer_timeout)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let body: Value = response.json().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("{status}: {body}"));
    }
    Ok(body)
}

async fn plan(core: &Core, key: &str) -> Plan {
    // Partition → (indexed offset, who); this node first, so it wins ties.
    let mut claims: BTreeMap<u32, (u64, Option<String>)> = indexed(core)
        .into_iter()
        .map(|(p, at)| (p, (at, None)))
        .collect();
    let urls = peer_urls(core).await;
    let asked = futures_util::future::join_all(
        urls.iter()
            .map(|url| ask(core, url, "/api/v1/cluster/partitions", key, &[])),
    )
    .await;
    for (url, answer) in urls.iter().zip(asked) {
        let Some(answer) = answer else { continue };
        if answer["node"].as_str() == Some(core.node_id.as_str()) {
            continue; // this node, by its address
        }
        let Some(parts) = answer["partitions"].as_object() else {
            continue;
        };
        for (p, at) in parts {
            let (Ok(p), Some(at)) = (p.parse::<u32>(), at.as_u64()) else {
                continue;
            };
            if claims.get(&p).is_none_or(|(best, _)| at > *best) {
                claims.insert(p, (at, Some(url.clone())));
            }
        }
    }
    let mut shares: BTreeMap<Option<String>, BTreeSet<u32>> = BTreeMap::new();
    for (p, (_, who)) in claims {
        shares.entry(who).or_default().insert(p);
    }
    let all = 0..core.config.cluster.partitions.max(0) as u32;
    Plan {
        missing: all
            .filter(|p| !shares.values().any(|s| s.contains(p)))
            .collect(),
        shares: shares.into_iter().collect(),
    }
}

/// What every node's share is asked with: the caller's search, with times
/// made absolute here (peers' clocks differ by a little).
fn peer_query(req: &SearchRequest, partitions: &BTreeSet<u32>) -> Vec<(&'static str, String)> {
    let mut q = vec![("q", req.query.clone())];
    if let Some(t) = req.from {
        q.push(("from", format_time(t)));
    }
    if let Some(t) = req.to {
        q.push(("to", format_time(t)));
    }
    if let Some(t) = &req.log_type {
        q.push(("type", t.clone()));
    }
    let list: Vec<String> = partitions.iter().map(u32::to_string).collect();
    q.push(("partitions", list.join(",")));
    q
}

/// The coverage fields of an answer; with `strict_search`, a missing
/// partition refuses the search.
fn coverage(core: &Core, missing: &BTreeSet<u32>) -> Result<Value, ApiError> {
    if !missing.is_empty() && core.config.cluster.strict_search {
        return Err(ApiError::Unavailable(format!(
            "no node answered for topic partitions {missing:?} (cluster.strict_search)"
        )));
    }
    Ok(json!({"partial": !missing.is_empty(), "missing_partitions": missing}))
}

/// The hit's `timestamp`, in Unix ms (`i64::MIN` if it has none).
pub(super) fn hit_ms(hit: &Value) -> i64 {
    hit["timestamp"]
        .as_str()
        .and_then(crate::event::parse_time_text)
        .map_or(i64::MIN, engine::unix_ms)
}

/// A search over every partition of the cluster.
pub async fn search(
    core: &Arc<Core>,
    tenant: &str,
    key: &str,
    req: SearchRequest,
) -> Result<Value, ApiError> {
    let start = Instant::now();
    let plan = plan(core, key).await;
    let mut missing = plan.missing;
    // Each share is asked for the page's hits and the cursor's ties (as
    // many as a node gives: a share that fills it may have more, and the
    // page then ends early with a cursor).
    let skip = req.after.map_or(0, |c| c.skip);
    let mut share_req = req.clone();
    share_req.limit = (req.limit + skip).min(core.config.search.max_limit);
    let share_limit = share_req.limit;
    share_req.after = req.after.map(|c| Cursor {
        timestamp_ms: c.timestamp_ms,
        skip: 0,
    });
    let asked = plan.shares.iter().map(|(who, parts)| {
        let mut r = share_req.clone();
        r.partitions = Some(parts.clone());
        async move {
            match who {
                None => {
                    let hot = core.hot.clone();
                    let tenant = tenant.to_string();
                    let result =
                        super::search::blocking(move || engine::search(&hot, &tenant, &r)).await?;
                    let hits = result
                        .hits
                        .iter()
                        .map(|h| serde_json::from_str(h.get()).unwrap_or(Value::Null))
                        .collect::<Vec<Value>>();
                    Ok::<_, ApiError>(Some((result.total as u64, hits)))
                }
                Some(url) => {
                    let mut q = peer_query(&r, parts);
                    q.push(("limit", r.limit.to_string()));
                    if let Some(c) = r.after {
                        q.push(("search_after", c.encode()));
                    }
                    Ok(ask(core, url, "/api/v1/search", key, &q).await.map(|v| {
                        (
                            v["total"].as_u64().unwrap_or(0),
                            v["hits"].as_array().cloned().unwrap_or_default(),
                        )
                    }))
                }
            }
        }
    });
    let answers = futures_util::future::join_all(asked).await;
    let mut total = 0;
    let mut more = false;
    // (timestamp, share, position, hit): newest first, ties in a fixed order.
    let mut candidates = Vec::new();
    for (share, ((_, parts), answer)) in plan.shares.iter().zip(answers).enumerate() {
        match answer? {
            Some((n, hits)) => {
                total += n;
                more |= share_limit < req.limit + skip && hits.len() == share_limit;
                candidates.extend(
                    hits.into_iter()
                        .enumerate()
                        .map(|(i, h)| (hit_ms(&h), share, i, h)),
                );
            }
            None => missing.extend(parts),
        }
    }
    candidates.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let next = engine::page(&mut candidates, |c| c.0, &req, more).map(|c| c.encode());
    let mut out = coverage(core, &missing)?;
    out["total"] = json!(total);
    out["took_ms"] = json!(start.elapsed().as_millis() as u64);
    out["hits"] = Value::Array(candidates.into_iter().map(|c| c.3).collect());
    out["next"] = json!(next);
    Ok(out)
}

/// A histogram over every partition of the cluster (`req.from`/`to` set).
pub async fn histogram(
    core: &Arc<Core>,
    tenant: &str,
    key: &str,
    req: SearchRequest,
    interval_ms: i64,
    by_level: bool,
) -> Result<Value, ApiError> {
    let plan = plan(core, key).await;
    let mut missing = plan.missing;
    let asked = plan.shares.iter().map(|(who, parts)| {
        let mut r = req.clone();
        r.partitions = Some(parts.clone());
        async move {
            match who {
                None => local_buckets(core, tenant, r, interval_ms, by_level)
                    .await
                    .map(Some),
                Some(url) => {
                    let mut q = peer_query(&r, parts);
                    q.push(("interval", format!("{interval_ms}ms")));
                    if by_level {
                        q.push(("by", "level".into()));
                    }
                    Ok(ask(core, url, "/api/v1/histogram", key, &q)
                        .await
                        .map(|v| v["buckets"].as_array().cloned().unwrap_or_default()))
                }
            }
        }
    });
    let answers = futures_util::future::join_all(asked).await;
    // Bucket start (Unix ms) → (its text, count, level → count).
    let mut merged: BTreeMap<i64, (String, u64, BTreeMap<String, u64>)> = BTreeMap::new();
    for ((_, parts), answer) in plan.shares.iter().zip(answers) {
        let Some(buckets) = answer? else {
            missing.extend(parts);
            continue;
        };
        for b in buckets {
            let Some(start) = b["start"].as_str() else {
                continue;
            };
            let Some(at) = crate::event::parse_time_text(start) else {
                continue;
            };
            let entry = merged
                .entry(engine::unix_ms(at))
                .or_insert_with(|| (start.to_string(), 0, BTreeMap::new()));
            entry.1 += b["count"].as_u64().unwrap_or(0);
            for (level, n) in b["by"].as_object().into_iter().flatten() {
                *entry.2.entry(level.clone()).or_default() += n.as_u64().unwrap_or(0);
            }
        }
    }
    let buckets: Vec<Value> = merged
        .into_values()
        .map(|(start, count, levels)| {
            let mut b = json!({"start": start, "count": count});
            if by_level {
                b["by"] = json!(levels);
            }
            b
        })
        .collect();
    let mut out = coverage(core, &missing)?;
    out["interval_ms"] = json!(interval_ms);
    out["buckets"] = json!(buckets);
    Ok(out)
}
