//! The `logway` command line: `serve` with embedded defaults, a bad config,
//! and `logway search` against a running gateway.

use std::process::Command;

use crate::common::*;

const BIN: &str = env!("CARGO_BIN_EXE_logway");

#[test]
fn a_misspelled_config_key_is_refused_and_named() {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/wrong-key.toml"
    );
    let out = Command::new(BIN)
        .args(["serve", "--config", fixture])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tenants[0]") && err.contains("routs"), "{err}");
}

#[test]
fn a_network_address_without_keys_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--http-addr", "0.0.0.0:0", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"));
}

#[tokio::test]
async fn serve_with_embedded_defaults_then_search_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    // No config file: only the address (port 0 for the test) and data dir.
    let args = [
        "serve".as_ref(),
        "--http-addr".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--data-dir".as_ref(),
        dir.path().as_os_str(),
    ];
    let mut server = spawn_binary(&args, "info", &[]);
    let url = server.url.clone();
    let client = reqwest::Client::new();
    wait_ready(&client, &url).await;
    // The default tenant needs no key on loopback.
    let r = client
        .post(format!("{url}/v1/logs/app_logs"))
        .header("content-type", "application/json")
        .body(r#"[{"message":"from the defaults","level":"warn"},{"message":"other"}]"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut found = String::new();
    for _ in 0..100 {
        let out = tokio::process::Command::new(BIN)
            .args(["search", "--url", &url, "--type", "app_logs", "level:warn"])
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        found = String::from_utf8_lossy(&out.stdout).to_string();
        if !found.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let lines: Vec<serde_json::Value> = found
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{found}");
    assert_eq!(lines[0]["message"], "from the defaults");
    assert_eq!(lines[0]["tenant"], "default");
    // A bad query is a clear error and a non-zero exit.
    let out = Command::new(BIN)
        .args(["search", "--url", &url, "level:("])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid query"));
    unsafe { libc::kill(server.child.id() as i32, libc::SIGTERM) };
    assert!(server.child.wait().unwrap().success());
}

#[tokio::test]
async fn sighup_reloads_keys_routes_and_limits_and_a_bad_file_changes_nothing() {
    const SECOND_KEY: &str = "a-second-key-0002";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logway.toml");
    let write = |tenant_extra: &str| {
        let text = format!(
            "[server]\nhttp_addr = \"127.0.0.1:0\"\n[storage]\ndata_dir = \"{}\"\n[[tenants]]\nname = \"a\"\n{tenant_extra}\n",
            dir.path().join("data").display()
        );
        std::fs::write(&path, text).unwrap();
    };
    write(&format!("ingest_keys = [\"{A_INGEST}\"]"));
    let mut server = spawn_server(&path);
    let client = reqwest::Client::new();
    wait_ready(&client, &server.url).await;
    let post = |key: &str, route: &str, events: usize| {
        client
            .post(format!("{}{route}", server.url))
            .bearer_auth(key)
            .body("line\n".repeat(events))
            .send()
    };
    assert_eq!(
        post(SECOND_KEY, "/v1/logs/x", 1).await.unwrap().status(),
        401
    );
    assert_eq!(post(A_INGEST, "/new", 1).await.unwrap().status(), 404);

    write(&format!(
        "ingest_keys = [\"{A_INGEST}\", \"{SECOND_KEY}\"]\nrate_limit = {{ events_per_sec = 10, events_burst = 10 }}\nroutes = [{{ path = \"/new\", type = \"new_logs\" }}]"
    ));
    unsafe { libc::kill(server.child.id() as i32, libc::SIGHUP) };
    let mut status = 0;
    for _ in 0..100 {
        status = post(SECOND_KEY, "/v1/logs/x", 1)
            .await
            .unwrap()
            .status()
            .as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(status, 200, "the new key works after SIGHUP");
    assert_eq!(
        post(A_INGEST, "/new", 1).await.unwrap().status(),
        200,
        "the new route works"
    );
    assert_eq!(
        post(A_INGEST, "/new", 20).await.unwrap().status(),
        413,
        "the new limit applies"
    );

    // A broken file is refused; the running config stays.
    std::fs::write(&path, "[[tenants]]\nname = \"a\"\nbogus_key = 1\n").unwrap();
    unsafe { libc::kill(server.child.id() as i32, libc::SIGHUP) };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(post(SECOND_KEY, "/new", 1).await.unwrap().status(), 200);
    unsafe { libc::kill(server.child.id() as i32, libc::SIGTERM) };
    assert!(server.child.wait().unwrap().success());
    let log = server.log.lock().unwrap();
    assert!(
        log.iter()
            .any(|l| l.contains("config reload failed") && l.contains("bogus_key")),
        "{log:?}"
    );
}
