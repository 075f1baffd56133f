//! Alerts out: receivers, what they get, and what survives a restart.

use std::time::Duration;

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::*;
use crate::common::*;

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
    // The rule's counts were written at shutdown; the restarted gateway
    // goes on from them (and resolves below by them).
    let tallies: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("alerts-tallies.json")).unwrap())
            .unwrap();
    assert_eq!(
        tallies["tallies"][0]["key"]["query"], "level:error",
        "{tallies}"
    );
    assert!(
        !tallies["tallies"][0]["counted"]
            .as_array()
            .unwrap()
            .is_empty(),
        "{tallies}"
    );
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
