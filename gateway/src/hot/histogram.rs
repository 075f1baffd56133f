//! Counts of matching events per time bucket, optionally split by level
//! (the UI's stacked histogram), from the `timestamp` and `level` fast
//! columns: no document is loaded.

use std::collections::{BTreeMap, HashMap};

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::StrColumn;
use tantivy::{DateTime, DocId, Score, SegmentOrdinal, SegmentReader};

use super::HotIndex;
use super::search::{SearchError, SearchRequest, build_query, unix_ms};

/// One bucket: its start (ms since the epoch), its count, and with
/// `by_level` the count per level ("" for events without one).
pub struct Bucket {
    pub start_ms: i64,
    pub count: u64,
    pub by_level: Option<BTreeMap<String, u64>>,
}

/// Counts matching events per `interval_ms` bucket of `timestamp` in
/// `[from, to)`; buckets with no events are included.
pub fn histogram(
    hot: &HotIndex,
    tenant: &str,
    req: &SearchRequest,
    interval_ms: i64,
    by_level: bool,
) -> Result<Vec<Bucket>, SearchError> {
    let query = build_query(hot, req)?;
    let range = match (req.from, req.to) {
        (Some(from), Some(to)) => {
            let start = floor(unix_ms(from), interval_ms);
            let n = (unix_ms(to) - start).div_euclid(interval_ms) + 1;
            usize::try_from(n).ok().map(|n| (start, n))
        }
        _ => None,
    };
    let collector = Histogram {
        interval_ms,
        by_level,
        range,
    };
    let mut merged: BTreeMap<i64, BTreeMap<String, u64>> = BTreeMap::new();
    for p in super::search::partitions(hot, tenant, req) {
        for ((bucket, level), n) in p.reader.searcher().search(&query, &collector)? {
            *merged.entry(bucket).or_default().entry(level).or_default() += n;
        }
    }
    if let (Some(from), Some(to)) = (req.from, req.to) {
        let end = unix_ms(to);
        let mut b = floor(unix_ms(from), interval_ms);
        while b < end {
            merged.entry(b).or_default();
            b += interval_ms;
        }
    }
    Ok(merged
        .into_iter()
        .map(|(start_ms, levels)| Bucket {
            start_ms,
            count: levels.values().sum(),
            by_level: by_level.then_some(levels),
        })
        .collect())
}

fn floor(ms: i64, interval: i64) -> i64 {
    ms.div_euclid(interval) * interval
}

/// Counts per (bucket, level); the level is "" unless split by level.
type Counts = HashMap<(i64, String), u64>;

/// Cells of a segment's dense count table at most (8 MiB).
const MAX_DENSE_CELLS: usize = 1 << 20;

struct Histogram {
    interval_ms: i64,
    by_level: bool,
    /// The first bucket's start and the number of buckets, when the range
    /// is known: then counts go to a dense table, not a map.
    range: Option<(i64, usize)>,
}

struct SegmentHistogram {
    interval_ms: i64,
    column: tantivy::columnar::Column<DateTime>,
    level: Option<StrColumn>,
    /// A count per (bucket, level ordinal + 1; 0: no level), row-major:
    /// one array increment per document (the map below costs a hash).
    dense: Option<Dense>,
    /// Per (bucket, level term ordinal; `u64::MAX`: no level).
    counts: HashMap<(i64, u64), u64>,
}

struct Dense {
    start_ms: i64,
    buckets: usize,
    /// Level ordinals + 1 (0: no level).
    width: usize,
    cells: Vec<u64>,
}

impl Collector for Histogram {
    type Fruit = Counts;
    type Child = SegmentHistogram;

