//! Delivery: one task per receiver sends its oldest queued notification,
//! removes it from the outbox once the receiver answers 2xx, and on a
//! failure waits (1s, doubling up to `alerts.retry_backoff_max`) and tries
//! again. A receiver that is down holds back only its own queue. A 4xx
//! answer other than 408 and 429 is final: the notification is dropped and
//! counted as refused (sending it again would be refused again).

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use super::Alerts;
use super::config::{ReceiverConfig, ReceiverKind};
use super::notify::{self, Outgoing};
use crate::outbound::Answer;
use crate::telemetry::alerts::ReceiverLabels;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts a delivery task per configured receiver.
pub fn start(alerts: &Arc<Alerts>) -> Vec<JoinHandle<()>> {
    alerts
        .receivers
        .iter()
        .map(|((tenant, _), cfg)| tokio::spawn(run(alerts.clone(), tenant.clone(), cfg.clone())))
        .collect()
}

async fn run(alerts: Arc<Alerts>, tenant: String, cfg: ReceiverConfig) {
    let client = match reqwest::Client::builder()
        .timeout(cfg.timeout.unwrap_or(DEFAULT_TIMEOUT))
        .user_agent(concat!("logway/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(tenant, receiver = %cfg.name, error = %e, "cannot build the alert receiver's HTTP client");
            return;
        }
    };
    let mut wake = alerts.wake.subscribe();
    let mut backoff = Duration::from_secs(1);
    let labels = ReceiverLabels {
        tenant: tenant.clone(),
        receiver: cfg.name.clone(),
    };
    loop {
        let next = alerts.next_outgoing(&tenant, &cfg.name);
        let Some(o) = next else {
            // Woken by new notifications; the timeout is a safety net.
            let _ = tokio::time::timeout(Duration::from_secs(5), wake.changed()).await;
            continue;
        };
        let m = &alerts.metrics.alerts;
        match send(&client, &cfg, &o, &alerts.external_url).await {
            Answer::Accepted => {
                backoff = Duration::from_secs(1);
                m.delivery(&tenant, &cfg.name, "sent");
                m.receiver_up.get_or_create(&labels).set(1);
                alerts.delivered(&tenant, &cfg.name, o.seq, None).await;
            }
            Answer::Refused(e) => {
                tracing::warn!(tenant, receiver = %cfg.name, error = %e, "alert receiver refused a notification; dropped");
                m.delivery(&tenant, &cfg.name, "refused");
                m.receiver_up.get_or_create(&labels).set(0);
                alerts.delivered(&tenant, &cfg.name, o.seq, Some(e)).await;
            }
            Answer::Retry(e) => {
                tracing::warn!(tenant, receiver = %cfg.name, error = %e, retry_in_s = backoff.as_secs(), "alert delivery failed; will retry");
                m.delivery(&tenant, &cfg.name, "failed");
                m.receiver_up.get_or_create(&labels).set(0);
                alerts.failed(&tenant, &cfg.name, e);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(alerts.config.retry_backoff_max);
            }
        }
    }
}

async fn send(
    client: &reqwest::Client,
    cfg: &ReceiverConfig,
    o: &Outgoing,
    external_url: &str,
) -> Answer {
    let (url, body) = match cfg.kind {
        ReceiverKind::Alertmanager => (
            format!("{}/api/v2/alerts", cfg.url.trim_end_matches('/')),
            notify::alertmanager_body(o),
        ),
        ReceiverKind::Webhook => (cfg.url.clone(), notify::webhook_body(o, external_url)),
        ReceiverKind::Slack => (cfg.url.clone(), notify::slack_body(o)),
    };
    let mut req = client.post(&url).json(&body);
    for (k, v) in &cfg.headers {
        req = req.header(k.as_str(), v.0.as_str());
    }
    crate::outbound::post(req, &url).await
}

impl Alerts {
    /// The receiver's oldest queued notification that is in the file.
    fn next_outgoing(&self, tenant: &str, receiver: &str) -> Option<Outgoing> {
        let written = self.persisted_seq();
        self.lock()
            .stored
            .outbox
            .iter()
            .find(|o| o.tenant == tenant && o.receiver == receiver && o.seq <= written)
            .cloned()
    }

    /// Takes a notification out of the outbox (sent, or refused with
    /// `error`) and writes the state file.
    async fn delivered(
        self: &Arc<Self>,
        tenant: &str,
        receiver: &str,
        seq: u64,
        error: Option<String>,
    ) {
        {
            let mut book = self.lock();
            book.stored.outbox.retain(|o| o.seq != seq);
            let queued = book.queued(tenant, receiver);
            let s = book
                .receivers
                .entry((tenant.to_string(), receiver.to_string()))
                .or_default();
            match error {
                None => {
                    s.last_success = Some(notify::rfc3339(crate::now_ms()));
                    s.last_error = None;
                    s.consecutive_failures = 0;
                }
                Some(e) => {
                    s.last_error = Some(e);
                    s.consecutive_failures += 1;
                }
            }
            book.generation += 1;
            self.metrics
                .alerts
                .queued
                .get_or_create(&ReceiverLabels {
                    tenant: tenant.into(),
                    receiver: receiver.into(),
                })
                .set(queued as i64);
        }
        let me = self.clone();
        let written = tokio::task::spawn_blocking(move || me.persist()).await;
        if let Ok(Err(e)) = written {
            tracing::error!(error = %e, "cannot write the alert state");
        }
    }

    fn failed(&self, tenant: &str, receiver: &str, error: String) {
        let mut book = self.lock();
        let s = book
            .receivers
            .entry((tenant.to_string(), receiver.to_string()))
            .or_default();
        s.last_error = Some(error);
        s.consecutive_failures += 1;
    }
}
