//! Tenants: keys → tenant and role, URL paths → routes ([`route`]), rate
//! limits ([`limit`]), and their config ([`config`]). Together they form
//! the [`Policy`] a config reload swaps.
//!
//! A key arrives as `Authorization: Bearer <key>`, an `X-Logway-Key` header,
//! or a `key` query parameter ([`key::request_key`]; for
//! `navigator.sendBeacon`, which cannot set headers). With no key
//! configured anywhere (the embedded defaults), every request belongs to the
//! single tenant; config validation allows that on loopback only.
//!
//! Over TLS with a client CA, a request without a key may instead present a
//! client certificate: a name of it (subject CN or DNS SAN) listed in a
//! tenant's `ingest_cert_names` makes it an ingest request of that tenant.
//! A key, when present, decides; a certificate never grants admin rights.
//!
//! Errors here ([`AccessError`]) name what was refused in plain terms; the
//! sources and the API turn them into their protocol's answer.

pub mod config;
pub mod key;
pub mod limit;
pub mod route;

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::Config;
use crate::config::class::Class;
use crate::event::FieldNames;
use crate::filter::FilterRef;
use crate::filter::caps::Chain;
use crate::listen::tls::ClientCert;
use config::TenantConfig;

/// Why a caller may not go on.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AccessError {
    #[error(
        "no key: send `Authorization: Bearer <key>`, an `X-Logway-Key` header, or a `key` query parameter"
    )]
    NoKey,
    #[error("unknown key")]
    UnknownKey,
    #[error(
        "the client certificate ({0}) is not listed in any tenant's ingest_cert_names; send a key or a listed certificate"
    )]
    UnknownCert(String),
    /// The key is valid but may not do this (another tenant's route, an
    /// ingest key used to search).
    #[error("{0}")]
    Forbidden(String),
    /// No route for the path (or the tenant has switched it off).
    #[error("{0}")]
    NoRoute(String),
    /// The path names a log type that is not a valid name.
    #[error("{0}")]
    BadType(String),
}

/// What a config reload changes without a restart: tenants, keys, routes,
/// CORS origins and rate limits. Requests take the current one at start.
pub struct Policy {
    pub tenants: Tenants,
    pub limits: limit::Limiters,
}

impl Policy {
    pub fn from_config(config: &Config) -> Policy {
        Policy {
            tenants: Tenants::from_config(config),
            limits: limit::Limiters::from_config(config),
        }
    }
}

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
    /// The tenant's field names (its generic route's and its listeners').
    pub fields: Arc<FieldNames>,
    /// Index name patterns → where their events go ([`route::resolve_index`]).
    pub indices: Vec<IndexRoute>,
}

/// An index name pattern and where its events go.
#[derive(Debug, Clone)]
pub struct IndexRoute {
    pub pattern: String,
    pub target: IndexTarget,
}

#[derive(Debug, Clone)]
pub enum IndexTarget {
    /// A log type, without filters.
    Type(String),
    /// One of the tenant's routes, by path.
    Route(String),
}

/// What a request's URL path gives its events.
#[derive(Debug, Clone)]
pub struct Route {
    pub log_type: String,
    /// Filters run in order before the WAL (empty: none).
    pub filters: Arc<[FilterRef]>,
    /// Where this route's events keep their promoted fields (the route's
    /// `fields`, else the tenant's, then the built-in names).
    pub fields: Arc<FieldNames>,
    /// What the route promises its events (`log` unless configured).
    pub class: Class,
    /// How the native HTTP endpoint reads its bodies.
    pub format: config::RouteFormat,
}

impl Route {
    /// A log type's plain route (the generic route's, an index mapped to
    /// a type): no filters, the log class, native bodies.
    pub fn of_type(log_type: String, fields: Arc<FieldNames>) -> Route {
        Route {
            log_type,
            filters: Vec::new().into(),
            fields,
            class: Class::Log,
            format: config::RouteFormat::Native,
        }
    }

    /// What a listener bound to `tenant` (syslog, Beats) gives events of
    /// `log_type`, as a route would: its filters, its field names over the
    /// tenant's, and its class.
    pub fn for_listener(
        tenants: &[TenantConfig],
        tenant: &str,
        log_type: &str,
        filters: &[FilterRef],
        fields: &crate::event::FieldsConfig,
        class: Class,
    ) -> Route {
        let tenant_fields = tenants
            .iter()
            .find(|t| t.name == tenant)
            .map(|t| t.fields.clone())
            .unwrap_or_default();
        Route {
            log_type: log_type.to_string(),
            filters: filters.to_vec().into(),
            fields: Arc::new(FieldNames::new(&fields.or(&tenant_fields))),
            class,
            format: config::RouteFormat::Native,
        }
    }
}

