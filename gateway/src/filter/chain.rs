//! A route's filter chain applied to one batch.
//!
//! Events enter as decoded documents (a JSON object or a text line) and go
//! through the filters in order; each filter sees what the previous one
//! left. Verdicts are applied here: keep, drop (counted), edits (on the
//! JSON document; a text event is `{"message": line}`), replace and split
//! (new raw bytes: a JSON object if they parse as one, else a text line).
//! When a filter fails on the batch, or is not uploaded, the events as they
//! stood before it become dead letters with the filter's name and the
//! reason, and the chain stops: nothing is lost. An edit that cannot be
//! applied dead-letters only its event. On a route of the `event` class a
//! `drop` is not obeyed: the event becomes a dead letter saying so (such a
//! filter is refused at upload and at start, see [`super::caps`], unless it
//! wrongly declares that it never drops).

use serde_json::{Map, Value};

use super::config::FilterRef;
use super::engine::{Failure, wit};
use super::registry::Registry;
use crate::config::class::Class;
use crate::config::valid_type_name;
use crate::event::{FieldNames, PromotedField};
use crate::telemetry::FilterReasonLabels;

/// One event between decoding and the WAL.
#[derive(Debug, Clone)]
pub struct Pending {
    /// The request line (or array element) it came from, for error reports.
    pub line: usize,
    pub doc: Doc,
    /// `doc`'s bytes as a filter gets them, when already known (the line as
    /// sent, or what the previous filter kept); `None` after an edit.
    pub raw: Option<Vec<u8>>,
    /// A log type a filter gave it (else the route's).
    pub log_type: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Doc {
    Object(Map<String, Value>),
    Text(String),
}

impl Doc {
    /// Raw bytes a filter gets: the object as JSON, or the line.
    fn raw(&self) -> Vec<u8> {
        match self {
            Doc::Object(m) => serde_json::to_vec(m).expect("a JSON map serializes"),
            Doc::Text(t) => t.as_bytes().to_vec(),
        }
    }

    /// New bytes from a filter: a JSON object if they are one, else text.
    fn parse(raw: Vec<u8>) -> Result<Doc, String> {
        if raw.first() == Some(&b'{')
            && let Ok(m) = serde_json::from_slice::<Map<String, Value>>(&raw)
        {
            return Ok(Doc::Object(m));
        }
        String::from_utf8(raw)
            .map(Doc::Text)
            .map_err(|_| "replacement is neither a JSON object nor UTF-8 text".to_string())
    }

