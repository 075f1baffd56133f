//! Write a Logway filter in Rust: implement [`Filter`], call
//! [`export_filter!`], build with `cargo build --release --target
//! wasm32-wasip2`. The world it implements is `wit/filter.wit`.
//!
//! ```ignore
//! use logway_filter_sdk::{export_filter, BatchContext, Config, Event, Filter, Verdict};
//!
//! struct DropDebug;
//!
//! impl Filter for DropDebug {
//!     fn new(_config: &Config) -> Result<Self, String> {
//!         Ok(DropDebug)
//!     }
//!     fn process(&mut self, _ctx: &BatchContext, event: &Event) -> Verdict {
//!         match event.promoted.level.as_deref() {
//!             Some("debug") => Verdict::Drop,
//!             _ => Verdict::Keep,
//!         }
//!     }
//! }
//!
//! export_filter!(DropDebug);
//! ```
//!
//! The gateway creates one instance per (tenant, filter version, route
//! config, worker) and calls [`Filter::new`] once in it, then
//! [`Filter::process_batch`] per batch. A panic, a trap, running past the
//! batch's CPU deadline or memory cap, or answering the wrong number of
//! verdicts turns the batch's events into dead letters (stored, with the
//! reason) and the instance is replaced by a fresh one.

use std::any::Any;
use std::cell::RefCell;

/// Bindings generated from `wit/filter.wit` (used by [`export_filter!`]).
#[doc(hidden)]
#[allow(clippy::too_many_arguments)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "filter",
        path: "../wit",
        pub_export_macro: true,
        export_macro_name: "__export_filter_world",
        default_bindings_module: "logway_filter_sdk::bindings",
    });
}

pub use bindings::logway::filter::host::LogLevel;
pub use bindings::logway::filter::types::{
    BatchContext, Edit, Event, EventFormat, Promoted, Value, Verdict,
};

/// A filter: built once per instance from its route config, then called for
/// each event of each batch.
pub trait Filter: Sized + 'static {
    /// Whether [`Filter::process`] may answer [`Verdict::Drop`]. The gateway
    /// refuses a filter that may drop on a route of the `event` class (events
    /// are never dropped), at upload and at start. A filter that only parses,
    /// redacts or enriches says `false`. [`export_filter!`] records the value
    /// in the component (the custom section `logway-filter-drops`, one byte:
    /// `1` or `0`); a component without it is taken to drop.
    const DROPS_EVENTS: bool = true;

    /// Builds the filter from the route's per-filter config; an error fails
    /// the batch (its events become dead letters with this message).
    fn new(config: &Config) -> Result<Self, String>;

    /// Decides what happens to one event.
    fn process(&mut self, ctx: &BatchContext, event: &Event) -> Verdict;

    /// Decides for a whole batch (one verdict per event, in order). The
    /// default calls [`Filter::process`] for each event.
    fn process_batch(&mut self, ctx: &BatchContext, events: &[Event]) -> Vec<Verdict> {
        events.iter().map(|e| self.process(ctx, e)).collect()
    }
}

/// A route's per-filter config: `config = { fields = "message" }`.
#[derive(Debug, Clone, Default)]
pub struct Config(Vec<(String, String)>);

impl Config {
    pub fn new(pairs: Vec<(String, String)>) -> Config {
        Config(pairs)
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// `key` parsed as `T`, or `default` when unset; a value that does not
    /// parse is an error naming the key.
    pub fn parse_or<T: std::str::FromStr>(&self, key: &str, default: T) -> Result<T, String> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| format!("config `{key}`: cannot parse `{v}`")),
        }
    }

    /// `key` as a comma-separated list (empty when unset).
    pub fn list(&self, key: &str) -> Vec<String> {
        self.get(key)
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }
}

impl Event {
    /// A text event (for tests of a filter on the build machine).
    pub fn text(line: &str) -> Event {
        Event {
            raw: line.as_bytes().to_vec(),
            format: EventFormat::Text,
            promoted: Promoted::default(),
        }
    }

    /// A JSON event from its text (for tests of a filter on the build
    /// machine); promoted fields are left empty.
    pub fn json_text(json: &str) -> Event {
        Event {
            raw: json.as_bytes().to_vec(),
            format: EventFormat::Json,
            promoted: Promoted::default(),
        }
    }

    /// The raw bytes as UTF-8, if they are.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.raw).ok()
    }

    /// The message: the line of a text event, the `message` (or `msg`)
    /// string field of a JSON event.
    #[cfg(feature = "json")]
    pub fn message(&self) -> Option<String> {
        match self.format {
            EventFormat::Text => self.as_str().map(str::to_string),
            EventFormat::Json => ["message", "msg"].iter().find_map(|k| match self.field(k) {
                Some(serde_json::Value::String(s)) => Some(s),
                _ => None,
            }),
        }
    }

    /// A top-level field of a JSON event, found without building the rest
    /// of the object (much cheaper than [`Event::json`] for one field).
    #[cfg(feature = "json")]
    pub fn field(&self, name: &str) -> Option<serde_json::Value> {
        if !matches!(self.format, EventFormat::Json) {
            return None;
        }
        let mut de = serde_json::Deserializer::from_slice(&self.raw);
        serde::Deserializer::deserialize_map(&mut de, json_field::Find(name))
            .ok()
            .flatten()
    }

    /// A JSON event's object (`None` for text events).
    #[cfg(feature = "json")]
    pub fn json(&self) -> Option<serde_json::Map<String, serde_json::Value>> {
        match self.format {
            EventFormat::Json => serde_json::from_slice(&self.raw).ok(),
            EventFormat::Text => None,
        }
    }
}

