//! The alert rules' metrics (`crate::alerts`) at `/metrics`: each rule's evaluations, their
//! duration and result, its alerts by state; each receiver's deliveries,
//! queue and health.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabels {
    pub tenant: String,
    pub rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub tenant: String,
    pub rule: String,
    /// ok, error or over_budget.
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub tenant: String,
    pub rule: String,
    /// pending or firing.
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReceiverLabels {
    pub tenant: String,
    pub receiver: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabels {
    pub tenant: String,
    pub receiver: String,
    /// sent, failed (retried), refused (a 4xx answer: dropped) or
    /// dropped (the queue was full).
    pub result: String,
}

#[derive(Default, Clone)]
pub struct AlertMetrics {
    pub evaluations: Family<ResultLabels, Counter>,
    pub evaluations_missed: Family<RuleLabels, Counter>,
    pub evaluation_seconds: Family<RuleLabels, Gauge<f64, AtomicU64>>,
    pub last_evaluation: Family<RuleLabels, Gauge<f64, AtomicU64>>,
    pub alerts: Family<StateLabels, Gauge>,
    pub notifications: Family<DeliveryLabels, Counter>,
    pub queued: Family<ReceiverLabels, Gauge>,
    pub receiver_up: Family<ReceiverLabels, Gauge>,
}

impl AlertMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "alert_evaluations",
            "Alert rule evaluations by result (ok, error, over_budget)",
            self.evaluations.clone(),
        );
        registry.register(
            "alert_evaluations_missed",
            "Alert rule evaluations that started more than one interval late (evaluation is not keeping up)",
            self.evaluations_missed.clone(),
        );
        registry.register(
            "alert_evaluation_duration_seconds",
            "How long the rule's last evaluation took",
            self.evaluation_seconds.clone(),
        );
        registry.register(
            "alert_last_evaluation_timestamp_seconds",
            "When the rule was last evaluated (Unix time)",
            self.last_evaluation.clone(),
        );
        registry.register(
            "alerts",
            "Alerts by rule and state (pending, firing)",
            self.alerts.clone(),
        );
        registry.register(
            "alert_notifications",
            "Notifications by receiver and result (sent, failed and retried, refused, dropped)",
            self.notifications.clone(),
        );
        registry.register(
            "alert_notifications_queued",
            "Notifications waiting for their receiver",
            self.queued.clone(),
        );
        registry.register(
            "alert_receiver_up",
            "1 if the receiver's last delivery succeeded, 0 if it failed",
            self.receiver_up.clone(),
        );
    }

    pub fn delivery(&self, tenant: &str, receiver: &str, result: &str) {
        self.notifications
            .get_or_create(&DeliveryLabels {
                tenant: tenant.into(),
                receiver: receiver.into(),
                result: result.into(),
            })
            .inc();
    }
}
