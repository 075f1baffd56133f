//! Rate limits: per tenant, per route and per client IP, each in events/s
//! and bytes/s with a burst (GCRA, via `governor`).
//!
//! A request is checked twice: its bytes (as sent) once the body is read,
//! its events (every stored event, rejected lines included) once decoded.
//! A request larger than a limit's burst could never pass: 413. Otherwise a
//! request over a limit is 429 with `Retry-After`, the whole seconds until
//! it would fit. Per-client limits are keyed by the peer IP (behind a proxy,
//! that is the proxy), and idle keys are evicted every minute, so the table
//! stays bounded under many distinct clients.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::config::RateLimitConfig;
use crate::config::Config;

/// What is limited, for the error body and the metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Tenant,
    Route,
    Client,
}

impl Scope {
    fn name(self) -> &'static str {
        match self {
            Scope::Tenant => "tenant",
            Scope::Route => "route",
            Scope::Client => "client",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Events,
    Bytes,
}

impl Unit {
    fn name(self) -> &'static str {
        match self {
            Unit::Events => "events",
            Unit::Bytes => "bytes",
        }
    }
}

/// A refused request: which limit, and what to tell the client.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    /// Which limit, e.g. "tenant_events".
    pub limit: String,
    /// Whole seconds until the request would fit; `None` when it never
    /// can (more than the limit's burst: 413, not 429).
    pub retry_after: Option<u64>,
    pub message: String,
}

impl Refusal {
    /// The metric label: the limit, with `_over_burst` for a request that
    /// can never pass.
    pub fn reason(&self) -> String {
        match self.retry_after {
            Some(_) => self.limit.clone(),
            None => format!("{}_over_burst", self.limit),
        }
    }
}

fn quota(per_sec: u32, burst: Option<u32>) -> Option<Quota> {
    let rate = NonZeroU32::new(per_sec)?;
    let burst = burst.and_then(NonZeroU32::new).unwrap_or(rate);
    Some(Quota::per_second(rate).allow_burst(burst))
}

/// An events limiter and a bytes limiter, either optional.
struct Pair<L> {
    events: Option<L>,
    bytes: Option<L>,
}

impl<L> Pair<L> {
    fn build(c: &RateLimitConfig, make: impl Fn(Quota) -> L) -> Pair<L> {
        Pair {
            events: c
                .events_per_sec
                .and_then(|r| quota(r, c.events_burst))
                .map(&make),
            bytes: c
                .bytes_per_sec
                .and_then(|r| quota(r, c.bytes_burst))
                .map(&make),
        }
    }

    fn get(&self, unit: Unit) -> Option<&L> {
        match unit {
            Unit::Events => self.events.as_ref(),
            Unit::Bytes => self.bytes.as_ref(),
        }
    }
}

/// All limiters, built from config.
pub struct Limiters {
    tenants: HashMap<String, Pair<DefaultDirectRateLimiter>>,
    routes: HashMap<(String, String), Pair<DefaultDirectRateLimiter>>,
    clients: HashMap<String, Pair<DefaultKeyedRateLimiter<IpAddr>>>,
    clock: DefaultClock,
}

impl Limiters {
    pub fn from_config(config: &Config) -> Limiters {
        let mut tenants = HashMap::new();
        let mut routes = HashMap::new();
        let mut clients = HashMap::new();
        let defaults = &config.rate_limits;
        for t in &config.tenants {
            if let Some(c) = t.rate_limit.as_ref().or(defaults.tenant.as_ref()) {
                tenants.insert(t.name.clone(), Pair::build(c, RateLimiter::direct));
            }
            if let Some(c) = t.client_rate_limit.as_ref().or(defaults.client.as_ref()) {
                clients.insert(t.name.clone(), Pair::build(c, RateLimiter::keyed));
            }
            for r in &t.routes {
                if let Some(c) = &r.rate_limit {
                    routes.insert(
                        (t.name.clone(), r.path.clone()),
                        Pair::build(c, RateLimiter::direct),
                    );
                }
            }
        }
        Limiters {
            tenants,
            routes,
            clients,
            clock: DefaultClock::default(),
        }
    }

    /// Takes `n` units from every limit that applies, tenant first.
    pub fn check(
        &self,
        tenant: &str,
        path: &str,
        client: IpAddr,
        unit: Unit,
        n: usize,
    ) -> Result<(), Refusal> {
        let n32 = u32::try_from(n).unwrap_or(u32::MAX);
        let Some(n) = NonZeroU32::new(n32) else {
            return Ok(());
        };
        if let Some(l) = self.tenants.get(tenant).and_then(|p| p.get(unit)) {
            self.verdict(l.check_n(n), Scope::Tenant, unit, n)?;
        }
        if let Some(l) = self
            .routes
            .get(&(tenant.to_string(), path.to_string()))
            .and_then(|p| p.get(unit))
        {
            self.verdict(l.check_n(n), Scope::Route, unit, n)?;
        }
        if let Some(l) = self.clients.get(tenant).and_then(|p| p.get(unit)) {
            self.verdict(l.check_key_n(&client, n), Scope::Client, unit, n)?;
        }
        Ok(())
    }

