//! The `[filters]` section (the sandbox's bounds) and a route's reference
//! to one filter.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::config::value::de_duration;

pub const DEFAULT_FILTER_MAX_UPLOAD_BYTES: usize = 16 * 1024 * 1024;
pub const DEFAULT_FILTER_MAX_MEMORY_BYTES: usize = 64 * 1024 * 1024;
pub const DEFAULT_FILTER_MAX_STACK_BYTES: usize = 512 * 1024;
pub const DEFAULT_FILTER_MAX_BATCH_TIME: Duration = Duration::from_millis(250);
pub const DEFAULT_FILTER_MAX_INSTANCES: u32 = 256;
pub const DEFAULT_FILTER_MAX_OUTPUT_RATIO: usize = 4;

/// The WASM filter sandbox: bounds on uploads and on every filter call.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FiltersConfig {
    /// Largest component a tenant may upload.
    pub max_upload_bytes: usize,
    /// Linear memory one filter instance may grow to.
    pub max_memory_bytes: usize,
    /// WebAssembly stack one call may use.
    pub max_stack_bytes: usize,
    /// CPU time one filter may spend on one batch (epoch deadline).
    #[serde(deserialize_with = "de_duration")]
    pub max_batch_time: Duration,
    /// Filter instances alive at once, all tenants together (pooling allocator).
    pub max_instances: u32,
    /// A filter's output may be at most this many times its input, plus 1 MiB.
    pub max_output_ratio: usize,
}

impl Default for FiltersConfig {
    fn default() -> Self {
        FiltersConfig {
            max_upload_bytes: DEFAULT_FILTER_MAX_UPLOAD_BYTES,
            max_memory_bytes: DEFAULT_FILTER_MAX_MEMORY_BYTES,
            max_stack_bytes: DEFAULT_FILTER_MAX_STACK_BYTES,
            max_batch_time: DEFAULT_FILTER_MAX_BATCH_TIME,
            max_instances: DEFAULT_FILTER_MAX_INSTANCES,
            max_output_ratio: DEFAULT_FILTER_MAX_OUTPUT_RATIO,
        }
    }
}

/// One filter of a route's chain and its config.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FilterRef {
    /// The name the tenant uploaded the filter under.
    pub name: String,
    /// Passed to the filter's `init` as text pairs (numbers and booleans as
    /// text, arrays joined with commas).
    #[serde(default, deserialize_with = "de_filter_config")]
    pub config: Vec<(String, String)>,
}

fn de_filter_config<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, String)>, D::Error> {
    fn text(v: &toml::Value) -> Result<String, String> {
        Ok(match v {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(n) => n.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Array(a) => a.iter().map(text).collect::<Result<Vec<_>, _>>()?.join(","),
            other => return Err(format!("unsupported filter config value {other}")),
        })
    }
    let table = std::collections::BTreeMap::<String, toml::Value>::deserialize(d)?;
    table
        .into_iter()
        .map(|(k, v)| Ok((k, text(&v).map_err(serde::de::Error::custom)?)))
        .collect()
}
