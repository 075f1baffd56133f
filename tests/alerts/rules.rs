//! Rules in: each kind over the hot tier, the checks, tenants, time
//! bases, and the command line.

use serde_json::{Value, json};

use super::*;
use crate::common::*;

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
