//! Shared test harness: a real gateway on 127.0.0.1:0 over a temp dir.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod prometheus;
pub use prometheus::*;

use logway::{Config, Gateway};
use serde_json::Value;

pub const A_INGEST: &str = "a-ingest-key-0001";
pub const A_ADMIN: &str = "a-admin-key-0001";
pub const B_INGEST: &str = "b-ingest-key-0001";
pub const B_ADMIN: &str = "b-admin-key-0001";

/// A gateway on 127.0.0.1:0 over `data_dir`, committing every 100 ms;
/// `rest` (more sections, the tenants) is appended.
pub fn config_with(data_dir: &Path, rest: &str) -> Config {
    let text = format!(
        r#"
[server]
http_addr = "127.0.0.1:0"
[storage]
data_dir = "{dir}"
[hot]
commit_interval = "100ms"
{rest}"#,
        dir = data_dir.display()
    );
    Config::from_toml(&text).expect("test config is valid")
}

/// Two tenants with keys and routes; `extra` is appended (more sections).
pub fn two_tenant_config(data_dir: &Path, extra: &str) -> Config {
    let text = format!(
        r#"
{extra}
[[tenants]]
name = "a"
ingest_keys = ["{A_INGEST}"]
admin_keys = ["{A_ADMIN}"]
cors_origins = ["https://app.a.example"]
routes = [{{ path = "/mobile", type = "mobile_logs" }}, {{ path = "/web", type = "web_logs" }}]

[[tenants]]
name = "b"
ingest_keys = ["{B_INGEST}"]
admin_keys = ["{B_ADMIN}"]
routes = [{{ path = "/b/app", type = "app_logs" }}]
"#
    );
    config_with(data_dir, &text)
}

/// Two tenants for the compat protocols' tests: `acme`, and `slow`, whose
/// rate limit (1 event a second, a burst of 1) one event uses up, so the
/// next request is refused with `Retry-After`.
pub const COMPAT_TENANTS: &str = r#"
[[tenants]]
name = "acme"
ingest_keys = ["acme-ingest"]
admin_keys = ["acme-admin"]

[[tenants]]
name = "slow"
ingest_keys = ["slow-ingest"]
admin_keys = ["slow-admin"]
rate_limit = { events_per_sec = 1, events_burst = 1 }
"#;

/// A gateway with [`COMPAT_TENANTS`] and `extra` config.
pub async fn compat_gateway(dir: &Path, extra: &str) -> TestGateway {
    TestGateway::start(config_with(dir, &format!("{extra}\n{COMPAT_TENANTS}"))).await
}

pub struct TestGateway {
    pub gateway: Gateway,
    pub url: String,
    pub client: reqwest::Client,
}

impl TestGateway {
    pub async fn start(config: Config) -> TestGateway {
        let gateway = logway::start(config).await.expect("gateway starts");
        let url = format!("http://{}", gateway.http_addr());
        let client = reqwest::Client::new();
        let t = TestGateway {
            gateway,
            url,
            client,
        };
        t.wait_ready().await;
        t
    }

