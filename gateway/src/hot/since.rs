//! What a searcher holds of a stretch of the WAL: a query's matches among
//! the events whose `_lsn` is in `(after, upto]`, fed to a collector.
//!
//! tantivy's own intersection with a range on `_lsn` walks every match of
//! the query and looks each one's position up; in a merged segment that
//! mixes old and new events (most of them, for a reader coming back
//! every few seconds) that is mostly old matches. Here a segment whose
//! positions are all inside (or all outside) the stretch is taken whole
//! (or skipped) from the column's bounds, and in a mixed one the column
//! is scanned first (SIMD, a chunk of documents at a time) and the query
//! only asked about the new documents.

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::sync::Mutex;

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::Column;
use tantivy::index::SegmentId;
use tantivy::query::Weight;
use tantivy::{DocId, DocSet, Searcher, SegmentReader, TERMINATED};

use super::schema::LSN_FIELD;
use crate::wal::Lsn;

/// Documents scanned per step in a mixed segment.
const CHUNK: u32 = 1 << 16;

/// The `_lsn` columns of a partition's segments, opened once each
/// (opening one reads its block index: in a segment of millions of
/// events, more than counting what is new in it).
#[derive(Default)]
pub struct Columns {
    open: Mutex<HashMap<SegmentId, Option<Column<u64>>>>,
}

impl Columns {
    /// The column of `segment` (`None`: none of its events has one).
    fn get(&self, segment: &SegmentReader) -> Option<Column<u64>> {
        let mut open = self.open.lock().unwrap();
        open.entry(segment.segment_id())
            .or_insert_with(|| segment.fast_fields().u64(LSN_FIELD).ok())
            .clone()
    }

    /// Forgets the columns of segments `searcher` no longer has.
    fn keep_only(&self, searcher: &Searcher) {
        let mut open = self.open.lock().unwrap();
        let segments = searcher.segment_readers();
        if open.len() > 2 * segments.len() {
            let current: Vec<SegmentId> = segments.iter().map(|s| s.segment_id()).collect();
            open.retain(|id, _| current.contains(id));
        }
    }
}

/// Runs `collector` over the documents of `searcher` that `weight`
/// matches and whose position is in `(after, upto]`.
pub fn collect<C: Collector>(
    searcher: &Searcher,
    columns: &Columns,
    weight: &dyn Weight,
    collector: &C,
    after: Lsn,
    upto: Lsn,
) -> tantivy::Result<C::Fruit> {
    let mut fruits = Vec::new();
    if after < upto {
        columns.keep_only(searcher);
        let range = after + 1..=upto;
        for (ord, segment) in searcher.segment_readers().iter().enumerate() {
            // A segment without the column has no positioned documents.
            let Some(column) = columns.get(segment) else {
                continue;
            };
            if let Some(fruit) =
                collect_segment(segment, column, ord as u32, weight, collector, &range)?
            {
                fruits.push(fruit);
            }
        }
    }
    collector.merge_fruits(fruits)
}

