//! The Elasticsearch API with the real clients: the Python `elasticsearch`
//! 9.x client and Debian's 7.17, node's `@elastic/elasticsearch` 8.x,
//! rsyslog's `omelasticsearch` and syslog-ng's `elasticsearch-http()`
//! (installed by `./test.sh`; scripts in `tests/clients/`).

use std::process::Command;

use serde_json::json;

use crate::common::*;
use crate::elastic::{es_config, es_url, python9};

/// `helpers.bulk` twice with the same `_id`s stores them once; a `create`
/// of a stored id is a 409 the client reports; ECS fields are promoted.
#[tokio::test]
async fn python_client_9_bulk_stores_each_id_once() {
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(es_config(dir.path(), "")).await;
    let out = run_client(python9(&[&es_url(&gw), A_INGEST, "bulk"])).await;
    assert_eq!(out["first"], 5, "{out}");
    assert_eq!(out["again"], 5, "a resend succeeds (as noop): {out}");
    let errors = out["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{out}");
    assert_eq!(errors[0]["create"]["status"], 409);
    assert_eq!(
        errors[0]["create"]["error"]["type"],
        "version_conflict_engine_exception"
    );
    assert_eq!(out["single"]["result"], "created");
    let body = gw
        .search_until(A_ADMIN, &[("q", "type:app_logs"), ("limit", "20")], 6)
        .await;
    let traced = gw
        .search_until(A_ADMIN, &[("q", "request_id:trace-py9")], 5)
        .await;
    let e = traced["hits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == "py9-3")
        .unwrap_or_else(|| panic!("py9-3 by its _id: {traced}"));
    assert_eq!(e["level"], "warn");
    assert_eq!(e["service"], "cart");
    assert_eq!(e["host"], "web-1");
    assert_eq!(e["timestamp"], "2026-11-30T10:00:03Z");
    assert_eq!(e["message"], "py9 hello 3");
    assert_eq!(e["fields"], json!({"user": {"id": 3}}));
    assert!(body.to_string().contains("py9 new"));
    let single = gw.search_until(A_ADMIN, &[("q", "type:web-logs")], 1).await;
    assert_eq!(single["hits"][0]["host"], "h1");
    assert_eq!(single["hits"][0]["id"], out["single"]["_id"]);
    gw.stop().await;
}

/// Debian's python3-elasticsearch 7.17 checks `GET /` before it sends;
/// rsyslog's omelasticsearch has no path setting. Both use the API's
/// listener of its own, at its root.
#[tokio::test]
async fn python_client_7_and_rsyslog_use_the_api_listener() {
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(es_config(dir.path(), "")).await;
    let es = gw.gateway.elastic_addr().expect("the API's own listener");
    let mut py7 = Command::new("/usr/bin/python3");
    py7.arg(client_script("es_py7.py"))
        .arg(format!("http://{es}"))
        .arg(A_INGEST);
    let out = run_client(py7).await;
    assert_eq!(out["ok"], 3, "{out}");
    assert_eq!(out["version"], "8.15.3", "the configured version");
    let body = gw.search_until(A_ADMIN, &[("q", "type:py7-logs")], 3).await;
    assert_eq!(body["hits"][0]["level"], "info");

    let in_port = free_port();
    let work = dir.path().join("rsyslog");
    let _rsyslog = spawn_rsyslog(
        &work,
        in_port,
        &format!(
            r#"module(load="imtcp")
module(load="omelasticsearch")
template(name="ecs" type="list" option.jsonf="on") {{
  property(outname="@timestamp" name="timereported" dateFormat="rfc3339" format="jsonf")
  property(outname="host.name" name="hostname" format="jsonf")
  property(outname="service.name" name="programname" format="jsonf")
  property(outname="log.level" name="syslogseverity-text" format="jsonf")
  property(outname="message" name="msg" format="jsonf")
}}
input(type="imtcp" port="{in_port}" ruleset="es")
ruleset(name="es") {{ action(type="omelasticsearch" server="127.0.0.1" serverport="{port}" searchIndex="rsyslog-2026.11.30" template="ecs" bulkmode="on" uid="a" pwd="{key}" errorfile="{w}/errors.json") }}
"#,
            w = work.display(),
            port = es.port(),
            key = A_INGEST,
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
                "invoice 77 via omelasticsearch",
            ],
        )
    })
    .await
    .unwrap();
    let body = gw.search_until(A_ADMIN, &[("q", "type:rsyslog")], 1).await;
    let e = &body["hits"][0];
    assert_eq!(e["service"], "billing");
    assert_eq!(e["level"], "warning");
    assert!(e["message"].as_str().unwrap().contains("invoice 77"), "{e}");
    assert!(!work.join("errors.json").exists(), "rsyslog saw an error");
    gw.stop().await;
}

