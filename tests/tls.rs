//! TLS: HTTPS ingest and search with a real client (curl), certificate
//! reload without a restart, and syslog over TLS (RFC 5425) with a rustls
//! client. Certificates are made by the test (rcgen): a CA and a leaf for
//! `localhost`.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use common::*;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use tokio::io::AsyncWriteExt;

/// Writes ca.pem, cert.pem and key.pem into `dir`; returns the CA in DER.
fn make_certs(dir: &Path) -> Vec<u8> {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Logway test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::from_params(&ca_params, &ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf_params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("cert.pem"), leaf.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), leaf_key.serialize_pem()).unwrap();
    ca.der().to_vec()
}

fn curl(ca: &Path, port: u16, args: &[&str]) -> (bool, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "5", "--cacert"])
        .arg(ca)
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
        .args(args)
        .output()
        .expect("curl is installed");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_ingest_and_search_with_curl_and_certificates_reload_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    make_certs(&certs);
    let old_ca = dir.path().join("old-ca.pem");
    std::fs::copy(certs.join("ca.pem"), &old_ca).unwrap();
    let mut config = two_tenant_config(&dir.path().join("data"), "");
    config.server.tls = Some(logway::config::TlsConfig {
        cert_file: certs.join("cert.pem"),
        key_file: certs.join("key.pem"),
    });
    let gateway = logway::start(config.clone()).await.unwrap();
    let port = gateway.http_addr().port();
    let base = format!("https://localhost:{port}");
    let ca = certs.join("ca.pem");
    let blocking = |args: Vec<String>, ca: std::path::PathBuf| {
        tokio::task::spawn_blocking(move || {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            curl(&ca, port, &refs)
        })
    };
    let mut ready = false;
    for _ in 0..100 {
        let (ok, out) = blocking(vec![format!("{base}/readyz")], ca.clone())
            .await
            .unwrap();
        if ok && out.contains("\"ready\":true") {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(ready, "HTTPS /readyz never answered");
    let (ok, out) = blocking(
        vec![
            "-H".into(),
            format!("authorization: Bearer {A_INGEST}"),
            "-H".into(),
            "content-type: application/json".into(),
            "--data-binary".into(),
            r#"{"message":"over tls","level":"info"}"#.into(),
            format!("{base}/web"),
        ],
        ca.clone(),
    )
    .await
    .unwrap();
    assert!(ok && out.contains("\"accepted\":1"), "{out}");
    let mut found = String::new();
    for _ in 0..100 {
        let (_, out) = blocking(
            vec![
                "-H".into(),
                format!("authorization: Bearer {A_ADMIN}"),
                format!("{base}/api/v1/search?q=%22over%20tls%22"),
            ],
            ca.clone(),
        )
        .await
        .unwrap();
        found = out;
        if found.contains("\"total\":1") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(found.contains("\"total\":1"), "{found}");
    // HTTP/2 is negotiated by ALPN; HTTP/1.1 still works.
    for (flag, version) in [("--http2", "2"), ("--http1.1", "1.1")] {
        let args = vec![
            flag.into(),
            "-o".into(),
            "/dev/null".into(),
            "-w".into(),
            "%{http_version}".into(),
            format!("{base}/healthz"),
        ];
        let (ok, out) = blocking(args, ca.clone()).await.unwrap();
        assert!(ok && out.trim() == version, "{flag}: {out}");
    }

    // New certificate files + reload: new connections get the new chain.
    make_certs(&certs);
    gateway.reload(&config).unwrap();
    let (ok, out) = blocking(vec![format!("{base}/healthz")], old_ca.clone())
        .await
        .unwrap();
    assert!(!ok, "the old CA no longer verifies the server: {out}");
    let (ok, out) = blocking(vec![format!("{base}/healthz")], ca.clone())
        .await
        .unwrap();
    assert!(ok, "the new certificate is served: {out}");
    // A broken key file is refused and the current certificate stays.
    std::fs::write(certs.join("key.pem"), "not a key").unwrap();
    assert!(gateway.reload(&config).is_err());
    let (ok, out) = blocking(vec![format!("{base}/healthz")], ca.clone())
        .await
        .unwrap();
    assert!(ok, "{out}");
    gateway.shutdown().await.unwrap();
}

#[tokio::test]
async fn syslog_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let ca_der = make_certs(dir.path());
    let extra = format!(
        "[[syslog]]\naddr = \"127.0.0.1:0\"\ntenant = \"a\"\ntype = \"syslog\"\nunauthenticated = true\ntls = {{ cert_file = \"{}\", key_file = \"{}\" }}\n",
        dir.path().join("cert.pem").display(),
        dir.path().join("key.pem").display()
    );
    let gw = TestGateway::start(two_tenant_config(&dir.path().join("data"), &extra)).await;
    let addr = gw.gateway.syslog_addrs()[0];
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(ca_der))
        .unwrap();
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    let line = "<14>1 2026-11-21T10:00:00Z web-2 api 77 - - encrypted hello";
    tls.write_all(format!("{} {line}", line.len()).as_bytes())
        .await
        .unwrap();
    tls.shutdown().await.unwrap();
    let body = gw
        .search_until(A_ADMIN, &[("q", "\"encrypted hello\"")], 1)
        .await;
    assert_eq!(body["hits"][0]["host"], "web-2");
    assert_eq!(body["hits"][0]["service"], "api");
    // A plain-text client on the TLS port gets nothing stored.
    let mut plain = tokio::net::TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(b"<14>plain text on a tls port\n")
        .await
        .unwrap();
    drop(plain);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (_, body) = gw.search_raw(A_ADMIN, &[("q", "\"plain text\"")]).await;
    assert_eq!(body["total"], 0);
    gw.stop().await;
}