fn collect_segment<C: Collector>(
    segment: &SegmentReader,
    column: Column<u64>,
    ord: u32,
    weight: &dyn Weight,
    collector: &C,
    range: &RangeInclusive<Lsn>,
) -> tantivy::Result<Option<<C::Child as SegmentCollector>::Fruit>> {
    // The bounds hold every value (they need not be values).
    let (low, high) = (column.min_value(), column.max_value());
    if high < *range.start() || low > *range.end() {
        return Ok(None);
    }
    let mut child = collector.for_segment(ord, segment)?;
    let alive = segment.alive_bitset();
    let mut buffer = Vec::new();
    let mut emit = |docs: &[DocId], child: &mut C::Child| match alive {
        None => child.collect_block(docs),
        Some(alive) => {
            buffer.clear();
            buffer.extend(docs.iter().copied().filter(|&d| alive.is_alive(d)));
            child.collect_block(&buffer);
        }
    };
    if low >= *range.start() && high <= *range.end() && column.index.get_cardinality().is_full() {
        weight.for_each_no_score(segment, &mut |docs| emit(docs, &mut child))?;
        return Ok(Some(child.harvest()));
    }
    let mut scorer = weight.scorer(segment, 1.0)?;
    let (mut new, mut matched) = (Vec::new(), Vec::new());
    let max_doc = segment.max_doc();
    let mut start = 0;
    while start < max_doc && scorer.doc() != TERMINATED {
        // No match before the scorer's: the old part of a merged segment
        // outside the query's time range is not scanned.
        start = start.max(scorer.doc());
        let end = start.saturating_add(CHUNK).min(max_doc);
        new.clear();
        column.get_docids_for_value_range(range.clone(), start..end, &mut new);
        matched.clear();
        for &doc in &new {
            let mut at = scorer.doc();
            if at < doc {
                at = scorer.seek(doc);
            }
            if at == doc {
                matched.push(doc);
            } else if at == TERMINATED {
                break;
            }
        }
        emit(&matched, &mut child);
        start = end;
    }
    Ok(Some(child.harvest()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hot::HotSchema;
    use tantivy::collector::Count;
    use tantivy::query::{EnableScoring, Query};

    /// In whole, mixed (merged) and skipped segments, exactly the matches
    /// of the stretch are collected.
    #[test]
    fn a_stretch_of_positions_in_whole_and_merged_segments() {
        let schema = HotSchema::new();
        let index = tantivy::Index::create_in_ram(schema.schema.clone());
        let mut writer = index.writer_with_num_threads(1, 15_000_000).unwrap();
        // Records 1..=30, 10 events each, one segment per 10 records;
        // even events are errors.
        for record in 1..=30u64 {
            for i in 0..10 {
                let level = if i % 2 == 0 { "error" } else { "info" };
                let service = if record > 20 { "late" } else { "early" };
                let line = format!(
                    r#"{{"id":"{record}-{i}","timestamp":"2026-11-20T10:00:00Z","received_at":"2026-11-20T10:00:00Z","type":"app","level":"{level}","service":"{service}"}}"#
                );
                let mut doc = schema.document(line.as_bytes()).unwrap();
                doc.add_u64(schema.lsn, record);
                writer.add_document(doc).unwrap();
            }
            if record % 10 == 0 {
                writer.commit().unwrap();
            }
        }
        let reader = index.reader().unwrap();
        let errors = crate::hot::search::parse_query_with(&schema, "level:error").unwrap();
        // Matches only in the last third, where a scan may start.
        let late = crate::hot::search::parse_query_with(&schema, "service:late").unwrap();
        let columns = Columns::default();
        let count_of = |query: &dyn Query, after, upto| {
            let searcher = reader.searcher();
            let weight = query
                .weight(EnableScoring::disabled_from_searcher(&searcher))
                .unwrap();
            collect(&searcher, &columns, &*weight, &Count, after, upto).unwrap()
        };
        let error_cases = [
            (0, 30, 150),
            (10, 20, 50),
            (5, 25, 100),
            (29, 30, 5),
            (30, 40, 0),
            (7, 7, 0),
        ];
        let late_cases = [(0, 30, 100), (5, 25, 50), (10, 20, 0), (22, 23, 10)];
        let check = |stage: &str| {
            let queries = [
                ("level:error", &*errors, &error_cases[..]),
                ("service:late", &*late, &late_cases[..]),
            ];
            for (name, query, cases) in queries {
                for &(after, upto, expected) in cases {
                    assert_eq!(
                        count_of(query, after, upto),
                        expected,
                        "{stage}, {name}: ({after}, {upto}]"
                    );
                }
            }
        };
        assert_eq!(reader.searcher().segment_readers().len(), 3);
        check("three segments");
        // Merged into one segment whose positions all mix.
        let ids = index.searchable_segment_ids().unwrap();
        writer.merge(&ids).wait().unwrap();
        reader.reload().unwrap();
        assert_eq!(reader.searcher().segment_readers().len(), 1);
        check("merged");
    }
}