    pub async fn wait_ready(&self) {
        for _ in 0..500 {
            if let Ok(r) = self.client.get(format!("{}/readyz", self.url)).send().await
                && r.status() == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("gateway never became ready");
    }

    pub async fn stop(self) {
        self.gateway.shutdown().await.expect("clean shutdown");
    }

    pub fn post(&self, path: &str, key: &str) -> reqwest::RequestBuilder {
        self.client
            .post(format!("{}{path}", self.url))
            .bearer_auth(key)
    }

    /// Posts JSON values as NDJSON to `path` with `key`; the request must
    /// be accepted.
    pub async fn post_lines(&self, path: &str, key: &str, lines: &[Value]) {
        let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
        let r = self
            .post(path, key)
            .header("content-type", "application/x-ndjson")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }

    /// `GET path?query` with `key`: the status and the JSON answer (`null`
    /// when it is not JSON).
    pub async fn get_status(&self, path: &str, key: &str, query: &[(&str, &str)]) -> (u16, Value) {
        let r = self
            .client
            .get(format!("{}{path}", self.url))
            .bearer_auth(key)
            .query(query)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Runs a search; returns (status, body).
    pub async fn search_raw(&self, key: &str, params: &[(&str, &str)]) -> (u16, Value) {
        let r = self
            .client
            .get(format!("{}/api/v1/search", self.url))
            .bearer_auth(key)
            .query(params)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap())
    }

    /// Searches until `total` reaches `expected` (indexing is asynchronous,
    /// committed every 100 ms in tests), then returns the body.
    pub async fn search_until(&self, key: &str, params: &[(&str, &str)], expected: u64) -> Value {
        let mut last = Value::Null;
        for _ in 0..300 {
            let (status, body) = self.search_raw(key, params).await;
            assert_eq!(status, 200, "{body}");
            if body["total"].as_u64() == Some(expected) {
                return body;
            }
            last = body;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("search {params:?} never reached {expected} hits; last answer: {last}");
    }

    /// Sum of a histogram's buckets for `q`, as `key` sees it.
    pub async fn histogram_total(&self, key: &str, q: &str) -> u64 {
        let r = self
            .client
            .get(format!("{}/api/v1/histogram", self.url))
            .bearer_auth(key)
            .query(&[("q", q)])
            .send()
            .await
            .unwrap();
        let h: Value = r.json().await.unwrap();
        h["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["count"].as_u64().unwrap())
            .sum()
    }

    /// `GET path` with `key`; the JSON answer.
    pub async fn get_json(&self, path: &str, key: &str) -> Value {
        self.client
            .get(format!("{}{path}", self.url))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Waits until the archive has uploaded at least `n` events.
    pub async fn wait_archived(&self, n: u64) {
        let start = std::time::Instant::now();
        loop {
            let m = self.metrics().await;
            let archived = metric_sum(&m, "logway_archive_events_total{");
            if archived as u64 >= n {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "archived {archived} of {n}\n{m}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn metrics(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

/// Sum of the samples of every series whose line starts with `prefix`.
pub fn metric_sum(metrics: &str, prefix: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Writes `body` gzip-compressed.
pub fn gzip(body: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(body).unwrap();
    e.finish().unwrap()
}

/// The real binary as a child process; its address is read from its log.
/// Dropping it (also when a test panics) kills and reaps the process, so
/// no server outlives its test.
pub struct Server {
    pub child: Child,
    pub url: String,
    /// Every line the server logged.
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        // Already exited and reaped (a test stopped it): both are no-ops.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn spawn_server(config: &Path) -> Server {
    spawn_server_logging(config, "info")
}

pub fn spawn_server_logging(config: &Path, rust_log: &str) -> Server {
    spawn_server_with(config, rust_log, &[])
}

/// Starts `logway serve --config <config>` with extra environment variables.
pub fn spawn_server_with(config: &Path, rust_log: &str, env: &[(&str, &str)]) -> Server {
    let args = [
        std::ffi::OsStr::new("serve"),
        "--config".as_ref(),
        config.as_os_str(),
    ];
    spawn_binary(&args, rust_log, env)
}

/// Starts the binary with these arguments; its address is read from its log.
pub fn spawn_binary(args: &[&std::ffi::OsStr], rust_log: &str, env: &[(&str, &str)]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_logway"))
        .envs(env.iter().copied())
        .args(args)
        .env("RUST_LOG", rust_log)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("logway binary starts");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = log.clone();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            sink.lock().unwrap().push(line.clone());
            if let Some(i) = line.find("addr=")
                && let Some(tx) = tx.take()
            {
                let addr: String = line[i + 5..]
                    .chars()
                    .take_while(|c| !c.is_whitespace())
                    .collect();
                let _ = tx.send(addr);
            }
            if line.contains("panicked") {
                eprintln!("server: {line}");
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("server logs its address");
    Server {
        child,
        url: format!("http://{addr}"),
        log,
    }
}

pub async fn wait_ready(client: &reqwest::Client, url: &str) {
    for _ in 0..1000 {
        if let Ok(r) = client.get(format!("{url}/readyz")).send().await
            && r.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("server at {url} never became ready");
}

/// The packages of the example filters in `filters/`.
pub const FILTER_PACKAGES: &[&str] = &[
    "filter-keep",
    "filter-hostile",
    "filter-apache-error",
    "filter-openssh",
    "filter-redact",
    "filter-user-agent",
    "filter-sample",
];

/// The component of an example filter (`"keep"`, `"apache-error"`, ...),
/// built from `filters/` for wasm32-wasip2 once per test process, into a
/// target directory next to the tests' own (so the build lock is not shared).
pub fn filter_wasm(name: &str) -> Vec<u8> {
    static BUILT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let exe = std::env::current_exe().expect("test binary path");
        // <target>/<profile>/deps/<test binary>
        let target = exe
            .ancestors()
            .nth(3)
            .expect("test binary sits in <target>/<profile>/deps")
            .join("filters-wasm");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .args(["build", "--locked", "--release", "--target", "wasm32-wasip2"])
            .env("CARGO_TARGET_DIR", &target)
            // Small components: no debug info in the uploads.
            .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
            .env("CARGO_PROFILE_RELEASE_STRIP", "true");
        for p in FILTER_PACKAGES {
            cmd.args(["-p", p]);
        }
        let status = cmd.status().expect("cargo runs");
        assert!(
            status.success(),
            "building the example filters failed (is the target installed? `rustup target add wasm32-wasip2`)"
        );
        target.join("wasm32-wasip2/release")
    });
    let file = dir.join(format!("filter_{}.wasm", name.replace('-', "_")));
    std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// Uploads a component as tenant `admin_key`'s filter `name`; returns the answer.
pub async fn upload_filter(
    t: &TestGateway,
    admin_key: &str,
    name: &str,
    wasm: Vec<u8>,
) -> (u16, Value) {
    let r = t
        .client
        .put(format!("{}/api/v1/filters/{name}", t.url))
        .bearer_auth(admin_key)
        .body(wasm)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Credentials the test S3 server checks (it verifies request signatures).
pub const S3_ACCESS_KEY: &str = "logway-test-access";
pub const S3_SECRET_KEY: &str = "logway-test-secret-key-0001";
pub const S3_BUCKET: &str = "logway-archive";

/// A real S3-protocol server (s3s-fs: a directory served over S3, with
/// SigV4 checks) on 127.0.0.1, in this process. `stop` drops the listener
/// and every connection, for outage tests; `start_at` brings it back on the
/// same port.
pub struct S3Server {
    pub addr: std::net::SocketAddr,
    pub root: std::path::PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl S3Server {
    pub async fn start(root: &Path) -> S3Server {
        Self::start_at(root, "127.0.0.1:0".parse().unwrap()).await
    }

    pub async fn start_at(root: &Path, addr: std::net::SocketAddr) -> S3Server {
        use hyper_util::rt::{TokioExecutor, TokioIo};
        std::fs::create_dir_all(root.join(S3_BUCKET)).unwrap();
        let fs = s3s_fs::FileSystem::new(root).unwrap();
        let mut builder = s3s::service::S3ServiceBuilder::new(fs);
        builder.set_auth(s3s::auth::SimpleAuth::from_single(
            S3_ACCESS_KEY,
            S3_SECRET_KEY,
        ));
        let service = builder.build();
        let mut listener = None;
        for _ in 0..100 {
            match tokio::net::TcpListener::bind(addr).await {
                Ok(l) => {
                    listener = Some(l);
                    break;
                }
                // The port of a server just stopped may linger briefly.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        let listener = listener.expect("S3 test server binds");
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let http = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((socket, _)) = listener.accept().await {
                let conn = http
                    .serve_connection(TokioIo::new(socket), service.clone())
                    .into_owned();
                conns.spawn(async move {
                    let _ = conn.await;
                });
            }
        });
        S3Server {
            addr,
            root: root.to_path_buf(),
            task,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops serving: the listener and open connections are dropped.
    pub async fn stop(self) -> std::net::SocketAddr {
        self.task.abort();
        let _ = self.task.await;
        self.addr
    }

    /// The `[archive.s3]` section that points at this server.
    pub fn archive_toml(&self) -> String {
        format!(
            "[archive.s3]\nbucket = \"{S3_BUCKET}\"\nendpoint_url = \"{}\"\nforce_path_style = true\naccess_key_id = \"{S3_ACCESS_KEY}\"\nsecret_access_key = \"{S3_SECRET_KEY}\"\n",
            self.endpoint()
        )
    }

    pub fn s3_config(&self) -> logway::config::S3Config {
        let text = self.archive_toml().replace("[archive.s3]\n", "");
        toml::from_str(&text).expect("valid S3 config")
    }
}

/// Where `./test.sh` installed the PyPI and npm clients the compat tests
/// drive: `$TEST_CLIENTS_DIR`, else `~/.cache/logway-clients`. (Not a
/// `LOGWAY_` variable: those are config overrides of the gateway.)
pub fn test_clients() -> std::path::PathBuf {
    let dir = std::env::var_os("TEST_CLIENTS_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/logway-clients")
        });
    assert!(
        dir.join("venv/bin/python").exists() && dir.join("node/node_modules").exists(),
        "the test clients are missing in {}: run ./test.sh (it installs them)",
        dir.display()
    );
    dir
}

/// A client script of `tests/clients/`.
pub fn client_script(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/clients")
        .join(name)
}

/// The Python of the clients' virtualenv, running `script` with `args`.
pub fn python_client(script: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(test_clients().join("venv/bin/python"));
    cmd.arg(client_script(script)).args(args);
    cmd
}

/// Runs a client to its end (it must succeed); its last stdout line is JSON.
pub async fn run_client(mut cmd: Command) -> Value {
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("client starts"))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "client failed: {}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("client printed {stdout:?}: {e}"))
}

/// A free port on 127.0.0.1 (for a client's own listener).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something listens on 127.0.0.1:`port`.
pub async fn wait_port(port: u16) {
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nothing listens on {port}");
}

/// A child process killed and reaped on drop (also when a test fails).
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// util-linux `logger` sending one message over TCP to 127.0.0.1:`port`.
pub fn logger(port: u16, args: &[&str]) {
    let out = Command::new("logger")
        .args(["--tcp", "-n", "127.0.0.1", "-P", &port.to_string()])
        .args(args)
        .output()
        .expect("util-linux logger is installed");
    assert!(
        out.status.success(),
        "logger failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// rsyslogd (Debian package) in the foreground with `config` (its
/// `workDirectory` is `work`, created here), listening on `in_port` once
/// this returns; killed when the handle drops.
pub async fn spawn_rsyslog(work: &Path, in_port: u16, config: &str) -> Killed {
    std::fs::create_dir_all(work).unwrap();
    let conf = work.join("rsyslog.conf");
    let global = format!("global(workDirectory=\"{}\")\n", work.display());
    std::fs::write(&conf, global + config).unwrap();
    let rsyslog = Killed(
        Command::new("/usr/sbin/rsyslogd")
            .args(["-n", "-f"])
            .arg(&conf)
            .arg("-i")
            .arg(work.join("rsyslogd.pid"))
            .spawn()
            .expect("rsyslogd starts (apt-get install rsyslog rsyslog-elasticsearch)"),
    );
    wait_port(in_port).await;
    rsyslog
}
