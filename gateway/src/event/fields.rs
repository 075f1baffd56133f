//! Where an event keeps its promoted fields: the names tried for each one.
//!
//! Services name the same thing differently (`level`, `Level`, `severity`,
//! `log.level`). For each promoted field the first name present in the
//! event wins and is taken out of `fields`; the names tried are, in order,
//! a route's own `fields.<name>` (else its tenant's), then the built-in
//! ones below. A name with dots (`log.level`) matches a key spelt that way
//! or the nested path (`{"log":{"level":…}}`); a parent left empty is
//! removed. Promoted text values are strings or numbers; anything else
//! stays in `fields`. Levels are lowercased (`ERROR`, `Error` → `error`);
//! other spellings (`warning`, `warn`) are kept as sent.

use std::sync::LazyLock;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::config::ConfigError;
use crate::config::value::invalid;

/// Built-in names of the event's own time, tried after configured ones.
pub const TIMESTAMP_FIELDS: &[&str] = &["@timestamp", "timestamp", "time", "ts", "TimeStampUTC"];
pub const LEVEL_FIELDS: &[&str] = &["level", "severity", "lvl", "loglevel", "log.level"];
pub const SERVICE_FIELDS: &[&str] = &["service", "app", "application", "service.name"];
pub const HOST_FIELDS: &[&str] = &["host", "hostname", "host.name"];
pub const REQUEST_ID_FIELDS: &[&str] = &[
    "request_id",
    "RequestKey",
    "trace_id",
    "http.request.id",
    "trace.id",
];
pub const MESSAGE_FIELDS: &[&str] = &["message", "msg"];

/// Names a field may hold at most, configured per promoted field.
const MAX_NAMES: usize = 16;

/// A `fields` table (per tenant, route or listener): for each promoted
/// field, the event's names to try before the built-in ones.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FieldsConfig {
    pub timestamp: Option<Vec<String>>,
    pub level: Option<Vec<String>>,
    pub service: Option<Vec<String>>,
    pub host: Option<Vec<String>>,
    pub request_id: Option<Vec<String>>,
    pub message: Option<Vec<String>>,
}

impl FieldsConfig {
    /// These lists, each falling back to `other`'s where unset.
    pub fn or(&self, other: &FieldsConfig) -> FieldsConfig {
        let pick = |a: &Option<Vec<String>>, b: &Option<Vec<String>>| a.clone().or(b.clone());
        FieldsConfig {
            timestamp: pick(&self.timestamp, &other.timestamp),
            level: pick(&self.level, &other.level),
            service: pick(&self.service, &other.service),
            host: pick(&self.host, &other.host),
            request_id: pick(&self.request_id, &other.request_id),
            message: pick(&self.message, &other.message),
        }
    }

    /// Names must be non-empty, without empty dot segments, and few.
    pub fn validate(&self, at: &str) -> Result<(), ConfigError> {
        let lists = [
            ("timestamp", &self.timestamp),
            ("level", &self.level),
            ("service", &self.service),
            ("host", &self.host),
            ("request_id", &self.request_id),
            ("message", &self.message),
        ];
        for (field, names) in lists {
            let Some(names) = names else { continue };
            if names.len() > MAX_NAMES {
                return Err(invalid(
                    &format!("{at}.{field}"),
                    format!("at most {MAX_NAMES} names"),
                ));
            }
            if let Some(bad) = names.iter().find(|n| n.split('.').any(str::is_empty)) {
                return Err(invalid(
                    &format!("{at}.{field}"),
                    format!("`{bad}` is not a field name (empty, or an empty part between dots)"),
                ));
            }
        }
        Ok(())
    }
}

/// One name to look for: a key, and for a dotted name its path.
#[derive(Debug, Clone, PartialEq)]
struct Name {
    key: String,
    path: Option<Vec<String>>,
}

impl Name {
    fn new(key: &str) -> Name {
        let path = key
            .contains('.')
            .then(|| key.split('.').map(str::to_string).collect());
        Name {
            key: key.to_string(),
            path,
        }
    }

    fn get<'m>(&self, obj: &'m Map<String, Value>) -> Option<&'m Value> {
        if let Some(v) = obj.get(&self.key) {
            return Some(v);
        }
        let (last, parents) = self.path.as_ref()?.split_last()?;
        let mut cur = obj;
        for p in parents {
            cur = cur.get(p)?.as_object()?;
        }
        cur.get(last)
    }

    fn take(&self, obj: &mut Map<String, Value>) -> Option<Value> {
        if let Some(v) = obj.remove(&self.key) {
            return Some(v);
        }
        let path = self.path.as_ref()?;
        take_path(obj, path)
    }
}

