//! # The pipeline: the only way into the WAL, the same for every source
//!
//! A source (`crate::sources`) frames and decodes its protocol into
//! [`Item`]s; the pipeline does the rest, in this order:
//!
//! 1. [`Pipeline::admit`]: key → tenant, URL path → route (log type,
//!    filters, field names); a listener bound to one tenant and type
//!    (syslog) is admitted by [`Pipeline::admit_listener`] instead.
//! 2. [`Pipeline::received`]: the request's bytes against the rate limits.
//! 3. [`Pipeline::recall`]: an `Idempotency-Key` seen before gets its
//!    first answer again ([`idempotency`]).
//! 4. [`Pipeline::build`] (blocking): the route's WASM filter chain, then
//!    stored events ([`crate::event`]); bad items become rejected events,
//!    events a filter failed on dead letters. One [`Outcome`] per item.
//! 5. [`Pipeline::store`]: the events against the rate limits, one sealed
//!    batch ([`crate::batch`]), appended to the [`log`] (the WAL, which
//!    resolves after fsync; in cluster mode a Kafka topic, which resolves
//!    once the brokers acknowledged it); only then may the source answer. Sources that keep several batches in
//!    flight in order (syslog) use [`Pipeline::seal`] and
//!    [`Pipeline::submit`] instead. What the log has no room for is
//!    refused by delivery class ([`shed`]).
//!
//! Nothing here knows HTTP: refusals are [`Error`]s, and each source says
//! them in its protocol's terms.

pub mod build;
pub mod config;
mod cpu;
pub mod error;
pub mod event_ids;
pub mod idempotency;
pub mod item;
pub mod log;
mod shed;
mod split;

use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};

use time::OffsetDateTime;

use crate::batch::{BatchHeader, IdempotencyRecord};
use crate::event::EventContext;
use crate::filter;
use crate::listen::tls::ClientCert;
use crate::telemetry::{LimitLabels, Metrics, TenantType};
use crate::tenants::limit::{Refusal, Unit};
use crate::tenants::{Policy, Route, Tenant, route};
pub use build::{Built, Counts};
use config::LimitsConfig;
pub use error::Error;
pub use event_ids::{Claim, Claimed};
use idempotency::{Idempotency, InFlightGuard, Lookup};
pub use item::{Item, Outcome};
pub use log::Log;

/// Longest `Idempotency-Key`.
pub const MAX_IDEMPOTENCY_KEY: usize = 255;

/// Who is sending, as the source knows it.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    /// The key the request carried, if any.
    pub key: Option<&'a str>,
    /// The verified client certificate of the connection, if any.
    pub cert: Option<&'a ClientCert>,
    pub ip: Option<IpAddr>,
}

/// A caller admitted to a route: what every later step needs.
pub struct Admission {
    /// The policy the request started under (a reload does not change it).
    policy: Arc<Policy>,
    pub tenant: String,
    /// The route's path (`syslog:{addr}` for a listener), as filters see it.
    pub path: String,
    pub route: Route,
    pub ip: Option<IpAddr>,
}

/// A caller whose tenant is known, before its route is.
pub struct Authenticated {
    policy: Arc<Policy>,
    /// In `policy.tenants.tenants`.
    index: usize,
    ip: Option<IpAddr>,
}

impl Authenticated {
    /// The tenant (for its CORS origins).
    pub fn tenant(&self) -> &Tenant {
        &self.policy.tenants.tenants[self.index]
    }

    /// `path` → the tenant's route (a source whose request spans several
    /// routes, like a bulk of several indices, asks once per route).
    pub fn route(&self, path: &str) -> Result<Admission, Error> {
        let route = route::resolve(&self.policy.tenants, self.tenant(), path)?;
        Ok(self.admission(path.to_string(), route))
    }

    fn admission(&self, path: String, route: Route) -> Admission {
        Admission {
            tenant: self.tenant().name.clone(),
            path,
            route,
            ip: self.ip,
            policy: self.policy.clone(),
        }
    }
}