// Generated type: the derive cannot be added to it.
#[allow(clippy::derivable_impls)]
impl Default for Promoted {
    fn default() -> Promoted {
        Promoted {
            timestamp: None,
            level: None,
            service: None,
            host: None,
            request_id: None,
        }
    }
}

impl BatchContext {
    /// A context for tests of a filter on the build machine.
    pub fn for_test(log_type: &str) -> BatchContext {
        BatchContext {
            tenant: "test".into(),
            log_type: log_type.into(),
            route: "/test".into(),
            received_ms: 0,
            client_ip: None,
        }
    }
}

/// `Edit::Set` of one field.
pub fn set(path: impl Into<String>, value: impl Into<Value>) -> Edit {
    Edit::Set((path.into(), value.into()))
}

/// `Edit::Remove` of one field.
pub fn remove(path: impl Into<String>) -> Edit {
    Edit::Remove(path.into())
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Text(s.to_string())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Text(s)
    }
}
impl From<i64> for Value {
    fn from(n: i64) -> Value {
        Value::Integer(n)
    }
}
impl From<u32> for Value {
    fn from(n: u32) -> Value {
        Value::Integer(n.into())
    }
}
impl From<f64> for Value {
    fn from(n: f64) -> Value {
        Value::Float(n)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Boolean(b)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}

/// Writes to the gateway's log (budgeted per batch; a no-op off wasm).
pub fn log(level: LogLevel, message: &str) {
    #[cfg(target_arch = "wasm32")]
    bindings::logway::filter::host::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    let _ = (level, message);
}

/// Adds to the filter's counter `name` (a no-op off wasm).
pub fn counter(name: &str, delta: u64) {
    #[cfg(target_arch = "wasm32")]
    bindings::logway::filter::host::counter_add(name, delta);
    #[cfg(not(target_arch = "wasm32"))]
    let _ = (name, delta);
}

#[cfg(feature = "json")]
mod json_field {
    use serde::de::{IgnoredAny, MapAccess, Visitor};

    /// Visits a JSON object, keeping the value of one key and skipping the
    /// others without allocating.
    pub struct Find<'a>(pub &'a str);

    impl<'de> Visitor<'de> for Find<'_> {
        type Value = Option<serde_json::Value>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut found = None;
            while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                if found.is_none() && key == self.0 {
                    found = Some(map.next_value::<serde_json::Value>()?);
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(found)
        }
    }
}

thread_local! {
    /// The instance's filter, built by `init`.
    static STATE: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

#[doc(hidden)]
pub fn __init<F: Filter>(config: Vec<(String, String)>) -> Result<(), String> {
    let filter = F::new(&Config(config))?;
    STATE.with(|s| *s.borrow_mut() = Some(Box::new(filter)));
    Ok(())
}

#[doc(hidden)]
pub fn __process<F: Filter>(ctx: BatchContext, events: Vec<Event>) -> Vec<Verdict> {
    STATE.with(|s| {
        let mut state = s.borrow_mut();
        let filter = state
            .as_mut()
            .and_then(|b| b.downcast_mut::<F>())
            .expect("the host calls init before process");
        filter.process_batch(&ctx, &events)
    })
}

/// Exports a [`Filter`] type as the component's `init` and `process`.
#[macro_export]
macro_rules! export_filter {
    ($filter:ty) => {
        const _: () = {
            #[used]
            #[unsafe(link_section = "logway-filter-drops")]
            static __LOGWAY_FILTER_DROPS: [u8; 1] =
                [if <$filter as $crate::Filter>::DROPS_EVENTS {
                    b'1'
                } else {
                    b'0'
                }];
            struct __LogwayFilter;
            impl $crate::bindings::Guest for __LogwayFilter {
                fn init(
                    config: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
                ) -> ::std::result::Result<(), ::std::string::String> {
                    $crate::__init::<$filter>(config)
                }
                fn process(
                    ctx: $crate::BatchContext,
                    events: ::std::vec::Vec<$crate::Event>,
                ) -> ::std::vec::Vec<$crate::Verdict> {
                    $crate::__process::<$filter>(ctx, events)
                }
            }
    $crate::bindings::__export_filter_world!(__LogwayFilter with_types_in $crate::bindings);
        };
    };
}

#[cfg(all(test, feature = "json"))]
mod tests {
    use super::*;

    #[test]
    fn field_reads_one_top_level_field() {
        let e = Event::json_text(
            r#"{"a":{"message":"nested"},"n":[1,{"x":2}],"message":"top","z":null}"#,
        );
        assert_eq!(e.field("message"), Some(serde_json::json!("top")));
        assert_eq!(e.field("n"), Some(serde_json::json!([1, {"x": 2}])));
        assert_eq!(e.field("missing"), None);
        assert_eq!(e.message().as_deref(), Some("top"));
        assert_eq!(
            Event::json_text(r#"{"msg":"m"}"#).message().as_deref(),
            Some("m")
        );
        assert_eq!(Event::json_text("not json").field("a"), None);
        assert_eq!(Event::json_text("[1,2]").field("a"), None);
        assert_eq!(Event::text("{\"a\":1}").field("a"), None);
    }
}
