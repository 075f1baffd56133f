//! Keys → tenant and role.
//!
//! A key arrives as `Authorization: Bearer <key>`, an `X-Logway-Key` header,
//! or a `key` query parameter (for `navigator.sendBeacon`, which cannot set
//! headers). With no key configured anywhere (the embedded defaults), every
//! request belongs to the single tenant; config validation allows that on
//! loopback only.
//!
//! Over TLS with a client CA, a request without a key may instead present a
//! client certificate: a name of it (subject CN or DNS SAN) listed in a
//! tenant's `ingest_cert_names` makes it an ingest request of that tenant.
//! A key, when present, decides; a certificate never grants admin rights.

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::HeaderMap;

use crate::api::error::ApiError;
use crate::config::{Config, FilterRef, TenantConfig};
use crate::listen::tls::ClientCert;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// May send logs.
    Ingest,
    /// May send logs, search, and administer the tenant.
    Admin,
}

/// One tenant as the request path sees it.
#[derive(Debug)]
pub struct Tenant {
    pub name: String,
    pub cors_origins: Vec<String>,
    pub generic_route: bool,
    /// URL path → log type and filter chain.
    pub routes: HashMap<String, Route>,
}

/// What a request's URL path gives its events.
#[derive(Debug, Clone)]
pub struct Route {
    pub log_type: String,
    /// Filters run in order before the WAL (empty: none).
    pub filters: Arc<[FilterRef]>,
}

impl Tenant {
    fn from_config(c: &TenantConfig) -> Tenant {
        Tenant {
            name: c.name.clone(),
            cors_origins: c.cors_origins.clone(),
            generic_route: c.generic_route,
            routes: c
                .routes
                .iter()
                .map(|r| {
                    let route = Route {
                        log_type: r.log_type.clone(),
                        filters: r.filters.clone().into(),
                    };
                    (r.path.clone(), route)
                })
                .collect(),
        }
    }

    pub fn allows_origin(&self, origin: &str) -> bool {
        self.cors_origins.iter().any(|o| o == "*" || o == origin)
    }
}

/// Every tenant and key, built once from config.
#[derive(Debug)]
pub struct Tenants {
    pub tenants: Vec<Tenant>,
    by_key: HashMap<String, (usize, Role)>,
    /// Client certificate name → tenant.
    by_cert_name: HashMap<String, usize>,
    open: bool,
}

impl Tenants {
    pub fn from_config(config: &Config) -> Tenants {
        let mut by_key = HashMap::new();
        for (i, t) in config.tenants.iter().enumerate() {
            for k in &t.ingest_keys {
                by_key.insert(k.0.clone(), (i, Role::Ingest));
            }
            for k in &t.admin_keys {
                by_key.insert(k.0.clone(), (i, Role::Admin));
            }
        }
        let by_cert_name = config
            .tenants
            .iter()
            .enumerate()
            .flat_map(|(i, t)| t.ingest_cert_names.iter().map(move |n| (n.clone(), i)))
            .collect();
        Tenants {
            tenants: config.tenants.iter().map(Tenant::from_config).collect(),
            by_key,
            by_cert_name,
            open: config.open_mode(),
        }
    }

    /// Finds the tenant and role of the request's key.
    pub fn authenticate(&self, key: Option<&str>) -> Result<(&Tenant, Role), ApiError> {
        if self.open {
            return Ok((&self.tenants[0], Role::Admin));
        }
        let key = key.ok_or(ApiError::NoKey)?;
        let (i, role) = self.by_key.get(key).ok_or(ApiError::UnknownKey)?;
        Ok((&self.tenants[*i], *role))
    }

    /// The tenant and role of a request: by its key if it has one, else by
    /// its verified client certificate (ingest role).
    pub fn authenticate_request(
        &self,
        key: Option<&str>,
        cert: Option<&ClientCert>,
    ) -> Result<(&Tenant, Role), ApiError> {
        match (key, cert) {
            (None, Some(cert)) if !self.open => self
                .tenant_of_cert(cert)
                .map(|t| (t, Role::Ingest))
                .ok_or_else(|| ApiError::UnknownCert(cert.0.join(", "))),
            _ => self.authenticate(key),
        }
    }

    /// The tenant whose `ingest_cert_names` holds a name of `cert`.
    pub fn tenant_of_cert(&self, cert: &ClientCert) -> Option<&Tenant> {
        cert.0
            .iter()
            .find_map(|n| self.by_cert_name.get(n))
            .map(|&i| &self.tenants[i])
    }

    /// Like [`Tenants::authenticate`], but the key must be an admin key.
    pub fn authenticate_admin(&self, key: Option<&str>) -> Result<&Tenant, ApiError> {
        match self.authenticate(key)? {
            (tenant, Role::Admin) => Ok(tenant),
            (_, Role::Ingest) => Err(ApiError::Forbidden(
                "this is an ingest key; searching needs an admin key".into(),
            )),
        }
    }
}

/// The key of a request, from headers or the `key` query parameter.
pub fn request_key<'a>(headers: &'a HeaderMap, query: Option<&'a str>) -> Option<&'a str> {
    if let Some(v) = headers.get("authorization").and_then(|v| v.to_str().ok())
        && let Some(k) = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
    {
        return Some(k.trim());
    }
    if let Some(v) = headers.get("x-logway-key").and_then(|v| v.to_str().ok()) {
        return Some(v.trim());
    }
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("key="))
        .filter(|k| !k.is_empty())
}
