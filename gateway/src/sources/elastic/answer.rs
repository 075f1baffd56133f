//! Elasticsearch's answers: the bulk response (`took`, `errors`, then one
//! item per action, in order, compact: Fluent Bit and Vector look for the
//! literal `"errors":false,"items":[` and `"errors":true`), a single
//! document's response, and the error body.
//!
//! A bulk item carries `_index`, `_id`, `_version`, `result` and `status`
//! (or `error`): what clients read. Elasticsearch's `_shards`, `_seq_no`
//! and `_primary_term` describe its replicas; a single document's answer
//! has them, bulk items leave them out (a third of each item's bytes).

use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::bulk::Op;
use crate::error::ApiError;

/// What became of one action.
#[derive(Debug, Clone)]
pub struct ItemAnswer {
    pub op: Op,
    /// Shared by the actions of one index.
    pub index: Arc<str>,
    pub id: Option<String>,
    pub status: u16,
    /// `created`, `noop`, … for a success.
    pub result: Option<&'static str>,
    /// (type, reason) for a failure.
    pub error: Option<(&'static str, String)>,
}

impl ItemAnswer {
    pub fn new(op: Op, index: Arc<str>, id: Option<String>) -> ItemAnswer {
        ItemAnswer {
            op,
            index,
            id,
            status: 201,
            result: Some("created"),
            error: None,
        }
    }

    pub fn ok(&mut self, status: u16, result: &'static str) {
        self.status = status;
        self.result = Some(result);
        self.error = None;
    }

    pub fn fail(&mut self, status: u16, kind: &'static str, reason: impl Into<String>) {
        self.status = status;
        self.result = None;
        self.error = Some((kind, reason.into()));
    }

    pub fn failed(&self) -> bool {
        self.status >= 300
    }
}

#[derive(Serialize)]
struct Shards {
    total: u32,
    successful: u32,
    failed: u32,
}

#[derive(Serialize)]
struct ErrorCause<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    reason: &'a str,
}

/// An action's body, as in Elasticsearch.
#[derive(Serialize)]
struct ItemBody<'a> {
    #[serde(rename = "_index")]
    index: &'a str,
    #[serde(rename = "_id")]
    id: Option<&'a str>,
    #[serde(rename = "_version", skip_serializing_if = "Option::is_none")]
    version: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a str>,
    #[serde(rename = "_shards", skip_serializing_if = "Option::is_none")]
    shards: Option<Shards>,
    #[serde(rename = "_seq_no", skip_serializing_if = "Option::is_none")]
    seq_no: Option<u64>,
    #[serde(rename = "_primary_term", skip_serializing_if = "Option::is_none")]
    primary_term: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorCause<'a>>,
}

impl ItemAnswer {
    /// As a bulk item (`in_bulk`: with `status`, without the replica
    /// fields) or as a single document's answer.
    fn body(&self, in_bulk: bool) -> ItemBody<'_> {
        let ok = self.result.is_some();
        let single = ok && !in_bulk;
        ItemBody {
            index: &self.index,
            id: self.id.as_deref(),
            version: ok.then_some(1),
            result: self.result,
            shards: single.then_some(Shards {
                total: 1,
                successful: 1,
                failed: 0,
            }),
            seq_no: single.then_some(0),
            primary_term: single.then_some(1),
            status: in_bulk.then_some(self.status),
            error: self
                .error
                .as_ref()
                .map(|(kind, reason)| ErrorCause { kind, reason }),
        }
    }
}

/// The `_bulk` answer: always 200, with one item per action; only the
/// parts `filter_path` asks for, when it is given.
pub fn bulk(items: &[ItemAnswer], took_ms: u64, filter: Option<&FilterPath>) -> Response {
    let errors = items.iter().any(ItemAnswer::failed);
    let body = match filter {
        None => bulk_body(items, took_ms, errors),
        Some(f) => serde_json::to_vec(&f.apply(items, took_ms, errors)).expect("answer serializes"),
    };
    json(StatusCode::OK, body)
}

