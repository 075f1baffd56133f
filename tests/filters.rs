//! WASM filters through the real server, with real components built from
//! `filters/`: upload, attach to a route by config, post real data, search
//! the result; retyping, reload, restart, hot swap. The sandbox's limits and
//! tenant isolation are in `filter_sandbox.rs`.

use std::time::Duration;

use crate::common::*;
use serde_json::Value;

const LOGHUB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/loghub");

/// Two tenants: `a` with routes running filters, `b` with a keep-all route
/// and a route naming a filter only `a` has.
pub fn config(dir: &std::path::Path) -> logway::Config {
    config_plus_routes(dir, "")
}

/// [`config`] with more routes for tenant `a` (TOML inline tables, each
/// followed by a comma).
fn config_plus_routes(dir: &std::path::Path, routes: &str) -> logway::Config {
    let text = format!(
        r#"
[server]
http_addr = "127.0.0.1:0"
[storage]
data_dir = "{dir}"
[hot]
commit_interval = "100ms"
[filters]
max_batch_time = "1s"
max_memory_bytes = 33554432
[[tenants]]
name = "a"
ingest_keys = ["{A_INGEST}"]
admin_keys = ["{A_ADMIN}"]
routes = [
  {{ path = "/apache", type = "apache_error", filters = [{{ name = "apache-error" }}] }},
  {{ path = "/ssh", type = "sshd", filters = [{{ name = "openssh", config = {{ year = 2017 }} }}, {{ name = "redact", config = {{ fields = "message" }} }}] }},
  {{ path = "/browser", type = "browser_logs", filters = [{{ name = "user-agent" }}, {{ name = "sample", config = {{ rate = 1 }} }}] }},
  {{ path = "/debug", type = "debug_logs", filters = [{{ name = "sample", config = {{ rate = 10, field = "request_id" }} }}] }},
  {{ path = "/hostile", type = "hostile", filters = [{{ name = "hostile" }}] }},
  {{ path = "/swap", type = "swap", filters = [{{ name = "swap" }}] }},
  {routes}
]
[[tenants]]
name = "b"
ingest_keys = ["{B_INGEST}"]
admin_keys = ["{B_ADMIN}"]
routes = [
  {{ path = "/b/keep", type = "kept", filters = [{{ name = "keep" }}] }},
  {{ path = "/b/apache", type = "apache_error", filters = [{{ name = "apache-error" }}] }},
]
"#,
        dir = dir.display()
    );
    logway::Config::from_toml(&text).unwrap()
}

pub async fn upload_ok(t: &TestGateway, key: &str, name: &str, wasm_name: &str) -> Value {
    let (status, body) = upload_filter(t, key, name, filter_wasm(wasm_name)).await;
    assert!(
        status == 201 || status == 200,
        "upload {name}: {status} {body}"
    );
    body
}

pub async fn post_text(t: &TestGateway, path: &str, key: &str, body: String) -> (u16, Value) {
    let r = t
        .post(path, key)
        .header("content-type", "text/plain")
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn post_json(t: &TestGateway, path: &str, key: &str, body: String) -> (u16, Value) {
    let r = t
        .post(path, key)
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn apache_error_filter_parses_every_loghub_line_into_searchable_fields() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestGateway::start(config(dir.path())).await;
    let meta = upload_ok(&t, A_ADMIN, "apache-error", "apache-error").await;
    assert_eq!(meta["version"], 1);
    assert_eq!(meta["used_by"], serde_json::json!(["/apache"]));

    let log = std::fs::read_to_string(format!("{LOGHUB}/Apache/Apache_2k.log")).unwrap();
    let csv =
        std::fs::read_to_string(format!("{LOGHUB}/Apache/Apache_2k.log_structured.csv")).unwrap();
    let levels: Vec<&str> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(2).unwrap())
        .collect();
    let errors = levels.iter().filter(|l| **l == "error").count() as u64;
    let notices = levels.iter().filter(|l| **l == "notice").count() as u64;
    assert!(errors > 0 && notices > 0);

    let (status, answer) = post_text(&t, "/apache", A_INGEST, log.clone()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], 2000);
    assert!(answer.get("dead_lettered").is_none(), "{answer}");

    let all = t
        .search_until(A_ADMIN, &[("q", "type:apache_error"), ("limit", "1")], 2000)
        .await;
    let hit = &all["hits"][0];
    assert!(hit["fields"]["apache_time"].is_string(), "{hit}");
    t.search_until(A_ADMIN, &[("q", "level:error")], errors)
        .await;
    t.search_until(A_ADMIN, &[("q", "level:notice")], notices)
        .await;
    // The event time comes from the line, not from when it was received.
    t.search_until(
        A_ADMIN,
        &[
            (
                "q",
                "message:\"workerEnv.init() ok /etc/httpd/conf/workers2.properties\"",
            ),
            ("from", "2005-12-04T04:47:44Z"),
            ("to", "2005-12-04T04:47:45Z"),
        ],
        1,
    )
    .await;
    let m = t.metrics().await;
    assert!(metric_sum(&m, "logway_filter_batches_total{") >= 1.0, "{m}");
    t.stop().await;
}

