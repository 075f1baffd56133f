//! The WASM filter sandbox through the real server: hostile components
//! (memory, CPU, traps, huge output) become dead letters without hurting
//! other tenants; tenants cannot see or use each other's filters; uploads
//! are checked against the world; the pool gives idle slots back; the
//! command line uploads, lists and deletes.

use crate::common::*;
use crate::filters::{config, post_text, upload_ok};
use serde_json::Value;

/// Each hostile mode: the batch becomes dead letters with a reason naming
/// the limit, the instance is replaced, and tenant b's traffic is unharmed.
#[tokio::test]
async fn hostile_filters_become_dead_letters_without_hurting_other_tenants() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestGateway::start(config(dir.path())).await;
    upload_ok(&t, A_ADMIN, "hostile", "hostile").await;
    upload_ok(&t, B_ADMIN, "keep", "keep").await;

    // Tenant b sends all along.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let b_traffic = {
        let (client, url, stop) = (t.client.clone(), t.url.clone(), stop.clone());
        tokio::spawn(async move {
            let (mut ok, mut failed) = (0u64, 0u64);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = client
                    .post(format!("{url}/b/keep"))
                    .bearer_auth(B_INGEST)
                    .header("content-type", "application/x-ndjson")
                    .body("{\"message\":\"b is fine\"}\n".repeat(50))
                    .send()
                    .await
                    .unwrap();
                if r.status() == 200 {
                    ok += 1;
                } else {
                    failed += 1;
                }
            }
            (ok, failed)
        })
    };

    let modes = [
        ("alloc", "memory cap"),
        ("loop", "CPU deadline"),
        ("panic", "hostile guest panics on purpose"),
        ("huge", "output too large"),
        ("wrong-count", "malformed output"),
        ("host-loop", "CPU deadline"),
    ];
    for (i, (mode, reason)) in modes.iter().enumerate() {
        let (status, answer) =
            post_text(&t, "/hostile", A_INGEST, format!("{mode}\nsecond line\n")).await;
        assert_eq!(status, 200, "{mode}: {answer}");
        assert_eq!(answer["dead_lettered"], 2, "{mode}: {answer}");
        let why = answer["errors"][0]["reason"].as_str().unwrap();
        assert!(
            why.contains("filter `hostile`") && why.contains(reason),
            "{mode}: {why}"
        );
        // A fresh instance serves the next batch.
        let (status, answer) = post_text(&t, "/hostile", A_INGEST, format!("fine {i}\n")).await;
        assert_eq!(status, 200, "{answer}");
        assert!(answer.get("dead_lettered").is_none(), "{mode}: {answer}");
        let body = t
            .search_until(A_ADMIN, &[("q", &format!("message:\"fine {i}\""))], 1)
            .await;
        assert_eq!(
            body["hits"][0]["fields"]["batches"], 1,
            "{mode}: instance not recycled"
        );
    }
    // The dead letters are stored and searchable, with the raw line and the filter's name.
    let body = t
        .search_until(
            A_ADMIN,
            &[("q", "outcome:dead_letter AND message:\"second line\"")],
            modes.len() as u64,
        )
        .await;
    assert_eq!(body["hits"][0]["fields"]["filter"], "hostile");
    t.search_until(
        A_ADMIN,
        &[("q", "outcome:dead_letter AND message:panic")],
        1,
    )
    .await;

    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ok, failed) = b_traffic.await.unwrap();
    assert_eq!(failed, 0);
    assert!(ok > 0);
    let m = t.metrics().await;
    for kind in ["memory", "cpu", "trap", "output"] {
        assert!(
            m.contains(&format!(
                "logway_filter_failures_total{{tenant=\"a\",filter=\"hostile\",reason=\"{kind}\"}}"
            )),
            "{kind}: {m}"
        );
    }
    assert!(
        metric_sum(&m, "logway_filter_host_calls_ignored_total{tenant=\"a\"") > 0.0,
        "{m}"
    );
    // The API shows the failures and the last one.
    let r: Value = t.get_json("/api/v1/filters/hostile", A_ADMIN).await;
    assert_eq!(r["stats"]["failures"], modes.len());
    assert!(
        r["stats"]["last_error"]["reason"]
            .as_str()
            .unwrap()
            .contains("CPU deadline"),
        "{r}"
    );
    t.stop().await;
}

