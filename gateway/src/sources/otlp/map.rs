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

use crate::event::object::ObjectText;
use crate::event::{FieldsText, Mapped};

/// What the records of one resource and scope share.
pub struct Shared {
    /// `service.name` when it is a string, else its JSON text for `fields`.
    service: Option<Result<String, String>>,
    host: Option<Result<String, String>>,
    /// The other resource attributes, an object (none: no member), with
    /// its leaves and depth.
    resource: Option<(String, usize, usize)>,
    scope: Option<(String, usize)>,
}

impl Shared {
    pub fn new(resource: Option<&Resource>, scope: Option<&InstrumentationScope>) -> Shared {
        let attributes = resource.map_or(&[][..], |r| &r.attributes[..]);
        let last = |name: &str| {
            let v = attributes
                .iter()
                .rev()
                .find(|kv| kv.key == name)?
                .value
                .as_ref();
            Some(match v.and_then(|v| v.value.as_ref()) {
                Some(Any::StringValue(s)) => Ok(s.clone()),
                _ => Err(json(&Json(v))),
            })
        };
        let rest: Vec<&KeyValue> = attributes
            .iter()
            .filter(|kv| !matches!(kv.key.as_str(), "service.name" | "host.name"))
            .collect();
        let scope = scope.filter(|s| !s.name.is_empty() || !s.version.is_empty());
        Shared {
            service: last("service.name"),
            host: last("host.name"),
            resource: (!rest.is_empty()).then(|| {
                let (leaves, depth) = rest.iter().fold((0, 0), |(l, d), kv| {
                    let (l2, d2) = shape(kv.value.as_ref());
                    (l + l2, d.max(d2))
                });
                (json(&Attributes(&rest)), leaves, depth + 1)
            }),
            scope: scope.map(|s| {
                let mut o = ObjectText::with_capacity(s.name.len() + s.version.len() + 24);
                let mut leaves = 0;
                if !s.name.is_empty() {
                    o.str("name", &s.name);
                    leaves += 1;
                }
                if !s.version.is_empty() {
                    o.str("version", &s.version);
                    leaves += 1;
                }
                (o.finish(), leaves)
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

/// The record as an event: the promoted fields OTLP has fields for, and
/// the other members in this order, a later one winning over an earlier
/// one of the same name: the attributes, the body, then what the table
/// above names. `bytes`: the record's encoded length, for the room to
/// reserve.
pub fn record(r: &LogRecord, shared: &Shared, bytes: usize) -> Mapped {
    let mut fields = FieldsText::with_capacity(bytes * 2 + 64);
    let any = |f: &mut FieldsText, key: &str, v: Option<&AnyValue>| {
        let (leaves, depth) = shape(v);
        f.member(key, leaves, depth, |o, k| o.value(k, &Json(v)));
    };
    for kv in &r.attributes {
        any(&mut fields, &kv.key, kv.value.as_ref());
    }
    let message = match r.body.as_ref().and_then(|b| b.value.as_ref()) {
        None => None,
        Some(Any::StringValue(s)) => Some(s.clone()),
        Some(Any::KvlistValue(list)) => {
            for kv in &list.values {
                any(&mut fields, &kv.key, kv.value.as_ref());
            }
            None
        }
        Some(other) => Some(json(&AnyJson(other))),
    };
    let time = if r.time_unix_nano != 0 {
        r.time_unix_nano
    } else {
        r.observed_time_unix_nano
    };
    let level = if !r.severity_text.trim().is_empty() {
        Some(r.severity_text.clone())
    } else {
        level_of(r.severity_number).map(str::to_string)
    };
    if r.severity_number != 0 {
        fields.member("severity_number", 1, 0, |o, k| {
            o.value(k, &r.severity_number)
        });
    }
    let mut promoted = |name: &str, v: &Option<Result<String, String>>| match v {
        Some(Ok(s)) => Some(s.clone()),
        Some(Err(text)) => {
            fields.member(name, 1, 0, |o, k| o.raw(k, text));
            None
        }
        None => None,
    };
    let service = promoted("service", &shared.service);
    let host = promoted("host", &shared.host);
    if let Some((text, leaves, depth)) = &shared.resource {
        fields.member("resource", *leaves, *depth, |o, k| o.raw(k, text));
    }
    if let Some((text, leaves)) = &shared.scope {
        fields.member("scope", *leaves, 1, |o, k| o.raw(k, text));
    }
    let request_id = (!r.trace_id.is_empty()).then(|| hex(&r.trace_id));
    if let Some(id) = &request_id {
        fields.str("trace_id", id);
    }
    if !r.span_id.is_empty() {
        fields.str("span_id", &hex(&r.span_id));
    }
    if !r.event_name.is_empty() {
        fields.str("event_name", &r.event_name);
    }
    Mapped {
        timestamp: time_of(time),
        level,
        service,
        host,
        request_id,
        message,
        fields,
    }
}

/// A value's leaves (as a map counts them for the fields limit) and
/// nesting depth.
fn shape(v: Option<&AnyValue>) -> (usize, usize) {
    let children = |values: &mut dyn Iterator<Item = Option<&AnyValue>>| {
        values.fold((0, 0), |(l, d), v| {
            let (l2, d2) = shape(v);
            (l + l2, d.max(d2))
        })
    };
    match v.and_then(|v| v.value.as_ref()) {
        Some(Any::ArrayValue(a)) => {
            let (l, d) = children(&mut a.values.iter().map(Some));
            (l, d + 1)
        }
        Some(Any::KvlistValue(list)) => {
            let (l, d) = children(&mut list.values.iter().map(|kv| kv.value.as_ref()));
            (l, d + 1)
        }
        _ => (1, 0),
    }
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
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

/// Nanoseconds since the epoch (0: none).
fn time_of(nanos: u64) -> Option<time::OffsetDateTime> {
    if nanos == 0 {
        return None;
    }
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos)).ok()
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
        let m: Value = serde_json::from_str(&record(&r, &shared, 0).text()).unwrap();
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
        let m: Value =
            serde_json::from_str(&record(&r, &Shared::new(None, None), 0).text()).unwrap();
        assert_eq!(m["level"], "Notice");
        assert_eq!(m["message"], "7");
        assert_eq!(m["timestamp"], "1970-01-01T00:00:01Z");
        let none = record(&LogRecord::default(), &Shared::new(None, None), 0).text();
        assert_eq!(none, "{}");
    }

    /// The event built from the mapping is the one the generic path builds
    /// from its text, or the mapping gives way to it.
    #[test]
    fn builds_the_event_the_text_makes() {
        use crate::event::{EventContext, FieldNames, FieldsConfig, from_json, from_mapped};
        let resource = Resource {
            attributes: vec![
                kv("service.name", Any::StringValue("checkout".into())),
                kv("host.name", Any::StringValue("web-1".into())),
                kv("logway.type", Any::StringValue("pay".into())),
            ],
            ..Default::default()
        };
        let list = |pairs: Vec<KeyValue>| {
            Some(AnyValue {
                value: Some(Any::KvlistValue(KeyValueList { values: pairs })),
            })
        };
        let base = LogRecord {
            time_unix_nano: 1_764_500_000_123_456_789,
            severity_text: "WARN".into(),
            severity_number: 13,
            body: Some(AnyValue {
                value: Some(Any::StringValue("card \"declined\"\n".into())),
            }),
            attributes: vec![
                kv("duration_ms", Any::IntValue(5)),
                KeyValue {
                    key: "http".into(),
                    value: list(vec![
                        kv("method", Any::StringValue("GET".into())),
                        kv("status", Any::IntValue(402)),
                    ]),
                    ..Default::default()
                },
            ],
            trace_id: vec![0xab; 16],
            span_id: vec![1; 8],
            ..Default::default()
        };
        let with = |f: &dyn Fn(&mut LogRecord)| {
            let mut r = base.clone();
            f(&mut r);
            r
        };
        let records = [
            // The direct path.
            (base.clone(), true),
            (
                with(&|r| r.body = list(vec![kv("amount", Any::DoubleValue(2.5))])),
                true,
            ),
            (
                with(&|r| {
                    r.trace_id.clear();
                    r.attributes.truncate(1);
                }),
                true,
            ),
            // No trace id, and an object under `http` (where
            // `http.request.id` would be): left to the generic path.
            (with(&|r| r.trace_id.clear()), false),
            // A name of a field the record has, of a later rank: stays in
            // `fields`.
            (
                with(&|r| r.attributes.push(kv("msg", Any::StringValue("m".into())))),
                true,
            ),
            // A name of an earlier rank, or of a field the record lacks.
            (
                with(&|r| {
                    r.attributes.push(kv(
                        "@timestamp",
                        Any::StringValue("2020-01-01T00:00:00Z".into()),
                    ))
                }),
                false,
            ),
            (
                with(&|r| {
                    r.severity_text.clear();
                    r.severity_number = 0;
                    r.attributes
                        .push(kv("severity", Any::StringValue("debug".into())));
                }),
                false,
            ),
            // A body's member named as the message; a repeated key.
            (
                with(&|r| r.body = list(vec![kv("message", Any::StringValue("inner".into()))])),
                false,
            ),
            (
                with(&|r| r.attributes.push(kv("duration_ms", Any::IntValue(6)))),
                false,
            ),
            // Under a dotted name's first part (`http.request.id`), below
            // the trace id's rank.
            (
                with(&|r| {
                    r.attributes[1].value = list(vec![kv(
                        "request",
                        list(vec![kv("id", Any::StringValue("r1".into()))])
                            .unwrap()
                            .value
                            .unwrap(),
                    )])
                }),
                true,
            ),
            // Too many fields for the limit: rejected either way.
            (
                with(&|r| {
                    r.attributes
                        .extend((0..20).map(|i| kv(&format!("a{i}"), Any::IntValue(i))))
                }),
                false,
            ),
        ];
        let configured = FieldNames::new(&FieldsConfig {
            level: Some(vec!["severity_number".into()]),
            ..FieldsConfig::default()
        });
        for names in [FieldNames::builtin(), &configured] {
            let ctx = EventContext::new(
                "t",
                "pay",
                time::OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
                None,
                20,
            )
            .with_fields(names);
            let shared = Shared::new(Some(&resource), None);
            for (i, (r, direct)) in records.iter().enumerate() {
                let text = record(r, &shared, 0).text();
                let generic = from_json(&text, &ctx, Some("ID".into())).ok().map_or_else(
                    || {
                        let Ok(Value::Object(m)) = serde_json::from_str(&text) else {
                            panic!()
                        };
                        crate::event::check_fields(&m, ctx.max_fields)
                            .ok()
                            .map(|()| crate::event::from_object(m, &ctx, Some("ID".into())))
                    },
                    Some,
                );
                let generic: Option<Value> = generic.map(|b| serde_json::from_slice(&b).unwrap());
                match from_mapped(Box::new(record(r, &shared, 0)), &ctx, Some("ID".into())) {
                    Ok(b) => {
                        assert!(*direct && names == FieldNames::builtin(), "record {i}");
                        let v: Value = serde_json::from_slice(&b).unwrap();
                        assert_eq!(Some(v), generic, "record {i}");
                    }
                    Err((_, id)) => {
                        assert!(!*direct || names != FieldNames::builtin(), "record {i}");
                        assert_eq!(id.as_deref(), Some("ID"));
                    }
                }
            }
            // A host name that is not a string stays in `fields`, as the
            // generic path leaves it.
            let odd = Resource {
                attributes: vec![kv("host.name", Any::IntValue(7))],
                ..Default::default()
            };
            let m = record(&base, &Shared::new(Some(&odd), None), 0);
            assert!(from_mapped(Box::new(m), &ctx, None).is_err());
        }
    }
}
