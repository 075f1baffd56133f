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

/// OTLP/HTTP protobuf: the message as the body, the other members as
/// attributes, `logway.type` on the resource.
pub fn otlp(events: &[String]) -> Vec<u8> {
    let records = parsed(events)
        .into_iter()
        .map(|m| LogRecord {
            time_unix_nano: 1_764_496_800_000_000_000,
            severity_number: 9,
            body: m.get("message").map(any),
            attributes: m
                .iter()
                .filter(|(k, _)| *k != "message")
                .map(|(k, v)| kv(k, v))
                .collect(),
            ..Default::default()
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![kv("logway.type", &Value::from("bench"))],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
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
