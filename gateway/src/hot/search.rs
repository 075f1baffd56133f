//! Search and histogram over one tenant's partitions.
//!
//! Query syntax is tantivy's: terms (all must match), `"phrases"`,
//! `field:value` on promoted fields and on nested fields (`user.id:42`),
//! ranges (`timestamp:[2026-11-01T00:00:00Z TO *]`, `fields.status:>=500`),
//! `AND`, `OR`, `NOT`/`-`, and parentheses. Bare terms search `message`
//! (`fields` is a default field too, but tantivy reads a bare term there
//! as the JSON root's own value, which no event has: a nested value needs
//! its path). Existence needs the full path: `fields.user.id:*`.
//! Results come newest first by `timestamp`.

use std::ops::Bound;

use serde_json::value::RawValue;
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{AllQuery, BooleanQuery, Occur, Query, QueryParser, RangeQuery};
use tantivy::schema::{Term, Value};
use tantivy::tokenizer::TokenizerManager;
use tantivy::{DateTime, DocAddress, Order, TantivyDocument};
use time::OffsetDateTime;

use super::{HotIndex, HotSchema};

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("invalid query: {0}")]
    Query(String),
    /// A syntax error at this character offset of the query text.
    #[error("invalid query: {message}")]
    Syntax { message: String, position: usize },
    #[error("search failed: {0}")]
    Tantivy(tantivy::TantivyError),
}

impl From<tantivy::TantivyError> for SearchError {
    fn from(e: tantivy::TantivyError) -> Self {
        match e {
            // Raised while running a query the parser accepted, e.g. a
            // range on a text value: the query's fault, not the server's.
            tantivy::TantivyError::InvalidArgument(m)
            | tantivy::TantivyError::SchemaError(m)
            | tantivy::TantivyError::FieldNotFound(m) => SearchError::Query(m),
            other => SearchError::Tantivy(other),
        }
    }
}

#[derive(Debug, Clone)]
pub struct SearchRequest {
    pub query: String,
    /// Inclusive lower bound on `timestamp`.
    pub from: Option<OffsetDateTime>,
    /// Exclusive upper bound on `timestamp`.
    pub to: Option<OffsetDateTime>,
    pub log_type: Option<String>,
    pub limit: usize,
    /// Continue after the page this cursor ended.
    pub after: Option<Cursor>,
    /// Cluster mode: only these topic partitions' hot partitions (of those
    /// the node owns), not the local WAL's: the part of a search fanned
    /// out to this node.
    pub partitions: Option<std::collections::BTreeSet<u32>>,
}

/// The partitions a request reads: the tenant's (of its type) this node
/// answers for, narrowed to `req.partitions` when given.
pub fn partitions(
    hot: &HotIndex,
    tenant: &str,
    req: &SearchRequest,
) -> Vec<std::sync::Arc<super::Partition>> {
    let mut parts = hot.partitions_of(tenant, req.log_type.as_deref());
    if let Some(only) = &req.partitions {
        parts.retain(|p| p.key.kafka.is_some_and(|k| only.contains(&k)));
    }
    parts
}

/// Where a page of hits ended: its last hit's timestamp and how many hits
/// with exactly that timestamp the pages so far returned. The next page
/// takes hits at or before that timestamp and skips those. (Hits sharing a
/// millisecond come in index order, which a segment merge between two
/// pages may change: only then can such a hit repeat or be missed.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub timestamp_ms: i64,
    pub skip: usize,
}

impl Cursor {
    /// Its text form, for `search_after`.
    pub fn encode(&self) -> String {
        format!("{}_{}", self.timestamp_ms, self.skip)
    }

    pub fn decode(text: &str) -> Option<Cursor> {
        let (ts, skip) = text.split_once('_')?;
        Some(Cursor {
            timestamp_ms: ts.parse().ok()?,
            skip: skip.parse().ok()?,
        })
    }
}

pub struct SearchResult {
    /// Matching events in all partitions (not only the returned ones, and
    /// regardless of the cursor).
    pub total: usize,
    /// Newest first, as stored.
    pub hits: Vec<Box<RawValue>>,
    /// Where the next page starts, when this one is full.
    pub next: Option<Cursor>,
}

/// A query string as search reads it (empty or `*`: everything).
pub fn parse_query(hot: &HotIndex, text: &str) -> Result<Box<dyn Query>, SearchError> {
    parse_query_with(&hot.schema, text)
}

/// [`parse_query`] against a schema alone (config checks, before the hot
/// tier is open).
pub fn parse_query_with(s: &HotSchema, text: &str) -> Result<Box<dyn Query>, SearchError> {
    let text = text.trim();
    if text.is_empty() || text == "*" {
        return Ok(Box::new(AllQuery));
    }
    let mut parser = QueryParser::new(
        s.schema.clone(),
        vec![s.message, s.fields],
        TokenizerManager::default(),
    );
    parser.set_conjunction_by_default();
    let normalized = normalize_negation(text);
    let query = parser
        .parse_query(&normalized)
        .map_err(|e| match syntax_error(text) {
            Some((position, message)) => SearchError::Syntax { message, position },
            None => SearchError::Query(e.to_string()),
        })?;
    if let Ok(ast) = tantivy::query_grammar::parse_query(&normalized) {
        check_ranges(&ast)?;
    }
    Ok(query)
}