/// Removes the value at `path`, and every parent it leaves empty.
fn take_path(obj: &mut Map<String, Value>, path: &[String]) -> Option<Value> {
    let (first, rest) = path.split_first()?;
    if rest.is_empty() {
        return obj.remove(first);
    }
    let inner = obj.get_mut(first)?.as_object_mut()?;
    let v = take_path(inner, rest)?;
    if inner.is_empty() {
        obj.remove(first);
    }
    Some(v)
}

/// The names tried for each promoted field, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldNames {
    timestamp: Vec<Name>,
    level: Vec<Name>,
    service: Vec<Name>,
    host: Vec<Name>,
    request_id: Vec<Name>,
    message: Vec<Name>,
    /// Every name as a flat key, for [`FieldNames::candidates`].
    flat: Vec<(String, PromotedField, u8)>,
    /// Bit `n` set: some name is `n` bytes long (a quick no for most keys).
    lengths: u64,
    /// What [`super::mapped`] checks of these names, found once.
    written_ranks: Option<[u8; 6]>,
}

/// A promoted field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromotedField {
    Timestamp,
    Level,
    Service,
    Host,
    RequestId,
    Message,
}

impl PromotedField {
    /// In the order events take them.
    pub const ALL: [PromotedField; 6] = [
        PromotedField::Timestamp,
        PromotedField::Level,
        PromotedField::Service,
        PromotedField::Host,
        PromotedField::RequestId,
        PromotedField::Message,
    ];
}

static BUILTIN: LazyLock<FieldNames> = LazyLock::new(|| FieldNames::new(&FieldsConfig::default()));

impl FieldNames {
    /// Configured names first, then the built-in ones (each name once).
    pub fn new(config: &FieldsConfig) -> FieldNames {
        let list = |configured: &Option<Vec<String>>, builtin: &[&str]| {
            let mut names: Vec<Name> = Vec::new();
            let all = configured
                .iter()
                .flatten()
                .map(String::as_str)
                .chain(builtin.iter().copied());
            for n in all {
                if !names.iter().any(|have| have.key == n) {
                    names.push(Name::new(n));
                }
            }
            names
        };
        let names = FieldNames {
            timestamp: list(&config.timestamp, TIMESTAMP_FIELDS),
            level: list(&config.level, LEVEL_FIELDS),
            service: list(&config.service, SERVICE_FIELDS),
            host: list(&config.host, HOST_FIELDS),
            request_id: list(&config.request_id, REQUEST_ID_FIELDS),
            message: list(&config.message, MESSAGE_FIELDS),
            flat: Vec::new(),
            lengths: 0,
            written_ranks: None,
        };
        let (mut flat, mut lengths) = (Vec::new(), 0u64);
        for field in PromotedField::ALL {
            for (rank, n) in names.names(field).iter().enumerate() {
                flat.push((n.key.clone(), field, rank as u8));
                lengths |= 1u64.checked_shl(n.key.len() as u32).unwrap_or(0);
            }
        }
        let mut names = FieldNames {
            flat,
            lengths,
            ..names
        };
        names.written_ranks = super::mapped::written_ranks(&names);
        names
    }

    /// The rank of each name a source writes its promoted fields under
    /// ([`super::Mapped::text`]), if each is a name of its field only.
    pub fn written_ranks(&self) -> Option<[u8; 6]> {
        self.written_ranks
    }