impl Authenticated {
    /// An index name of a compat protocol (an Elasticsearch `_index`) →
    /// the tenant's route for it ([`route::resolve_index`]).
    pub fn route_index(&self, index: &str) -> Result<Admission, Error> {
        let (path, route) = route::resolve_index(&self.policy.tenants, self.tenant(), index)?;
        Ok(self.admission(path, route))
    }
}

impl Admission {
    fn labels(&self) -> TenantType {
        TenantType::new(&self.tenant, &self.route.log_type)
    }
}

/// A retried request's first answer, or the ticket of a first attempt.
pub enum Recall {
    Answered { status: u16, body: String },
    First(Ticket),
}

/// A first attempt with an `Idempotency-Key`: its answer is recorded with
/// its batch; dropping the ticket (the request failed) frees the key.
pub struct Ticket {
    guard: InFlightGuard,
    key: String,
    body_hash: u64,
}

impl Ticket {
    /// The answer the client will get, recorded in the batch so a retry
    /// gets it too.
    pub fn answer(self, status: u16, body: String) -> Answered {
        Answered {
            record: IdempotencyRecord {
                key: self.key,
                body_hash: self.body_hash,
                status,
                body,
            },
            guard: self.guard,
        }
    }
}

/// A ticket with its answer, ready to go into the batch.
pub struct Answered {
    guard: InFlightGuard,
    record: IdempotencyRecord,
}

/// What a batch brings, before it is built.
pub struct Meta {
    pub received: OffsetDateTime,
    /// The request's own id (`X-Request-ID`), for events that carry none.
    pub request_id: Option<String>,
    /// Bytes of a bad item kept in its rejected event, when the source
    /// bounds its items itself (syslog's `max_message_bytes`); else
    /// `limits.max_line_bytes`.
    pub max_line: Option<usize>,
}

impl Meta {
    pub fn now() -> Meta {
        Meta {
            received: OffsetDateTime::now_utc(),
            request_id: None,
            max_line: None,
        }
    }
}

/// Items some of which came with ids their client chose, after
/// [`Pipeline::claim_items`].
pub struct ClaimedItems<'a> {
    /// What to build: the items without a chosen id, and those whose id is
    /// new.
    pub items: Vec<(usize, Item<'a>)>,
    /// For each of `items`, its position among the items given.
    pub positions: Vec<usize>,
    /// The new ids, by line, for [`Pipeline::build_with_ids`].
    pub ids: Vec<(usize, String)>,
    /// The items left out: (position among the items given, its id, what
    /// the claim said: seen before, or in flight in another request).
    pub refused: Vec<(usize, String, Claim)>,
    /// Holds the new ids until [`Pipeline::store_checked`] makes them
    /// durable.
    pub claimed: Claimed,
}

/// A batch ready for the WAL.
pub struct Sealed {
    /// One batch, or its parts when the log takes smaller payloads
    /// (cluster mode, [`split`]), in order.
    pub payloads: Vec<bytes::Bytes>,
    pub tenant: String,
    pub log_type: String,
    /// The request's `Idempotency-Key`, if it had one.
    pub idempotency_key: Option<String>,
    /// The route's delivery class: which lane of the log it takes.
    pub class: crate::config::class::Class,
    /// Stored events that were not rejected or dead-lettered.
    accepted: usize,
    rejected: Vec<&'static str>,
}

/// Everything the pipeline needs once recovery is done.
pub struct Pipeline {
    policy: RwLock<Arc<Policy>>,
    log: Arc<dyn Log>,
    idempotency: Arc<Idempotency>,
    filters: Arc<filter::Registry>,
    metrics: Arc<Metrics>,
    limits: LimitsConfig,
    /// Compress batch bodies (`wal.compression`; off in cluster mode,
    /// where the producer compresses record batches).
    compress: bool,
    /// The machine's CPU load, when `limits.shed_at_cpu` is set.
    cpu: Option<Arc<cpu::CpuLoad>>,
}