/// Refuses a range whose bounds are of two kinds (`[1 TO 2.5]`, `[1 TO
/// abc]`): tantivy 0.27 panics running one on a nested path that holds
/// numbers (`range_query_fastfield.rs` unwraps the second bound as the
/// first one's type).
fn check_ranges(ast: &tantivy::query_grammar::UserInputAst) -> Result<(), SearchError> {
    use tantivy::query_grammar::{UserInputAst as Ast, UserInputBound as B, UserInputLeaf as L};
    fn kind(b: &B) -> Option<&'static str> {
        let (B::Inclusive(t) | B::Exclusive(t)) = b else {
            return None;
        };
        // tantivy stores a JSON number with no fraction (`1.0` too) as a
        // whole number.
        let number = t.parse::<f64>().ok();
        Some(if t.parse::<i64>().is_ok() || t.parse::<u64>().is_ok() {
            "a whole number"
        } else if let Some(n) = number {
            if n.fract() == 0.0 {
                "a whole number"
            } else {
                "a number with a fraction"
            }
        } else if t == "true" || t == "false" {
            "a boolean"
        } else if time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
            .is_ok()
        {
            "a date"
        } else {
            "text"
        })
    }
    match ast {
        Ast::Clause(subs) => subs.iter().try_for_each(|(_, a)| check_ranges(a)),
        Ast::Boost(a, _) => check_ranges(a),
        Ast::Leaf(leaf) => match &**leaf {
            L::Range { lower, upper, .. } => match (kind(lower), kind(upper)) {
                (Some(a), Some(b)) if a != b => Err(SearchError::Query(format!(
                    "the bounds of a range must be of one kind, here {a} and {b}: both whole numbers (`[1 TO 3]`) or both with a fraction (`[0.5 TO 2.5]`), both dates or both text"
                ))),
                _ => Ok(()),
            },
            _ => Ok(()),
        },
    }
}

/// Where the grammar stops understanding `text` (character offset, in the
/// text as the user wrote it), for a caret under the query bar.
fn syntax_error(text: &str) -> Option<(usize, String)> {
    let (_, errors) = tantivy::query_grammar::parse_query_lenient(text);
    let first = errors.into_iter().next()?;
    let position = text
        .char_indices()
        .take_while(|(i, _)| *i < first.pos)
        .count();
    Some((position, first.message))
}

pub(super) fn build_query(
    hot: &HotIndex,
    req: &SearchRequest,
) -> Result<Box<dyn Query>, SearchError> {
    let s = &hot.schema;
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    clauses.push((Occur::Must, parse_query(hot, &req.query)?));
    if req.from.is_some() || req.to.is_some() {
        let bound = |t: Option<OffsetDateTime>, inclusive: bool| match t {
            None => Bound::Unbounded,
            Some(t) => {
                // The fast column keeps milliseconds; `_for_search` would
                // truncate to seconds and cut off the current second.
                let t = DateTime::from_utc(t)
                    .truncate(tantivy::schema::DateTimePrecision::Milliseconds);
                let term = Term::from_field_date(s.timestamp, t);
                if inclusive {
                    Bound::Included(term)
                } else {
                    Bound::Excluded(term)
                }
            }
        };
        clauses.push((
            Occur::Must,
            Box::new(RangeQuery::new(bound(req.from, true), bound(req.to, false))),
        ));
    }
    Ok(Box::new(BooleanQuery::new(clauses)))
}

/// Gives `NOT` its Lucene meaning. tantivy reads `a AND NOT b` as `a AND
/// (NOT b)`, a clause that alone matches nothing; `a AND -b` is what users
/// mean. A query that starts with `NOT` matches everything else (`* -b`).
/// Words inside quotes are left alone.
pub fn normalize_negation(query: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut in_quotes = false;
    let mut negate_next = false;
    for token in query.split_whitespace() {
        let quoted = in_quotes;
        in_quotes ^= token.matches('"').count() % 2 == 1;
        if negate_next {
            out.push(format!("-{token}"));
            negate_next = false;
            continue;
        }
        if !quoted && token == "NOT" {
            match out.last().map(String::as_str) {
                None => {
                    out.push("*".into());
                    negate_next = true;
                    continue;
                }
                Some("AND") | Some("(") => {
                    negate_next = true;
                    continue;
                }
                _ => {}
            }
        }
        out.push(token.to_string());
    }
    out.join(" ")
}