#[tokio::test]
async fn tenants_cannot_see_use_or_delete_each_others_filters() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestGateway::start(config(dir.path())).await;
    upload_ok(&t, A_ADMIN, "apache-error", "apache-error").await;
    let get = |key: &'static str, path: &str| {
        t.client
            .get(format!("{}{path}", t.url))
            .bearer_auth(key)
            .send()
    };
    let list: Value = get(B_ADMIN, "/api/v1/filters")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["filters"], serde_json::json!([]));
    assert_eq!(
        get(B_ADMIN, "/api/v1/filters/apache-error")
            .await
            .unwrap()
            .status(),
        404
    );
    let r = t
        .client
        .delete(format!("{}/api/v1/filters/apache-error?force=true", t.url))
        .bearer_auth(B_ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // Ingest keys do not administer filters.
    assert_eq!(
        get(A_INGEST, "/api/v1/filters").await.unwrap().status(),
        403
    );
    // b's route naming `apache-error` does not reach a's filter: dead letters.
    let (status, answer) = post_text(
        &t,
        "/b/apache",
        B_INGEST,
        "[Sun Dec 04 04:47:44 2005] [notice] hi\n".into(),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["dead_lettered"], 1);
    assert!(
        answer["errors"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("not uploaded"),
        "{answer}"
    );
    let list: Value = get(A_ADMIN, "/api/v1/filters")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["filters"][0]["name"], "apache-error");
    assert_eq!(list["filters"][0]["stats"]["batches"], 0);
    // a may not delete a filter its route uses, unless forced.
    let del = |q: &'static str| {
        t.client
            .delete(format!("{}/api/v1/filters/apache-error{q}", t.url))
            .bearer_auth(A_ADMIN)
            .send()
    };
    let r = del("").await.unwrap();
    assert_eq!(r.status(), 409);
    assert!(r.text().await.unwrap().contains("/apache"));
    assert_eq!(del("?force=true").await.unwrap().status(), 204);
    assert_eq!(
        get(A_ADMIN, "/api/v1/filters/apache-error")
            .await
            .unwrap()
            .status(),
        404
    );
    t.stop().await;
}

#[tokio::test]
async fn uploads_are_checked_against_the_world() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.filters.max_upload_bytes = 8 * 1024 * 1024;
    let t = TestGateway::start(c).await;
    let cases: [(&str, Vec<u8>, u16, &str); 4] = [
        ("text", b"hello".to_vec(), 400, "not a WebAssembly binary"),
        (
            "core-module",
            b"\0asm\x01\0\0\0".to_vec(),
            400,
            "not a valid WebAssembly component",
        ),
        (
            "empty-component",
            b"\0asm\x0d\0\x01\0".to_vec(),
            400,
            "does not export",
        ),
        (
            "too-big",
            vec![0u8; 9 * 1024 * 1024],
            413,
            "filters.max_upload_bytes",
        ),
    ];
    for (name, bytes, status, message) in cases {
        let (got, body) = upload_filter(&t, A_ADMIN, name, bytes).await;
        assert_eq!(got, status, "{name}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains(message)
                || body.to_string().contains(message),
            "{name}: {body}"
        );
    }
    let (got, body) = upload_filter(&t, A_ADMIN, "Bad Name", filter_wasm("keep")).await;
    assert_eq!(got, 400, "{body}");
    t.stop().await;
}

#[tokio::test]
async fn the_command_line_tests_uploads_lists_and_deletes_filters() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("apache.wasm");
    std::fs::write(&wasm, filter_wasm("apache-error")).unwrap();
    let logway = env!("CARGO_BIN_EXE_logway");

    // `filter test`: no server, one verdict per line.
    let mut child = std::process::Command::new(logway)
        .args(["filter", "test"])
        .arg(&wasm)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(b"[Sun Dec 04 04:47:44 2005] [error] mod_jk child init 1 -2\nnot apache\n")
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["line"], 1);
    assert_eq!(lines[0]["verdict"], "edits");
    let edits = lines[0]["edits"].as_array().unwrap();
    assert!(
        edits.contains(&serde_json::json!({"set": "level", "value": "error"})),
        "{edits:?}"
    );
    assert!(
        lines[1]["edits"].to_string().contains("parse_error"),
        "{}",
        lines[1]
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("2 events"));

    // upload / list / delete against a running gateway.
    let t = TestGateway::start(config(dir.path())).await;
    let url = t.url.clone();
    let run = move |args: Vec<String>| {
        let url = url.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                std::process::Command::new(logway)
                    .arg("filter")
                    .args(&args)
                    .args(["--url", &url, "--key", A_ADMIN])
                    .output()
                    .unwrap()
            })
            .await
            .unwrap()
        }
    };
    let wasm_arg = wasm.display().to_string();
    let out = run(vec!["upload".into(), "apache-error".into(), wasm_arg]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(meta["version"], 1);
    let out = run(vec!["list".into()]).await;
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list["filters"][0]["name"], "apache-error");
    let out = run(vec!["delete".into(), "apache-error".into()]).await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("409"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(vec![
        "delete".into(),
        "apache-error".into(),
        "--force".into(),
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    t.stop().await;
}

/// With room for only two instances, a third filter still runs: idle
/// instances of the others give their slots back.
#[tokio::test]
async fn idle_instances_give_back_their_slots_when_the_pool_is_full() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.filters.max_instances = 2;
    let t = TestGateway::start(c).await;
    upload_ok(&t, A_ADMIN, "apache-error", "apache-error").await;
    upload_ok(&t, A_ADMIN, "hostile", "hostile").await;
    upload_ok(&t, A_ADMIN, "swap", "keep").await;
    for round in 0..2 {
        for path in ["/apache", "/hostile", "/swap"] {
            let (status, answer) =
                post_text(&t, path, A_INGEST, format!("slot check {round}\n")).await;
            assert_eq!(status, 200, "{path}: {answer}");
            assert!(answer.get("dead_lettered").is_none(), "{path}: {answer}");
        }
    }
    t.stop().await;
}