/// The whole bulk answer's text, written item by item (one per event, so
/// written directly rather than through a serializer's maps): the same
/// members, in the same order, as [`ItemAnswer::body`] gives a bulk item.
fn bulk_body(items: &[ItemAnswer], took: u64, errors: bool) -> Vec<u8> {
    use std::io::Write;
    let string = |out: &mut Vec<u8>, s: &str| {
        serde_json::to_writer(out, s).expect("a string serializes");
    };
    let mut out = Vec::with_capacity(48 + items.len() * 112);
    write!(out, r#"{{"took":{took},"errors":{errors},"items":["#).expect("to a Vec");
    // The actions of one index share its name: escaped once per run.
    let mut index: Option<(&Arc<str>, Vec<u8>)> = None;
    for (n, a) in items.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"");
        out.extend_from_slice(a.op.name().as_bytes());
        out.extend_from_slice(b"\":{\"_index\":");
        match &index {
            Some((name, text)) if Arc::ptr_eq(name, &a.index) => out.extend_from_slice(text),
            _ => {
                let mut text = Vec::with_capacity(a.index.len() + 2);
                string(&mut text, &a.index);
                out.extend_from_slice(&text);
                index = Some((&a.index, text));
            }
        }
        out.extend_from_slice(b",\"_id\":");
        match &a.id {
            Some(id) => string(&mut out, id),
            None => out.extend_from_slice(b"null"),
        }
        if let Some(result) = a.result {
            out.extend_from_slice(b",\"_version\":1,\"result\":");
            string(&mut out, result);
        }
        write!(out, r#","status":{}"#, a.status).expect("to a Vec");
        if let Some((kind, reason)) = &a.error {
            out.extend_from_slice(b",\"error\":{\"type\":");
            string(&mut out, kind);
            out.extend_from_slice(b",\"reason\":");
            string(&mut out, reason);
            out.push(b'}');
        }
        out.extend_from_slice(b"}}");
    }
    out.extend_from_slice(b"]}");
    out
}

/// `filter_path` of a bulk request, in the forms shippers send
/// (Filebeat and Logstash: `errors,items.*.error,items.*.status`):
/// top-level `took`, `errors`, `items`, and `items.*.<field>`. Anything
/// else (exclusions, other wildcards) is not understood: the whole answer
/// is sent, as without a filter.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct FilterPath {
    took: bool,
    errors: bool,
    /// Whole items (`items`, `items.*`).
    whole_items: bool,
    /// Fields of items (`items.*.status`).
    item_fields: Vec<String>,
}

impl FilterPath {
    pub fn parse(value: &str) -> Option<FilterPath> {
        let mut f = FilterPath::default();
        for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.split('.').collect::<Vec<_>>().as_slice() {
                ["took"] => f.took = true,
                ["errors"] => f.errors = true,
                ["items"] | ["items", "*"] => f.whole_items = true,
                ["items", "*", field] if !field.contains('*') => {
                    f.item_fields.push(field.to_string())
                }
                _ => return None,
            }
        }
        Some(f)
    }

    fn apply(&self, items: &[ItemAnswer], took: u64, errors: bool) -> serde_json::Value {
        let mut out = serde_json::Map::new();
        if self.took {
            out.insert("took".into(), took.into());
        }
        if self.errors {
            out.insert("errors".into(), errors.into());
        }
        if self.whole_items || !self.item_fields.is_empty() {
            let items = items
                .iter()
                .map(|item| {
                    let mut body = serde_json::to_value(item.body(true)).expect("item serializes");
                    if let (false, serde_json::Value::Object(map)) = (self.whole_items, &mut body) {
                        map.retain(|k, _| self.item_fields.iter().any(|f| f == k));
                    }
                    serde_json::json!({ item.op.name(): body })
                })
                .collect();
            out.insert("items".into(), serde_json::Value::Array(items));
        }
        serde_json::Value::Object(out)
    }
}

/// A single document's answer (`/{index}/_doc`): its status, and the
/// error body when it failed.
pub fn single(item: &ItemAnswer) -> Response {
    let status = StatusCode::from_u16(item.status).unwrap_or(StatusCode::OK);
    match &item.error {
        Some((kind, reason)) => EsError::new(item.status, kind, reason.clone()).into_response(),
        None => json(
            status,
            serde_json::to_vec(&item.body(false)).expect("answer serializes"),
        ),
    }
}