#[tokio::test]
async fn a_chain_parses_openssh_then_redacts_and_a_sampler_drops() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestGateway::start(config(dir.path())).await;
    for f in ["openssh", "redact", "user-agent", "sample"] {
        upload_ok(&t, A_ADMIN, f, f).await;
    }
    let log = std::fs::read_to_string(format!("{LOGHUB}/OpenSSH/OpenSSH_2k.log")).unwrap();
    let (status, answer) = post_text(&t, "/ssh", A_INGEST, log).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], 2000);
    let body = t
        .search_until(
            A_ADMIN,
            &[
                ("q", "type:sshd AND fields.process:sshd"),
                ("limit", "2000"),
            ],
            2000,
        )
        .await;
    // openssh extracted the source IP into a field; redact then masked it in the message.
    let with_ip: Vec<&Value> = body["hits"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["fields"]["source_ip"].is_string())
        .collect();
    assert!(with_ip.len() > 500, "{}", with_ip.len());
    for h in &with_ip {
        let ip = h["fields"]["source_ip"].as_str().unwrap();
        let msg = h["message"].as_str().unwrap();
        assert!(!msg.contains(ip), "{msg} still holds {ip}");
        assert!(msg.contains("[REDACTED]"), "{msg}");
    }
    assert_eq!(with_ip[0]["host"], "LabSZ");

    // user-agent enriches browser events.
    let ua = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1";
    let (status, answer) = post_json(
        &t,
        "/browser",
        A_INGEST,
        format!("{{\"message\":\"click\",\"user_agent\":\"{ua}\"}}\n"),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let body = t
        .search_until(A_ADMIN, &[("q", "type:browser_logs")], 1)
        .await;
    let parsed = &body["hits"][0]["fields"]["ua"];
    assert_eq!(parsed["device"], "mobile", "{parsed}");
    assert_eq!(parsed["os"], "iOS", "{parsed}");

    // sample keeps about 1 in 10 request ids, and all events of a request id together.
    let lines: String = (0..2000)
        .map(|i| {
            format!(
                "{{\"message\":\"debug {i}\",\"level\":\"debug\",\"request_id\":\"r{}\"}}\n",
                i / 2
            )
        })
        .collect();
    let (status, answer) = post_json(&t, "/debug", A_INGEST, lines).await;
    assert_eq!(status, 200, "{answer}");
    let dropped = answer["dropped"].as_u64().unwrap();
    let kept = 2000 - dropped;
    assert!((100..=300).contains(&kept) && kept % 2 == 0, "kept {kept}");
    t.search_until(A_ADMIN, &[("q", "type:debug_logs")], kept)
        .await;
    let m = t.metrics().await;
    assert_eq!(
        metric_sum(&m, "logway_filter_events_dropped_total{"),
        dropped as f64,
        "{m}"
    );
    t.stop().await;
}

#[tokio::test]
async fn uploaded_filters_and_route_chains_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestGateway::start(config(dir.path())).await;
    upload_ok(&t, A_ADMIN, "apache-error", "apache-error").await;
    let second = upload_ok(&t, A_ADMIN, "apache-error", "apache-error").await;
    assert_eq!(second["version"], 2);
    t.stop().await;

    let t = TestGateway::start(config(dir.path())).await;
    let one: Value = t.get_json("/api/v1/filters/apache-error", A_ADMIN).await;
    assert_eq!(one["version"], 2, "{one}");
    assert_eq!(one["sha256"], second["sha256"]);
    let (status, answer) = post_text(
        &t,
        "/apache",
        A_INGEST,
        "[Sun Dec 04 04:47:44 2005] [error] after restart\n".into(),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let body = t
        .search_until(
            A_ADMIN,
            &[("q", "level:error AND message:\"after restart\"")],
            1,
        )
        .await;
    assert_eq!(body["hits"][0]["timestamp"], "2005-12-04T04:47:44Z");
    t.stop().await;
}

