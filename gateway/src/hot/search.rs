//! Search and histogram over one tenant's partitions.
//!
//! Query syntax is tantivy's: terms (all must match), `"phrases"`,
//! `field:value` on promoted fields and on nested fields (`user.id:42`),
//! ranges (`timestamp:[2026-11-01T00:00:00Z TO *]`, `fields.status:>=500`),
//! `AND`, `OR`, `NOT`/`-`, and parentheses. Bare terms search `message` and
//! every nested field. Existence needs the full path: `fields.user.id:*`.
//! Results come newest first by `timestamp`.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use serde_json::value::RawValue;
use tantivy::collector::{Collector, Count, SegmentCollector, TopDocs};
use tantivy::query::{AllQuery, BooleanQuery, Occur, Query, QueryParser, RangeQuery};
use tantivy::schema::{Term, Value};
use tantivy::tokenizer::TokenizerManager;
use tantivy::{
    DateTime, DocAddress, DocId, Order, Score, SegmentOrdinal, SegmentReader, TantivyDocument,
};
use time::OffsetDateTime;

use super::{HotIndex, Partition};

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("invalid query: {0}")]
    Query(String),
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
}

pub struct SearchResult {
    /// Matching events in all partitions (not only the returned ones).
    pub total: usize,
    /// Newest first, as stored.
    pub hits: Vec<Box<RawValue>>,
}

/// A query string as search reads it (empty or `*`: everything).
pub fn parse_query(hot: &HotIndex, text: &str) -> Result<Box<dyn Query>, SearchError> {
    let s = &hot.schema;
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
    parser
        .parse_query(&normalize_negation(text))
        .map_err(|e| SearchError::Query(e.to_string()))
}

fn build_query(hot: &HotIndex, req: &SearchRequest) -> Result<Box<dyn Query>, SearchError> {
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
    let partitions = hot.partitions_of(tenant, req.log_type.as_deref());
    let mut total = 0usize;
    // (timestamp, partition index, address) of the best `limit` per partition.
    let mut candidates: Vec<(i64, usize, DocAddress)> = Vec::new();
    let mut searchers = Vec::with_capacity(partitions.len());
    for (i, p) in partitions.iter().enumerate() {
        let searcher = p.reader.searcher();
        let top = TopDocs::with_limit(req.limit.max(1))
            .order_by_fast_field::<DateTime>("timestamp", Order::Desc);
        let (docs, count) = searcher.search(&query, &(top, Count))?;
        total += count;
        candidates.extend(docs.into_iter().map(|(ts, addr)| {
            (
                ts.map(|t| t.into_timestamp_nanos()).unwrap_or(i64::MIN),
                i,
                addr,
            )
        }));
        searchers.push(searcher);
    }
    candidates.sort_by_key(|c| std::cmp::Reverse(c.0));
    candidates.truncate(req.limit);
    let mut hits = Vec::with_capacity(candidates.len());
    for (_, i, addr) in candidates {
        let doc: TantivyDocument = searchers[i].doc(addr)?;
        if let Some(source) = doc.get_first(hot.schema.source).and_then(|v| v.as_str())
            && let Ok(raw) = RawValue::from_string(source.to_string())
        {
            hits.push(raw);
        }
    }
    Ok(SearchResult { total, hits })
}

/// Counts matching events per `interval_ms` bucket of `timestamp` in
/// `[from, to)`; buckets with no events are included.
pub fn histogram(
    hot: &HotIndex,
    tenant: &str,
    req: &SearchRequest,
    interval_ms: i64,
) -> Result<Vec<(i64, u64)>, SearchError> {
    let query = build_query(hot, req)?;
    let collector = Histogram { interval_ms };
    let mut merged: BTreeMap<i64, u64> = BTreeMap::new();
    let partitions: Vec<Arc<Partition>> = hot.partitions_of(tenant, req.log_type.as_deref());
    for p in partitions {
        for (bucket, n) in p.reader.searcher().search(&query, &collector)? {
            *merged.entry(bucket).or_default() += n;
        }
    }
    if let (Some(from), Some(to)) = (req.from, req.to) {
        let start = floor(unix_ms(from), interval_ms);
        let end = unix_ms(to);
        let mut b = start;
        while b < end {
            merged.entry(b).or_default();
            b += interval_ms;
        }
    }
    Ok(merged.into_iter().collect())
}

pub fn unix_ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

fn floor(ms: i64, interval: i64) -> i64 {
    ms.div_euclid(interval) * interval
}

struct Histogram {
    interval_ms: i64,
}

struct SegmentHistogram {
    interval_ms: i64,
    column: tantivy::columnar::Column<DateTime>,
    counts: BTreeMap<i64, u64>,
}

impl Collector for Histogram {
    type Fruit = BTreeMap<i64, u64>;
    type Child = SegmentHistogram;

    fn for_segment(
        &self,
        _: SegmentOrdinal,
        segment: &SegmentReader,
    ) -> tantivy::Result<SegmentHistogram> {
        Ok(SegmentHistogram {
            interval_ms: self.interval_ms,
            column: segment.fast_fields().date("timestamp")?,
            counts: BTreeMap::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<BTreeMap<i64, u64>>) -> tantivy::Result<BTreeMap<i64, u64>> {
        let mut out = BTreeMap::new();
        for f in fruits {
            for (k, v) in f {
                *out.entry(k).or_default() += v;
            }
        }
        Ok(out)
    }
}

impl SegmentCollector for SegmentHistogram {
    type Fruit = BTreeMap<i64, u64>;

    fn collect(&mut self, doc: DocId, _: Score) {
        if let Some(t) = self.column.first(doc) {
            *self
                .counts
                .entry(floor(t.into_timestamp_millis(), self.interval_ms))
                .or_default() += 1;
        }
    }

    fn harvest(self) -> BTreeMap<i64, u64> {
        self.counts
    }
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
}
