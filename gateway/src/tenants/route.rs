//! URL path → log type, per tenant.
//!
//! A path is first checked against every tenant's routes (unknown to all →
//! 404, before any key is looked at), then against the key's own tenant
//! (a route of another tenant → 403). `/v1/logs/{type}` is the generic route
//! every tenant has unless it switches it off.

use super::{AccessError, Route, Tenant, Tenants};
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
        return Ok(Route {
            log_type: log_type.to_string(),
            filters: Vec::new().into(),
            fields: tenant.fields.clone(),
        });
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
