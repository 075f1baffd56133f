//! What the API shows of rules and receivers: a rule's spec, source,
//! state, mute, last evaluation, receivers and alerts.

use serde_json::{Value, json};

use super::notify::rfc3339;
use super::{Alerts, Book};

impl Alerts {
    /// A rule's view for the API: its spec, where it comes from, its last
    /// evaluation, mute and alerts.
    fn view(&self, book: &Book, tenant: &str, name: &str) -> Option<Value> {
        let e = book.rules.get(&(tenant.to_string(), name.to_string()))?;
        let state = book.stored.state.get(tenant).and_then(|m| m.get(name));
        let alerts: Vec<Value> = state
            .map(|s| {
                s.alerts
                    .values()
                    .map(|a| {
                        json!({
                            "labels": a.labels,
                            "state": a.phase,
                            "active_since": rfc3339(a.active_since_ms),
                            "fired_at": a.fired_at_ms.map(rfc3339),
                            "notified_at": a.notified_at_ms.map(rfc3339),
                            "value": a.value,
                            "annotations": a.annotations,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        // The rule's receivers and how delivering to them goes.
        let receivers: Vec<Value> = e
            .rule
            .spec
            .receivers
            .iter()
            .map(|r| {
                let key = (tenant.to_string(), r.clone());
                let status = book.receivers.get(&key).cloned().unwrap_or_default();
                json!({
                    "name": r,
                    "queued": book.queued(tenant, r),
                    "last_error": status.last_error,
                    "consecutive_failures": status.consecutive_failures,
                })
            })
            .collect();
        let firing = alerts.iter().filter(|a| a["state"] == "firing").count();
        let pending = alerts.len() - firing;
        let now = crate::now_ms();
        Some(json!({
            "rule": e.rule.spec,
            "source": e.source,
            "state": if firing > 0 { "firing" } else if pending > 0 { "pending" } else { "inactive" },
            "muted_until": state.and_then(|s| s.muted_until_ms).filter(|&t| t > now).map(rfc3339),
            "status": e.status,
            "receivers": receivers,
            "alerts": alerts,
        }))
    }

    pub fn list(&self, tenant: &str) -> Vec<Value> {
        let book = self.lock();
        book.rules
            .keys()
            .filter(|(t, _)| t == tenant)
            .filter_map(|(t, n)| self.view(&book, t, n))
            .collect()
    }

    pub fn get(&self, tenant: &str, name: &str) -> Option<Value> {
        self.view(&self.lock(), tenant, name)
    }

    /// The tenant's receivers and their deliveries.
    pub fn receivers_of(&self, tenant: &str) -> Vec<Value> {
        let book = self.lock();
        self.receivers
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .map(|((t, n), r)| {
                let queued = book.queued(t, n);
                json!({
                    "name": n,
                    "kind": r.kind,
                    "queued": queued,
                    "status": book.receivers.get(&(t.clone(), n.clone())).cloned().unwrap_or_default(),
                })
            })
            .collect()
    }
}
