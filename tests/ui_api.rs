//! The API the web UI stands on, through the real server: sign-in sessions
//! and CSRF, the UI's files and their security headers, cursor paging,
//! query error positions, the stacked histogram, field names and top
//! values, the live tail, saved searches, the filter test, the overview
//! and the config page.

use std::time::Duration;

use crate::common::*;
use serde_json::{Value, json};

/// NDJSON lines, posted to tenant a's `/web` route.
async fn post_web(t: &TestGateway, lines: &[Value]) {
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let r = t
        .post("/web", A_INGEST)
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

async fn get(t: &TestGateway, path: &str, key: &str, query: &[(&str, &str)]) -> (u16, Value) {
    let r = t
        .client
        .get(format!("{}{path}", t.url))
        .bearer_auth(key)
        .query(query)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Signs in; returns the cookie pair (`logway_session=…`), the CSRF token
/// and the whole `Set-Cookie` header.
async fn sign_in(t: &TestGateway, key: &str) -> (String, String, String) {
    let r = t
        .client
        .post(format!("{}/api/v1/session", t.url))
        .json(&json!({ "key": key }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let set_cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    let pair = set_cookie.split(';').next().unwrap().to_string();
    let body: Value = r.json().await.unwrap();
    (pair, body["csrf"].as_str().unwrap().to_string(), set_cookie)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ui_is_served_with_a_strict_content_security_policy() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestGateway::start(two_tenant_config(dir.path(), "")).await;
    let r = t.client.get(format!("{}/", t.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(h["x-content-type-options"], "nosniff");
    let page = r.text().await.unwrap();
    assert!(page.contains(r#"src="/ui/app.js""#), "{page}");
    let js = t
        .client
        .get(format!("{}/ui/app.js", t.url))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), 200);
    assert!(
        js.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(js.headers().contains_key("content-security-policy"));
    let etag = js.headers()["etag"].clone();
    let again = t
        .client
        .get(format!("{}/ui/app.js", t.url))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    let missing = t
        .client
        .get(format!("{}/ui/nothing.js", t.url))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    t.stop().await;

    // No tenant route may take the UI's paths.
    let refused = logway::Config::from_toml(&format!(
        "[[tenants]]\nname = \"a\"\ningest_keys = [\"{A_INGEST}\"]\nroutes = [{{ path = \"/ui/x\", type = \"x_logs\" }}]\n"
    ));
    assert!(
        refused.unwrap_err().to_string().contains("the web UI"),
        "a route under /ui/ is refused"
    );
}

/// The UI's code renders event data as text only: none of the HTML
/// sinks, no eval, no inline script or style in the page.
#[test]
fn the_ui_code_uses_no_html_sinks_and_no_inline_script() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ui");
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.display();
        match path.extension().and_then(|e| e.to_str()) {
            Some("js") => {
                files += 1;
                // Code only: a comment may name what the code avoids.
                let text: String = text
                    .lines()
                    .filter(|l| {
                        let l = l.trim_start();
                        !l.starts_with("//") && !l.starts_with('*') && !l.starts_with("/*")
                    })
                    .collect::<Vec<_>>()
                    .join("\n");
                for sink in [
                    "innerHTML",
                    "outerHTML",
                    "insertAdjacentHTML",
                    "document.write",
                    "eval(",
                    "new Function",
                    "setAttribute('style'",
                    "setAttribute(\"style\"",
                ] {
                    assert!(!text.contains(sink), "{name} uses {sink}");
                }
            }
            Some("html") => {
                assert!(!text.contains("<script>"), "{name} has an inline script");
                assert!(!text.contains("style="), "{name} has an inline style");
                // An event-handler attribute: ` on<letters>=`.
                let handler = text.match_indices(" on").any(|(i, _)| {
                    let rest = &text[i + 3..];
                    let letters = rest.chars().take_while(|c| c.is_ascii_alphabetic()).count();
                    letters > 0 && rest[letters..].trim_start().starts_with('=')
                });
                assert!(!handler, "{name} has an inline event handler");
            }
            _ => {}
        }
    }
    assert!(files > 0, "no UI modules in {}", dir.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_gives_a_strict_cookie_and_state_changes_need_the_csrf_token() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestGateway::start(two_tenant_config(dir.path(), "")).await;
    let session = format!("{}/api/v1/session", t.url);
    // Refusals: unknown key, ingest key, a form body.
    for (body, status) in [
        (json!({"key": "no-such-key-0000"}), 401),
        (json!({"key": A_INGEST}), 403),
    ] {
        let r = t.client.post(&session).json(&body).send().await.unwrap();
        assert_eq!(r.status(), status);
    }
    let form = t
        .client
        .post(&session)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("key={A_ADMIN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 415);
    let no_session = t.client.get(&session).send().await.unwrap();
    assert_eq!(no_session.status(), 401);

    let (cookie, csrf, set_cookie) = sign_in(&t, A_ADMIN).await;
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] {
        assert!(set_cookie.contains(flag), "{set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "no TLS here: {set_cookie}");
    let me: Value = t
        .client
        .get(&session)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["tenant"], "a");
    assert_eq!(me["csrf"], csrf.as_str());
    assert_eq!(me["open"], false);

    // Reads work with the cookie alone.
    let search = t
        .client
        .get(format!("{}/api/v1/search", t.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(search.status(), 200);
    // Writes need the token: none, a wrong one, the right one.
    let save = |token: Option<&str>| {
        let mut r = t
            .client
            .post(format!("{}/api/v1/saved", t.url))
            .header("cookie", &cookie)
            .json(&json!({"name": "errors", "query": "level:error"}));
        if let Some(token) = token {
            r = r.header("x-logway-csrf", token);
        }
        r.send()
    };
    assert_eq!(save(None).await.unwrap().status(), 403);
    assert_eq!(save(Some("wrong-token")).await.unwrap().status(), 403);
    assert_eq!(save(Some(&csrf)).await.unwrap().status(), 201);
    // A key in a header needs no token.
    let with_key = t
        .post("/api/v1/saved", A_ADMIN)
        .json(&json!({"name": "by key", "query": ""}))
        .send()
        .await
        .unwrap();
    assert_eq!(with_key.status(), 201);

    // Signing out needs the token too, and ends the session.
    let out = t
        .client
        .delete(&session)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 403);
    let out = t
        .client
        .delete(&session)
        .header("cookie", &cookie)
        .header("x-logway-csrf", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    assert!(
        out.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let after = t
        .client
        .get(format!("{}/api/v1/search", t.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 401);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_expire_and_the_embedded_defaults_need_no_sign_in() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestGateway::start(two_tenant_config(
        dir.path(),
        "[ui]\nsession_ttl = \"1s\"\n",
    ))
    .await;
    let (cookie, _, set_cookie) = sign_in(&t, A_ADMIN).await;
    assert!(set_cookie.contains("Max-Age=1"), "{set_cookie}");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let r = t
        .client
        .get(format!("{}/api/v1/session", t.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "an expired session is refused");
    t.stop().await;

    let dir = tempfile::tempdir().unwrap();
    let t = TestGateway::start(config_with(dir.path(), "")).await;
    let me: Value = t
        .client
        .get(format!("{}/api/v1/session", t.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["open"], true);
    assert_eq!(me["tenant"], "default");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_pages_by_cursor_through_events_sharing_a_millisecond() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestGateway::start(two_tenant_config(dir.path(), "")).await;
    // 10 events at one millisecond, 10 at another, 7 at their own.
    let mut lines = Vec::new();
    for i in 0..27 {
        let ts = match i {
            0..10 => "2026-11-30T10:00:00.500Z".to_string(),
            10..20 => "2026-11-30T09:00:00.250Z".to_string(),
            n => format!("2026-11-30T08:00:{:02}.000Z", n),
        };
        lines.push(json!({"timestamp": ts, "message": format!("paged event {i}")}));
    }
    post_web(&t, &lines).await;
    t.search_until(A_ADMIN, &[("q", "paged")], 27).await;
    let mut seen: Vec<(String, String)> = Vec::new();
    let mut cursor = String::new();
    for page in 0.. {
        assert!(page < 20, "paging never ends");
        let (status, body) = get(
            &t,
            "/api/v1/search",
            A_ADMIN,
            &[("q", "paged"), ("limit", "4"), ("search_after", &cursor)],
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["total"], 27,
            "the total counts every match on every page"
        );
        for hit in body["hits"].as_array().unwrap() {
            seen.push((
                hit["timestamp"].as_str().unwrap().to_string(),
                hit["message"].as_str().unwrap().to_string(),
            ));
        }
        match body["next"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => break,
        }
    }
    let mut messages: Vec<&str> = seen.iter().map(|(_, m)| m.as_str()).collect();
    messages.sort();
    messages.dedup();
    assert_eq!(messages.len(), 27, "every event once: {seen:?}");
    assert_eq!(seen.len(), 27, "no event twice: {seen:?}");
    assert!(
        seen.windows(2).all(|w| w[0].0 >= w[1].0),
        "newest first: {seen:?}"
    );
    let (status, body) = get(
        &t,
        "/api/v1/search",
        A_ADMIN,
        &[("search_after", "yesterday")],
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("search_after")
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_syntax_error_says_where_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestGateway::start(two_tenant_config(dir.path(), "")).await;
    let (status, body) = get(
        &t,
        "/api/v1/search",
        A_ADMIN,
        &[("q", "level:error AND (service:x")],
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "bad_request");
    let at = body["error"]["position"].as_u64().expect("a position");
    assert!((16..=26).contains(&at), "{body}");
    // Positions count characters, not bytes.
    let (_, body) = get(&t, "/api/v1/search", A_ADMIN, &[("q", "héllo AND (")]).await;
    assert_eq!(body["error"]["position"], 11, "{body}");
    // A range of two kinds over numbers is a 400, not a panic in tantivy.
    post_web(&t, &[json!({"message": "ranged", "n": 3, "g": 2.5})]).await;
    t.search_until(A_ADMIN, &[("q", "ranged")], 1).await;
    for q in [
        "fields.n:[1 TO 2.5]",
        "fields.g:[1 TO 2.5]",
        "fields.g:[1.0 TO 2.5]",
        "fields.n:[-5 TO 2.5]",
    ] {
        let (status, body) = get(&t, "/api/v1/search", A_ADMIN, &[("q", q)]).await;
        assert_eq!(status, 400, "{q}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("one kind"),
            "{body}"
        );
    }
    let (status, body) = get(
        &t,
        "/api/v1/search",
        A_ADMIN,
        &[("q", "fields.g:[0.5 TO 2.5]")],
    )
    .await;
    assert_eq!((status, body["total"].as_u64()), (200, Some(1)), "{body}");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_histogram_splits_by_level_and_fields_give_names_and_top_values() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestGateway::start(two_tenant_config(dir.path(), "")).await;
    let mut lines = Vec::new();
    for i in 0..30 {
        let (level, service) = match i % 3 {
            0 => ("error", "checkout"),
            1 => ("info", "checkout"),
            _ => ("info", "cart"),
        };
        lines.push(json!({"level": level, "service": service, "message": format!("sidebar {i}"),
                          "http": {"status": 200 + (i % 2) * 300}, "user": {"id": format!("u{}", i % 4)}}));
    }
    lines.push(json!({"message": "sidebar without level"}));
    post_web(&t, &lines).await;
    t.search_until(A_ADMIN, &[("q", "sidebar")], 31).await;

    let (status, h) = get(
        &t,
        "/api/v1/histogram",
        A_ADMIN,
        &[("q", "sidebar"), ("from", "now-10m"), ("by", "level")],
    )
    .await;
    assert_eq!(status, 200, "{h}");
    let mut by_level = std::collections::BTreeMap::<String, u64>::new();
    let mut total = 0;
    for b in h["buckets"].as_array().unwrap() {
        total += b["count"].as_u64().unwrap();
        let mut sum = 0;
        for (level, n) in b["by"].as_object().unwrap() {
            *by_level.entry(level.clone()).or_default() += n.as_u64().unwrap();
            sum += n.as_u64().unwrap();
        }
        assert_eq!(
            sum,
            b["count"].as_u64().unwrap(),
            "a bucket's levels add up"
        );
    }
    assert_eq!(total, 31);
    assert_eq!(by_level.get("error"), Some(&10));
    assert_eq!(by_level.get("info"), Some(&20));
    assert_eq!(by_level.get(""), Some(&1), "events without a level");
    let (status, _) = get(&t, "/api/v1/histogram", A_ADMIN, &[("by", "host")]).await;
    assert_eq!(status, 400);

    let (status, names) = get(&t, "/api/v1/fields", A_ADMIN, &[("type", "web_logs")]).await;
    assert_eq!(status, 200, "{names}");
    let names: Vec<&str> = names["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    for n in ["level", "service", "http.status", "user.id"] {
        assert!(names.contains(&n), "{n} in {names:?}");
    }

    let (status, v) = get(
        &t,
        "/api/v1/fields/values",
        A_ADMIN,
        &[("field", "service"), ("q", "sidebar")],
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["total"], 31);
    assert_eq!(v["values"][0], json!({"value": "checkout", "count": 20}));
    assert_eq!(v["values"][1], json!({"value": "cart", "count": 10}));
    let (_, v) = get(
        &t,
        "/api/v1/fields/values",
        A_ADMIN,
        &[("field", "user.id"), ("q", "level:error"), ("size", "2")],
    )
    .await;
    assert_eq!(v["total"], 10);
    assert_eq!(v["values"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!(
        v["other"],
        10 - v["values"][0]["count"].as_u64().unwrap() - v["values"][1]["count"].as_u64().unwrap()
    );
    let (_, v) = get(
        &t,
        "/api/v1/fields/values",
        A_ADMIN,
        &[("field", "http.status")],
    )
    .await;
    assert_eq!(v["values"][0]["count"], 15, "{v}");
    let (status, v) = get(
        &t,
        "/api/v1/fields/values",
        A_ADMIN,
        &[("field", "message")],
    )
    .await;
    assert_eq!(status, 400, "{v}");

    // Another tenant sees none of it.
    let (_, v) = get(
        &t,
        "/api/v1/fields/values",
        B_ADMIN,
        &[("field", "service")],
    )
    .await;
    assert_eq!(v["total"], 0, "{v}");
    let (_, names) = get(&t, "/api/v1/fields", B_ADMIN, &[]).await;
    assert!(!names.to_string().contains("user.id"), "{names}");
    t.stop().await;
}

/// Reads an SSE stream until `done` says enough; returns the frames as
/// (event, data).
async fn read_sse(
    resp: &mut reqwest::Response,
    mut done: impl FnMut(&[(String, String)]) -> bool,
) -> Vec<(String, String)> {
    let mut text = String::new();
    let mut frames = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !done(&frames) {
        let chunk = tokio::time::timeout_at(deadline, resp.chunk())
            .await
            .unwrap_or_else(|_| panic!("stream gave only {frames:?}"))
            .unwrap()
            .expect("the stream stays open");
        text.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = text.find("\n\n") {
            let frame: String = text.drain(..end + 2).collect();
            let mut event = String::new();
            let mut data = String::new();
            for line in frame.lines() {
                if let Some(e) = line.strip_prefix("event: ") {
                    event = e.to_string();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push_str(d);
                }
            }
            if !event.is_empty() {
                frames.push((event, data));
            }
        }
    }
    frames
}

fn tail_events(frames: &[(String, String)]) -> Vec<Value> {
    frames
        .iter()
        .filter(|(e, _)| e == "events")
        .flat_map(|(_, d)| serde_json::from_str::<Vec<Value>>(d).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_tail_pushes_matching_durable_events_and_counts_what_it_had_to_skip() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestGateway::start(two_tenant_config(
        dir.path(),
        "[ui]\ntail_buffer_bytes = 4096\n",
    ))
    .await;
    let open = |key: &'static str, q: &'static str| {
        t.client
            .get(format!("{}/api/v1/tail", t.url))
            .bearer_auth(key)
            .query(&[("q", q)])
            .send()
    };
    let (status, bad) = get(&t, "/api/v1/tail", A_ADMIN, &[("q", "level:(")]).await;
    assert_eq!(status, 400, "{bad}");

    let mut a = open(A_ADMIN, "level:error AND NOT service:noise")
        .await
        .unwrap();
    assert_eq!(a.status(), 200);
    assert!(
        a.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut b = open(B_ADMIN, "*").await.unwrap();
    // Give the reader a moment to start at the durable end.
    tokio::time::sleep(Duration::from_millis(300)).await;
    post_web(
        &t,
        &[
            json!({"level": "info", "message": "not this one"}),
            json!({"level": "error", "service": "noise", "message": "nor this"}),
            json!({"level": "error", "service": "checkout", "message": "tail me"}),
        ],
    )
    .await;
    let frames = read_sse(&mut a, |f| !tail_events(f).is_empty()).await;
    let events = tail_events(&frames);
    assert_eq!(events.len(), 1, "{frames:?}");
    assert_eq!(events[0]["message"], "tail me");
    assert_eq!(events[0]["tenant"], "a");
    // Tenant b's tail sees its own event, never a's.
    let r = t
        .post("/b/app", B_INGEST)
        .header("content-type", "application/json")
        .body(r#"{"level":"error","message":"b's own"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let frames = read_sse(&mut b, |f| !tail_events(f).is_empty()).await;
    let events = tail_events(&frames);
    assert!(
        events.iter().all(|e| e["tenant"] == "b"),
        "b sees only b: {events:?}"
    );
    assert_eq!(events.last().unwrap()["message"], "b's own");

    // 60 matching events of ~300 bytes each in one batch: the 4 KiB buffer
    // takes some, the rest are counted as skipped, none is lost silently.
    let lines: Vec<Value> = (0..60)
        .map(|i| json!({"level": "error", "message": format!("burst {i} {}", "x".repeat(200))}))
        .collect();
    post_web(&t, &lines).await;
    let frames = read_sse(&mut a, |f| {
        let got = tail_events(f).len() as u64;
        let skipped = f
            .iter()
            .filter(|(e, _)| e == "skipped")
            .map(|(_, d)| {
                serde_json::from_str::<Value>(d).unwrap()["skipped"]
                    .as_u64()
                    .unwrap()
            })
            .max()
            .unwrap_or(0);
        got + skipped >= 60
    })
    .await;
    let got = tail_events(&frames).len();
    assert!(got > 0 && got < 60, "some fit, some did not: {got}");
    let skipped_total: u64 = frames
        .iter()
        .filter(|(e, _)| e == "skipped")
        .map(|(_, d)| {
            serde_json::from_str::<Value>(d).unwrap()["skipped"]
                .as_u64()
                .unwrap()
        })
        .max()
        .unwrap();
    assert_eq!(got as u64 + skipped_total, 60);
    drop(b);

    // Shutdown ends open tails first: the stream ends cleanly instead of
    // holding the HTTP server for its grace period (30 s).
    let stopping = tokio::spawn(t.stop());
    let end = loop {
        match tokio::time::timeout(Duration::from_secs(10), a.chunk()).await {
            Ok(Ok(Some(_))) => continue,
            other => break other,
        }
    };
    assert!(
        matches!(end, Ok(Ok(None))),
        "the tail's stream ends at shutdown: {end:?}"
    );
    stopping.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saved_searches_survive_a_restart_and_stay_with_their_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestGateway::start(two_tenant_config(dir.path(), "")).await;
    let r = t
        .post("/api/v1/saved", A_ADMIN)
        .json(&json!({"name": "checkout errors", "note": "for the on-call", "query": "level:error AND service:checkout",
                      "range": "now-1h", "columns": ["user.id"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let saved: Value = r.json().await.unwrap();
    let id = saved["id"].as_str().unwrap().to_string();
    let bad = t
        .post("/api/v1/saved", A_ADMIN)
        .json(&json!({"name": "broken", "query": "level:("}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    t.stop().await;

    let t = TestGateway::start(two_tenant_config(dir.path(), "")).await;
    let (_, list) = get(&t, "/api/v1/saved", A_ADMIN, &[]).await;
    assert_eq!(list["saved"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["saved"][0]["name"], "checkout errors");
    assert_eq!(list["saved"][0]["columns"], json!(["user.id"]));
    let (_, other) = get(&t, "/api/v1/saved", B_ADMIN, &[]).await;
    assert_eq!(other["saved"], json!([]));
    let del = |key: &'static str| {
        t.client
            .delete(format!("{}/api/v1/saved/{id}", t.url))
            .bearer_auth(key)
            .send()
    };
    assert_eq!(
        del(B_ADMIN).await.unwrap().status(),
        404,
        "not b's to delete"
    );
    assert_eq!(del(A_ADMIN).await.unwrap().status(), 204);
    let (_, list) = get(&t, "/api/v1/saved", A_ADMIN, &[]).await;
    assert_eq!(list["saved"], json!([]));
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_pages_test_a_filter_and_show_ingest_and_config_without_keys() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestGateway::start(two_tenant_config(dir.path(), "")).await;
    let (status, _) = upload_filter(&t, A_ADMIN, "redact", filter_wasm("redact")).await;
    assert_eq!(status, 201);
    let r = t
        .post("/api/v1/filters/redact/test", A_ADMIN)
        .body("{\"message\":\"mail jane@example.com now\"}\n{\"message\":\"nothing here\"}\nplain text line\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let results: Value = r.json().await.unwrap();
    let results = results["results"].as_array().unwrap().clone();
    assert_eq!(results.len(), 3, "{results:?}");
    assert_eq!(results[0]["verdict"], "edits", "{results:?}");
    assert!(results[0].to_string().contains("[REDACTED]"));
    assert_eq!(results[1]["verdict"], "keep");
    assert_eq!(results[2]["line"], 3);
    let (status, _) = get(&t, "/api/v1/search", A_ADMIN, &[("q", "jane")]).await;
    assert_eq!(status, 200);
    let missing = t
        .post("/api/v1/filters/nope/test", A_ADMIN)
        .body("{}\n")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let (_, none) = get(&t, "/api/v1/search", A_ADMIN, &[("q", "jane")]).await;
    assert_eq!(none["total"], 0, "a filter test stores nothing");

    post_web(
        &t,
        &[json!({"message": "counted"}), json!({"message": "counted"})],
    )
    .await;
    let bad = t
        .post("/web", A_INGEST)
        .header("content-type", "application/x-ndjson")
        .body("{\"message\":\"ok\"}\nnot json {\n")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 200);
    let (status, o) = get(&t, "/api/v1/overview", A_ADMIN, &[]).await;
    assert_eq!(status, 200, "{o}");
    let web = o["types"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["type"] == "web_logs")
        .unwrap_or_else(|| panic!("{o}"))
        .clone();
    assert_eq!(web["received"], 3, "{o}");
    assert_eq!(web["rejected"], 1, "{o}");
    assert_eq!(web["dead_lettered"], 0, "{o}");
    assert!(o["wal"]["bytes"].as_u64().unwrap() > 0);
    let (_, o) = get(&t, "/api/v1/overview", B_ADMIN, &[]).await;
    assert!(
        !o.to_string().contains("web_logs"),
        "b sees only its own types: {o}"
    );

    let (status, c) = get(&t, "/api/v1/config", A_ADMIN, &[]).await;
    assert_eq!(status, 200, "{c}");
    assert_eq!(c["tenant"]["name"], "a");
    assert_eq!(c["tenant"]["routes"][0]["path"], "/mobile");
    assert_eq!(c["tenant"]["admin_keys"], 1);
    let text = c.to_string();
    for key in [A_INGEST, A_ADMIN, B_INGEST, B_ADMIN] {
        assert!(!text.contains(key), "no key in the config page: {text}");
    }
    assert!(!text.contains("/b/app"), "nor another tenant's routes");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_tail_gets_at_most_its_rate_and_counts_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestGateway::start(two_tenant_config(
        dir.path(),
        "[ui]\ntail_max_events_per_sec = 10\n",
    ))
    .await;
    let mut everything = t
        .client
        .get(format!("{}/api/v1/tail", t.url))
        .bearer_auth(A_ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(everything.status(), 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let lines: Vec<Value> = (0..50)
        .map(|i| json!({"message": format!("fast {i}")}))
        .collect();
    post_web(&t, &lines).await;
    let frames = read_sse(&mut everything, |f| f.iter().any(|(e, _)| e == "skipped")).await;
    let got = tail_events(&frames);
    assert_eq!(got.len(), 10, "a second's worth: {frames:?}");
    assert_eq!(got[0]["message"], "fast 0", "the first ones, in order");
    let skipped: Value =
        serde_json::from_str(&frames.iter().find(|(e, _)| e == "skipped").unwrap().1).unwrap();
    assert_eq!(skipped["skipped"], 40);
    drop(everything);
    t.stop().await;
}
