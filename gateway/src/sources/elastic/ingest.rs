//! `_bulk` and single documents → the pipeline → one answer per action.
//!
//! 1. Key (`ApiKey`, `Basic`, `Bearer`, `X-Logway-Key`) → tenant.
//! 2. Content type (406 as in Elasticsearch), encoding, body within limits.
//! 3. On the blocking pool: decompress, split into actions ([`bulk`]),
//!    each action's index → the tenant's route ([`Authenticated::route_index`]);
//!    actions of one route form one group, which becomes one WAL batch.
//!    Client `_id`s are claimed ([`Pipeline::claim_ids`]): one stored
//!    before answers `noop` (`index`) or 409 (`create`), one another
//!    request is storing answers 429. Each group is built (filters,
//!    events; bad documents become rejected events).
//! 4. Every group's bytes and events are checked against the rate limits
//!    before any is stored: a limit refuses the whole request (429 +
//!    `Retry-After`), so a client's retry resends nothing twice.
//! 5. The groups are appended together; the answer is sent once all are
//!    durable. A group the WAL refused answers its actions 429 (clients
//!    retry those items), unless every group failed: then the request
//!    gets the error (503 when the WAL is full).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::{HeaderMap, Request};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use time::OffsetDateTime;

use super::answer::{self, EsError, FilterPath, ItemAnswer};
use super::bulk::{self, Action, MAX_ID_BYTES, Op};
use crate::event;
use crate::pipeline::{
    Admission, Authenticated, Built, Claim, Claimed, Item, Meta, Outcome, Pipeline,
};
use crate::sources::http::body::{self, BodyKind, Encoding};
use crate::state::Core;
use crate::tenants::key::request_key;

/// What the request is.
pub enum Kind {
    /// `/_bulk`, `/{index}/_bulk`.
    Bulk { index: Option<String> },
    /// `/{index}/_doc[/{id}]`, `/{index}/_create/{id}`.
    Single {
        index: String,
        op: Op,
        id: Option<String>,
    },
}

