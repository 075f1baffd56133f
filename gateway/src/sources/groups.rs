//! A request whose items go to several log types (OTLP records of several
//! services, Loki streams of several jobs, …): one group per route, each
//! one WAL batch, all checked against the rate limits before any is
//! stored, all durable before the answer.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::request::Parts;
use bytes::Bytes;

use crate::error::ApiError;
use crate::pipeline::{Admission, Authenticated, Built, Error, Item, Meta, Outcome, Pipeline};
use crate::sources::http::body::{self, Encoding};
use crate::state::Core;

/// How a request's body reaches a source's `prepare`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Decode {
    /// Decompressed as its `Content-Encoding` says.
    ByHeader,
    /// As sent: the source decompresses its items itself (GELF tells zlib
    /// from gzip by each message's first bytes, whatever the header says).
    AsSent,
}

/// What a compat HTTP source does with a request once it has its key:
/// the tenant, the body within `limits.max_body_bytes`, then on the
/// blocking pool the body decompressed (`decode`) and handed to
/// `prepare`, which groups its items (and may name an error to answer
/// once they are stored, for a request that was partly unusable), the
/// groups built; then every group stored. Returns what was stored and
/// `prepare`'s error.
pub async fn ingest<E, F>(
    core: &Arc<Core>,
    parts: &Parts,
    body: Body,
    key: Option<&str>,
    decode: Decode,
    prepare: F,
) -> Result<(Stored, Option<E>), E>
where
    E: From<ApiError> + From<Error> + Send + 'static,
    F: for<'a> FnOnce(&Authenticated, &'a Bytes) -> Result<(Groups<'a>, Option<E>), E>
        + Send
        + 'static,
{
    let pipeline = &core.pipeline;
    let auth = pipeline.authenticate(&crate::sources::http::caller(parts, key))?;
    let encoding = match decode {
        Decode::ByHeader => Some(Encoding::from_header(
            parts
                .headers
                .get("content-encoding")
                .and_then(|v| v.to_str().ok()),
        )?),
        Decode::AsSent => None,
    };
    let limits = pipeline.limits().clone();
    let body = body::read(
        body,
        limits.max_body_bytes,
        core.config.server.request_timeout,
    )
    .await?;
    let worker = pipeline.clone();
    let (ready, error) = tokio::task::spawn_blocking(move || {
        let decoded = match encoding {
            Some(e) => body::decompress(body, e, limits.max_decompressed_bytes)?,
            None => body,
        };
        let (groups, error) = prepare(&auth, &decoded)?;
        Ok::<_, E>((groups.build(&worker, &Meta::now()), error))
    })
    .await
    .map_err(|e| E::from(ApiError::Internal(format!("decoder task failed: {e}"))))??;
    Ok((ready.store(pipeline).await?, error))
}

/// The items of one request, grouped by route.
#[derive(Default)]
pub struct Groups<'a> {
    groups: Vec<Group<'a>>,
    /// A log type (as the client named it) → its group.
    by_type: HashMap<String, usize>,
}

struct Group<'a> {
    adm: Admission,
    items: Vec<(usize, Item<'a>)>,
    /// Bytes the items took in the request, for the byte rate limits.
    bytes: usize,
}

/// Groups built into events, ready to be stored.
pub struct Ready {
    groups: Vec<(Admission, Built, usize)>,
}

/// What became of a stored request's items.
#[derive(Debug, Default)]
pub struct Stored {
    pub items: usize,
    /// Events stored (a filter may drop, split or add).
    pub events: usize,
    /// Items kept as rejected events or dead letters, and the first reason.
    pub rejected: u64,
    /// Of those, the dead letters (a filter failed on them).
    pub dead_lettered: u64,
    pub reason: Option<String>,
}

impl Stored {
    /// For a protocol without partial success: a 400 saying how many of
    /// its `what` were rejected (and kept), if any were.
    pub fn refusal(&self, what: &str) -> Option<ApiError> {
        (self.rejected > 0).then(|| {
            ApiError::BadRequest(format!(
                "{} of {} {what} rejected (kept as rejected events; the others are stored): {}",
                self.rejected,
                self.items,
                self.reason.as_deref().unwrap_or_default()
            ))
        })
    }
}

impl<'a> Groups<'a> {
    /// Adds item `line` of the type `log_type` names (as an index name:
    /// the tenant's `indices`, else its generic route), `bytes` long.
    pub fn push(
        &mut self,
        auth: &Authenticated,
        log_type: &str,
        line: usize,
        item: Item<'a>,
        bytes: usize,
    ) -> Result<(), Error> {
        let g = match self.by_type.get(log_type) {
            Some(&g) => g,
            None => {
                let adm = auth.route_index(log_type)?;
                self.group_of(adm, log_type)
            }
        };
        let group = &mut self.groups[g];
        group.items.push((line, item));
        group.bytes += bytes;
        Ok(())
    }

    /// Adds an item to a route the source admitted itself.
    pub fn push_to(&mut self, adm: Admission, line: usize, item: Item<'a>, bytes: usize) {
        let key = format!("\u{0}{}", adm.path);
        let g = match self.by_type.get(&key) {
            Some(&g) => g,
            None => self.group_of(adm, &key),
        };
        let group = &mut self.groups[g];
        group.items.push((line, item));
        group.bytes += bytes;
    }

    fn group_of(&mut self, adm: Admission, key: &str) -> usize {
        let g = match self.groups.iter().position(|g| g.adm.path == adm.path) {
            Some(g) => g,
            None => {
                self.groups.push(Group {
                    adm,
                    items: Vec::new(),
                    bytes: 0,
                });
                self.groups.len() - 1
            }
        };
        self.by_type.insert(key.to_string(), g);
        g
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Filters and events, per group (blocking: call it off the reactor).
    pub fn build(self, pipeline: &Pipeline, meta: &Meta) -> Ready {
        Ready {
            groups: self
                .groups
                .into_iter()
                .map(|g| {
                    let built = pipeline.build(&g.adm, g.items, meta);
                    (g.adm, built, g.bytes)
                })
                .collect(),
        }
    }
}

impl Ready {
    /// Checks every group against the rate limits, then appends them all;
    /// returns once every batch is durable. A limit stores nothing.
    pub async fn store(self, pipeline: &Pipeline) -> Result<Stored, Error> {
        for (adm, built, bytes) in &self.groups {
            pipeline.received(adm, *bytes)?;
            pipeline.check_events(adm, built.events.len())?;
        }
        let mut stored = Stored::default();
        let mut appends = Vec::new();
        for (adm, built, _) in self.groups {
            stored.items += built.outcomes.len();
            stored.events += built.events.len();
            for o in &built.outcomes {
                if let Outcome::Rejected { reason } | Outcome::DeadLetter { reason } = o {
                    stored.rejected += 1;
                    stored.dead_lettered += u64::from(matches!(o, Outcome::DeadLetter { .. }));
                    stored.reason.get_or_insert_with(|| reason.clone());
                }
            }
            if !built.events.is_empty() {
                appends.push(async move { pipeline.store_checked(&adm, built, None, None).await });
            }
        }
        for r in futures_util::future::join_all(appends).await {
            r?;
        }
        Ok(stored)
    }
}
