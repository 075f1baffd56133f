//! An OTLP log record → the JSON object the pipeline makes an event of.
//!
//! | OTLP | event |
//! |---|---|
//! | `time_unix_nano`, else `observed_time_unix_nano` | `timestamp` (none: the receive time) |
//! | `severity_text`, else `severity_number`'s range | `level` (`trace` … `fatal`) |
//! | `severity_number` | `severity_number` (when set) |
//! | `body`: a string | `message` |
//! | `body`: a map | its members (a `message` among them is the message) |
//! | `body`: anything else | `message`, as JSON text |
//! | resource `service.name` | `service` |
//! | resource `host.name` | `host` |
//! | other resource attributes | `resource.{name}` |
//! | scope name, version | `scope.name`, `scope.version` |
//! | attributes | members of their own name |
//! | `trace_id`, `span_id` (hex) | `trace_id`, `span_id`, and `request_id` = the trace id |
//! | `event_name` | `event_name` |
//!
//! The trace id as `request_id` makes it promoted (searchable, and the
//! UI's request trace): `request_id:<trace id>` finds every log of a trace.

use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::resource::v1::Resource;
use serde_json::{Map, Value};

/// What the records of one resource and scope share.
pub struct Shared {
    service: Option<Value>,
    host: Option<Value>,
    resource: Map<String, Value>,
    scope: Map<String, Value>,
}

impl Shared {
    pub fn new(resource: Option<&Resource>, scope: Option<&InstrumentationScope>) -> Shared {
        let mut shared = Shared {
            service: None,
            host: None,
            resource: Map::new(),
            scope: Map::new(),
        };
        for kv in resource.map_or(&[][..], |r| &r.attributes[..]) {
            let v = any(kv.value.as_ref());
            match kv.key.as_str() {
                "service.name" => shared.service = Some(v),
                "host.name" => shared.host = Some(v),
                _ => {
                    shared.resource.insert(kv.key.clone(), v);
                }
            }
        }
        if let Some(s) = scope {
            if !s.name.is_empty() {
                shared
                    .scope
                    .insert("name".into(), Value::from(s.name.as_str()));
            }
            if !s.version.is_empty() {
                shared
                    .scope
                    .insert("version".into(), Value::from(s.version.as_str()));
            }
        }
        shared
    }
}

/// The first of `names` among the record's attributes, else the
/// resource's, as a string (the log type it names).
pub fn named_type<'a>(
    names: &[String],
    record: &'a LogRecord,
    resource: Option<&'a Resource>,
) -> Option<&'a str> {
    let find = |attrs: &'a [KeyValue], name: &str| {
        attrs.iter().find(|kv| kv.key == name).and_then(|kv| {
            match kv.value.as_ref()?.value.as_ref()? {
                Any::StringValue(s) if !s.trim().is_empty() => Some(s.as_str()),
                _ => None,
            }
        })
    };
    names.iter().find_map(|name| {
        find(&record.attributes, name).or_else(|| resource.and_then(|r| find(&r.attributes, name)))
    })
}

/// The record as an event's JSON object.
pub fn record(r: &LogRecord, shared: &Shared) -> Map<String, Value> {
    let mut m = Map::new();
    for kv in &r.attributes {
        m.insert(kv.key.clone(), any(kv.value.as_ref()));
    }
    match r.body.as_ref().and_then(|b| b.value.as_ref()) {
        None => {}
        Some(Any::StringValue(s)) => {
            m.insert("message".into(), Value::from(s.as_str()));
        }
        Some(Any::KvlistValue(list)) => {
            for kv in &list.values {
                m.insert(kv.key.clone(), any(kv.value.as_ref()));
            }
        }
        Some(other) => {
            let text = any_value(other).to_string();
            m.insert("message".into(), Value::from(text));
        }
    }
    let time = if r.time_unix_nano != 0 {
        r.time_unix_nano
    } else {
        r.observed_time_unix_nano
    };
    if let Some(t) = rfc3339_nanos(time) {
        m.insert("timestamp".into(), Value::from(t));
    }
    let level = if r.severity_text.trim().is_empty() {
        level_of(r.severity_number).map(str::to_string)
    } else {
        Some(r.severity_text.clone())
    };
    if let Some(level) = level {
        m.insert("level".into(), Value::from(level));
    }
    if r.severity_number != 0 {
        m.insert("severity_number".into(), Value::from(r.severity_number));
    }
    if let Some(s) = &shared.service {
        m.insert("service".into(), s.clone());
    }
    if let Some(h) = &shared.host {
        m.insert("host".into(), h.clone());
    }
    if !shared.resource.is_empty() {
        m.insert("resource".into(), Value::Object(shared.resource.clone()));
    }
    if !shared.scope.is_empty() {
        m.insert("scope".into(), Value::Object(shared.scope.clone()));
    }
    if !r.trace_id.is_empty() {
        let id = hex(&r.trace_id);
        m.insert("request_id".into(), Value::from(id.clone()));
        m.insert("trace_id".into(), Value::from(id));
    }
    if !r.span_id.is_empty() {
        m.insert("span_id".into(), Value::from(hex(&r.span_id)));
    }
    if !r.event_name.is_empty() {
        m.insert("event_name".into(), Value::from(r.event_name.as_str()));
    }
    m
}

