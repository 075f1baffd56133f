//! Alert rules through the real server, in the order of their data flow:
//! [`rules`] (rules in, evaluated over the hot tier: every kind fires and
//! resolves on event streams built with their timestamps, bad rules are
//! refused, tenants stay apart, late events count by receive time only,
//! the command line) and [`delivery`] (alerts out: a real Alertmanager
//! from Debian's `prometheus-alertmanager`, real HTTP receivers getting
//! the webhook v4 body and Slack's text, a restart while firing, a
//! receiver that is down). Here: what both share.

mod delivery;
mod rules;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::common::*;

pub fn ts(offset_ms: i64) -> String {
    (OffsetDateTime::now_utc() + time::Duration::milliseconds(offset_ms))
        .format(&Rfc3339)
        .unwrap()
}

/// An event of tenant `a`'s `/web` route at now + `offset_ms`.
pub fn event(offset_ms: i64, level: &str, service: &str, extra: Value) -> Value {
    let mut e = json!({"timestamp": ts(offset_ms), "level": level, "service": service, "message": format!("{level} in {service}")});
    if let (Some(e), Some(x)) = (e.as_object_mut(), extra.as_object()) {
        e.extend(x.clone());
    }
    e
}

/// An HTTP receiver on loopback that keeps every JSON body it is posted.
pub struct Receiver {
    pub port: u16,
    bodies: Arc<Mutex<Vec<Value>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start(port: u16) -> Receiver {
        let bodies: Arc<Mutex<Vec<Value>>> = Arc::default();
        let kept = bodies.clone();
        // Any path.
        let app = axum::Router::new().fallback(move |body: axum::body::Bytes| {
            let kept = kept.clone();
            async move {
                kept.lock()
                    .unwrap()
                    .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
                "ok"
            }
        });
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver { port, bodies, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn bodies(&self) -> Vec<Value> {
        self.bodies.lock().unwrap().clone()
    }

    /// Waits until `n` bodies arrived; returns them.
    pub async fn wait_for(&self, n: usize, what: &str) -> Vec<Value> {
        for _ in 0..300 {
            let b = self.bodies();
            if b.len() >= n {
                return b;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "{what}: {} bodies, wanted {n}: {:?}",
            self.bodies().len(),
            self.bodies()
        );
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Tenants `a` and `b`; `a` has these receivers (TOML array items) and
/// rules (`[[alerts.tenants.a.rules]]` tables), `b` a webhook of its own.
pub fn alerting_config(dir: &std::path::Path, receivers: &str, rules: &str) -> logway::Config {
    let text = format!(
        r#"
[alerts]
retry_backoff_max = "1s"
external_url = "https://logs.example.com"

[alerts.tenants.a]
receivers = [{receivers}]

[alerts.tenants.b]
receivers = [{{ name = "hook", kind = "webhook", url = "http://127.0.0.1:9/" }}]
{rules}

[[tenants]]
name = "a"
ingest_keys = ["{A_INGEST}"]
admin_keys = ["{A_ADMIN}"]
routes = [{{ path = "/web", type = "web_logs" }}]

[[tenants]]
name = "b"
ingest_keys = ["{B_INGEST}"]
admin_keys = ["{B_ADMIN}"]
routes = [{{ path = "/b/app", type = "app_logs" }}]
"#
    );
    config_with(dir, &text)
}

impl TestGateway {
    pub async fn put_rule(&self, key: &str, rule: Value) -> (u16, Value) {
        let name = rule["name"].as_str().unwrap().to_string();
        let r = self
            .client
            .put(format!("{}/api/v1/alerts/rules/{name}", self.url))
            .bearer_auth(key)
            .json(&rule)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn rule_view(&self, key: &str, name: &str) -> Value {
        self.get_json(&format!("/api/v1/alerts/rules/{name}"), key)
            .await
    }

    /// Waits until the rule's state is `state`; returns its view.
    pub async fn wait_rule(&self, key: &str, name: &str, state: &str) -> Value {
        let mut last = Value::Null;
        for _ in 0..300 {
            last = self.rule_view(key, name).await;
            if last["state"] == state {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("rule {name} never became {state}: {last:#}");
    }
}