/// Runs a search over `tenant`'s partitions.
pub fn search(
    hot: &HotIndex,
    tenant: &str,
    req: &SearchRequest,
) -> Result<SearchResult, SearchError> {
    let query = build_query(hot, req)?;
    // A page after a cursor: hits at or before its timestamp.
    let paged = req
        .after
        .map(|c| -> Result<Box<dyn Query>, SearchError> {
            let t = DateTime::from_timestamp_millis(c.timestamp_ms);
            let upper = Bound::Included(Term::from_field_date(hot.schema.timestamp, t));
            Ok(Box::new(BooleanQuery::new(vec![
                (Occur::Must, query.box_clone()),
                (
                    Occur::Must,
                    Box::new(RangeQuery::new(Bound::Unbounded, upper)),
                ),
            ])))
        })
        .transpose()?;
    let skip = req.after.map_or(0, |c| c.skip);
    let want = req.limit.max(1) + skip;
    let partitions = partitions(hot, tenant, req);
    let mut total = 0usize;
    // (timestamp ms, partition index, address) of the best `want` per partition.
    let mut candidates: Vec<(i64, usize, DocAddress)> = Vec::new();
    let mut searchers = Vec::with_capacity(partitions.len());
    for (i, p) in partitions.iter().enumerate() {
        let searcher = p.reader.searcher();
        let top =
            TopDocs::with_limit(want).order_by_fast_field::<DateTime>("timestamp", Order::Desc);
        let docs = match &paged {
            Some(paged) => {
                total += searcher.search(&query, &Count)?;
                searcher.search(paged, &top)?
            }
            None => {
                let (docs, count) = searcher.search(&query, &(top, Count))?;
                total += count;
                docs
            }
        };
        candidates.extend(docs.into_iter().map(|(ts, addr)| {
            (
                ts.map(|t| t.into_timestamp_millis()).unwrap_or(i64::MIN),
                i,
                addr,
            )
        }));
        searchers.push(searcher);
    }
    candidates.sort_by_key(|c| std::cmp::Reverse(c.0));
    let next = page(&mut candidates, |c| c.0, req, false);
    let mut hits = Vec::with_capacity(candidates.len());
    for (_, i, addr) in candidates {
        let doc: TantivyDocument = searchers[i].doc(addr)?;
        if let Some(source) = doc.get_first(hot.schema.source).and_then(|v| v.as_str())
            && let Ok(raw) = RawValue::from_string(source.to_string())
        {
            hits.push(raw);
        }
    }
    Ok(SearchResult { total, hits, next })
}

/// Cuts the page `req` asks for out of candidates sorted newest first
/// (each at least `req.limit` + the cursor's skip deep per source, or
/// `more`: some source had more than it gave): drops the hits at the
/// cursor's timestamp the pages before returned, keeps `req.limit`, and
/// returns the cursor of the next page when it is full or `more`.
pub fn page<T>(
    candidates: &mut Vec<T>,
    ms: impl Fn(&T) -> i64,
    req: &SearchRequest,
    more: bool,
) -> Option<Cursor> {
    if let Some(c) = req.after {
        // The hits at the cursor's timestamp come first: drop those returned.
        let seen = candidates
            .iter()
            .take(c.skip)
            .take_while(|x| ms(x) == c.timestamp_ms)
            .count();
        candidates.drain(..seen);
    }
    candidates.truncate(req.limit);
    let full = req.limit > 0 && candidates.len() == req.limit;
    ((full || more) && !candidates.is_empty()).then(|| {
        let last = ms(&candidates[candidates.len() - 1]);
        let same = candidates.iter().filter(|x| ms(x) == last).count();
        let before = req
            .after
            .filter(|c| c.timestamp_ms == last)
            .map_or(0, |c| c.skip);
        Cursor {
            timestamp_ms: last,
            skip: same + before,
        }
    })
}

pub fn unix_ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// The time of Unix milliseconds `ms` (`None` out of `time`'s range).
pub fn from_unix_ms(ms: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use super::normalize_negation;

    #[test]
    fn not_means_what_lucene_users_expect() {
        assert_eq!(normalize_negation("a AND NOT b"), "a AND -b");
        assert_eq!(normalize_negation("NOT level:info"), "* -level:info");
        assert_eq!(normalize_negation("a AND NOT (b OR c)"), "a AND -(b OR c)");
        assert_eq!(
            normalize_negation("\"do NOT disturb\" AND NOT x"),
            "\"do NOT disturb\" AND -x"
        );
        assert_eq!(normalize_negation("a NOT b"), "a NOT b");
    }

    #[test]
    fn a_range_of_two_kinds_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (hot, _) = super::super::HotIndex::open(dir.path()).unwrap();
        for q in [
            "fields.n:[1 TO 2.5]",
            "fields.n:[1.0 TO 2.5]",
            "fields.n:[1 TO abc]",
            "fields.n:{-5 TO 2.5]",
        ] {
            let e = super::parse_query(&hot, q)
                .err()
                .unwrap_or_else(|| panic!("{q}"));
            assert!(e.to_string().contains("one kind"), "{q}: {e}");
        }
        for q in [
            "fields.n:[1 TO 5]",
            "fields.n:[1.0 TO 5]",
            "fields.n:[0.5 TO 2.5]",
            "fields.n:>=5",
            "fields.s:[a TO c]",
        ] {
            assert!(super::parse_query(&hot, q).is_ok(), "{q}");
        }
    }
}
