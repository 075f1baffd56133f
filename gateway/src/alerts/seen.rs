//! Which of some text values a field held in the matching events: what a
//! `new_value` rule asks of the time before its window. Read from the
//! field's fast column (its whole values, as stored), so the answer is
//! exact however many other values the field has; each segment's matching
//! documents are walked only until every value is found (the values a
//! rule sees are mostly old ones, found among the first documents).

use std::collections::{HashMap, HashSet};

use tantivy::query::{EnableScoring, Query};
use tantivy::{DocSet, Searcher, TERMINATED};

/// Indexes of the `candidates` that some document matching `query` in
/// `searcher` holds in `column`.
pub fn seen(
    searcher: &Searcher,
    query: &dyn Query,
    column: &str,
    candidates: &[String],
    already: &HashSet<usize>,
) -> tantivy::Result<HashSet<usize>> {
    let mut found = HashSet::new();
    if already.len() == candidates.len() {
        return Ok(found);
    }
    let weight = query.weight(EnableScoring::disabled_from_searcher(searcher))?;
    for segment in searcher.segment_readers() {
        let Some(values) = segment.fast_fields().str(column)? else {
            continue;
        };
        // Term ordinal in this segment → index of a candidate not yet found.
        let mut wanted: HashMap<u64, usize> = HashMap::new();
        for (i, value) in candidates.iter().enumerate() {
            if already.contains(&i) || found.contains(&i) {
                continue;
            }
            if let Some(ord) = values.dictionary().term_ord(value.as_bytes())? {
                wanted.insert(ord, i);
            }
        }
        if wanted.is_empty() {
            continue;
        }
        let alive = segment.alive_bitset();
        let mut docs = weight.scorer(segment, 1.0)?;
        let mut doc = docs.doc();
        while doc != TERMINATED && !wanted.is_empty() {
            if alive.is_none_or(|a| a.is_alive(doc)) {
                for ord in values.term_ords(doc) {
                    if let Some(i) = wanted.remove(&ord) {
                        found.insert(i);
                    }
                }
            }
            doc = docs.advance();
        }
        if already.len() + found.len() == candidates.len() {
            break;
        }
    }
    Ok(found)
}
