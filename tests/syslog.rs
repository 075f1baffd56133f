//! TCP syslog with a real client (util-linux `logger`) and raw sockets:
//! RFC 5424 with octet counting, RFC 3164 with newline framing, garbage and
//! oversize frames that do not stop the connection.

use std::io::Write;

use crate::common::*;

fn syslog_gateway_config(dir: &std::path::Path) -> logway::Config {
    two_tenant_config(
        dir,
        "[[syslog]]\naddr = \"127.0.0.1:0\"\ntenant = \"a\"\ntype = \"syslog\"\nunauthenticated = true\nmax_message_bytes = 1024\n",
    )
}

#[tokio::test]
async fn logger_messages_are_parsed_into_the_event_model() {
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(syslog_gateway_config(dir.path())).await;
    let port = gw.gateway.syslog_addrs()[0].port();
    tokio::task::spawn_blocking(move || {
        logger(
            port,
            &[
                "--rfc5424",
                "--octet-count",
                "-t",
                "checkout",
                "--id=4242",
                "--msgid",
                "PAY1",
                "-p",
                "local4.err",
                "--sd-id",
                "order@32473",
                "--sd-param",
                "amount=\"12.50\"",
                "payment failed for order 991",
            ],
        );
        logger(
            port,
            &[
                "--rfc3164",
                "-t",
                "sshd",
                "-p",
                "auth.info",
                "Invalid user webmaster from 173.234.31.186",
            ],
        );
    })
    .await
    .unwrap();
    let body = gw
        .search_until(
            A_ADMIN,
            &[("q", "\"payment failed\""), ("type", "syslog")],
            1,
        )
        .await;
    let e = &body["hits"][0];
    assert_eq!(e["service"], "checkout");
    assert_eq!(e["level"], "err");
    assert_eq!(e["fields"]["procid"], 4242);
    assert_eq!(e["fields"]["msgid"], "PAY1");
    assert_eq!(e["fields"]["facility"], "local4");
    assert_eq!(e["fields"]["sd"]["order@32473"]["amount"], "12.50");
    assert!(e["host"].is_string());
    let body = gw
        .search_until(A_ADMIN, &[("q", "service:sshd AND webmaster")], 1)
        .await;
    let e = &body["hits"][0];
    assert_eq!(e["level"], "info");
    assert_eq!(e["fields"]["facility"], "auth");
    assert_eq!(e["message"], "Invalid user webmaster from 173.234.31.186");
    gw.stop().await;
}

#[tokio::test]
async fn garbage_and_oversize_frames_are_rejected_and_the_connection_continues() {
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(syslog_gateway_config(dir.path())).await;
    let addr = gw.gateway.syslog_addrs()[0];
    tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(b"\xff\xfe\x00\x01 binary junk\n").unwrap();
        s.write_all(format!("<13>{}\n", "x".repeat(5000)).as_bytes())
            .unwrap();
        s.write_all(b"<13>Nov 21 10:00:00 host1 app: still here after garbage\n")
            .unwrap();
        s.write_all(b"40 <13>Nov 21 10:00:00 host1 app: framed ok")
            .unwrap();
        s.write_all(b"<13>Nov 21 10:00:00 host1 app: last line without a newline")
            .unwrap();
    })
    .await
    .unwrap();
    gw.search_until(A_ADMIN, &[("q", "\"still here after garbage\"")], 1)
        .await;
    gw.search_until(A_ADMIN, &[("q", "\"framed ok\"")], 1).await;
    gw.search_until(A_ADMIN, &[("q", "\"last line without a newline\"")], 1)
        .await;
    let rejected = gw
        .search_until(A_ADMIN, &[("q", "outcome:rejected"), ("type", "syslog")], 2)
        .await;
    let reasons: Vec<&str> = rejected["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("not UTF-8")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("max_message_bytes")),
        "{reasons:?}"
    );
    gw.stop().await;
}

