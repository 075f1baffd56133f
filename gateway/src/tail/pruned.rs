//! A stored event parsed only as far as the open tails' queries look: the
//! top-level members they name become values, the rest are skipped
//! unparsed (no allocation for them). The matcher reads nothing else, so
//! it answers on the pruned event as on the whole one (its tests check
//! both).

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};

/// The event's members named in `names`, as an object (an error if the
/// event is not a JSON object).
pub fn parse(event: &[u8], names: &[String]) -> serde_json::Result<Value> {
    let mut de = serde_json::Deserializer::from_slice(event);
    let value = Object(names).deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

struct Object<'a>(&'a [String]);

impl<'de> DeserializeSeed<'de> for Object<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Object<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key_seed(Key(self.0))? {
            match key {
                // As serde_json's own map: a repeated member's last value.
                Some(key) => {
                    out.insert(key, map.next_value()?);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Value::Object(out))
    }
}

/// A member name: kept (`Some`) if it is one of the names.
struct Key<'a>(&'a [String]);

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = Option<String>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<String>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key<'_> {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Option<String>, E> {
        Ok(self.0.iter().any(|n| n == s).then(|| s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_the_named_members() {
        let names = ["level".to_string(), "fields".to_string()];
        let event = br#"{"message":"a \"b\"","level":"warn","fields":{"x":[1,{"y":2}]},"level":"error","n\u0061me":1}"#;
        let v = parse(event, &names).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"level":"error","fields":{"x":[1,{"y":2}]}})
        );
        // An escaped name is compared as it reads.
        let v = parse(br#"{"l\u0065vel":"info"}"#, &names).unwrap();
        assert_eq!(v, serde_json::json!({"level":"info"}));
        assert!(parse(b"[1]", &names).is_err());
        assert!(parse(br#"{"level":"info"} x"#, &names).is_err());
        assert!(parse(br#"{"other":[1,}"#, &names).is_err());
    }
}
