//! The `logway` command line: `serve` with embedded defaults, a bad config,
//! and `logway search` against a running gateway.

mod common;

use std::process::Command;

use common::*;

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