impl Pipeline {
    pub fn new(
        policy: Policy,
        log: Arc<dyn Log>,
        idempotency: Arc<Idempotency>,
        filters: Arc<filter::Registry>,
        metrics: Arc<Metrics>,
        limits: LimitsConfig,
        compress: bool,
    ) -> Pipeline {
        Pipeline {
            policy: RwLock::new(Arc::new(policy)),
            log,
            idempotency,
            filters,
            cpu: cpu::CpuLoad::start(limits.shed_at_cpu, metrics.clone()),
            metrics,
            limits,
            compress,
        }
    }

    /// The gateway's metrics (the tenants' StatsD exposition among them).
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The current tenants, routes and limits.
    pub fn policy(&self) -> Arc<Policy> {
        self.policy.read().unwrap().clone()
    }

    /// Applies a reloaded policy to requests that start from now on.
    pub fn set_policy(&self, policy: Policy) {
        *self.policy.write().unwrap() = Arc::new(policy);
    }

    pub fn limits(&self) -> &LimitsConfig {
        &self.limits
    }

    pub fn filters(&self) -> &Arc<filter::Registry> {
        &self.filters
    }

    /// Key (or certificate) → tenant, `path` → route.
    pub fn admit(&self, caller: &Caller, path: &str) -> Result<Admission, Error> {
        self.authenticate(caller)?.route(path)
    }

    /// Key (or certificate) → tenant; [`Authenticated::route`] is the
    /// second half of [`Pipeline::admit`], for a source that needs the
    /// tenant even when the route is refused (CORS on the error).
    pub fn authenticate(&self, caller: &Caller) -> Result<Authenticated, Error> {
        let policy = self.policy();
        let (index, _role) = policy
            .tenants
            .authenticate_request(caller.key, caller.cert)?;
        Ok(Authenticated {
            index,
            ip: caller.ip,
            policy,
        })
    }

    /// A listener bound to `tenant` and `route` in config (its callers were
    /// authenticated, if at all, when they connected).
    pub fn admit_listener(
        &self,
        tenant: &str,
        path: String,
        route: Route,
        ip: Option<IpAddr>,
    ) -> Admission {
        Admission {
            policy: self.policy(),
            tenant: tenant.to_string(),
            path,
            route,
            ip,
        }
    }

    /// Counts a request's bytes (as sent) and checks them against the rate
    /// limits.
    pub fn received(&self, adm: &Admission, bytes: usize) -> Result<(), Error> {
        self.metrics
            .bytes_received
            .get_or_create(&adm.labels())
            .inc_by(bytes as u64);
        self.limit(adm, Unit::Bytes, bytes)
    }

    fn limit(&self, adm: &Admission, unit: Unit, n: usize) -> Result<(), Error> {
        let ip = adm
            .ip
            .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        adm.policy
            .limits
            .check(&adm.tenant, &adm.path, ip, unit, n)
            .map_err(|refusal: Refusal| {
                self.metrics
                    .requests_limited
                    .get_or_create(&LimitLabels {
                        tenant: adm.tenant.clone(),
                        r#type: adm.route.log_type.clone(),
                        reason: refusal.reason(),
                    })
                    .inc();
                Error::Limited(refusal)
            })
    }

    /// Looks up an `Idempotency-Key` for this body.
    pub fn recall(&self, adm: &Admission, key: &str, body: &[u8]) -> Result<Recall, Error> {
        if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY {
            return Err(Error::BadIdempotencyKey);
        }
        let body_hash = idempotency::body_hash(body);
        match self
            .idempotency
            .lookup(&adm.tenant, key, body_hash, crate::now_ms())
        {
            Lookup::Replay { status, body } => {
                self.metrics.idempotent_replays.inc();
                Ok(Recall::Answered { status, body })
            }
            Lookup::Mismatch => Err(Error::KeyReused),
            Lookup::InFlight => Err(Error::InFlight),
            Lookup::New(guard) => Ok(Recall::First(Ticket {
                guard,
                key: key.to_string(),
                body_hash,
            })),
        }
    }

