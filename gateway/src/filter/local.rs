//! `logway filter test`: a filter run over local events, no server.
//!
//! Reads NDJSON or text lines (a line that is a JSON object is a JSON
//! event, any other line a text event), calls the filter in batches as the
//! gateway would (same engine, same limits), and writes one JSON line per
//! input event with its verdict.

use std::io::{BufRead, Write};
use std::sync::Arc;

use serde_json::{Value, json};

use super::chain::{self, Doc, Pending};
use super::config::FiltersConfig;
use super::engine::{FilterEngine, Owner, wit};
use super::registry::Loaded;
use crate::telemetry::Metrics;

/// Events per `process` call.
pub const BATCH: usize = 1000;

/// What a local run saw.
#[derive(Debug, Default)]
pub struct Summary {
    pub events: usize,
    pub kept: usize,
    pub dropped: usize,
    pub changed: usize,
}

/// Runs the component in `wasm` over the lines of `input`; verdicts go to
/// `out`. A filter failure is an error naming the batch's first line.
pub fn run(
    wasm: &[u8],
    config: &[(String, String)],
    log_type: &str,
    input: impl BufRead,
    mut out: impl Write,
) -> anyhow::Result<Summary> {
    let engine = FilterEngine::new(&FiltersConfig {
        max_upload_bytes: usize::MAX,
        ..FiltersConfig::default()
    })?;
    let (_, pre) = engine.compile(wasm).map_err(anyhow::Error::msg)?;
    let owner = Arc::new(Owner::new("local", "test", Arc::new(Metrics::new())));
    let mut instance = engine
        .instantiate(&pre, &owner, config)
        .map_err(|f| anyhow::anyhow!("{f}"))?;
    let ctx = wit::BatchContext {
        tenant: "local".into(),
        log_type: log_type.into(),
        route: "local".into(),
        received_ms: crate::now_ms(),
        client_ip: None,
    };
    let mut summary = Summary::default();
    let mut lines = input.lines().enumerate().peekable();
    while lines.peek().is_some() {
        let mut batch = Vec::with_capacity(BATCH);
        for (i, line) in lines.by_ref().take(BATCH) {
            batch.push(pending(i + 1, line?));
        }
        let events: Vec<wit::Event> = batch
            .iter_mut()
            .map(|ev| chain::to_wit(ev, crate::event::FieldNames::builtin()))
            .collect();
        let verdicts = engine
            .process(&mut instance, &ctx, &events)
            .map_err(|f| anyhow::anyhow!("line {}: {f}", batch[0].line))?;
        if verdicts.len() != events.len() {
            anyhow::bail!(
                "line {}: malformed output: {} verdicts for {} events",
                batch[0].line,
                verdicts.len(),
                events.len()
            );
        }
        for (ev, v) in batch.iter().zip(&verdicts) {
            summary.events += 1;
            match v {
                wit::Verdict::Keep => summary.kept += 1,
                wit::Verdict::Drop => summary.dropped += 1,
                _ => summary.changed += 1,
            }
            let mut line = verdict_json(v);
            line["line"] = json!(ev.line);
            writeln!(out, "{line}")?;
        }
    }
    Ok(summary)
}

/// One input line as the filter sees it: a JSON object is a JSON event,
/// anything else a text event.
fn pending(line_no: usize, line: String) -> Pending {
    let doc = match serde_json::from_str::<serde_json::Map<String, Value>>(&line) {
        Ok(m) => Doc::Object(m),
        Err(_) => Doc::Text(line),
    };
    Pending {
        line: line_no,
        doc,
        raw: None,
        log_type: None,
    }
}

/// Runs a tenant's uploaded version over `input`'s lines, at most
/// [`BATCH`] (the admin API's filter test, the UI's "test" button): one
/// verdict per line, as `logway filter test` prints them; nothing is
/// stored and the filter's stats are not touched.
pub fn test_uploaded(
    loaded: &Loaded,
    tenant: &str,
    log_type: &str,
    input: &str,
) -> Result<Vec<Value>, String> {
    let mut batch: Vec<Pending> = input
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| pending(i + 1, l.to_string()))
        .collect();
    if batch.len() > BATCH {
        return Err(format!("test at most {BATCH} events at a time"));
    }
    let events: Vec<wit::Event> = batch
        .iter_mut()
        .map(|ev| chain::to_wit(ev, crate::event::FieldNames::builtin()))
        .collect();
    let ctx = wit::BatchContext {
        tenant: tenant.into(),
        log_type: log_type.into(),
        route: "test".into(),
        received_ms: crate::now_ms(),
        client_ip: None,
    };
    let verdicts = loaded
        .process(&[], &ctx, &events, Ok)
        .map_err(|f| f.to_string())?;
    if verdicts.len() != events.len() {
        return Err(format!(
            "malformed output: {} verdicts for {} events",
            verdicts.len(),
            events.len()
        ));
    }
    Ok(batch
        .iter()
        .zip(&verdicts)
        .map(|(ev, v)| {
            let mut out = verdict_json(v);
            out["line"] = json!(ev.line);
            out
        })
        .collect())
}

/// A verdict as JSON: `{"verdict":"edits","edits":[{"set":"level","value":"error"}]}`.
pub fn verdict_json(v: &wit::Verdict) -> Value {
    let bytes = |b: &[u8]| -> Value {
        match serde_json::from_slice::<Value>(b) {
            Ok(v @ Value::Object(_)) => v,
            _ => Value::String(String::from_utf8_lossy(b).into_owned()),
        }
    };
    match v {
        wit::Verdict::Keep => json!({"verdict": "keep"}),
        wit::Verdict::Drop => json!({"verdict": "drop"}),
        wit::Verdict::Replace(b) => json!({"verdict": "replace", "event": bytes(b)}),
        wit::Verdict::Split(parts) => json!({
            "verdict": "split",
            "events": parts.iter().map(|p| bytes(p)).collect::<Vec<_>>(),
        }),
        wit::Verdict::Edits(edits) => json!({
            "verdict": "edits",
            "edits": edits.iter().map(edit_json).collect::<Vec<_>>(),
        }),
    }
}

fn edit_json(e: &wit::Edit) -> Value {
    match e {
        wit::Edit::Set((path, value)) => {
            let value = match value {
                wit::Value::Null => Value::Null,
                wit::Value::Boolean(b) => json!(b),
                wit::Value::Integer(n) => json!(n),
                wit::Value::Float(f) => json!(f),
                wit::Value::Text(s) => json!(s),
                wit::Value::Json(s) => {
                    serde_json::from_str(s).unwrap_or_else(|_| json!({"invalid_json": s}))
                }
            };
            json!({"set": path, "value": value})
        }
        wit::Edit::Remove(path) => json!({"remove": path}),
        wit::Edit::SetType(t) => json!({"set_type": t}),
    }
}
