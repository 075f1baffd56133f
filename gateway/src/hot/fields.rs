//! What the UI's field sidebar asks: which fields a log type's events have,
//! and the top values of one field over the events a query matches.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use tantivy::aggregation::agg_req::Aggregations;
use tantivy::aggregation::intermediate_agg_result::IntermediateAggregationResults;
use tantivy::aggregation::{
    AggContextParams, AggregationLimitsGuard, DistributedAggregationCollector,
};
use tantivy::collector::Count;
use tantivy::tokenizer::TokenizerManager;

use super::HotIndex;
use super::schema::PROMOTED;
use super::search::{SearchError, SearchRequest, build_query};

/// Promoted fields with a keyword fast column (top values work on them).
const KEYWORDS: &[&str] = &["type", "level", "service", "host", "request_id", "outcome"];
/// Most values one call may ask for.
pub const MAX_VALUES: usize = 1000;

/// One field a query can name.
pub struct FieldName {
    pub name: String,
    pub promoted: bool,
}

/// The promoted fields, then every nested path present in the tenant's
/// partitions (of one type or all), by the name a query uses: `user.id`,
/// or `fields.level` when the nested name is also a promoted one.
pub fn field_names(
    hot: &HotIndex,
    tenant: &str,
    log_type: Option<&str>,
) -> Result<Vec<FieldName>, SearchError> {
    let mut nested = BTreeSet::new();
    for p in hot.partitions_of(tenant, log_type) {
        for segment in p.reader.searcher().segment_readers() {
            for meta in segment.fields_metadata()? {
                if let Some(path) = meta.field_name.strip_prefix("fields.") {
                    let path = path.replace("\\.", ".");
                    nested.insert(if PROMOTED.contains(&path.as_str()) {
                        format!("fields.{path}")
                    } else {
                        path
                    });
                }
            }
        }
    }
    let promoted = PROMOTED.iter().map(|n| FieldName {
        name: n.to_string(),
        promoted: true,
    });
    Ok(promoted
        .chain(nested.into_iter().map(|name| FieldName {
            name,
            promoted: false,
        }))
        .collect())
}

/// The column a field's values are counted from.
pub fn column_of(field: &str) -> Result<String, SearchError> {
    if KEYWORDS.contains(&field) {
        return Ok(field.to_string());
    }
    if PROMOTED.contains(&field) {
        return Err(SearchError::Query(format!(
            "`{field}` has no top values (full text, a time or the id); choose a keyword or a nested field"
        )));
    }
    let path = field.strip_prefix("fields.").unwrap_or(field);
    if path.is_empty() {
        return Err(SearchError::Query("name a field".into()));
    }
    Ok(format!("fields.{path}"))
}

/// Top values of a field over the events a query matches.
pub struct TopValues {
    /// Events the query matches.
    pub total: usize,
    /// (value, events), most first.
    pub values: Vec<(Value, u64)>,
    /// Matching events with another value of the field.
    pub other: u64,
}

pub fn top_values(
    hot: &HotIndex,
    tenant: &str,
    req: &SearchRequest,
    field: &str,
    size: usize,
) -> Result<TopValues, SearchError> {
    let query = build_query(hot, req)?;
    let column = column_of(field)?;
    let aggs = json!({
        "top": {"terms": {"field": column, "size": size.clamp(1, MAX_VALUES)}}
    });
    let parts = super::search::partitions(hot, tenant, req);
    let (result, total) = aggregate(parts, &query, aggs, || Ok::<_, SearchError>(()))?;
    let values = result["top"]["buckets"]
        .as_array()
        .map(|buckets| {
            buckets
                .iter()
                .map(|b| (b["key"].clone(), b["doc_count"].as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    let counted: u64 = result["top"]["sum_other_doc_count"].as_u64().unwrap_or(0);
    Ok(TopValues {
        total,
        values,
        other: counted,
    })
}

/// Runs an aggregation (its Elasticsearch JSON form) over the events of
/// `partitions` that `query` matches: the merged result as JSON (`null`
/// without partitions) and how many events matched. `before_each` runs
/// before each partition (a budget check may stop there).
pub fn aggregate<E: From<SearchError>>(
    partitions: impl IntoIterator<Item = std::sync::Arc<super::Partition>>,
    query: &dyn tantivy::query::Query,
    aggs: Value,
    mut before_each: impl FnMut() -> Result<(), E>,
) -> Result<(Value, usize), E> {
    let aggregation = Aggregation::new(aggs, tantivy::aggregation::DEFAULT_BUCKET_LIMIT)?;
    let mut merged: Option<IntermediateAggregationResults> = None;
    let mut total = 0;
    for p in partitions {
        before_each()?;
        let (part, count) = p
            .reader
            .searcher()
            .search(query, &(aggregation.collector(), Count))
            .map_err(SearchError::from)?;
        total += count;
        match &mut merged {
            Some(m) => m.merge_fruits(part).map_err(SearchError::from)?,
            None => merged = Some(part),
        }
    }
    Ok((aggregation.finish(merged)?, total))
}

/// An aggregation request (its Elasticsearch JSON form) ready to run with
/// any driver: its collector, then its result from what was collected.
pub struct Aggregation {
    aggs: Aggregations,
    /// Buckets allowed (tantivy's default is 65,000; its memory limit stays).
    max_buckets: u32,
}

impl Aggregation {
    pub fn new(aggs: Value, max_buckets: u32) -> Result<Aggregation, SearchError> {
        Ok(Aggregation {
            aggs: serde_json::from_value(aggs).map_err(|e| SearchError::Query(e.to_string()))?,
            max_buckets,
        })
    }

    fn limits(&self) -> AggregationLimitsGuard {
        AggregationLimitsGuard::new(None, Some(self.max_buckets))
    }

    pub fn collector(&self) -> DistributedAggregationCollector {
        let context = AggContextParams::new(self.limits(), TokenizerManager::default());
        DistributedAggregationCollector::from_aggs(self.aggs.clone(), context)
    }

    /// The result as JSON (`null` when nothing was collected).
    pub fn finish(
        &self,
        collected: Option<IntermediateAggregationResults>,
    ) -> Result<Value, SearchError> {
        let Some(collected) = collected else {
            return Ok(Value::Null);
        };
        let result = collected.into_final_result(self.aggs.clone(), self.limits())?;
        serde_json::to_value(&result).map_err(|e| SearchError::Query(e.to_string()))
    }
}

/// A group value as text: numbers without a fraction as whole numbers,
/// as they were sent.
pub fn key_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => format!("{}", f as i64),
            _ => n.to_string(),
        }),
        _ => None,
    }
}

/// The value of `field` (a promoted name, or a nested path under
/// `fields`, with or without that prefix) in a stored event, as text: an
/// alert's group key, a derived metric's tag (`crate::derived`).
pub fn value_at(event: &Value, field: &str) -> Option<String> {
    if PROMOTED.contains(&field) {
        return key_text(event.get(field)?);
    }
    let path = field.strip_prefix("fields.").unwrap_or(field);
    let mut v = event.get("fields")?;
    for part in path.split('.') {
        v = v.get(part)?;
    }
    key_text(v)
}