impl Tenant {
    fn from_config(c: &TenantConfig) -> Tenant {
        let fields = Arc::new(FieldNames::new(&c.fields));
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
                        fields: Arc::new(FieldNames::new(&r.fields.or(&c.fields))),
                        class: r.class,
                        format: r.format,
                    };
                    (r.path.clone(), route)
                })
                .collect(),
            fields,
            indices: c
                .indices
                .iter()
                .map(|x| IndexRoute {
                    pattern: x.pattern.clone(),
                    target: match (&x.log_type, &x.route) {
                        (Some(t), _) => IndexTarget::Type(t.clone()),
                        (None, r) => IndexTarget::Route(r.clone().unwrap_or_default()),
                    },
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
    /// Every filter chain, with its delivery class: these routes (by
    /// path) and the listeners of `config` (`syslog:{addr}`,
    /// `beats:{addr}`, `gelf:{addr}`, `kafka:{topics}`), by name.
    pub fn chains(&self, config: &Config) -> Vec<(Class, Chain)> {
        let mut chains: Vec<(Class, Chain)> = self
            .tenants
            .iter()
            .flat_map(|t| t.routes.iter().map(move |(path, r)| (t, path, r)))
            .map(|(t, path, r)| {
                let chain = Chain {
                    tenant: t.name.clone(),
                    name: path.clone(),
                    filters: r.filters.to_vec(),
                };
                (r.class, chain)
            })
            .collect();
        let mut listener = |class: Class, tenant: &str, name: String, filters: &[FilterRef]| {
            let chain = Chain {
                tenant: tenant.to_string(),
                name,
                filters: filters.to_vec(),
            };
            chains.push((class, chain));
        };
        for l in &config.syslog {
            listener(l.class, &l.tenant, format!("syslog:{}", l.addr), &l.filters);
        }
        for l in &config.beats {
            listener(l.class, &l.tenant, format!("beats:{}", l.addr), &l.filters);
        }
        for l in &config.gelf.listeners {
            listener(l.class, &l.tenant, format!("gelf:{}", l.addr), &l.filters);
        }
        for k in &config.kafka_sources {
            let name = format!("kafka:{}", k.topics.join(","));
            listener(k.class, &k.tenant, name, &k.filters);
        }
        chains.sort_by(|a, b| a.1.name.cmp(&b.1.name));
        chains
    }

    /// Every event-class chain ([`crate::filter::caps`]).
    pub fn event_chains(&self, config: &Config) -> Vec<Chain> {
        self.chains(config)
            .into_iter()
            .filter(|(class, _)| *class == Class::Event)
            .map(|(_, chain)| chain)
            .collect()
    }

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

    /// No tenant has a key (the embedded defaults): every caller is the
    /// default tenant's admin.
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// Finds the tenant and role of the request's key.
    pub fn authenticate(&self, key: Option<&str>) -> Result<(&Tenant, Role), AccessError> {
        self.by_key_index(key)
            .map(|(i, role)| (&self.tenants[i], role))
    }

    fn by_key_index(&self, key: Option<&str>) -> Result<(usize, Role), AccessError> {
        if self.open {
            return Ok((0, Role::Admin));
        }
        let key = key.ok_or(AccessError::NoKey)?;
        let &(i, role) = self.by_key.get(key).ok_or(AccessError::UnknownKey)?;
        Ok((i, role))
    }

    /// The tenant (its index in [`Tenants::tenants`]) and role of a
    /// request: by its key if it has one, else by its verified client
    /// certificate (ingest role).
    pub fn authenticate_request(
        &self,
        key: Option<&str>,
        cert: Option<&ClientCert>,
    ) -> Result<(usize, Role), AccessError> {
        match (key, cert) {
            (None, Some(cert)) if !self.open => self
                .cert_index(cert)
                .map(|i| (i, Role::Ingest))
                .ok_or_else(|| AccessError::UnknownCert(cert.0.join(", "))),
            _ => self.by_key_index(key),
        }
    }

    fn cert_index(&self, cert: &ClientCert) -> Option<usize> {
        cert.0
            .iter()
            .find_map(|n| self.by_cert_name.get(n))
            .copied()
    }

    /// The tenant whose `ingest_cert_names` holds a name of `cert`.
    pub fn tenant_of_cert(&self, cert: &ClientCert) -> Option<&Tenant> {
        self.cert_index(cert).map(|i| &self.tenants[i])
    }

    /// Like [`Tenants::authenticate`], but the key must be an admin key.
    pub fn authenticate_admin(&self, key: Option<&str>) -> Result<&Tenant, AccessError> {
        match self.authenticate(key)? {
            (tenant, Role::Admin) => Ok(tenant),
            (_, Role::Ingest) => Err(AccessError::Forbidden(
                "this is an ingest key; searching needs an admin key".into(),
            )),
        }
    }
}