pub fn json(status: StatusCode, body: impl Into<axum::body::Body>) -> Response {
    let mut resp = (status, body.into()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// A request Elasticsearch would refuse as a whole.
#[derive(Debug)]
pub struct EsError {
    pub status: u16,
    pub kind: &'static str,
    pub reason: String,
    pub retry_after: Option<u64>,
}

impl EsError {
    pub fn new(status: u16, kind: &'static str, reason: impl Into<String>) -> EsError {
        EsError {
            status,
            kind,
            reason: reason.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(reason: impl Into<String>) -> EsError {
        EsError::new(400, "illegal_argument_exception", reason)
    }
}

/// The pipeline's and the HTTP layer's refusals, with the statuses of the
/// one mapping (`crate::error`) and Elasticsearch's error types.
impl From<ApiError> for EsError {
    fn from(e: ApiError) -> Self {
        let status = e.status().as_u16();
        let retry_after = match &e {
            ApiError::RateLimited { retry_after, .. } => Some(*retry_after),
            ApiError::Unavailable(_) => Some(crate::error::RETRY_AFTER_SECS),
            _ => None,
        };
        let kind = match status {
            401 | 403 => "security_exception",
            404 => "resource_not_found_exception",
            408 => "timeout_exception",
            409 => "version_conflict_engine_exception",
            413 => "content_too_long_exception",
            429 => "es_rejected_execution_exception",
            503 => "unavailable_shards_exception",
            500 => "exception",
            _ => "illegal_argument_exception",
        };
        EsError {
            status,
            kind,
            reason: e.to_string(),
            retry_after,
        }
    }
}

impl From<crate::pipeline::Error> for EsError {
    fn from(e: crate::pipeline::Error) -> Self {
        ApiError::from(e).into()
    }
}

impl IntoResponse for EsError {
    fn into_response(self) -> Response {
        let cause = serde_json::json!({"type": self.kind, "reason": self.reason});
        let body = serde_json::json!({
            "error": {"root_cause": [cause], "type": self.kind, "reason": self.reason},
            "status": self.status,
        });
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        let mut resp = json(status, body.to_string());
        let h = resp.headers_mut();
        if let Some(secs) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == 401 {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("ApiKey, Basic realm=\"logway\", charset=\"UTF-8\""),
            );
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_path_keeps_what_shippers_ask_for() {
        let f = FilterPath::parse("errors,items.*.error,items.*.status").unwrap();
        let mut bad = ItemAnswer::new(Op::Create, "logs".into(), None);
        bad.fail(400, "document_parsing_exception", "bad");
        let items = [
            ItemAnswer::new(Op::Index, "logs".into(), Some("1".into())),
            bad,
        ];
        let v = f.apply(&items, 3, true);
        assert_eq!(
            v,
            serde_json::json!({"errors": true, "items": [
                {"index": {"status": 201}},
                {"create": {"status": 400, "error": {"type": "document_parsing_exception", "reason": "bad"}}}
            ]})
        );
        assert!(FilterPath::parse("-took").is_none());
        assert!(FilterPath::parse("items.*.*").is_none());
        assert_eq!(
            FilterPath::parse("took").unwrap().apply(&items, 3, true),
            serde_json::json!({"took": 3})
        );
    }

    #[test]
    fn the_bulk_answer_is_compact_with_errors_before_items() {
        let mut bad = ItemAnswer::new(Op::Create, "logs".into(), Some("2".into()));
        bad.fail(409, "version_conflict_engine_exception", "exists");
        let items = [
            ItemAnswer::new(Op::Index, "logs".into(), Some("1".into())),
            bad,
        ];
        let text = String::from_utf8(bulk_body(&items, 3, true)).unwrap();
        assert!(text.starts_with(r#"{"took":3,"errors":true,"items":[{"index":{"_index":"logs","_id":"1","_version":1,"result":"created","status":201}},"#), "{text}");
        assert!(text.contains(r#"{"create":{"_index":"logs","_id":"2","status":409,"error":{"type":"version_conflict_engine_exception","reason":"exists"}}}"#), "{text}");
    }

    #[test]
    fn the_bulk_answer_holds_each_items_body() {
        let odd: Arc<str> = "we\"ird\\ndex\u{1}".into();
        let mut items = vec![
            ItemAnswer::new(Op::Index, odd.clone(), Some("1".into())),
            ItemAnswer::new(Op::Create, odd.clone(), None),
            ItemAnswer::new(Op::Index, "logs".into(), Some("x\"y".into())),
            ItemAnswer::new(Op::Index, odd, Some("3".into())),
        ];
        items[1].fail(400, "document_parsing_exception", "bad \"line\"\n");
        items[2].ok(200, "noop");
        let got: serde_json::Value = serde_json::from_slice(&bulk_body(&items, 7, true)).unwrap();
        let bodies: Vec<serde_json::Value> = items
            .iter()
            .map(|a| serde_json::json!({ a.op.name(): a.body(true) }))
            .collect();
        assert_eq!(
            got,
            serde_json::json!({"took": 7, "errors": true, "items": bodies})
        );
    }
}