    fn into_object(self) -> Map<String, Value> {
        match self {
            Doc::Object(m) => m,
            Doc::Text(t) => {
                let mut m = Map::new();
                m.insert("message".into(), Value::String(t));
                m
            }
        }
    }
}

/// An event a filter failed on, kept with the reason.
#[derive(Debug)]
pub struct DeadLetter {
    pub line: usize,
    pub raw: Vec<u8>,
    pub filter: String,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct Output {
    pub events: Vec<Pending>,
    pub dead: Vec<DeadLetter>,
    pub dropped: usize,
}

/// What a batch's filters see in `batch-context`.
pub struct BatchInfo<'a> {
    pub tenant: &'a str,
    pub log_type: &'a str,
    pub route: &'a str,
    pub received_ms: i64,
    pub client_ip: Option<String>,
    /// The route's field names, for the promoted fields filters see.
    pub fields: &'a FieldNames,
    /// The route's class: on `event` routes a drop is not obeyed.
    pub class: Class,
}

/// Runs `chain` over `events`. Blocking (filters run here): call from a
/// blocking thread.
pub fn run(
    registry: &Registry,
    chain: &[FilterRef],
    info: &BatchInfo,
    events: Vec<Pending>,
) -> Output {
    let ctx = wit::BatchContext {
        tenant: info.tenant.to_string(),
        log_type: info.log_type.to_string(),
        route: info.route.to_string(),
        received_ms: info.received_ms,
        client_ip: info.client_ip.clone(),
    };
    let mut out = Output::default();
    let mut current = events;
    for step in chain {
        if current.is_empty() {
            break;
        }
        let failure_labels = |kind: &str| FilterReasonLabels {
            tenant: info.tenant.to_string(),
            filter: step.name.clone(),
            reason: kind.to_string(),
        };
        let Some(loaded) = registry.get(info.tenant, &step.name) else {
            let f = Failure::new("missing", format!("filter `{}` is not uploaded", step.name));
            metrics_failure(registry, &failure_labels(f.kind));
            dead_letter_all(&mut out, current, &step.name, &f);
            return out;
        };
        let input: Vec<wit::Event> = current
            .iter_mut()
            .map(|ev| to_wit(ev, info.fields))
            .collect();
        let in_bytes: usize = input.iter().map(|e| e.raw.len()).sum();
        let check = |v| check_output(v, input.len(), in_bytes, registry);
        let mut result = loaded.process(&step.config, &ctx, &input, check);
        if matches!(&result, Err(f) if f.kind == "instantiate") {
            // Most likely every instance slot is taken, many by idle
            // instances of other filters: free those and try once more.
            registry.drop_idle_instances();
            result = loaded.process(&step.config, &ctx, &input, check);
        }
        drop(input);
        match result {
            Err(f) => {
                loaded.record_failure(&f);
                metrics_failure(registry, &failure_labels(f.kind));
                tracing::warn!(tenant = info.tenant, filter = %step.name, version = loaded.meta.version, reason = %f, "filter failed; batch kept as dead letters");
                dead_letter_all(&mut out, current, &step.name, &f);
                return out;
            }
            Ok(verdicts) => {
                use std::sync::atomic::Ordering::Relaxed;
                let before = current.len();
                let mut next = Vec::with_capacity(before);
                let mut dropped = 0;
                for (ev, verdict) in current.into_iter().zip(verdicts) {
                    apply(
                        ev,
                        verdict,
                        &step.name,
                        &mut next,
                        &mut out.dead,
                        &mut dropped,
                        info.class,
                    );
                }
                loaded.stats.batches.fetch_add(1, Relaxed);
                loaded.stats.events_in.fetch_add(before as u64, Relaxed);
                loaded
                    .stats
                    .events_dropped
                    .fetch_add(dropped as u64, Relaxed);
                let labels = loaded.owner.labels();
                let m = &loaded.owner.metrics;
                m.filter_batches.get_or_create(&labels).inc();
                if dropped > 0 {
                    m.filter_events_dropped
                        .get_or_create(&labels)
                        .inc_by(dropped as u64);
                }
                out.dropped += dropped;
                current = next;
            }
        }
    }
    out.events = current;
    out
}

fn metrics_failure(registry: &Registry, labels: &FilterReasonLabels) {
    registry
        .metrics()
        .filter_failures
        .get_or_create(labels)
        .inc();
}

fn dead_letter_all(out: &mut Output, events: Vec<Pending>, filter: &str, f: &Failure) {
    for ev in events {
        out.dead.push(DeadLetter {
            line: ev.line,
            raw: ev.raw.unwrap_or_else(|| ev.doc.raw()),
            filter: filter.to_string(),
            reason: format!("filter `{filter}` failed: {}", f.message),
        });
    }
}

/// The event as a filter gets it (its bytes are kept for the next filter),
/// with its promoted fields as the route's `names` find them.
pub fn to_wit(ev: &mut Pending, names: &FieldNames) -> wit::Event {
    let (format, promoted) = match &ev.doc {
        Doc::Object(m) => (wit::EventFormat::Json, promoted(m, names)),
        Doc::Text(_) => (
            wit::EventFormat::Text,
            wit::Promoted {
                timestamp: None,
                level: None,
                service: None,
                host: None,
                request_id: None,
            },
        ),
    };
    let raw = ev.raw.get_or_insert_with(|| ev.doc.raw()).clone();
    wit::Event {
        raw,
        format,
        promoted,
    }
}

/// The promoted fields as [`crate::event::from_object`] would read them.
fn promoted(m: &Map<String, Value>, names: &FieldNames) -> wit::Promoted {
    let text = |field| names.text(field, m);
    wit::Promoted {
        timestamp: text(PromotedField::Timestamp),
        level: text(PromotedField::Level).map(|l| l.to_ascii_lowercase()),
        service: text(PromotedField::Service),
        host: text(PromotedField::Host),
        request_id: text(PromotedField::RequestId),
    }
}

/// Refuses output the host cannot use: the wrong number of verdicts, or
/// more bytes than `filters.max_output_ratio` allows.
fn check_output(
    verdicts: Vec<wit::Verdict>,
    events: usize,
    in_bytes: usize,
    registry: &Registry,
) -> Result<Vec<wit::Verdict>, Failure> {
    if verdicts.len() != events {
        return Err(Failure::new(
            "output",
            format!(
                "malformed output: {} verdicts for {events} events",
                verdicts.len()
            ),
        ));
    }
    let ratio = registry.config().max_output_ratio;
    let cap = in_bytes.saturating_mul(ratio).saturating_add(1 << 20);
    let mut out_bytes = 0usize;
    for v in &verdicts {
        out_bytes += match v {
            wit::Verdict::Replace(b) => b.len(),
            wit::Verdict::Split(parts) => parts.iter().map(Vec::len).sum(),
            wit::Verdict::Edits(edits) => edits.iter().map(edit_size).sum(),
            wit::Verdict::Keep | wit::Verdict::Drop => 0,
        };
    }
    if out_bytes > cap {
        return Err(Failure::new(
            "output",
            format!(
                "output too large: {out_bytes} bytes for {in_bytes} bytes in (at most {ratio}x + 1 MiB, filters.max_output_ratio)"
            ),
        ));
    }
    Ok(verdicts)
}

fn edit_size(e: &wit::Edit) -> usize {
    match e {
        wit::Edit::Set((path, value)) => {
            path.len()
                + match value {
                    wit::Value::Text(s) | wit::Value::Json(s) => s.len(),
                    _ => 8,
                }
        }
        wit::Edit::Remove(p) | wit::Edit::SetType(p) => p.len(),
    }
}

fn apply(
    ev: Pending,
    verdict: wit::Verdict,
    filter: &str,
    next: &mut Vec<Pending>,
    dead: &mut Vec<DeadLetter>,
    dropped: &mut usize,
    class: Class,
) {
    let line = ev.line;
    let bad = |dead: &mut Vec<DeadLetter>, raw: Vec<u8>, reason: String| {
        dead.push(DeadLetter {
            line,
            raw,
            filter: filter.to_string(),
            reason: format!("filter `{filter}`: {reason}"),
        })
    };
    match verdict {
        wit::Verdict::Keep => next.push(ev),
        wit::Verdict::Drop if class == Class::Event => {
            let raw = ev.raw.unwrap_or_else(|| ev.doc.raw());
            bad(
                dead,
                raw,
                "dropped an event of an event-class route; events are never dropped, so it is kept as a dead letter (remove the filter from the route's chain)".into(),
            )
        }
        wit::Verdict::Drop => *dropped += 1,
        wit::Verdict::Edits(edits) => {
            let mut ev = ev;
            // Filled by `to_wit`; the edit makes it stale anyway.
            let raw_before = ev.raw.take().unwrap_or_else(|| ev.doc.raw());
            match apply_edits(ev, edits) {
                Ok(ev) => next.push(ev),
                Err(reason) => bad(dead, raw_before, reason),
            }
        }
        wit::Verdict::Replace(raw) => match Doc::parse(raw) {
            Ok(doc) => next.push(Pending {
                doc,
                raw: None,
                ..ev
            }),
            Err(reason) => bad(dead, ev.raw.unwrap_or_else(|| ev.doc.raw()), reason),
        },
        wit::Verdict::Split(parts) => {
            for raw in parts {
                match Doc::parse(raw) {
                    Ok(doc) => next.push(Pending {
                        doc,
                        raw: None,
                        line,
                        log_type: ev.log_type.clone(),
                    }),
                    Err(reason) => {
                        bad(dead, ev.raw.clone().unwrap_or_else(|| ev.doc.raw()), reason)
                    }
                }
            }
        }
    }
}

fn apply_edits(ev: Pending, edits: Vec<wit::Edit>) -> Result<Pending, String> {
    let mut log_type = ev.log_type;
    let mut obj = ev.doc.into_object();
    for edit in edits {
        match edit {
            wit::Edit::Set((path, value)) => {
                let value = match value {
                    wit::Value::Null => Value::Null,
                    wit::Value::Boolean(b) => Value::Bool(b),
                    wit::Value::Integer(n) => Value::from(n),
                    wit::Value::Float(f) => Value::from(f),
                    wit::Value::Text(s) => Value::String(s),
                    wit::Value::Json(s) => serde_json::from_str(&s)
                        .map_err(|e| format!("edit of `{path}`: invalid JSON value: {e}"))?,
                };
                set_path(&mut obj, &path, value)?;
            }
            wit::Edit::Remove(path) => remove_path(&mut obj, &path),
            wit::Edit::SetType(t) => {
                if !valid_type_name(&t) {
                    return Err(format!(
                        "log type `{t}` must be 1-64 characters of a-z, 0-9, '_' and '-'"
                    ));
                }
                log_type = Some(t);
            }
        }
    }
    Ok(Pending {
        line: ev.line,
        doc: Doc::Object(obj),
        raw: None,
        log_type,
    })
}

fn set_path(obj: &mut Map<String, Value>, path: &str, value: Value) -> Result<(), String> {
    let mut parts = path.split('.').peekable();
    let mut cur = obj;
    while let Some(part) = parts.next() {
        if part.is_empty() {
            return Err(format!("edit path `{path}` has an empty segment"));
        }
        if parts.peek().is_none() {
            cur.insert(part.to_string(), value);
            return Ok(());
        }
        let slot = cur
            .entry(part.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            return Err(format!("edit path `{path}`: `{part}` is not an object"));
        }
        cur = slot.as_object_mut().expect("checked above");
    }
    Err("edit path is empty".into())
}

fn remove_path(obj: &mut Map<String, Value>, path: &str) {
    match path.split_once('.') {
        None => {
            obj.remove(path);
        }
        Some((head, rest)) => {
            if let Some(Value::Object(inner)) = obj.get_mut(head) {
                remove_path(inner, rest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pending(v: Value) -> Pending {
        let Value::Object(m) = v else { panic!() };
        Pending {
            line: 1,
            doc: Doc::Object(m),
            raw: None,
            log_type: None,
        }
    }

    #[test]
    fn edits_set_nested_fields_remove_and_retype() {
        let ev = pending(json!({"message": "x", "http": {"status": 200}, "secret": 1}));
        let out = apply_edits(
            ev,
            vec![
                wit::Edit::Set(("http.method".into(), wit::Value::Text("GET".into()))),
                wit::Edit::Set(("user.id".into(), wit::Value::Integer(7))),
                wit::Edit::Set(("tags".into(), wit::Value::Json("[1,2]".into()))),
                wit::Edit::Remove("secret".into()),
                wit::Edit::SetType("audit".into()),
            ],
        )
        .unwrap();
        let Doc::Object(m) = out.doc else { panic!() };
        assert_eq!(
            Value::Object(m),
            json!({"message": "x", "http": {"status": 200, "method": "GET"}, "user": {"id": 7}, "tags": [1, 2]})
        );
        assert_eq!(out.log_type.as_deref(), Some("audit"));
    }

    #[test]
    fn bad_edits_are_errors_not_panics() {
        let e = |edit| apply_edits(pending(json!({"a": 1})), vec![edit]).unwrap_err();
        assert!(e(wit::Edit::Set(("a.b".into(), wit::Value::Null))).contains("not an object"));
        assert!(e(wit::Edit::Set(("x..y".into(), wit::Value::Null))).contains("empty segment"));
        assert!(
            e(wit::Edit::Set(("j".into(), wit::Value::Json("{".into())))).contains("invalid JSON")
        );
        assert!(e(wit::Edit::SetType("Bad Type".into())).contains("log type"));
    }

    #[test]
    fn text_events_edit_as_message_objects() {
        let ev = Pending {
            line: 3,
            doc: Doc::Text("hello".into()),
            raw: None,
            log_type: None,
        };
        let out = apply_edits(
            ev,
            vec![wit::Edit::Set((
                "level".into(),
                wit::Value::Text("info".into()),
            ))],
        )
        .unwrap();
        let Doc::Object(m) = out.doc else { panic!() };
        assert_eq!(
            Value::Object(m),
            json!({"message": "hello", "level": "info"})
        );
    }

    #[test]
    fn replacement_bytes_become_objects_or_text() {
        assert!(matches!(
            Doc::parse(b"{\"a\":1}".to_vec()),
            Ok(Doc::Object(_))
        ));
        assert!(matches!(
            Doc::parse(b"{not json".to_vec()),
            Ok(Doc::Text(_))
        ));
        assert!(Doc::parse(vec![0xff, 0xfe]).is_err());
    }
}
