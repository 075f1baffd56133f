//! Which of some text values a field held in the matching events: what a
//! `new_value` rule asks of the time before its window. Read from the
//! field's fast column (its whole values, as stored), so the answer is
//! exact however many other values the field has.

use std::collections::{HashMap, HashSet};

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::StrColumn;
use tantivy::{DocId, Score, SegmentOrdinal, SegmentReader};

pub struct Seen<'a> {
    pub column: &'a str,
    pub candidates: &'a [String],
}

pub struct SegmentSeen {
    column: Option<StrColumn>,
    /// Term ordinal in this segment → index of the candidate.
    wanted: HashMap<u64, usize>,
    found: HashSet<usize>,
}

impl Collector for Seen<'_> {
    type Fruit = HashSet<usize>;
    type Child = SegmentSeen;

    fn for_segment(
        &self,
        _: SegmentOrdinal,
        segment: &SegmentReader,
    ) -> tantivy::Result<SegmentSeen> {
        let column = segment.fast_fields().str(self.column)?;
        let mut wanted = HashMap::new();
        if let Some(c) = &column {
            for (i, value) in self.candidates.iter().enumerate() {
                if let Some(ord) = c.dictionary().term_ord(value.as_bytes())? {
                    wanted.insert(ord, i);
                }
            }
        }
        Ok(SegmentSeen {
            column,
            wanted,
            found: HashSet::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<HashSet<usize>>) -> tantivy::Result<HashSet<usize>> {
        Ok(fruits.into_iter().flatten().collect())
    }
}

impl SegmentCollector for SegmentSeen {
    type Fruit = HashSet<usize>;

    fn collect(&mut self, doc: DocId, _: Score) {
        if self.wanted.is_empty() {
            return;
        }
        if let Some(c) = &self.column {
            for ord in c.term_ords(doc) {
                if let Some(i) = self.wanted.remove(&ord) {
                    self.found.insert(i);
                }
            }
        }
    }

    fn harvest(self) -> HashSet<usize> {
        self.found
    }
}
