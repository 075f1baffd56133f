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
    let mut child = Command::new(BIN)
        .args(["serve", "--http-addr", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let url = read_url(&mut child);
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
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(child.wait().unwrap().success());
}

fn read_url(child: &mut std::process::Child) -> String {
    use std::io::{BufRead, BufReader};
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(i) = line.find("addr=") {
            let addr: String = line[i + 5..]
                .chars()
                .take_while(|c| !c.is_whitespace())
                .collect();
            // Keep draining so the child never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
            return format!("http://{addr}");
        }
    }
    panic!("no address logged");
}
