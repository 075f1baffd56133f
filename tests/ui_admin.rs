//! The UI's saved searches and admin pages through the real server: saved
//! searches across a restart, the filter test, the ingest overview and
//! the config page without keys.

use crate::common::*;
use serde_json::{Value, json};

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
    let (_, list) = t.get_status("/api/v1/saved", A_ADMIN, &[]).await;
    assert_eq!(list["saved"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["saved"][0]["name"], "checkout errors");
    assert_eq!(list["saved"][0]["columns"], json!(["user.id"]));
    let (_, other) = t.get_status("/api/v1/saved", B_ADMIN, &[]).await;
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
    let (_, list) = t.get_status("/api/v1/saved", A_ADMIN, &[]).await;
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
    let (status, _) = t
        .get_status("/api/v1/search", A_ADMIN, &[("q", "jane")])
        .await;
    assert_eq!(status, 200);
    let missing = t
        .post("/api/v1/filters/nope/test", A_ADMIN)
        .body("{}\n")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let (_, none) = t
        .get_status("/api/v1/search", A_ADMIN, &[("q", "jane")])
        .await;
    assert_eq!(none["total"], 0, "a filter test stores nothing");

    t.post_lines(
        "/web",
        A_INGEST,
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
    let (status, o) = t.get_status("/api/v1/overview", A_ADMIN, &[]).await;
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
    let (_, o) = t.get_status("/api/v1/overview", B_ADMIN, &[]).await;
    assert!(
        !o.to_string().contains("web_logs"),
        "b sees only its own types: {o}"
    );

    let (status, c) = t.get_status("/api/v1/config", A_ADMIN, &[]).await;
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
