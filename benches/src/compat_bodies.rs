//! Request bodies of the HTTP compat protocols for `compat-bench`, each
//! carrying the same events as the native NDJSON bodies, as those
//! protocols' clients would send them; all log type `bench`.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, KeyValueList};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use serde_json::Value;
use time::format_description::well_known::Rfc3339;

use logway::sources::loki::proto as loki;

fn parsed(events: &[String]) -> Vec<serde_json::Map<String, Value>> {
    events
        .iter()
        .map(|e| match serde_json::from_str(e) {
            Ok(Value::Object(m)) => m,
            _ => unreachable!("bench events are objects"),
        })
        .collect()
}

fn any(v: &Value) -> AnyValue {
    let value = match v {
        Value::String(s) => Any::StringValue(s.clone()),
        Value::Bool(b) => Any::BoolValue(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Any::IntValue(i),
            None => Any::DoubleValue(n.as_f64().unwrap_or_default()),
        },
        Value::Object(m) => Any::KvlistValue(KeyValueList {
            values: m.iter().map(|(k, v)| kv(k, v)).collect(),
        }),
        Value::Array(a) => Any::ArrayValue(opentelemetry_proto::tonic::common::v1::ArrayValue {
            values: a.iter().map(any).collect(),
        }),
        Value::Null => Any::StringValue(String::new()),
    };
    AnyValue { value: Some(value) }
}

fn kv(k: &str, v: &Value) -> KeyValue {
    KeyValue {
        key: k.to_string(),
        value: Some(any(v)),
        ..Default::default()
    }
}

/// OTLP/HTTP protobuf, each event as an OTel SDK or Collector sends it:
/// the service and host on the resource (with `logway.type`; one resource
/// per service and host, in the order first seen), the time, level and
/// trace id in the record's own fields, the message as the body, the
/// other members as attributes.
pub fn otlp(events: &[String]) -> Vec<u8> {
    let mut resources: Vec<((String, String), Vec<LogRecord>)> = Vec::new();
    for mut m in parsed(events) {
        let mut take = |parent: &str, key: &str| {
            let inner = m.get_mut(parent)?.as_object_mut()?;
            let v = inner.remove(key);
            if inner.is_empty() {
                m.remove(parent);
            }
            v.and_then(|v| v.as_str().map(str::to_string))
        };
        let service = take("service", "name").unwrap_or_default();
        let host = take("host", "name").unwrap_or_default();
        let level = take("log", "level").unwrap_or_default();
        let trace = take("trace", "id").unwrap_or_default();
        let time = m
            .remove("@timestamp")
            .and_then(|t| {
                t.as_str()
                    .and_then(|t| time::OffsetDateTime::parse(t, &Rfc3339).ok())
            })
            .map_or(0, |t| t.unix_timestamp_nanos() as u64);
        let severity_number = match level.as_str() {
            "debug" => 5,
            "warn" => 13,
            "error" => 17,
            _ => 9,
        };
        // A 16-byte trace id: the event's 8 bytes of hex, zero-padded.
        let mut trace_id = vec![0u8; 8];
        trace_id.extend(
            (0..trace.len() / 2)
                .filter_map(|i| u8::from_str_radix(&trace[2 * i..2 * i + 2], 16).ok()),
        );
        let record = LogRecord {
            time_unix_nano: time,
            severity_number,
            severity_text: level.to_uppercase(),
            body: m.remove("message").as_ref().map(any),
            attributes: m.iter().map(|(k, v)| kv(k, v)).collect(),
            trace_id,
            ..Default::default()
        };
        let key = (service, host);
        match resources.iter_mut().find(|(k, _)| *k == key) {
            Some((_, records)) => records.push(record),
            None => resources.push((key, vec![record])),
        }
    }
    ExportLogsServiceRequest {
        resource_logs: resources
            .into_iter()
            .map(|((service, host), records)| ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![
                        kv("service.name", &Value::from(service)),
                        kv("host.name", &Value::from(host)),
                        kv("logway.type", &Value::from("bench")),
                    ],
                    ..Default::default()
                }),
                scope_logs: vec![ScopeLogs {
                    log_records: records,
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
    }
    .encode_to_vec()
}

/// Loki: one stream, each event a JSON line, snappy block protobuf.
pub fn loki(events: &[String]) -> Vec<u8> {
    let push = loki::PushRequest {
        streams: vec![loki::Stream {
            labels: r#"{job="bench", env="prod"}"#.into(),
            entries: events
                .iter()
                .map(|e| loki::Entry {
                    timestamp: Some(loki::Timestamp {
                        seconds: 1_764_496_800,
                        nanos: 0,
                    }),
                    line: e.clone(),
                    structured_metadata: Vec::new(),
                })
                .collect(),
        }],
    };
    snap::raw::Encoder::new()
        .compress_vec(&push.encode_to_vec())
        .expect("in-memory compression")
}

/// Splunk HEC: concatenated event objects.
pub fn hec(events: &[String]) -> Vec<u8> {
    events
        .iter()
        .flat_map(|e| {
            format!(
                "{{\"time\":1764496800.125,\"sourcetype\":\"bench\",\"host\":\"h\",\"event\":{e}}}"
            )
            .into_bytes()
        })
        .collect()
}

/// Datadog: a JSON array of items, each event's JSON as the message.
pub fn datadog(events: &[String]) -> Vec<u8> {
    let items: Vec<Value> = events
        .iter()
        .map(|e| serde_json::json!({"ddsource": "bench", "service": "bench", "hostname": "h", "message": e}))
        .collect();
    serde_json::to_vec(&items).expect("JSON")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otlp_carries_the_events_in_otel_s_own_fields() {
        let events = vec![
            r#"{"@timestamp":"2026-11-30T10:00:00.000Z","log":{"level":"warn"},"service":{"name":"cart"},"host":{"name":"cart-1"},"trace":{"id":"00000000000000ff"},"message":"m","http":{"status":200},"duration_ms":5}"#.to_string(),
        ];
        let req = ExportLogsServiceRequest::decode(&otlp(&events)[..]).unwrap();
        let rl = &req.resource_logs[0];
        let keys: Vec<&str> = rl
            .resource
            .as_ref()
            .unwrap()
            .attributes
            .iter()
            .map(|kv| kv.key.as_str())
            .collect();
        assert_eq!(keys, ["service.name", "host.name", "logway.type"]);
        let r = &rl.scope_logs[0].log_records[0];
        assert_eq!(r.time_unix_nano, 1_796_032_800_000_000_000);
        assert_eq!((r.severity_number, r.severity_text.as_str()), (13, "WARN"));
        assert_eq!(r.trace_id.len(), 16);
        assert_eq!(r.trace_id[15], 0xff);
        let attrs: Vec<&str> = r.attributes.iter().map(|kv| kv.key.as_str()).collect();
        assert_eq!(attrs, ["duration_ms", "http"]);
        assert!(
            matches!(r.body.as_ref().unwrap().value, Some(Any::StringValue(ref s)) if s == "m")
        );
    }
}