    fn for_segment(
        &self,
        _: SegmentOrdinal,
        segment: &SegmentReader,
    ) -> tantivy::Result<SegmentHistogram> {
        let level = if self.by_level {
            segment.fast_fields().str("level")?
        } else {
            None
        };
        let width = level.as_ref().map_or(0, |c| c.dictionary().num_terms()) + 1;
        let dense = self
            .range
            .filter(|(_, buckets)| buckets.saturating_mul(width) <= MAX_DENSE_CELLS)
            .map(|(start_ms, buckets)| Dense {
                start_ms,
                buckets,
                width,
                cells: vec![0; buckets * width],
            });
        Ok(SegmentHistogram {
            interval_ms: self.interval_ms,
            column: segment.fast_fields().date("timestamp")?,
            level,
            dense,
            counts: HashMap::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Counts>) -> tantivy::Result<Counts> {
        let mut out = Counts::new();
        for f in fruits {
            for (k, v) in f {
                *out.entry(k).or_default() += v;
            }
        }
        Ok(out)
    }
}

impl SegmentHistogram {
    /// Counts one document of time `ms` and level ordinal `level`
    /// (`u64::MAX`: none).
    #[inline]
    fn count(&mut self, ms: i64, level: u64) {
        if let Some(d) = &mut self.dense {
            let bucket = (ms - d.start_ms).div_euclid(self.interval_ms);
            let column = if level == u64::MAX {
                0
            } else {
                level as usize + 1
            };
            if let Ok(bucket) = usize::try_from(bucket)
                && bucket < d.buckets
                && column < d.width
            {
                d.cells[bucket * d.width + column] += 1;
                return;
            }
        }
        *self
            .counts
            .entry((floor(ms, self.interval_ms), level))
            .or_default() += 1;
    }
}

impl SegmentCollector for SegmentHistogram {
    type Fruit = Counts;

    fn collect(&mut self, doc: DocId, _: Score) {
        if let Some(t) = self.column.first(doc) {
            let level = self
                .level
                .as_ref()
                .and_then(|c| c.term_ords(doc).next())
                .unwrap_or(u64::MAX);
            self.count(t.into_timestamp_millis(), level);
        }
    }

    /// A block of documents at once: the columns decode their values for
    /// the whole block (bit-unpacking in bulk), not one lookup per
    /// document.
    fn collect_block(&mut self, docs: &[DocId]) {
        let mut times = [None; tantivy::COLLECT_BLOCK_BUFFER_LEN];
        let mut levels = [None; tantivy::COLLECT_BLOCK_BUFFER_LEN];
        for docs in docs.chunks(tantivy::COLLECT_BLOCK_BUFFER_LEN) {
            let (times, levels) = (&mut times[..docs.len()], &mut levels[..docs.len()]);
            times.fill(None);
            levels.fill(None);
            self.column.first_vals(docs, times);
            if let Some(c) = &self.level {
                c.ords().first_vals(docs, levels);
            }
            for (t, l) in times.iter().zip(levels.iter()) {
                if let Some(t) = t {
                    self.count(t.into_timestamp_millis(), l.unwrap_or(u64::MAX));
                }
            }
        }
    }

    fn harvest(mut self) -> Counts {
        if let Some(d) = self.dense.take() {
            for (i, &n) in d.cells.iter().enumerate().filter(|(_, n)| **n > 0) {
                let (bucket, column) = (i / d.width, i % d.width);
                let ord = if column == 0 {
                    u64::MAX
                } else {
                    column as u64 - 1
                };
                let start = d.start_ms + bucket as i64 * self.interval_ms;
                *self.counts.entry((start, ord)).or_default() += n;
            }
        }
        let mut names: HashMap<u64, String> = HashMap::new();
        let mut out = Counts::new();
        for ((bucket, ord), n) in self.counts {
            let name = names
                .entry(ord)
                .or_insert_with(|| {
                    let mut s = String::new();
                    if let Some(c) = &self.level
                        && ord != u64::MAX
                    {
                        let _ = c.ord_to_str(ord, &mut s);
                    }
                    s
                })
                .clone();
            *out.entry((bucket, name)).or_default() += n;
        }
        out
    }
}
