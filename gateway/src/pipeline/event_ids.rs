//! Event ids a client chose (an Elasticsearch bulk action's `_id`): a
//! resend of the same id within the idempotency window is not stored
//! twice.
//!
//! An id is known by a 64-bit hash of (tenant, log type, id). A request
//! claims its ids before it stores ([`EventIds::claim`]): each is new, seen
//! (stored before, or earlier in the same request), or in flight (another
//! request is storing it now). The new ones travel in the batch header
//! (`event_ids`), so they are durable exactly when the events are; the
//! idempotency consumer copies them into `data/idempotency.log`, so they
//! outlive WAL segments and restarts (`crate::pipeline::idempotency`).
//!
//! Bounded: at most `idempotency.max_event_ids` ids are remembered; past
//! that the oldest are forgotten first (counted in
//! `logway_event_ids_forgotten_total`), so the window shrinks under a flood
//! instead of memory growing.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use prometheus_client::metrics::counter::Counter;

/// What a claimed id should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// First time: store it (the claim holds it until stored or dropped).
    New,
    /// Stored before within the window, or earlier in this request.
    Seen,
    /// Another request is storing it right now: retry shortly.
    InFlight,
}

/// The hash an id is known by.
pub fn id_hash(tenant: &str, log_type: &str, id: &str) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(tenant.as_bytes());
    h.update(&[0]);
    h.update(log_type.as_bytes());
    h.update(&[0]);
    h.update(id.as_bytes());
    h.digest()
}

pub struct EventIds {
    window_ms: i64,
    max: usize,
    state: Mutex<State>,
    forgotten: Counter,
}

#[derive(Default)]
struct State {
    /// Hash → when it was stored (ms).
    seen: HashMap<u64, i64>,
    /// The same, oldest first, for expiry.
    order: VecDeque<(u64, i64)>,
    in_flight: HashSet<u64>,
}

impl EventIds {
    /// `forgotten` counts live ids the bound forgot.
    pub fn new(window_ms: i64, max: usize, forgotten: Counter) -> EventIds {
        EventIds {
            window_ms,
            max: max.max(1),
            state: Mutex::new(State::default()),
            forgotten,
        }
    }

    /// Claims `hashes` in order; the [`Claimed`] holds the new ones until it
    /// is completed (stored) or dropped (the request failed).
    pub fn claim(self: &Arc<Self>, hashes: &[u64], now_ms: i64) -> (Vec<Claim>, Claimed) {
        let mut state = self.state.lock().unwrap();
        let mut mine = Vec::new();
        let claims = hashes
            .iter()
            .map(|&h| {
                if state
                    .seen
                    .get(&h)
                    .is_some_and(|&at| now_ms - at < self.window_ms)
                {
                    Claim::Seen
                } else if state.in_flight.insert(h) {
                    mine.push(h);
                    Claim::New
                } else if mine.contains(&h) {
                    Claim::Seen
                } else {
                    Claim::InFlight
                }
            })
            .collect();
        drop(state);
        (
            claims,
            Claimed {
                table: self.clone(),
                hashes: mine,
            },
        )
    }

    /// Remembers ids stored at `at_ms` (a durable batch, or one read back).
    pub fn insert(&self, hashes: &[u64], at_ms: i64) {
        let mut state = self.state.lock().unwrap();
        for &h in hashes {
            state.seen.insert(h, at_ms);
            state.order.push_back((h, at_ms));
        }
        let forgotten = self.trim(&mut state, None);
        self.forgotten.inc_by(forgotten);
    }

    /// Forgets ids older than the window.
    pub fn expire(&self, now_ms: i64) {
        let mut state = self.state.lock().unwrap();
        self.trim(&mut state, Some(now_ms));
    }

    /// Pops expired entries (with `now_ms`) and those past the bound;
    /// returns how many live ones the bound forgot.
    fn trim(&self, state: &mut State, now_ms: Option<i64>) -> u64 {
        let mut forgotten = 0;
        while let Some(&(h, at)) = state.order.front() {
            let expired = now_ms.is_some_and(|now| now - at >= self.window_ms);
            if !expired && state.order.len() <= self.max {
                break;
            }
            state.order.pop_front();
            // A later insert of the same hash keeps its own entry.
            if state.seen.get(&h) == Some(&at) {
                state.seen.remove(&h);
                if !expired {
                    forgotten += 1;
                }
            }
        }
        forgotten
    }

    /// The remembered ids, oldest first (to rewrite the file).
    pub fn live(&self) -> Vec<(u64, i64)> {
        let state = self.state.lock().unwrap();
        state
            .order
            .iter()
            .filter(|(h, at)| state.seen.get(h) == Some(at))
            .copied()
            .collect()
    }

    pub fn len(&self) -> usize {
        self.state.lock().unwrap().seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Live ids forgotten because of the bound, since start.
    pub fn forgotten(&self) -> u64 {
        self.forgotten.get()
    }
}

/// The new ids of one request, held in flight until stored.
pub struct Claimed {
    table: Arc<EventIds>,
    hashes: Vec<u64>,
}

impl Claimed {
    /// The hashes to record in the batch header.
    pub fn hashes(&self) -> &[u64] {
        &self.hashes
    }

    /// The batch is durable: the ids are seen from now on.
    pub fn complete(self, at_ms: i64) {
        self.table.insert(&self.hashes, at_ms);
    }
}

impl Drop for Claimed {
    fn drop(&mut self) {
        let mut state = self.table.state.lock().unwrap();
        for h in &self.hashes {
            state.in_flight.remove(h);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_id_is_seen_and_a_failed_one_is_free_again() {
        let t = Arc::new(EventIds::new(60_000, 100, Counter::default()));
        let (claims, held) = t.claim(&[1, 2, 1], 0);
        assert_eq!(claims, [Claim::New, Claim::New, Claim::Seen]);
        let (again, _) = t.claim(&[1, 3], 0);
        assert_eq!(again, [Claim::InFlight, Claim::New]);
        held.complete(10);
        let (after, _) = t.claim(&[1, 2], 20);
        assert_eq!(after, [Claim::Seen, Claim::Seen]);
        // The claim of 3 was dropped without completing: 3 is free.
        let (free, _) = t.claim(&[3], 20);
        assert_eq!(free, [Claim::New]);
        // Past the window an id is new again.
        let (later, _) = t.claim(&[1], 60_011);
        assert_eq!(later, [Claim::New]);
    }

    #[test]
    fn the_bound_forgets_the_oldest_first() {
        let t = EventIds::new(60_000, 3, Counter::default());
        t.insert(&[1, 2], 0);
        t.insert(&[3, 4], 1);
        assert_eq!(t.len(), 3);
        assert_eq!(t.forgotten(), 1);
        assert_eq!(t.live(), [(2, 0), (3, 1), (4, 1)]);
        t.expire(60_000);
        assert_eq!(t.live(), [(3, 1), (4, 1)]);
    }

    #[test]
    fn hashes_differ_by_tenant_and_type() {
        let a = id_hash("t", "x", "1");
        assert_ne!(a, id_hash("u", "x", "1"));
        assert_ne!(a, id_hash("t", "y", "1"));
        assert_eq!(a, id_hash("t", "x", "1"));
    }
}