/// OTel's severity number ranges (1-4 TRACE … 21-24 FATAL).
fn level_of(n: i32) -> Option<&'static str> {
    Some(match n {
        1..=4 => "trace",
        5..=8 => "debug",
        9..=12 => "info",
        13..=16 => "warn",
        17..=20 => "error",
        21..=24 => "fatal",
        _ => return None,
    })
}

fn any(v: Option<&AnyValue>) -> Value {
    v.and_then(|v| v.value.as_ref())
        .map_or(Value::Null, any_value)
}

fn any_value(v: &Any) -> Value {
    match v {
        Any::StringValue(s) => Value::from(s.as_str()),
        Any::BoolValue(b) => Value::from(*b),
        Any::IntValue(i) => Value::from(*i),
        // JSON has no NaN or infinity: those are kept as their names.
        Any::DoubleValue(d) => serde_json::Number::from_f64(*d)
            .map_or_else(|| Value::from(d.to_string()), Value::Number),
        Any::ArrayValue(a) => Value::Array(a.values.iter().map(|v| any(Some(v))).collect()),
        Any::KvlistValue(list) => Value::Object(
            list.values
                .iter()
                .map(|kv| (kv.key.clone(), any(kv.value.as_ref())))
                .collect(),
        ),
        Any::BytesValue(b) => {
            use base64::Engine;
            Value::from(base64::engine::general_purpose::STANDARD.encode(b))
        }
        // An index into a profiles dictionary: logs have none.
        Any::StringValueStrindex(_) => Value::Null,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Nanoseconds since the epoch as RFC 3339 (0: none).
fn rfc3339_nanos(nanos: u64) -> Option<String> {
    if nanos == 0 {
        return None;
    }
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos)).ok()?;
    Some(crate::event::format_time(t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::KeyValueList;

    fn kv(key: &str, v: Any) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(v) }),
            ..Default::default()
        }
    }

    #[test]
    fn maps_a_record() {
        let resource = Resource {
            attributes: vec![
                kv("service.name", Any::StringValue("checkout".into())),
                kv("host.name", Any::StringValue("web-1".into())),
                kv("deployment.environment", Any::StringValue("prod".into())),
            ],
            ..Default::default()
        };
        let scope = InstrumentationScope {
            name: "app.payments".into(),
            version: "1.2".into(),
            ..Default::default()
        };
        let r = LogRecord {
            time_unix_nano: 1_764_500_000_123_456_789,
            severity_number: 17,
            body: Some(AnyValue {
                value: Some(Any::KvlistValue(KeyValueList {
                    values: vec![
                        kv("message", Any::StringValue("card declined".into())),
                        kv("amount", Any::DoubleValue(12.5)),
                    ],
                })),
            }),
            attributes: vec![
                kv("http.status", Any::IntValue(402)),
                kv("ratio", Any::DoubleValue(f64::NAN)),
                kv("blob", Any::BytesValue(vec![0, 255])),
            ],
            trace_id: vec![0xab; 16],
            span_id: vec![0x01; 8],
            event_name: "payment.declined".into(),
            ..Default::default()
        };
        let shared = Shared::new(Some(&resource), Some(&scope));
        let m = Value::Object(record(&r, &shared));
        assert_eq!(m["timestamp"], "2025-11-30T10:53:20.123456789Z");
        assert_eq!(m["level"], "error");
        assert_eq!(m["severity_number"], 17);
        assert_eq!(m["message"], "card declined");
        assert_eq!(m["amount"], 12.5);
        assert_eq!(m["service"], "checkout");
        assert_eq!(m["host"], "web-1");
        assert_eq!(m["resource"]["deployment.environment"], "prod");
        assert_eq!(m["scope"]["name"], "app.payments");
        assert_eq!(m["http.status"], 402);
        assert_eq!(m["ratio"], "NaN");
        assert_eq!(m["blob"], "AP8=");
        assert_eq!(m["trace_id"], "ab".repeat(16));
        assert_eq!(m["request_id"], "ab".repeat(16));
        assert_eq!(m["span_id"], "0101010101010101");
        assert_eq!(m["event_name"], "payment.declined");
        assert_eq!(
            named_type(
                &["logway.type".into(), "service.name".into()],
                &r,
                Some(&resource)
            ),
            Some("checkout")
        );
    }

    #[test]
    fn severity_text_wins_and_other_bodies_are_text() {
        let r = LogRecord {
            observed_time_unix_nano: 1_000_000_000,
            severity_number: 9,
            severity_text: "Notice".into(),
            body: Some(AnyValue {
                value: Some(Any::IntValue(7)),
            }),
            ..Default::default()
        };
        let m = record(&r, &Shared::new(None, None));
        assert_eq!(m["level"], "Notice");
        assert_eq!(m["message"], "7");
        assert_eq!(m["timestamp"], "1970-01-01T00:00:01Z");
        let none = record(&LogRecord::default(), &Shared::new(None, None));
        assert!(none.is_empty(), "{none:?}");
    }
}