/// syslog-ng's `elasticsearch-http()` (unpacked by `./test.sh` into a
/// private prefix: it conflicts with rsyslog as a package) posts its
/// rfc5424-scope JSON to `/es/_bulk`; an index pattern sends it to a route
/// whose `fields` map syslog-ng's names to the promoted fields.
#[tokio::test]
async fn syslog_ng_elasticsearch_http_destination() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"
[[tenants]]
name = "a"
ingest_keys = ["{A_INGEST}"]
admin_keys = ["{A_ADMIN}"]
routes = [{{ path = "/syslog-ng", type = "syslog_ng", fields = {{ message = ["MESSAGE"], level = ["PRIORITY"], service = ["PROGRAM"], host = ["HOST"] }} }}]
indices = [{{ pattern = "syslog-ng-*", route = "/syslog-ng" }}]
"#
    );
    let gw = TestGateway::start(config_with(&dir.path().join("data"), &text)).await;
    let prefix = test_clients().join("syslog-ng");
    let modules = std::fs::read_dir(prefix.join("usr/lib/syslog-ng"))
        .expect("syslog-ng unpacked by ./test.sh")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.join("libhttp.so").exists())
        .expect("syslog-ng's http module");
    let in_port = free_port();
    let work = dir.path().join("syslog-ng");
    std::fs::create_dir_all(&work).unwrap();
    let conf = work.join("syslog-ng.conf");
    std::fs::write(
        &conf,
        format!(
            r#"@version: 3.38
@include "{scl}"
source s_tcp {{ network(ip(127.0.0.1) port({in_port}) transport(tcp)); }};
destination d_logway {{ elasticsearch-http(url("{url}/es/_bulk") index("syslog-ng-2026.11.30") type("") user("a") password("{A_INGEST}") batch_timeout(100)); }};
log {{ source(s_tcp); destination(d_logway); }};
"#,
            scl = prefix
                .join("usr/share/syslog-ng/include/scl/elasticsearch/elastic-http.conf")
                .display(),
            url = gw.url,
        ),
    )
    .unwrap();
    let _syslog_ng = Killed(
        Command::new(prefix.join("usr/sbin/syslog-ng"))
            .env("LD_LIBRARY_PATH", prefix.join("usr/lib/syslog-ng"))
            .arg(format!("--module-path={}", modules.display()))
            .args(["-F", "-f"])
            .arg(&conf)
            .arg("-R")
            .arg(work.join("persist"))
            .arg("-c")
            .arg(work.join("ctl"))
            .arg("-p")
            .arg(work.join("pid"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("syslog-ng starts"),
    );
    wait_port(in_port).await;
    tokio::task::spawn_blocking(move || {
        logger(
            in_port,
            &[
                "--rfc3164",
                "-t",
                "shipping",
                "-p",
                "local0.err",
                "parcel 9 via syslog-ng",
            ],
        )
    })
    .await
    .unwrap();
    let body = gw
        .search_until(A_ADMIN, &[("q", "type:syslog_ng")], 1)
        .await;
    let e = &body["hits"][0];
    assert_eq!(e["message"], "parcel 9 via syslog-ng", "{e}");
    assert_eq!(e["service"], "shipping");
    assert_eq!(e["level"], "err");
    gw.stop().await;
}

/// node's client checks `X-Elastic-Product` on every answer; its bulk
/// helper writes `create` actions to a data stream.
#[tokio::test]
async fn node_client_8_bulk_helper_writes_a_data_stream() {
    let dir = tempfile::tempdir().unwrap();
    let gw = TestGateway::start(es_config(dir.path(), "")).await;
    let mut node = Command::new("node");
    node.env("NODE_PATH", test_clients().join("node/node_modules"))
        .arg(client_script("es_node8.js"))
        .arg(es_url(&gw))
        .arg(A_INGEST);
    let out = run_client(node).await;
    assert_eq!(out["successful"], 3, "{out}");
    assert_eq!(out["failed"], 0, "{out}");
    // logs-node.app-default: the data stream's dataset is the type.
    let body = gw
        .search_until(A_ADMIN, &[("q", "type:node_app AND service:checkout")], 3)
        .await;
    assert_eq!(body["hits"][0]["level"], "error");
    gw.stop().await;
}