/// Answers a `_bulk` request: 200 with one item per action (what its
/// `filter_path` asks for), or an error.
pub async fn bulk(core: &Arc<Core>, req: Request<Body>, index: Option<String>) -> Response {
    let start = Instant::now();
    let filter = req.uri().query().and_then(|q| {
        q.split('&')
            .find_map(|p| p.strip_prefix("filter_path="))
            .map(|v| {
                percent_encoding::percent_decode_str(v)
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .and_then(|v| FilterPath::parse(&v))
    });
    match run(core, req, Kind::Bulk { index }).await {
        Ok(items) => answer::bulk(&items, start.elapsed().as_millis() as u64, filter.as_ref()),
        Err(e) => e.into_response(),
    }
}

/// Answers a single document: 201, or its error.
pub async fn single(core: &Arc<Core>, req: Request<Body>, kind: Kind) -> Response {
    match run(core, req, kind).await {
        Ok(items) => answer::single(&items[0]),
        Err(e) => e.into_response(),
    }
}

/// One route's share of the request: one WAL batch.
struct Group<'a> {
    adm: Admission,
    /// The request's items for this route, with their line (borrowing the
    /// decoded body).
    items: Vec<(usize, Item<'a>)>,
    /// For each item, its action (index into the answers).
    actions: Vec<usize>,
    /// Client ids of items to claim: (position in `items`, id).
    ids: Vec<(usize, String)>,
    /// Bytes of its action and source lines.
    bytes: usize,
}

/// A group built, ready to be stored.
struct Ready {
    adm: Admission,
    built: Built,
    actions: Vec<usize>,
    claimed: Option<Claimed>,
    bytes: usize,
}

struct Prepared {
    answers: Vec<ItemAnswer>,
    groups: Vec<Ready>,
    /// The request is malformed: its lines are stored as rejected events,
    /// then this is the answer.
    malformed: Option<EsError>,
}

async fn run(core: &Arc<Core>, req: Request<Body>, kind: Kind) -> Result<Vec<ItemAnswer>, EsError> {
    let pipeline = &core.pipeline;
    let (parts, body) = req.into_parts();
    let key = es_key(&parts.headers)
        .or_else(|| request_key(&parts.headers, parts.uri.query()).map(str::to_string));
    let auth = pipeline.authenticate(&crate::sources::http::caller(&parts, key.as_deref()))?;
    check_content_type(&parts.headers)?;
    let encoding = Encoding::from_header(header(&parts.headers, "content-encoding"))?;
    let limits = pipeline.limits().clone();
    let timeout = core.config.server.request_timeout;
    let body = body::read(body, limits.max_body_bytes, timeout).await?;
    let worker = pipeline.clone();
    let prepared = tokio::task::spawn_blocking(move || {
        let decoded = body::decompress(body, encoding, limits.max_decompressed_bytes)
            .map_err(EsError::from)?;
        Ok::<_, EsError>(prepare(
            &worker,
            &auth,
            decoded,
            kind,
            limits.max_line_bytes,
        ))
    })
    .await
    .map_err(|e| EsError::new(500, "exception", format!("decoder task failed: {e}")))??;
    let Prepared {
        mut answers,
        groups,
        malformed,
    } = prepared;
    // Every limit before any append: a refusal stores nothing.
    for g in &groups {
        pipeline.received(&g.adm, g.bytes)?;
        if !g.built.events.is_empty() {
            pipeline.check_events(&g.adm, g.built.events.len())?;
        }
    }
    let stores = groups.into_iter().map(|mut g| {
        let outcomes = std::mem::take(&mut g.built.outcomes);
        async move {
            let stored = if g.built.events.is_empty() {
                Ok(())
            } else {
                pipeline
                    .store_checked(&g.adm, g.built, None, g.claimed)
                    .await
            };
            (g.actions, outcomes, stored)
        }
    });
    let results = futures_util::future::join_all(stores).await;
    if let Some(err) = malformed {
        if let Some((_, _, Err(e))) = results.into_iter().find(|r| r.2.is_err()) {
            return Err(e.into());
        }
        return Err(err);
    }
    let failed = results.iter().filter(|r| r.2.is_err()).count();
    if failed > 0 && failed == results.len() {
        let (_, _, err) = results.into_iter().next().expect("a failed group");
        return Err(err.expect_err("counted as failed").into());
    }
    for (actions, outcomes, stored) in results {
        for (k, outcome) in actions.into_iter().zip(outcomes) {
            let a = &mut answers[k];
            if a.failed() {
                continue;
            }
            match (&stored, outcome) {
                (Err(e), _) => a.fail(
                    429,
                    "es_rejected_execution_exception",
                    format!("not stored, retry: {e}"),
                ),
                (Ok(()), Outcome::Stored) => {}
                (Ok(()), Outcome::Dropped) => a.ok(200, "noop"),
                (Ok(()), Outcome::Rejected { reason }) => {
                    a.fail(400, "document_parsing_exception", reason)
                }
                (Ok(()), Outcome::DeadLetter { reason }) => a.fail(
                    400,
                    "filter_failed_exception",
                    format!("{reason} (stored as a dead letter)"),
                ),
            }
        }
    }
    Ok(answers)
}

/// Splits, routes, claims and builds (blocking).
fn prepare(
    pipeline: &Pipeline,
    auth: &Authenticated,
    decoded: Bytes,
    kind: Kind,
    max_line: usize,
) -> Prepared {
    let received = OffsetDateTime::now_utc();
    let (actions, url_index) = match kind {
        Kind::Bulk { index } => match bulk::parse(&decoded) {
            Ok(actions) => (actions, index),
            Err(m) => return malformed(pipeline, auth, &decoded, m, index, received),
        },
        Kind::Single { index, op, id } => {
            let action = Action {
                op,
                index: None,
                id,
                line: 1,
                source: Some((1, &decoded[..])),
            };
            (vec![action], Some(index))
        }
    };
    if actions.is_empty() {
        return Prepared {
            answers: Vec::new(),
            groups: Vec::new(),
            malformed: Some(EsError::new(
                400,
                "action_request_validation_exception",
                "Validation Failed: 1: no requests added;",
            )),
        };
    }
    let mut answers = Vec::with_capacity(actions.len());
    let mut groups: Vec<Group> = Vec::new();
    // Index name → (its name shared by the answers, its group or why none).
    let mut by_index: HashMap<String, (Arc<str>, Result<usize, EsError>)> = HashMap::new();
    let no_index: Arc<str> = "".into();
    for (k, a) in actions.into_iter().enumerate() {
        let index = a
            .index
            .or_else(|| url_index.as_deref().map(std::borrow::Cow::Borrowed));
        let group = index.map(|index| {
            if !by_index.contains_key(index.as_ref()) {
                let resolved = auth.route_index(&index).map_err(EsError::from).map(|adm| {
                    match groups.iter().position(|g| g.adm.path == adm.path) {
                        Some(i) => i,
                        None => {
                            groups.push(Group {
                                adm,
                                items: Vec::new(),
                                actions: Vec::new(),
                                ids: Vec::new(),
                                bytes: 0,
                            });
                            groups.len() - 1
                        }
                    }
                });
                by_index.insert(index.to_string(), (index.as_ref().into(), resolved));
            }
            let (name, resolved) = &by_index[index.as_ref()];
            let resolved = match resolved {
                Ok(i) => Ok(*i),
                Err(e) => Err((e.status, e.kind, e.reason.clone())),
            };
            (name.clone(), resolved)
        });
        let name = group
            .as_ref()
            .map_or_else(|| no_index.clone(), |(n, _)| n.clone());
        let group = group.map(|(_, g)| g);
        let mut ans = ItemAnswer::new(a.op, name, a.id.clone());
        let (g, source) = match (a.op, group, a.source) {
            (Op::Delete, _, _) => {
                ans.fail(
                    400,
                    "illegal_argument_exception",
                    "Logway stores logs append-only: delete is not supported",
                );
                answers.push(ans);
                continue;
            }
            (_, None, _) => {
                ans.fail(
                    400,
                    "action_request_validation_exception",
                    "Validation Failed: 1: index is missing;",
                );
                answers.push(ans);
                continue;
            }
            (_, Some(Err((status, kind, reason))), _) => {
                let kind = match status {
                    404 => "index_not_found_exception",
                    400 => "invalid_index_name_exception",
                    _ => kind,
                };
                ans.fail(status, kind, reason);
                answers.push(ans);
                continue;
            }
            (_, Some(Ok(_)), None) => {
                ans.fail(
                    400,
                    "action_request_validation_exception",
                    "Validation Failed: 1: source is missing;",
                );
                answers.push(ans);
                continue;
            }
            (_, Some(Ok(g)), Some(source)) => (g, source),
        };
        let (line, raw) = source;
        let group = &mut groups[g];
        group.bytes += raw.len() + 1;
        let bad = |kind: &'static str, reason: String| Item::Bad {
            raw: std::borrow::Cow::Borrowed(raw),
            reason,
            kind,
        };
        let item = if a.op == Op::Update {
            let reason = "Logway stores logs append-only: update is not supported (its body is kept as a rejected event)";
            ans.fail(400, "illegal_argument_exception", reason);
            bad("es_update", reason.to_string())
        } else if a.id.as_ref().is_some_and(|id| id.len() > MAX_ID_BYTES) {
            let reason = format!("id is too long, must be no longer than {MAX_ID_BYTES} bytes");
            ans.fail(400, "illegal_argument_exception", reason.clone());
            bad("es_id_too_long", reason)
        } else {
            match body::line_item(raw, BodyKind::Ndjson, max_line) {
                // A client's id is claimed only for a document that is
                // one: parsed now (the others, in the pipeline).
                Item::Json(text) if a.id.is_some() => Item::from_json_text(text),
                item => item,
            }
        };
        if let (Item::Object(..), Some(id)) = (&item, &a.id) {
            group.ids.push((group.items.len(), id.clone()));
        }
        group.items.push((line, item));
        group.actions.push(k);
        answers.push(ans);
    }
    let groups = groups
        .into_iter()
        .map(|g| build(pipeline, g, &mut answers, received))
        .collect();
    Prepared {
        answers,
        groups,
        malformed: None,
    }
}

/// Claims a group's ids, answers the ones already stored or in flight,
/// and builds the rest; an object without an id gets a new one, which its
/// answer reports.
fn build(
    pipeline: &Pipeline,
    g: Group<'_>,
    answers: &mut [ItemAnswer],
    received: OffsetDateTime,
) -> Ready {
    let c = pipeline.claim_items(&g.adm, g.items, g.ids);
    for (pos, id, claim) in c.refused {
        let a = &mut answers[g.actions[pos]];
        match (claim, a.op) {
            (Claim::Seen, Op::Create) => a.fail(
                409,
                "version_conflict_engine_exception",
                format!("[{id}]: version conflict, document already exists (current version [1])"),
            ),
            (Claim::InFlight, _) => a.fail(
                429,
                "es_rejected_execution_exception",
                format!("[{id}]: another request is storing a document with this id; retry"),
            ),
            _ => a.ok(200, "noop"),
        }
    }
    let mut ids = c.ids;
    let actions: Vec<usize> = c.positions.iter().map(|&pos| g.actions[pos]).collect();
    for ((line, item), &k) in c.items.iter().zip(&actions) {
        let a = &mut answers[k];
        if a.id.is_none() && matches!(item, Item::Object(..) | Item::Json(_)) {
            let id = event::new_event_id(received);
            a.id = Some(id.clone());
            ids.push((*line, id));
        }
    }
    ids.sort_unstable_by_key(|(line, _)| *line);
    let meta = Meta {
        received,
        ..Meta::now()
    };
    let built = pipeline.build_with_ids(&g.adm, c.items, &meta, ids);
    Ready {
        adm: g.adm,
        built,
        actions,
        claimed: Some(c.claimed),
        bytes: g.bytes,
    }
}

/// A malformed request: its lines are kept as rejected events (of the
/// URL's index, else of the index `elasticsearch`), then it is refused.
fn malformed(
    pipeline: &Pipeline,
    auth: &Authenticated,
    decoded: &Bytes,
    m: bulk::Malformed,
    url_index: Option<String>,
    received: OffsetDateTime,
) -> Prepared {
    let reason = format!("{} (line {})", m.reason, m.line);
    let err = EsError::bad_request(reason.clone());
    let index = url_index.unwrap_or_else(|| "elasticsearch".to_string());
    let Ok(adm) = auth.route_index(&index) else {
        return Prepared {
            answers: Vec::new(),
            groups: Vec::new(),
            malformed: Some(err),
        };
    };
    let kept = format!("not stored as a document: the bulk request is malformed: {reason}");
    let mut bytes = 0;
    let items = bulk::lines(decoded)
        .filter(|(_, l)| !l.iter().all(u8::is_ascii_whitespace))
        .map(|(n, l)| {
            bytes += l.len() + 1;
            (
                n,
                Item::Bad {
                    raw: std::borrow::Cow::Borrowed(l),
                    reason: kept.clone(),
                    kind: "es_malformed",
                },
            )
        })
        .collect();
    let meta = Meta {
        received,
        ..Meta::now()
    };
    let built = pipeline.build(&adm, items, &meta);
    Prepared {
        answers: Vec::new(),
        groups: vec![Ready {
            adm,
            built,
            actions: Vec::new(),
            claimed: None,
            bytes,
        }],
        malformed: Some(err),
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The key of `Authorization: ApiKey base64(id:key)` (the part after the
/// colon; a value that does not decode is taken as the key) or `Basic
/// base64(user:key)` (the password; the user name is not checked).
pub fn es_key(headers: &HeaderMap) -> Option<String> {
    let value = header(headers, "authorization")?.trim();
    let (scheme, credentials) = value.split_once(' ')?;
    let credentials = credentials.trim();
    let decoded = || {
        base64::engine::general_purpose::STANDARD
            .decode(credentials)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
    };
    if scheme.eq_ignore_ascii_case("apikey") {
        return Some(match decoded() {
            Some(text) => match text.split_once(':') {
                Some((_, key)) => key.to_string(),
                None => text,
            },
            None => credentials.to_string(),
        });
    }
    crate::tenants::key::basic_password(headers)
}

/// What Elasticsearch accepts: JSON and NDJSON in their plain and
/// versioned (`application/vnd.elasticsearch+x-ndjson;
/// compatible-with=8`) forms, or none; else 406 as Elasticsearch answers.
fn check_content_type(headers: &HeaderMap) -> Result<(), EsError> {
    let Some(value) = header(headers, "content-type") else {
        return Ok(());
    };
    let accepted = matches!(
        body::mime(value).as_str(),
        "" | "application/json"
            | "application/x-ndjson"
            | "application/vnd.elasticsearch+json"
            | "application/vnd.elasticsearch+x-ndjson"
    );
    if accepted {
        return Ok(());
    }
    Err(EsError::new(
        406,
        "media_type_header_exception",
        format!(
            "Content-Type header [{value}] is not supported; send application/json or application/x-ndjson"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn auth(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("authorization", HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn keys_come_from_api_keys_and_basic_passwords() {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let key = |v: &str| es_key(&auth(v));
        assert_eq!(
            key(&format!("ApiKey {}", b64("logway:k-123456"))).as_deref(),
            Some("k-123456")
        );
        assert_eq!(
            key(&format!("ApiKey {}", b64("k-123456"))).as_deref(),
            Some("k-123456")
        );
        assert_eq!(key("ApiKey not*base64").as_deref(), Some("not*base64"));
        assert_eq!(
            key(&format!("Basic {}", b64("acme:k-123456"))).as_deref(),
            Some("k-123456")
        );
        assert_eq!(key("Bearer k-123456"), None, "Bearer is request_key's");
    }
}
