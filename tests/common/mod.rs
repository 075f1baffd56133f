//! Shared test harness: a real gateway on 127.0.0.1:0 over a temp dir.
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use logway::{Config, Gateway};
use serde_json::Value;

pub const A_INGEST: &str = "a-ingest-key-0001";
pub const A_ADMIN: &str = "a-admin-key-0001";
pub const B_INGEST: &str = "b-ingest-key-0001";
pub const B_ADMIN: &str = "b-admin-key-0001";

/// Two tenants with keys and routes; `extra` is appended (more sections).
pub fn two_tenant_config(data_dir: &Path, extra: &str) -> Config {
    let text = format!(
        r#"
[server]
http_addr = "127.0.0.1:0"
[storage]
data_dir = "{dir}"
[hot]
commit_interval = "100ms"
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
"#,
        dir = data_dir.display()
    );
    Config::from_toml(&text).expect("test config is valid")
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
            if let Ok(r) = self.client.get(format!("{}/readyz", self.url)).send().await {
                if r.status() == 200 {
                    return;
                }
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

/// Writes `body` gzip-compressed.
pub fn gzip(body: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(body).unwrap();
    e.finish().unwrap()
}
