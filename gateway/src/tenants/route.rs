//! URL path → log type, per tenant.
//!
//! A path is first checked against every tenant's routes (unknown to all →
//! 404, before any key is looked at), then against the key's own tenant
//! (a route of another tenant → 403). `/v1/logs/{type}` is the generic route
//! every tenant has unless it switches it off.

use super::{AccessError, IndexTarget, Route, Tenant, Tenants};
use crate::config::valid_type_name;

pub const GENERIC_PREFIX: &str = "/v1/logs/";

/// True when some tenant serves `path` (or it is a generic route).
pub fn is_ingest_path(tenants: &Tenants, path: &str) -> bool {
    path.starts_with(GENERIC_PREFIX) || tenants.tenants.iter().any(|t| t.routes.contains_key(path))
}

/// The log type and filter chain `path` means for `tenant`.
pub fn resolve(tenants: &Tenants, tenant: &Tenant, path: &str) -> Result<Route, AccessError> {
    if let Some(log_type) = path.strip_prefix(GENERIC_PREFIX) {
        if !tenant.generic_route {
            return Err(AccessError::NoRoute(format!(
                "tenant `{}` has no generic route; post to one of its routes",
                tenant.name
            )));
        }
        if !valid_type_name(log_type) {
            return Err(AccessError::BadType(format!(
                "log type `{log_type}` must be 1-64 characters of a-z, 0-9, '_' and '-'"
            )));
        }
        return Ok(Route::of_type(log_type.to_string(), tenant.fields.clone()));
    }
    if let Some(route) = tenant.routes.get(path) {
        return Ok(route.clone());
    }
    if tenants.tenants.iter().any(|t| t.routes.contains_key(path)) {
        return Err(AccessError::Forbidden(format!(
            "this key may not send to `{path}`: the route belongs to another tenant"
        )));
    }
    Err(AccessError::NoRoute(format!("no route for `{path}`")))
}

/// Where events sent to index `index` go for `tenant` (the compat
/// protocols' index names: an Elasticsearch `_index`): the first of the
/// tenant's `indices` patterns that matches, else a log type derived from
/// the name ([`type_of_index`]) if the tenant has its generic route.
/// Returns the route and the path its rate limits are counted under.
pub fn resolve_index(
    tenants: &Tenants,
    tenant: &Tenant,
    index: &str,
) -> Result<(String, Route), AccessError> {
    let target = tenant
        .indices
        .iter()
        .find(|x| glob_match(&x.pattern, index))
        .map(|x| x.target.clone());
    match target {
        Some(IndexTarget::Route(path)) => {
            let route = resolve(tenants, tenant, &path)?;
            Ok((path, route))
        }
        Some(IndexTarget::Type(log_type)) => Ok((
            format!("{GENERIC_PREFIX}{log_type}"),
            Route::of_type(log_type, tenant.fields.clone()),
        )),
        None => {
            let Some(log_type) = type_of_index(index) else {
                return Err(AccessError::BadType(format!(
                    "index `{index}` gives no log type; map it in the tenant's `indices`"
                )));
            };
            if !tenant.generic_route {
                return Err(AccessError::NoRoute(format!(
                    "no index pattern of tenant `{}` matches `{index}`, and its generic route is off",
                    tenant.name
                )));
            }
            let path = format!("{GENERIC_PREFIX}{log_type}");
            let route = resolve(tenants, tenant, &path)?;
            Ok((path, route))
        }
    }
}

/// `*` matches any run of characters (none included); the rest literally.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// The log type an index name gives by default: a data stream
/// `logs-{dataset}-{namespace}` gives its dataset; other names lose a
/// trailing date (`-2026.11.30`, `-2026.11`, `-2026-11-30`, `-20261130`)
/// and version (`-8.15.0`, `-000001`) suffixes, as in
/// `filebeat-8.15.0-2026.11.30` → `filebeat`. Lowercased; characters
/// other than a-z, 0-9, `_` and `-` become `_`; at most 64 characters.
pub fn type_of_index(index: &str) -> Option<String> {
    let mut name = index.trim().to_ascii_lowercase();
    if let Some(backing) = name.strip_prefix(".ds-") {
        name = backing.to_string();
    }
    let mut parts: Vec<&str> = name.split('-').collect();
    while parts.len() > 1 && is_suffix(parts[parts.len() - 1]) {
        parts.pop();
    }
    let base = match parts.as_slice() {
        [kind, dataset @ .., _namespace]
            if !dataset.is_empty()
                && matches!(*kind, "logs" | "metrics" | "traces" | "synthetics") =>
        {
            dataset.join("-")
        }
        [only] if is_suffix(only) => return None,
        _ => parts.join("-"),
    };
    let cleaned: String = base
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '_' | '-' => c,
            _ => '_',
        })
        .take(64)
        .collect();
    let cleaned = cleaned.trim_matches(|c| c == '_' || c == '-').to_string();
    crate::config::valid_type_name(&cleaned).then_some(cleaned)
}

/// A date or version part of an index name: digits and dots only.
fn is_suffix(part: &str) -> bool {
    !part.is_empty() && part.chars().all(|c| c.is_ascii_digit() || c == '.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_names_give_their_type() {
        let cases = [
            ("filebeat-8.15.0-2026.11.30", Some("filebeat")),
            ("filebeat-8.15.0", Some("filebeat")),
            ("logstash-2026.11.30", Some("logstash")),
            ("logs-nginx.access-default", Some("nginx_access")),
            (".ds-logs-app-prod-2026.11.30-000001", Some("app")),
            ("app-logs-2026-11-30", Some("app-logs")),
            ("syslog-20261130", Some("syslog")),
            ("My Index", Some("my_index")),
            ("2026.11.30", None),
            ("", None),
            ("***", None),
        ];
        for (index, want) in cases {
            assert_eq!(type_of_index(index).as_deref(), want, "{index}");
        }
    }

    #[test]
    fn globs_match_like_index_patterns() {
        assert!(glob_match("filebeat-*", "filebeat-8.15.0"));
        assert!(glob_match("filebeat-*", "filebeat-"));
        assert!(!glob_match("filebeat-*", "filebeat"));
        assert!(glob_match("logs-*-default", "logs-nginx.access-default"));
        assert!(!glob_match("logs-*-default", "logs-nginx-prod"));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
        assert!(glob_match("a*b*c", "aXbYc"));
        assert!(!glob_match("a*b*c", "aXcYb"));
    }
}
