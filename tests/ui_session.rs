//! The web UI's door: its files and their security headers, its code
//! free of HTML sinks, sign-in sessions with their cookie, CSRF token and
//! expiry, and the embedded defaults with no sign-in.

use std::time::Duration;

use crate::common::*;
use serde_json::{Value, json};

/// `method path` with the session `cookie` (and `csrf` when given), no key.
async fn with_cookie(
    t: &TestGateway,
    method: reqwest::Method,
    path: &str,
    cookie: &str,
    csrf: Option<&str>,
) -> reqwest::Response {
    let mut r = t
        .client
        .request(method, format!("{}{path}", t.url))
        .header("cookie", cookie);
    if let Some(token) = csrf {
        r = r.header("x-logway-csrf", token);
    }
    r.send().await.unwrap()
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
    let me: Value = with_cookie(&t, reqwest::Method::GET, "/api/v1/session", &cookie, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["tenant"], "a");
    assert_eq!(me["csrf"], csrf.as_str());
    assert_eq!(me["open"], false);

    // Reads work with the cookie alone.
    let search = with_cookie(&t, reqwest::Method::GET, "/api/v1/search", &cookie, None).await;
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
    let out = with_cookie(
        &t,
        reqwest::Method::DELETE,
        "/api/v1/session",
        &cookie,
        None,
    )
    .await;
    assert_eq!(out.status(), 403);
    let out = with_cookie(
        &t,
        reqwest::Method::DELETE,
        "/api/v1/session",
        &cookie,
        Some(&csrf),
    )
    .await;
    assert_eq!(out.status(), 204);
    assert!(
        out.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let after = with_cookie(&t, reqwest::Method::GET, "/api/v1/search", &cookie, None).await;
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
    let r = with_cookie(&t, reqwest::Method::GET, "/api/v1/session", &cookie, None).await;
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
