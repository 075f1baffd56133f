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
use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::sources::object::ObjectText;

/// What the records of one resource and scope share, as JSON text.
pub struct Shared {
    service: Option<String>,
    host: Option<String>,
    /// The other resource attributes, an object (none: no member).
    resource: Option<String>,
    scope: Option<String>,
}

impl Shared {
    pub fn new(resource: Option<&Resource>, scope: Option<&InstrumentationScope>) -> Shared {
        let attributes = resource.map_or(&[][..], |r| &r.attributes[..]);
        let last = |name: &str| {
            attributes
                .iter()
                .rev()
                .find(|kv| kv.key == name)
                .map(|kv| json(&Json(kv.value.as_ref())))
        };
        let rest: Vec<&KeyValue> = attributes
            .iter()
            .filter(|kv| !matches!(kv.key.as_str(), "service.name" | "host.name"))
            .collect();
        let scope = scope.filter(|s| !s.name.is_empty() || !s.version.is_empty());
        Shared {
            service: last("service.name"),
            host: last("host.name"),
            resource: (!rest.is_empty()).then(|| json(&Attributes(&rest))),
            scope: scope.map(|s| {
                let mut o = ObjectText::with_capacity(s.name.len() + s.version.len() + 24);
                if !s.name.is_empty() {
                    o.str("name", &s.name);
                }
                if !s.version.is_empty() {
                    o.str("version", &s.version);
                }
                o.finish()
            }),
        }
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

/// The record as an event's JSON object (text). Members in this order,
/// a later one winning over an earlier one of the same name: the
/// attributes, the body, then what the table above names. `bytes`: the
/// record's encoded length, for the room to reserve.
pub fn record(r: &LogRecord, shared: &Shared, bytes: usize) -> String {
    let mut o = ObjectText::with_capacity(bytes * 2 + 192);
    for kv in &r.attributes {
        o.value(&kv.key, &Json(kv.value.as_ref()));
    }
    match r.body.as_ref().and_then(|b| b.value.as_ref()) {
        None => {}
        Some(Any::StringValue(s)) => o.str("message", s),
        Some(Any::KvlistValue(list)) => {
            for kv in &list.values {
                o.value(&kv.key, &Json(kv.value.as_ref()));
            }
        }
        Some(other) => o.str("message", &json(&AnyJson(other))),
    }
    let time = if r.time_unix_nano != 0 {
        r.time_unix_nano
    } else {
        r.observed_time_unix_nano
    };
    if let Some(t) = rfc3339_nanos(time) {
        o.str("timestamp", &t);
    }
    if !r.severity_text.trim().is_empty() {
        o.str("level", &r.severity_text);
    } else if let Some(level) = level_of(r.severity_number) {
        o.str("level", level);
    }
    if r.severity_number != 0 {
        o.value("severity_number", &r.severity_number);
    }
    for (k, v) in [
        ("service", &shared.service),
        ("host", &shared.host),
        ("resource", &shared.resource),
        ("scope", &shared.scope),
    ] {
        if let Some(v) = v {
            o.raw(k, v);
        }
    }
    if !r.trace_id.is_empty() {
        let id = hex(&r.trace_id);
        o.str("request_id", &id);
        o.str("trace_id", &id);
    }
    if !r.span_id.is_empty() {
        o.str("span_id", &hex(&r.span_id));
    }
    if !r.event_name.is_empty() {
        o.str("event_name", &r.event_name);
    }
    o.finish()
}

fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("an OTLP value serializes")
}

/// An attribute's value as JSON (none: `null`).
struct Json<'a>(Option<&'a AnyValue>);

impl Serialize for Json<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.and_then(|v| v.value.as_ref()) {
            Some(v) => AnyJson(v).serialize(s),
            None => s.serialize_unit(),
        }
    }
}

/// Attributes as a JSON object.
struct Attributes<'a>(&'a [&'a KeyValue]);

impl Serialize for Attributes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for kv in self.0 {
            map.serialize_entry(&kv.key, &Json(kv.value.as_ref()))?;
        }
        map.end()
    }
}

struct AnyJson<'a>(&'a Any);

impl Serialize for AnyJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Any::StringValue(v) => s.serialize_str(v),
            Any::BoolValue(b) => s.serialize_bool(*b),
            Any::IntValue(i) => s.serialize_i64(*i),
            Any::DoubleValue(d) if d.is_finite() => s.serialize_f64(*d),
            // JSON has no NaN or infinity: those are kept as their names.
            Any::DoubleValue(d) => s.serialize_str(&d.to_string()),
            Any::ArrayValue(a) => s.collect_seq(a.values.iter().map(|v| Json(Some(v)))),
            Any::KvlistValue(list) => {
                let mut map = s.serialize_map(Some(list.values.len()))?;
                for kv in &list.values {
                    map.serialize_entry(&kv.key, &Json(kv.value.as_ref()))?;
                }
                map.end()
            }
            Any::BytesValue(b) => {
                use base64::Engine;
                s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(b))
            }
            // An index into a profiles dictionary: logs have none.
            Any::StringValueStrindex(_) => s.serialize_unit(),
        }
    }
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
    use serde_json::Value;

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
        let m: Value = serde_json::from_str(&record(&r, &shared, 0)).unwrap();
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
        let m: Value = serde_json::from_str(&record(&r, &Shared::new(None, None), 0)).unwrap();
        assert_eq!(m["level"], "Notice");
        assert_eq!(m["message"], "7");
        assert_eq!(m["timestamp"], "1970-01-01T00:00:01Z");
        let none = record(&LogRecord::default(), &Shared::new(None, None), 0);
        assert_eq!(none, "{}");
    }
}
