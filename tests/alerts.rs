//! Alert rules through the real server: a real Alertmanager (Debian's
//! `prometheus-alertmanager` on loopback) gets a `frequency` alert and its
//! resolve; real HTTP receivers get Alertmanager's webhook v4 body and a
//! Slack incoming webhook's text; every kind fires and resolves on event
//! streams built with their timestamps; a restart while firing notifies
//! nothing twice; a receiver that is down gets its notifications when it
//! returns; bad rules are refused; a tenant's rule never counts another
//! tenant's events.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::common::*;

fn ts(offset_ms: i64) -> String {
    (OffsetDateTime::now_utc() + time::Duration::milliseconds(offset_ms))
        .format(&Rfc3339)
        .unwrap()
}

/// An event of tenant `a`'s `/web` route at now + `offset_ms`.
fn event(offset_ms: i64, level: &str, service: &str, extra: Value) -> Value {
    let mut e = json!({"timestamp": ts(offset_ms), "level": level, "service": service, "message": format!("{level} in {service}")});
    if let (Some(e), Some(x)) = (e.as_object_mut(), extra.as_object()) {
        e.extend(x.clone());
    }
    e
}

/// An HTTP receiver on loopback that keeps every JSON body it is posted.
struct Receiver {
    port: u16,
    bodies: Arc<Mutex<Vec<Value>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(port: u16) -> Receiver {
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

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn bodies(&self) -> Vec<Value> {
        self.bodies.lock().unwrap().clone()
    }

    /// Waits until `n` bodies arrived; returns them.
    async fn wait_for(&self, n: usize, what: &str) -> Vec<Value> {
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
fn alerting_config(dir: &std::path::Path, receivers: &str, rules: &str) -> logway::Config {
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
    async fn put_rule(&self, key: &str, rule: Value) -> (u16, Value) {
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

    async fn rule_view(&self, key: &str, name: &str) -> Value {
        self.get_json(&format!("/api/v1/alerts/rules/{name}"), key)
            .await
    }

    /// Waits until the rule's state is `state`; returns its view.
    async fn wait_rule(&self, key: &str, name: &str, state: &str) -> Value {
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

/// A real Alertmanager gets a frequency alert while it fires, and its
/// resolve, seen through Alertmanager's own API.
#[tokio::test]
async fn alertmanager_gets_a_frequency_alert_and_its_resolve() {
    let dir = tempfile::tempdir().unwrap();
    let am_port = free_port();
    std::fs::write(
        dir.path().join("am.yml"),
        "route:\n  receiver: 'null'\nreceivers:\n  - name: 'null'\n",
    )
    .unwrap();
    let _am = Killed(
        std::process::Command::new("prometheus-alertmanager")
            .arg(format!(
                "--config.file={}",
                dir.path().join("am.yml").display()
            ))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("am").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{am_port}"))
            .arg("--cluster.listen-address=")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("prometheus-alertmanager (Debian package) is installed"),
    );
    wait_port(am_port).await;
    let t = TestGateway::start(alerting_config(
        &dir.path().join("gw"),
        &format!(r#"{{ name = "am", kind = "alertmanager", url = "http://127.0.0.1:{am_port}" }}"#),
        "",
    ))
    .await;
    let (status, _) = t
        .put_rule(
            A_ADMIN,
            json!({"name": "checkout-errors", "kind": "frequency", "query": "level:error",
                   "window": "2s", "interval": "200ms", "threshold": 3, "group_by": ["service"],
                   "labels": {"severity": "page"},
                   "annotations": {"summary": "{{ $value }} errors in {{ $labels.service }}"},
                   "receivers": ["am"]}),
        )
        .await;
    assert_eq!(status, 201);
    let lines: Vec<Value> = (0..4)
        .map(|_| event(0, "error", "checkout", json!({})))
        .chain([
            event(0, "error", "search", json!({})),
            event(0, "info", "checkout", json!({})),
        ])
        .collect();
    t.post_lines("/web", A_INGEST, &lines).await;
    // Alertmanager's own list of alerts, polled until `done` says so.
    let am = reqwest::Client::new();
    let am_alerts = format!("http://127.0.0.1:{am_port}/api/v2/alerts");
    let poll = |done: fn(&[Value]) -> bool| {
        let (am, url) = (am.clone(), am_alerts.clone());
        async move {
            let mut list = Vec::new();
            for _ in 0..200 {
                let v: Value = am.get(&url).send().await.unwrap().json().await.unwrap();
                list = v.as_array().cloned().unwrap_or_default();
                if done(&list) {
                    return list;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            panic!("Alertmanager never listed what was expected: {list:#?}");
        }
    };
    let listed = poll(|l| !l.is_empty()).await;
    assert_eq!(listed.len(), 1, "search had 1 error: {listed:#?}");
    let found = &listed[0];
    assert_eq!(found["labels"]["alertname"], "checkout-errors", "{found:#}");
    assert_eq!(found["labels"]["service"], "checkout");
    assert_eq!(found["labels"]["tenant"], "a");
    assert_eq!(found["labels"]["severity"], "page");
    assert_eq!(found["annotations"]["summary"], "4 errors in checkout");
    assert_eq!(found["status"]["state"], "active");
    assert!(
        found["generatorURL"]
            .as_str()
            .unwrap()
            .starts_with("https://logs.example.com/?q=level%3Aerror&from="),
        "{found:#}"
    );
    // The window passes: the resolve reaches Alertmanager (its endsAt
    // when firing is minutes away, so only the resolve ends it now).
    poll(|l| l.is_empty()).await;
    let view = t.rule_view(A_ADMIN, "checkout-errors").await;
    assert_eq!(view["state"], "inactive", "{view:#}");
    assert_eq!(view["status"]["last_result"], "ok");
    let metrics = t.metrics().await;
    assert!(
        metric_sum(
            &metrics,
            "logway_alert_notifications_total{tenant=\"a\",receiver=\"am\",result=\"sent\"}"
        ) >= 2.0,
        "{metrics}"
    );
    assert!(
        metric_sum(
            &metrics,
            "logway_alert_evaluations_total{tenant=\"a\",rule=\"checkout-errors\",result=\"ok\"}"
        ) >= 2.0
    );
    t.stop().await;
}

/// The webhook receiver gets Alertmanager's webhook v4 body; the Slack
/// receiver gets text with a link to the events; both get the resolve.
/// A muted rule fires without notifying until the mute ends.
#[tokio::test]
async fn webhook_and_slack_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Receiver::start(0).await;
    let slack = Receiver::start(0).await;
    let t = TestGateway::start(alerting_config(
        dir.path(),
        &format!(
            r#"{{ name = "hook", kind = "webhook", url = "{}" }}, {{ name = "slack", kind = "slack", url = "{}" }}"#,
            hook.url("/alerts"),
            slack.url("/services/T0/B0/x")
        ),
        "",
    ))
    .await;
    let rule = json!({"name": "payments down", "kind": "frequency", "query": "level:error",
        "window": "2s", "interval": "200ms", "threshold": 2, "group_by": ["service"],
        "annotations": {"description": "{{ $samples }}"},
        "receivers": ["hook", "slack"]});
    assert_eq!(t.put_rule(A_ADMIN, rule).await.0, 201);
    t.post_lines(
        "/web",
        A_INGEST,
        &[
            event(0, "error", "payments", json!({})),
            event(0, "error", "payments", json!({})),
        ],
    )
    .await;
    let firing = hook.wait_for(1, "webhook firing").await[0].clone();
    // Every field of Alertmanager's documented webhook body, with its type.
    assert_eq!(firing["version"], "4");
    assert!(firing["groupKey"].is_string());
    assert_eq!(firing["truncatedAlerts"], 0);
    assert_eq!(firing["status"], "firing");
    assert_eq!(firing["receiver"], "hook");
    assert_eq!(firing["groupLabels"], json!({"alertname": "payments down"}));
    assert_eq!(firing["commonLabels"]["service"], "payments");
    assert!(
        firing["commonAnnotations"]["summary"]
            .as_str()
            .unwrap()
            .starts_with("2 matching events in 2s")
    );
    // The sample events, newest first: time, level, message.
    let description = firing["commonAnnotations"]["description"].as_str().unwrap();
    assert_eq!(description.lines().count(), 2, "{description}");
    assert!(
        description
            .lines()
            .all(|l| l.ends_with(" error error in payments")),
        "{description}"
    );
    assert_eq!(firing["externalURL"], "https://logs.example.com");
    let a = &firing["alerts"][0];
    assert_eq!(firing["alerts"].as_array().unwrap().len(), 1);
    assert_eq!(a["status"], "firing");
    assert_eq!(
        a["labels"],
        json!({"alertname": "payments down", "service": "payments", "tenant": "a"})
    );
    assert!(OffsetDateTime::parse(a["startsAt"].as_str().unwrap(), &Rfc3339).is_ok());
    assert_eq!(a["endsAt"], "0001-01-01T00:00:00Z");
    assert!(
        a["generatorURL"]
            .as_str()
            .unwrap()
            .starts_with("https://logs.example.com/?")
    );
    assert_eq!(a["fingerprint"].as_str().unwrap().len(), 16);
    let text = slack.wait_for(1, "slack firing").await[0]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.starts_with("[FIRING:1] payments down"), "{text}");
    assert!(text.contains("service=payments"), "{text}");
    assert!(text.contains("|Search these events>"), "{text}");
    let resolved = hook.wait_for(2, "webhook resolve").await[1].clone();
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(resolved["alerts"][0]["status"], "resolved");
    assert!(
        OffsetDateTime::parse(resolved["alerts"][0]["endsAt"].as_str().unwrap(), &Rfc3339).is_ok()
    );
    assert!(
        slack.wait_for(2, "slack resolve").await[1]["text"]
            .as_str()
            .unwrap()
            .starts_with("[RESOLVED]")
    );

    // Muted: it fires, nobody hears; unmuted, they do.
    let r = t
        .client
        .post(format!(
            "{}/api/v1/alerts/rules/payments%20down/mute",
            t.url
        ))
        .bearer_auth(A_ADMIN)
        .json(&json!({"until": "now+1h"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    t.post_lines(
        "/web",
        A_INGEST,
        &[
            event(0, "error", "payments", json!({})),
            event(0, "error", "payments", json!({})),
        ],
    )
    .await;
    let view = t.wait_rule(A_ADMIN, "payments down", "firing").await;
    assert!(view["muted_until"].is_string(), "{view:#}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        hook.bodies().len(),
        2,
        "muted, yet notified: {:?}",
        hook.bodies()
    );
    let r = t
        .client
        .delete(format!(
            "{}/api/v1/alerts/rules/payments%20down/mute",
            t.url
        ))
        .bearer_auth(A_ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        hook.wait_for(3, "firing after the mute").await[2]["status"],
        "firing"
    );
    t.stop().await;
}

/// Each kind fires on a stream built for it and resolves when the stream
/// stops meeting its condition.
#[tokio::test]
async fn every_kind_fires_and_resolves() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestGateway::start(alerting_config(dir.path(), "", "")).await;
    let rules = [
        json!({"name": "flat", "kind": "flatline", "query": "service:heartbeat", "window": "2s",
               "interval": "200ms", "threshold": 1, "group_by": ["host"]}),
        json!({"name": "spiky", "kind": "spike", "query": "service:api", "window": "4s",
               "interval": "200ms", "ratio": 3, "min_count": 5}),
        json!({"name": "titles", "kind": "new_value", "field": "error.title", "window": "2s",
               "interval": "200ms", "lookback": "1h"}),
        json!({"name": "fatal", "kind": "any", "query": "level:fatal", "window": "2s",
               "interval": "200ms", "max_alerts": 2}),
    ];
    for r in rules {
        let (status, body) = t.put_rule(A_ADMIN, r).await;
        assert_eq!(status, 201, "{body}");
    }
    // flatline: host h1 beats now, then goes silent.
    t.post_lines(
        "/web",
        A_INGEST,
        &[event(0, "info", "heartbeat", json!({"host": "h1"}))],
    )
    .await;
    // spike: 1 api event in the window before (for evaluations in the
    // next 3.8 s), 10 in this one.
    let mut api: Vec<Value> = vec![event(-4200, "info", "api", json!({}))];
    api.extend((0..10).map(|_| event(0, "info", "api", json!({}))));
    t.post_lines("/web", A_INGEST, &api).await;
    // new_value: "Timeout" was seen 30 s ago, "Disk full" is new.
    t.post_lines(
        "/web",
        A_INGEST,
        &[
            event(
                -30_000,
                "error",
                "db",
                json!({"error": {"title": "Timeout"}}),
            ),
            event(0, "error", "db", json!({"error": {"title": "Timeout"}})),
            event(0, "error", "db", json!({"error": {"title": "Disk full"}})),
        ],
    )
    .await;
    // any: three fatal events, at most two alerts.
    t.post_lines(
        "/web",
        A_INGEST,
        &(0..3)
            .map(|i| event(-i * 10, "fatal", "core", json!({})))
            .collect::<Vec<_>>(),
    )
    .await;

    let spiky = t.wait_rule(A_ADMIN, "spiky", "firing").await;
    assert_eq!(spiky["alerts"][0]["value"], 10, "{spiky:#}");
    let titles = t.wait_rule(A_ADMIN, "titles", "firing").await;
    let alerts = titles["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{titles:#}");
    assert_eq!(alerts[0]["labels"], json!({"error_title": "Disk full"}));
    let fatal = t.wait_rule(A_ADMIN, "fatal", "firing").await;
    assert_eq!(fatal["alerts"].as_array().unwrap().len(), 2, "{fatal:#}");
    assert!(fatal["alerts"][0]["labels"]["event_id"].is_string());
    // h1 went silent: flatline fires for it once the window has passed.
    let flat = t.wait_rule(A_ADMIN, "flat", "firing").await;
    assert_eq!(flat["alerts"][0]["labels"], json!({"host": "h1"}));
    assert_eq!(flat["alerts"][0]["value"], 0);
    // And resolves when it beats again; the others resolve as their
    // windows pass.
    t.post_lines(
        "/web",
        A_INGEST,
        &[event(0, "info", "heartbeat", json!({"host": "h1"}))],
    )
    .await;
    for name in ["flat", "spiky", "titles", "fatal"] {
        t.wait_rule(A_ADMIN, name, "inactive").await;
    }
    t.stop().await;
}

/// A firing alert survives a restart without a second notification, and
/// its resolve is still sent.
#[tokio::test]
async fn restart_while_firing_notifies_once_and_still_resolves() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Receiver::start(0).await;
    let receivers = format!(
        r#"{{ name = "hook", kind = "webhook", url = "{}" }}"#,
        hook.url("/")
    );
    let rules = r#"
[[alerts.tenants.a.rules]]
name = "errors"
kind = "frequency"
query = "level:error"
window = "4s"
interval = "200ms"
threshold = 1
receivers = ["hook"]
"#;
    let t = TestGateway::start(alerting_config(dir.path(), &receivers, rules)).await;
    t.post_lines("/web", A_INGEST, &[event(0, "error", "x", json!({}))])
        .await;
    hook.wait_for(1, "firing").await;
    let view = t.rule_view(A_ADMIN, "errors").await;
    assert_eq!(view["source"], "config");
    t.stop().await;
    let t = TestGateway::start(alerting_config(dir.path(), &receivers, rules)).await;
    let view = t.rule_view(A_ADMIN, "errors").await;
    assert_eq!(
        view["state"], "firing",
        "the firing state was kept: {view:#}"
    );
    let bodies = hook.wait_for(2, "resolve after the restart").await;
    assert_eq!(bodies.len(), 2, "{bodies:#?}");
    assert_eq!(bodies[0]["status"], "firing");
    assert_eq!(bodies[1]["status"], "resolved");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(hook.bodies().len(), 2);
    // A config rule is read-only through the API.
    let (status, body) = t
        .put_rule(A_ADMIN, json!({"name": "errors", "kind": "any"}))
        .await;
    assert_eq!(status, 409, "{body}");
    t.stop().await;
}

/// A receiver that is down: the failure shows in /metrics and the
/// receiver's status; the notification arrives once it is back.
#[tokio::test]
async fn a_receiver_down_gets_its_notifications_when_back() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let t = TestGateway::start(alerting_config(
        dir.path(),
        &format!(r#"{{ name = "hook", kind = "webhook", url = "http://127.0.0.1:{port}/" }}"#),
        "",
    ))
    .await;
    let rule = json!({"name": "errors", "kind": "frequency", "query": "level:error", "window": "30s",
                      "interval": "200ms", "threshold": 1, "receivers": ["hook"]});
    assert_eq!(t.put_rule(A_ADMIN, rule).await.0, 201);
    t.post_lines("/web", A_INGEST, &[event(0, "error", "x", json!({}))])
        .await;
    let mut failed = 0.0;
    for _ in 0..200 {
        failed = metric_sum(
            &t.metrics().await,
            "logway_alert_notifications_total{tenant=\"a\",receiver=\"hook\",result=\"failed\"}",
        );
        if failed >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(failed >= 1.0);
    let overview = t.get_json("/api/v1/alerts", A_ADMIN).await;
    let r = &overview["receivers"][0];
    assert_eq!(r["name"], "hook");
    assert_eq!(r["queued"], 1, "{overview:#}");
    assert!(
        r["status"]["last_error"]
            .as_str()
            .unwrap()
            .contains(&port.to_string())
    );
    assert_eq!(overview["alerts"][0]["state"], "firing");
    // The rule's own view says it too.
    let view = t.rule_view(A_ADMIN, "errors").await;
    assert_eq!(view["receivers"][0]["name"], "hook");
    assert!(
        view["receivers"][0]["consecutive_failures"]
            .as_u64()
            .unwrap()
            >= 1,
        "{view:#}"
    );
    assert!(view["receivers"][0]["last_error"].is_string());
    let hook = Receiver::start(port).await;
    let body = hook.wait_for(1, "after the receiver returned").await;
    assert_eq!(body[0]["status"], "firing");
    assert!(
        metric_sum(
            &t.metrics().await,
            "logway_alert_receiver_up{tenant=\"a\",receiver=\"hook\"}"
        ) == 1.0
    );
    t.stop().await;
}

/// Bad rules are refused with what is wrong; a tenant's rule never counts
/// another tenant's events; the test call notifies nobody.
#[tokio::test]
async fn bad_rules_are_refused_and_tenants_stay_apart() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestGateway::start(alerting_config(dir.path(), "", "")).await;
    let (status, body) = t
        .put_rule(A_ADMIN, json!({"name": "bad", "kind": "frequency", "query": "level:(error", "window": "1m", "threshold": 1}))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["position"].is_u64(), "{body}");
    let (status, body) = t
        .put_rule(A_ADMIN, json!({"name": "bad", "kind": "frequency", "window": "1m", "threshold": 1, "receivers": ["hook"]}))
        .await;
    assert_eq!(status, 400, "tenant b's receiver is not a's: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no receiver `hook`"),
        "{body}"
    );
    let (status, body) = t
        .put_rule(
            A_ADMIN,
            json!({"name": "bad", "kind": "spike", "window": "1m", "threshold": 1}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`threshold`"),
        "{body}"
    );
    let (status, body) = t
        .put_rule(
            A_ADMIN,
            json!({"name": "bad", "kind": "any", "labels": {"tenant": "b"}}),
        )
        .await;
    assert_eq!(
        status, 400,
        "a rule may not pass for another tenant: {body}"
    );
    let view = t.get_json("/api/v1/alerts/rules", A_ADMIN).await;
    assert_eq!(view["rules"], json!([]));

    // Tenant b's errors: b's rule fires, a's rule with the same query does not.
    let rule = json!({"name": "errors", "kind": "frequency", "query": "level:error", "window": "1m",
                      "interval": "200ms", "threshold": 1});
    assert_eq!(t.put_rule(A_ADMIN, rule.clone()).await.0, 201);
    assert_eq!(t.put_rule(B_ADMIN, rule.clone()).await.0, 201);
    t.post_lines("/b/app", B_INGEST, &[event(0, "error", "x", json!({}))])
        .await;
    t.wait_rule(B_ADMIN, "errors", "firing").await;
    let a = t.rule_view(A_ADMIN, "errors").await;
    assert_eq!(a["state"], "inactive", "{a:#}");
    assert!(a["status"]["evaluations"].as_u64().unwrap() > 0);
    // The test call over the last minute: b would fire, a would not.
    let test = |key: &'static str| {
        let t = &t;
        let rule = rule.clone();
        async move {
            let r = t
                .client
                .post(format!("{}/api/v1/alerts/test", t.url))
                .bearer_auth(key)
                .json(&json!({"rule": rule, "from": "now-1m", "to": "now+1s"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        }
    };
    let b = test(B_ADMIN).await;
    assert_eq!(b["would_fire"], true, "{b:#}");
    assert_eq!(b["groups"][0]["count"], 1);
    assert_eq!(b["groups"][0]["samples"][0]["message"], "error in x");
    assert_eq!(test(A_ADMIN).await["would_fire"], false);
    // Deleting a rule: gone from the list.
    let r = t
        .client
        .delete(format!("{}/api/v1/alerts/rules/errors", t.url))
        .bearer_auth(B_ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        t.get_json("/api/v1/alerts/rules", B_ADMIN).await["rules"],
        json!([])
    );
    t.stop().await;
}

/// `logway alert …` drives the same API: rules applied from a TOML file,
/// listed, tested, muted and deleted; a bad rule is a clear error and a
/// non-zero exit.
#[tokio::test]
async fn the_command_line_manages_rules() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestGateway::start(alerting_config(&dir.path().join("gw"), "", "")).await;
    let bin = env!("CARGO_BIN_EXE_logway");
    // The gateway runs on this test's runtime: the command is awaited,
    // not waited for.
    let logway = |args: &[&str]| {
        let mut cmd = tokio::process::Command::new(bin);
        cmd.args(args).args(["--url", &t.url, "--key", A_ADMIN]);
        async move {
            let out = cmd.output().await.unwrap();
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).to_string(),
                String::from_utf8_lossy(&out.stderr).to_string(),
            )
        }
    };
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        "[[rules]]\nname = \"errors\"\nkind = \"frequency\"\nquery = \"level:error\"\nwindow = \"1m\"\ninterval = \"200ms\"\nthreshold = 1\n\n[[rules]]\nname = \"quiet\"\nkind = \"flatline\"\nwindow = \"5m\"\nthreshold = 1\n",
    )
    .unwrap();
    let (ok, _, err) = logway(&["alert", "apply", rules.to_str().unwrap()]).await;
    assert!(ok, "{err}");
    assert!(
        err.contains("applied rule `errors`") && err.contains("applied rule `quiet`"),
        "{err}"
    );
    let (ok, out, err) = logway(&["alert", "list"]).await;
    assert!(ok, "{err}");
    let list: Value = serde_json::from_str(&out).unwrap();
    let names: Vec<&str> = list["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rule"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["errors", "quiet"]);

    t.post_lines("/web", A_INGEST, &[event(0, "error", "x", json!({}))])
        .await;
    t.wait_rule(A_ADMIN, "errors", "firing").await;
    let one = dir.path().join("errors.json");
    std::fs::write(&one, r#"{"name": "errors", "kind": "frequency", "query": "level:error", "window": "1m", "threshold": 1}"#).unwrap();
    let (ok, out, err) = logway(&["alert", "test", one.to_str().unwrap(), "--to", "now+1s"]).await;
    assert!(ok, "{err}");
    let test: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(test["would_fire"], true, "{test:#}");

    let (ok, out, err) = logway(&["alert", "mute", "errors", "--until", "now+1h"]).await;
    assert!(ok, "{err}");
    assert!(serde_json::from_str::<Value>(&out).unwrap()["muted_until"].is_string());
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"[{"name": "bad", "kind": "frequency", "query": "level:(error", "window": "1m", "threshold": 1}]"#).unwrap();
    let (ok, _, err) = logway(&["alert", "apply", bad.to_str().unwrap()]).await;
    assert!(!ok);
    assert!(
        err.contains("rule `bad`") && err.contains("invalid query"),
        "{err}"
    );
    let (ok, _, err) = logway(&["alert", "delete", "quiet"]).await;
    assert!(ok, "{err}");
    let (ok, _, err) = logway(&["alert", "get", "quiet"]).await;
    assert!(!ok && err.contains("404"), "{err}");
    t.stop().await;
}

/// A late event (its timestamp two hours old when it arrives): a rule by
/// receive time counts it and links to a search that finds it; the same
/// rule by event time does not count it.
#[tokio::test]
async fn late_events_count_by_receive_time_only() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Receiver::start(0).await;
    let t = TestGateway::start(alerting_config(
        dir.path(),
        &format!(
            r#"{{ name = "hook", kind = "webhook", url = "{}" }}"#,
            hook.url("/")
        ),
        "",
    ))
    .await;
    for (name, time) in [("by-arrival", "received"), ("by-timestamp", "event")] {
        let rule = json!({"name": name, "kind": "frequency", "query": "level:error", "window": "1m",
                          "interval": "200ms", "threshold": 1, "time": time, "receivers": ["hook"]});
        assert_eq!(t.put_rule(A_ADMIN, rule).await.0, 201);
    }
    t.post_lines(
        "/web",
        A_INGEST,
        &[event(-2 * 3_600_000, "error", "offline-app", json!({}))],
    )
    .await;
    let firing = hook.wait_for(1, "the receive-time rule fires").await[0].clone();
    assert_eq!(firing["alerts"][0]["labels"]["alertname"], "by-arrival");
    let link = reqwest::Url::parse(firing["alerts"][0]["generatorURL"].as_str().unwrap()).unwrap();
    let params: std::collections::HashMap<String, String> =
        link.query_pairs().into_owned().collect();
    assert!(
        params["q"].starts_with("(level:error) AND received_at:["),
        "{params:?}"
    );
    // The link's search finds the late event.
    let (status, found) = t
        .search_raw(
            A_ADMIN,
            &[
                ("q", &params["q"]),
                ("from", &params["from"]),
                ("to", &params["to"]),
            ],
        )
        .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["total"], 1, "{found}");
    let view = t.rule_view(A_ADMIN, "by-timestamp").await;
    assert_eq!(view["state"], "inactive", "{view:#}");
    assert!(view["status"]["evaluations"].as_u64().unwrap() > 1);
    t.stop().await;
}
