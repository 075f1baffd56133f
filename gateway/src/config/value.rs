//! Values the config sections share: durations, names, secrets, and the
//! error a section's validation gives.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::ConfigError;

/// Refuses a key of `client` (librdkafka properties passed as they are,
/// at config key `at`) that is among `own`, the ones Logway sets itself.
pub fn refuse_own_properties(
    at: &str,
    client: &BTreeMap<String, String>,
    own: &[&str],
    instead: &str,
) -> Result<(), ConfigError> {
    match client.keys().find(|k| own.contains(&k.as_str())) {
        Some(k) => Err(invalid(
            &format!("{at}.{k}"),
            format!("is set by Logway itself; {instead}"),
        )),
        None => Ok(()),
    }
}

/// A librdkafka client for `brokers`: `defaults` first, then the user's
/// `client` properties over them; the caller then sets the properties
/// its contract depends on (which [`refuse_own_properties`] keeps out of
/// `client`).
pub fn kafka_client(
    brokers: &str,
    defaults: &[(&str, &str)],
    client: &BTreeMap<String, String>,
) -> rdkafka::config::ClientConfig {
    let mut config = rdkafka::config::ClientConfig::new();
    for (k, v) in defaults {
        config.set(*k, *v);
    }
    for (k, v) in client {
        config.set(k, v);
    }
    config.set("bootstrap.servers", brokers);
    config
}

/// A config error at `key` (the full path, e.g. `tenants[0].routes[1].path`).
pub fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Key {
        key: key.to_string(),
        message: message.into(),
    }
}

/// A key or other secret; never printed by `Debug`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Refuses `url` at `at` unless it is an http(s) URL.
pub fn check_http_url(at: &str, url: &str) -> Result<(), ConfigError> {
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(()),
        _ => Err(invalid(at, format!("`{url}` is not an http(s) URL"))),
    }
}

/// Refuses request headers at `at` that are not valid HTTP header names
/// and values.
pub fn check_headers(
    at: &str,
    headers: &std::collections::BTreeMap<String, String>,
) -> Result<(), ConfigError> {
    for (k, v) in headers {
        if reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_err()
            || reqwest::header::HeaderValue::from_str(v).is_err()
        {
            return Err(invalid(at, format!("`{k}` is not a valid header")));
        }
    }
    Ok(())
}

pub fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// Log type names become directory names and query terms: keep them plain.
pub fn valid_type_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// What a filter name may be, said in errors.
pub const FILTER_NAME_RULE: &str = "must be 1-64 characters of a-z, 0-9, '_' and '-'";

/// Filter names follow the log type rule (they become directory names).
pub fn valid_filter_name(name: &str) -> bool {
    valid_type_name(name)
}

/// Parses "250ms", "10s", "5m", "24h", "7d"; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 500ms, 10s, 5m, 24h or 7d"))?;
    let secs = |k: u64| Duration::from_secs(n.saturating_mul(k));
    match unit.trim() {
        "ms" => Ok(Duration::from_millis(n)),
        "" | "s" => Ok(secs(1)),
        "m" => Ok(secs(60)),
        "h" => Ok(secs(3600)),
        "d" => Ok(secs(86_400)),
        other => Err(format!(
            "unknown duration unit `{other}` in `{text}` (use ms, s, m, h or d)"
        )),
    }
}

pub fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

pub fn de_duration_map<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, Duration>, D::Error> {
    let raw = BTreeMap::<String, String>::deserialize(d)?;
    raw.into_iter()
        .map(|(k, v)| Ok((k, parse_duration(&v).map_err(serde::de::Error::custom)?)))
        .collect()
}

pub fn de_opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(d)?;
    parse_duration(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(
            parse_duration("7d").unwrap(),
            Duration::from_secs(7 * 86400)
        );
        assert!(parse_duration("7 weeks").is_err());
    }
}