    /// The promoted fields `key` is a name of, each with the name's rank
    /// (0 is tried first), as a flat key.
    pub fn candidates<'s>(
        &'s self,
        key: &'s str,
    ) -> impl Iterator<Item = (PromotedField, u8)> + 's {
        let maybe = key.len() >= 64 || self.lengths & (1u64 << key.len()) != 0;
        self.flat
            .iter()
            .take(if maybe { usize::MAX } else { 0 })
            .filter(move |(k, _, _)| k == key)
            .map(|&(_, field, rank)| (field, rank))
    }

    /// Each dotted name whose first part is `parent` (`http.request.id`
    /// under `http`): its field, rank, the name as a flat key, and the rest
    /// of its path (`["request", "id"]`).
    pub fn dotted_under<'s, 'p>(
        &'s self,
        parent: &'p str,
    ) -> impl Iterator<Item = (PromotedField, u8, &'s str, &'s [String])> + use<'s, 'p> {
        PromotedField::ALL.into_iter().flat_map(move |field| {
            self.names(field)
                .iter()
                .enumerate()
                .filter_map(move |(rank, n)| {
                    let path = n.path.as_deref()?;
                    (path.first()? == parent)
                        .then(|| (field, rank as u8, n.key.as_str(), &path[1..]))
                })
        })
    }

    /// Only the built-in names.
    pub fn builtin() -> &'static FieldNames {
        &BUILTIN
    }

    fn names(&self, field: PromotedField) -> &[Name] {
        match field {
            PromotedField::Timestamp => &self.timestamp,
            PromotedField::Level => &self.level,
            PromotedField::Service => &self.service,
            PromotedField::Host => &self.host,
            PromotedField::RequestId => &self.request_id,
            PromotedField::Message => &self.message,
        }
    }

    /// Takes the first present name's value out of `obj` if `parse` reads
    /// it; a value it cannot read is left where it is.
    pub fn take_parsed<T>(
        &self,
        field: PromotedField,
        obj: &mut Map<String, Value>,
        parse: impl Fn(&Value) -> Option<T>,
    ) -> Option<T> {
        let (name, parsed) = self
            .names(field)
            .iter()
            .find_map(|n| n.get(obj).map(|v| (n, parse(v))))?;
        let parsed = parsed?;
        name.take(obj);
        Some(parsed)
    }

    /// Takes the field's text (a string, or a number as text) out of `obj`:
    /// the first name holding one. Other values stay.
    pub fn take_text(&self, field: PromotedField, obj: &mut Map<String, Value>) -> Option<String> {
        let name = self
            .names(field)
            .iter()
            .find(|n| matches!(n.get(obj), Some(Value::String(_) | Value::Number(_))))?;
        match name.take(obj)? {
            Value::String(s) => Some(s),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    /// The field's text as [`FieldNames::take_text`] would take it, left in place.
    pub fn text(&self, field: PromotedField, obj: &Map<String, Value>) -> Option<String> {
        self.names(field).iter().find_map(|n| match n.get(obj) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(x)) => Some(x.to_string()),
            _ => None,
        })
    }

    /// Whether the first name present holds a string (the message is
    /// promoted only then: a structured `message` stays in `fields`).
    pub fn first_is_string(&self, field: PromotedField, obj: &Map<String, Value>) -> bool {
        self.names(field)
            .iter()
            .find_map(|n| n.get(obj))
            .is_some_and(Value::is_string)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        let Value::Object(m) = v else { panic!() };
        m
    }

    #[test]
    fn configured_names_come_first_then_the_builtin_ones() {
        let config = FieldsConfig {
            level: Some(vec!["Level".into(), "level".into()]),
            ..FieldsConfig::default()
        };
        let names = FieldNames::new(&config);
        let mut m = obj(json!({"level": "info", "Level": "ERROR"}));
        assert_eq!(
            names.take_text(PromotedField::Level, &mut m).as_deref(),
            Some("ERROR")
        );
        assert_eq!(m, obj(json!({"level": "info"})));
        let keys: Vec<&str> = names.level.iter().map(|n| n.key.as_str()).collect();
        assert_eq!(
            keys,
            ["Level", "level", "severity", "lvl", "loglevel", "log.level"]
        );
    }

    #[test]
    fn a_dotted_name_matches_the_flat_key_or_the_nested_path() {
        let names = FieldNames::builtin();
        let mut flat = obj(json!({"log.level": "warn", "a": 1}));
        assert_eq!(
            names.take_text(PromotedField::Level, &mut flat).as_deref(),
            Some("warn")
        );
        assert_eq!(flat, obj(json!({"a": 1})));
        let mut nested =
            obj(json!({"log": {"level": "warn", "logger": "db"}, "service": {"name": "cart"}}));
        assert_eq!(
            names
                .take_text(PromotedField::Level, &mut nested)
                .as_deref(),
            Some("warn")
        );
        assert_eq!(
            names
                .take_text(PromotedField::Service, &mut nested)
                .as_deref(),
            Some("cart")
        );
        // `service` itself was an object, so it was skipped; its emptied parent went.
        assert_eq!(nested, obj(json!({"log": {"logger": "db"}})));
    }

    #[test]
    fn a_route_list_replaces_the_tenants_for_that_field_only() {
        let tenant = FieldsConfig {
            level: Some(vec!["Severity".into()]),
            service: Some(vec!["ServiceKey".into()]),
            ..FieldsConfig::default()
        };
        let route = FieldsConfig {
            level: Some(vec!["Lvl".into()]),
            ..FieldsConfig::default()
        };
        let merged = route.or(&tenant);
        assert_eq!(merged.level, Some(vec!["Lvl".to_string()]));
        assert_eq!(merged.service, Some(vec!["ServiceKey".to_string()]));
    }

    #[test]
    fn bad_names_are_config_errors_naming_the_key() {
        let bad = FieldsConfig {
            host: Some(vec!["a..b".into()]),
            ..FieldsConfig::default()
        };
        let err = bad.validate("tenants[0].fields").unwrap_err().to_string();
        assert!(err.contains("tenants[0].fields.host"), "{err}");
    }
}