    /// Items → the route's filters → stored events. Blocking: filters run
    /// here; call it from a blocking thread.
    pub fn build(&self, adm: &Admission, items: Vec<(usize, Item<'_>)>, meta: &Meta) -> Built {
        self.build_with_ids(adm, items, meta, Vec::new())
    }

    /// [`Pipeline::build`] with ids the source chose for some items (a
    /// bulk action's `_id`), by line ascending: the first event built from
    /// such an item gets its id; the others get a new ULID.
    pub fn build_with_ids(
        &self,
        adm: &Admission,
        items: Vec<(usize, Item<'_>)>,
        meta: &Meta,
        ids: Vec<(usize, String)>,
    ) -> Built {
        let route = &adm.route;
        let ctx = self.context(adm, meta);
        let max_line = meta.max_line.unwrap_or(self.limits.max_line_bytes);
        if route.filters.is_empty() {
            return build::unfiltered(items, &ctx, max_line, ids);
        }
        let info = filter::BatchInfo {
            tenant: &adm.tenant,
            log_type: &route.log_type,
            route: &adm.path,
            received_ms: unix_ms(meta.received),
            client_ip: adm.ip.map(|ip| ip.to_string()),
            fields: &route.fields,
            class: route.class,
        };
        let filters = (&*self.filters, &route.filters[..]);
        build::filtered(items, &ctx, max_line, ids, filters, &info)
    }

    /// What the events of one batch share (for a source that builds some
    /// itself: [`Item::Event`]).
    pub fn context<'a>(&self, adm: &'a Admission, meta: &'a Meta) -> EventContext<'a> {
        EventContext::new(
            &adm.tenant,
            &adm.route.log_type,
            meta.received,
            meta.request_id.as_deref(),
            self.limits.max_fields_per_event,
        )
        .with_fields(&adm.route.fields)
    }

    /// One WAL batch of built events (with the answer a retry gets, if the
    /// request had an `Idempotency-Key`). CPU work: compression.
    pub fn seal(
        &self,
        adm: &Admission,
        built: Built,
        idempotency: Option<IdempotencyRecord>,
    ) -> Sealed {
        self.seal_with_ids(adm, built, idempotency, Vec::new())
    }

    fn seal_with_ids(
        &self,
        adm: &Admission,
        built: Built,
        idempotency: Option<IdempotencyRecord>,
        event_ids: Vec<u64>,
    ) -> Sealed {
        let mut header = BatchHeader::new(
            &adm.tenant,
            &adm.route.log_type,
            unix_ms(built.received),
            built.events.len(),
            built.types,
            idempotency,
        );
        header.event_ids = event_ids;
        header.class = adm.route.class;
        let idempotency_key = header.idempotency.as_ref().map(|r| r.key.clone());
        let accepted = built.events.len() - built.reject_reasons.len();
        Sealed {
            payloads: split::payloads(header, &built.events, self.log.max_payload(), self.compress),
            tenant: adm.tenant.clone(),
            log_type: adm.route.log_type.clone(),
            idempotency_key,
            class: adm.route.class,
            accepted,
            rejected: built.reject_reasons,
        }
    }

    /// Client-chosen event ids remembered now.
    pub fn event_ids_remembered(&self) -> usize {
        self.idempotency.ids.len()
    }

    /// Claims client-chosen event ids of `adm`'s log type
    /// ([`event_ids`]): one [`Claim`] per id, in order; the new ones are
    /// held until [`Pipeline::store_checked`] makes them durable.
    pub fn claim_ids(&self, adm: &Admission, ids: &[&str]) -> (Vec<Claim>, Claimed) {
        let hashes: Vec<u64> = ids
            .iter()
            .map(|id| event_ids::id_hash(&adm.tenant, &adm.route.log_type, id))
            .collect();
        self.idempotency.ids.claim(&hashes, crate::now_ms())
    }

    /// Claims the ids a client chose for some of `items` (`ids`: position
    /// in `items` and id, by position ascending) and leaves out the items
    /// whose id is not new.
    pub fn claim_items<'a>(
        &self,
        adm: &Admission,
        items: Vec<(usize, Item<'a>)>,
        ids: Vec<(usize, String)>,
    ) -> ClaimedItems<'a> {
        let names: Vec<&str> = ids.iter().map(|(_, id)| id.as_str()).collect();
        let (claims, claimed) = self.claim_ids(adm, &names);
        let mut out = ClaimedItems {
            items: Vec::with_capacity(items.len()),
            positions: Vec::with_capacity(items.len()),
            ids: Vec::with_capacity(ids.len()),
            refused: Vec::new(),
            claimed,
        };
        let mut chosen = ids.into_iter().zip(claims).peekable();
        for (pos, (line, item)) in items.into_iter().enumerate() {
            match chosen.next_if(|((p, _), _)| *p == pos) {
                Some(((_, id), Claim::New)) => out.ids.push((line, id)),
                Some(((_, id), claim)) => {
                    out.refused.push((pos, id, claim));
                    continue;
                }
                None => {}
            }
            out.items.push((line, item));
            out.positions.push(pos);
        }
        out
    }

    /// Checks the events against the rate limits, seals them into one
    /// batch and appends it; resolves once it is durable. The first answer
    /// of a keyed request is remembered from then on.
    pub async fn store(
        &self,
        adm: &Admission,
        built: Built,
        answered: Option<Answered>,
    ) -> Result<(), Error> {
        if built.events.is_empty() {
            // The route's filters dropped every event on purpose: nothing
            // to store, and nothing the client did wrong.
            if built.counts.dropped > 0 {
                return Ok(());
            }
            return Err(Error::Empty);
        }
        self.check_events(adm, built.events.len())?;
        self.store_checked(adm, built, answered, None).await
    }

    /// Checks `n` events against the rate limits (for a source that checks
    /// several batches before storing any: [`Pipeline::store_checked`]).
    pub fn check_events(&self, adm: &Admission, n: usize) -> Result<(), Error> {
        self.limit(adm, Unit::Events, n)
    }

    /// [`Pipeline::store`] of events already checked against the limits,
    /// with the event ids the batch claimed.
    pub async fn store_checked(
        &self,
        adm: &Admission,
        built: Built,
        answered: Option<Answered>,
        ids: Option<Claimed>,
    ) -> Result<(), Error> {
        if built.events.is_empty() {
            return Err(Error::Empty);
        }
        let (guard, record) = match answered {
            Some(a) => (Some(a.guard), Some(a.record)),
            None => (None, None),
        };
        let hashes = ids
            .as_ref()
            .map(|c| c.hashes().to_vec())
            .unwrap_or_default();
        let sealed = self.seal_with_ids(adm, built, record.clone(), hashes);
        self.submit(&sealed)?.await?;
        self.count(&sealed);
        let now = crate::now_ms();
        if let (Some(guard), Some(record)) = (guard, &record) {
            guard.complete(record, now);
        }
        if let Some(ids) = ids {
            ids.complete(now);
        }
        Ok(())
    }

    /// Queues a sealed batch behind the caller's earlier ones and returns
    /// at once; the future resolves once it is durable. Records are written
    /// in the order they were submitted. Count it with [`Pipeline::count`]
    /// once durable.
    /// A refusal for want of room is counted by class and reason
    /// ([`shed`]).
    pub fn submit(
        &self,
        sealed: &Sealed,
    ) -> Result<impl Future<Output = Result<(), Error>> + Send + 'static, Error> {
        self.shed_for_index_lag(sealed)?;
        self.shed_for_cpu(sealed)?;
        self.log
            .submit(sealed)
            .inspect_err(|e| self.count_refusal(sealed.class, e))
    }

    /// Appends a sealed batch and waits until it is durable.
    pub async fn append(&self, sealed: &Sealed) -> Result<(), Error> {
        self.submit(sealed)?.await
    }

    /// Counts a durable batch's events as received and rejected.
    pub fn count(&self, sealed: &Sealed) {
        self.metrics.count_stored(
            &sealed.tenant,
            &sealed.log_type,
            sealed.accepted,
            &sealed.rejected,
        );
    }
}

fn unix_ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}