/// Swapping a filter under load: no request fails, no event is lost, and
/// each event went through exactly one version (v1 `keep` leaves no mark,
/// v2 `hostile` in its normal mode adds `batches`).
#[tokio::test]
async fn hot_swap_under_load_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestGateway::start(config(dir.path())).await;
    upload_ok(&t, A_ADMIN, "swap", "keep").await;
    // Senders go on until 10 of their requests followed the swap, so both
    // versions see events however long the upload takes.
    let swapped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let senders: Vec<_> = (0..4)
        .map(|s| {
            let (client, url) = (t.client.clone(), t.url.clone());
            let swapped = swapped.clone();
            tokio::spawn(async move {
                let mut sent = 0u64;
                let mut after_swap = 0;
                for r in 0.. {
                    if swapped.load(std::sync::atomic::Ordering::Acquire) {
                        after_swap += 1;
                        if after_swap > 10 {
                            break;
                        }
                    }
                    assert!(r < 10_000, "the swap never happened");
                    let body: String = (0..25)
                        .map(|i| format!("{{\"message\":\"swap s{s} r{r} e{i}\"}}\n"))
                        .collect();
                    let resp = client
                        .post(format!("{url}/swap"))
                        .bearer_auth(A_INGEST)
                        .header("content-type", "application/x-ndjson")
                        .body(body)
                        .send()
                        .await
                        .unwrap();
                    let status = resp.status();
                    let answer: Value = resp.json().await.unwrap();
                    assert_eq!(status, 200, "{answer}");
                    assert!(answer.get("dead_lettered").is_none(), "{answer}");
                    sent += 25;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                sent
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let v2 = upload_ok(&t, A_ADMIN, "swap", "hostile").await;
    assert_eq!(v2["version"], 2);
    swapped.store(true, std::sync::atomic::Ordering::Release);
    let mut sent = 0;
    for s in senders {
        sent += s.await.unwrap();
    }
    let all = t
        .search_until(A_ADMIN, &[("q", "type:swap"), ("limit", "1")], sent)
        .await;
    assert_eq!(all["total"], sent);
    let v2_events = t
        .histogram_total(A_ADMIN, "type:swap AND fields.batches:>=1")
        .await;
    let v1_events = t
        .histogram_total(A_ADMIN, "type:swap AND NOT fields.batches:>=1")
        .await;
    assert_eq!(v1_events + v2_events, sent);
    assert!(
        v1_events > 0 && v2_events > 0,
        "v1 {v1_events}, v2 {v2_events}"
    );
    t.stop().await;
}

/// A filter can move events to another log type: they land in that type's
/// partition, the rest stay in the route's, rejected lines too.
#[tokio::test]
async fn set_type_moves_events_to_another_log_type() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestGateway::start(config(dir.path())).await;
    upload_ok(&t, A_ADMIN, "hostile", "hostile").await;
    let body = "plain one\nretype audit\nplain two\nretype audit\nretype security\n";
    let (status, answer) = post_text(&t, "/hostile", A_INGEST, body.into()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], 5);
    t.search_until(A_ADMIN, &[("q", "message:retype"), ("type", "audit")], 2)
        .await;
    t.search_until(A_ADMIN, &[("q", "*"), ("type", "security")], 1)
        .await;
    let plain = t
        .search_until(A_ADMIN, &[("q", "message:plain"), ("type", "hostile")], 2)
        .await;
    assert_eq!(plain["hits"][0]["type"], "hostile");
    let m = t.metrics().await;
    assert!(
        m.contains("logway_events_indexed_total{tenant=\"a\",type=\"audit\"} 2"),
        "{m}"
    );
    t.stop().await;
}

/// A config reload changes a route's chain for new requests, no restart.
#[tokio::test]
async fn a_reload_changes_a_routes_filter_chain() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestGateway::start(config(dir.path())).await;
    upload_ok(&t, A_ADMIN, "apache-error", "apache-error").await;
    let line = |n: u32| format!("[Sun Dec 04 04:47:44 2005] [error] reload check {n}\n");
    post_text(&t, "/apache", A_INGEST, line(1)).await;

    let mut without = config(dir.path());
    let route = without.tenants[0]
        .routes
        .iter_mut()
        .find(|r| r.path == "/apache")
        .unwrap();
    route.filters.clear();
    t.gateway.reload(&without).unwrap();
    post_text(&t, "/apache", A_INGEST, line(2)).await;

    t.gateway.reload(&config(dir.path())).unwrap();
    post_text(&t, "/apache", A_INGEST, line(3)).await;

    let parsed = t
        .search_until(A_ADMIN, &[("q", "level:error AND message:reload")], 2)
        .await;
    let mut messages: Vec<&str> = parsed["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["message"].as_str().unwrap())
        .collect();
    messages.sort();
    assert_eq!(messages, ["reload check 1", "reload check 3"]);
    t.search_until(A_ADMIN, &[("q", "message:\"[error] reload check 2\"")], 1)
        .await;
    t.stop().await;
}

/// A route of the `event` class never runs a filter that may drop: the
/// upload is refused (409) while such a route names it, a reload or a
/// start that puts one on such a route is refused, and a filter that says
/// it never drops but does anyway has its drops kept as dead letters.
#[tokio::test]
async fn event_routes_refuse_filters_that_may_drop() {
    let dir = tempfile::tempdir().unwrap();
    let with_routes = |extra: &str| {
        let routes = r#"
  { path = "/pay", type = "payments", class = "event", filters = [{ name = "sample", config = { rate = 2 } }, { name = "redact", config = { fields = "message" } }] },
  { path = "/pay-lying", type = "payments", class = "event", filters = [{ name = "hostile", config = { mode = "drop" } }] },
  { path = "/logs-lying", type = "app_logs", filters = [{ name = "hostile", config = { mode = "drop" } }] },
"#;
        config_plus_routes(dir.path(), &format!("{routes}{extra}"))
    };
    let t = TestGateway::start(with_routes("")).await;

    // `sample` declares that it may drop: refused while /pay names it.
    let (status, body) = upload_filter(&t, A_ADMIN, "sample", filter_wasm("sample")).await;
    assert_eq!(status, 409, "{body}");
    let why = body.to_string();
    assert!(
        why.contains("may drop events") && why.contains("/pay"),
        "{body}"
    );
    let listed = t.get_json("/api/v1/filters", A_ADMIN).await;
    assert!(!listed.to_string().contains("\"sample\""), "{listed}");
    // `redact` declares that it never drops.
    let meta = upload_ok(&t, A_ADMIN, "redact", "redact").await;
    assert_eq!(meta["may_drop"], false, "{meta}");
    let keep = upload_ok(&t, A_ADMIN, "keep", "keep").await;
    assert_eq!(keep["may_drop"], true, "{keep}");

    // `hostile` says it never drops but drops in mode `drop`: on an event
    // route its drops are dead letters, on a log route they are drops.
    upload_ok(&t, A_ADMIN, "hostile", "hostile").await;
    let lines = "payment 1 captured\npayment 2 captured\n".to_string();
    let (status, answer) = post_text(&t, "/pay-lying", A_INGEST, lines.clone()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["dead_lettered"], 2, "{answer}");
    let why = answer["errors"][0]["reason"].as_str().unwrap();
    assert!(
        why.contains("filter `hostile`") && why.contains("event-class route"),
        "{why}"
    );
    let (status, answer) = post_text(&t, "/logs-lying", A_INGEST, lines).await;
    assert_eq!(
        status, 200,
        "every event dropped on purpose is no error: {answer}"
    );
    assert_eq!(answer["dropped"], 2, "{answer}");
    assert!(answer.get("dead_lettered").is_none(), "{answer}");
    let kept = t
        .search_until(
            A_ADMIN,
            &[("q", "outcome:dead_letter AND message:captured")],
            2,
        )
        .await;
    assert_eq!(
        kept["total"], 2,
        "only the event route's drops are kept: {kept}"
    );

    // A reload that puts `keep` (may drop) on an event route is refused and
    // changes nothing; one without it is taken.
    let bad = with_routes(
        r#"{ path = "/pay-keep", type = "payments", class = "event", filters = [{ name = "keep" }] },"#,
    );
    let err = t.gateway.reload(&bad).unwrap_err();
    assert!(
        format!("{err:#}").contains("filter `keep` of tenant `a` may drop events")
            && format!("{err:#}").contains("/pay-keep"),
        "{err:#}"
    );
    let (status, _) = post_text(&t, "/pay-keep", A_INGEST, "x\n".into()).await;
    assert_eq!(status, 404, "the refused reload added no route");
    t.stop().await;

    // The same config at a start: the gateway stops with the reason.
    let mut g = logway::start(bad).await.expect("listeners bind");
    let err = g.stopped().await.unwrap_err();
    assert!(format!("{err:#}").contains("may drop events"), "{err:#}");
}