    fn verdict(
        &self,
        outcome: Result<
            Result<(), governor::NotUntil<<DefaultClock as Clock>::Instant>>,
            governor::InsufficientCapacity,
        >,
        scope: Scope,
        unit: Unit,
        n: NonZeroU32,
    ) -> Result<(), Refusal> {
        let reason = format!("{}_{}", scope.name(), unit.name());
        match outcome {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => {
                let wait = not_until.wait_time_from(self.clock.now());
                Err(Refusal {
                    limit: reason,
                    retry_after: Some(retry_after_secs(wait)),
                    message: format!(
                        "over the {} {} limit: retry in {:.1} s",
                        scope.name(),
                        unit.name(),
                        wait.as_secs_f64()
                    ),
                })
            }
            Err(governor::InsufficientCapacity(burst)) => Err(Refusal {
                message: format!(
                    "this request has {n} {unit}, more than the {scope} {unit} limit's burst of {burst}: it can never be accepted; send smaller batches",
                    unit = unit.name(),
                    scope = scope.name(),
                ),
                limit: reason,
                retry_after: None,
            }),
        }
    }

    /// Forgets client IPs whose state is back to fresh; returns keys left.
    pub fn evict_idle_clients(&self) -> usize {
        let mut left = 0;
        for pair in self.clients.values() {
            for l in [&pair.events, &pair.bytes].into_iter().flatten() {
                l.retain_recent();
                l.shrink_to_fit();
                left += l.len();
            }
        }
        left
    }
}

/// Whole seconds, rounded up, at least 1: `Retry-After` has no fractions.
fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiters(toml: &str) -> Limiters {
        Limiters::from_config(&Config::from_toml(toml).unwrap())
    }

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn over_the_rate_is_429_with_retry_after_and_over_the_burst_is_413() {
        let l = limiters(
            "[[tenants]]\nname = \"t\"\ningest_keys = [\"key-123456\"]\nrate_limit = { events_per_sec = 10, events_burst = 100 }\n",
        );
        assert!(l.check("t", "/x", IP, Unit::Events, 100).is_ok());
        let r = l.check("t", "/x", IP, Unit::Events, 50).unwrap_err();
        assert_eq!(r.reason(), "tenant_events");
        // 50 events at 10/s: about 5 s.
        let retry_after = r.retry_after.expect("a wait, not a refusal");
        assert!((4..=6).contains(&retry_after), "{retry_after}");
        let r = l.check("t", "/x", IP, Unit::Events, 101).unwrap_err();
        assert_eq!(r.reason(), "tenant_events_over_burst");
        assert_eq!(r.retry_after, None, "over the burst: never");
        // Other tenants are not limited.
        assert!(l.check("other", "/x", IP, Unit::Events, 1000).is_ok());
    }

    #[test]
    fn route_and_client_limits_apply_separately() {
        let l = limiters(
            "[[tenants]]\nname = \"t\"\ningest_keys = [\"key-123456\"]\nclient_rate_limit = { bytes_per_sec = 1000 }\nroutes = [{ path = \"/m\", type = \"m\", rate_limit = { events_per_sec = 5 } }]\n",
        );
        assert!(l.check("t", "/m", IP, Unit::Events, 5).is_ok());
        assert_eq!(
            l.check("t", "/m", IP, Unit::Events, 1)
                .unwrap_err()
                .reason(),
            "route_events"
        );
        assert!(
            l.check("t", "/other", IP, Unit::Events, 100).is_ok(),
            "route limit is per route"
        );
        assert!(l.check("t", "/other", IP, Unit::Bytes, 1000).is_ok());
        assert_eq!(
            l.check("t", "/other", IP, Unit::Bytes, 10)
                .unwrap_err()
                .reason(),
            "client_bytes"
        );
        let other_ip: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(
            l.check("t", "/other", other_ip, Unit::Bytes, 1000).is_ok(),
            "client limit is per IP"
        );
    }

    #[test]
    fn idle_client_keys_are_evicted() {
        // One event at 5/s keeps a client's state distinguishable from a
        // fresh one for two emission intervals (400 ms).
        let l = limiters(
            "[[tenants]]\nname = \"t\"\ningest_keys = [\"key-123456\"]\nclient_rate_limit = { events_per_sec = 5, events_burst = 10 }\n",
        );
        for i in 0..20_000u32 {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(i));
            l.check("t", "/x", ip, Unit::Events, 1).unwrap();
        }
        assert_eq!(l.evict_idle_clients(), 20_000, "recent keys are kept");
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(l.evict_idle_clients(), 0, "idle keys are dropped");
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(3)), 3);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }
}