/// rsyslog (Debian package) started by the test: it takes lines on its own
/// TCP input and forwards them to Logway with `omfwd`, octet-counted
/// RFC 5424, as a real relay would.
#[tokio::test]
async fn rsyslog_forwards_to_logway_with_omfwd() {
    let rsyslogd = std::path::Path::new("/usr/sbin/rsyslogd");
    assert!(
        rsyslogd.exists(),
        "rsyslogd is missing: apt-get install rsyslog (.ci/run does)"
    );
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(syslog_gateway_config(&dir.path().join("data"))).await;
    let logway_port = gw.gateway.syslog_addrs()[0].port();
    let in_port = free_port();
    // Killed on drop, so a failing assertion does not leave it running.
    let _rsyslog = spawn_rsyslog(
        &dir.path().join("rsyslog"),
        in_port,
        &format!(
            "module(load=\"imtcp\")\ninput(type=\"imtcp\" port=\"{in_port}\" ruleset=\"fwd\")\nruleset(name=\"fwd\") {{ action(type=\"omfwd\" target=\"127.0.0.1\" port=\"{logway_port}\" protocol=\"tcp\" TCP_Framing=\"octet-counted\" template=\"RSYSLOG_SyslogProtocol23Format\") }}\n"
        ),
    )
    .await;
    tokio::task::spawn_blocking(move || {
        logger(
            in_port,
            &[
                "--rfc3164",
                "-t",
                "billing",
                "-p",
                "local0.warning",
                "invoice 77 relayed by rsyslog",
            ],
        );
    })
    .await
    .unwrap();
    let body = gw
        .search_until(A_ADMIN, &[("q", "\"relayed by rsyslog\"")], 1)
        .await;
    let e = &body["hits"][0];
    assert_eq!(e["service"], "billing");
    assert_eq!(e["level"], "warning");
    assert_eq!(e["fields"]["facility"], "local0");
    gw.stop().await;
}

/// A listener's filter chain, on Loghub's OpenSSH lines over TCP syslog:
/// sent before the filter is uploaded they are kept as dead letters (not
/// lost); after, `openssh` adds the user and source address to the events
/// the listener parsed. A frame that is not UTF-8 is still rejected.
#[tokio::test]
async fn a_listener_runs_its_filter_chain_on_openssh_lines() {
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(two_tenant_config(
        dir.path(),
        "[[syslog]]\naddr = \"127.0.0.1:0\"\ntenant = \"a\"\ntype = \"sshd\"\nunauthenticated = true\nfilters = [{ name = \"openssh\" }]\n\
         [[beats]]\naddr = \"127.0.0.1:0\"\ntenant = \"a\"\ntype = \"sshd\"\nunauthenticated = true\nfilters = [{ name = \"openssh\" }]\n",
    ))
    .await;
    let addr = gw.gateway.syslog_addrs()[0];
    let log = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/loghub/OpenSSH/OpenSSH_2k.log"
    ))
    .unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 2000);
    // No `openssh` uploaded yet: the chain cannot run, nothing is lost.
    let first_ten: String = lines[..10].iter().map(|l| format!("{l}\n")).collect();
    tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(first_ten.as_bytes()).unwrap();
    })
    .await
    .unwrap();
    let dead = gw
        .search_until(A_ADMIN, &[("q", "type:sshd AND outcome:dead_letter")], 10)
        .await;
    let first = &dead["hits"][0];
    assert!(
        first["reason"].as_str().unwrap().contains("openssh"),
        "{first}"
    );

    let (status, body) = upload_filter(&gw, A_ADMIN, "openssh", filter_wasm("openssh")).await;
    assert_eq!(status, 201, "{body}");
    // Every listener naming it, by kind and configured address.
    assert_eq!(
        body["used_by"],
        serde_json::json!(["beats:127.0.0.1:0", "syslog:127.0.0.1:0"])
    );
    let mut bytes: Vec<u8> = lines
        .iter()
        .flat_map(|l| format!("{l}\n").into_bytes())
        .collect();
    bytes.extend_from_slice(b"\xff\xfe not text\n");
    tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(&bytes).unwrap();
    })
    .await
    .unwrap();
    gw.search_until(
        A_ADMIN,
        &[("q", "type:sshd AND NOT outcome:*"), ("limit", "1")],
        2000,
    )
    .await;
    // "Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186",
    // and the same user from the same address 3 more times in the log.
    let hits = gw
        .search_until(
            A_ADMIN,
            &[("q", "user:webmaster AND source_ip:\"173.234.31.186\"")],
            4,
        )
        .await;
    let e = hits["hits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["fields"]["procid"] == 24200 && e["fields"]["source_port"].is_null())
        .unwrap_or_else(|| panic!("{hits}"));
    assert_eq!(e["host"], "LabSZ", "{e}");
    assert_eq!(e["service"], "sshd", "{e}");
    assert_eq!(
        e["message"], "Invalid user webmaster from 173.234.31.186",
        "{e}"
    );
    let (status, with_user) = gw
        .search_raw(
            A_ADMIN,
            &[("q", "type:sshd AND fields.user:*"), ("limit", "1")],
        )
        .await;
    assert_eq!(status, 200, "{with_user}");
    assert!(with_user["total"].as_u64().unwrap() > 500, "{with_user}");
    let rejected = gw
        .search_until(A_ADMIN, &[("q", "type:sshd AND outcome:rejected")], 1)
        .await;
    assert!(
        rejected["hits"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("not UTF-8"),
        "{rejected}"
    );
    gw.stop().await;
}
