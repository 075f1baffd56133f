//! TLS (rustls, `ring` provider) for HTTPS and syslog over TLS (RFC 5425).
//!
//! A [`Tls`] holds the acceptor built from a PEM certificate chain and key.
//! Each new connection takes the current acceptor, so [`Tls::reload`]
//! (config reload, `SIGHUP`) switches certificates for new connections
//! without dropping open ones. A handshake must finish within the
//! listener's header/idle timeout.
//!
//! Client certificates: with `client_ca_file`, the handshake asks for a
//! client certificate and verifies it against those CAs (rustls' webpki
//! verifier: chain, validity period, key usage). [`ClientCert`] then holds
//! the certificate's names (subject CN and DNS subject alternative names),
//! which a tenant's `ingest_cert_names` maps to that tenant.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio_rustls::TlsAcceptor;

use serde::Deserialize;

/// A PEM certificate chain and private key, read again on reload.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// PEM CA certificates that sign client certificates: clients may then
    /// authenticate with a certificate whose name a tenant lists in
    /// `ingest_cert_names`. Read again on reload.
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
    /// With `client_ca_file`: refuse a TLS handshake without a valid client
    /// certificate (HTTPS; a syslog listener with a client CA always
    /// requires one). Otherwise a client may use a key instead.
    #[serde(default)]
    pub require_client_cert: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read certificate chain {path}: {message}")]
    Cert { path: PathBuf, message: String },
    #[error("cannot read private key {path}: {message}")]
    Key { path: PathBuf, message: String },
    #[error("cannot use client CA file {path}: {message}")]
    ClientCa { path: PathBuf, message: String },
    #[error("certificate and key do not form a valid TLS config: {0}")]
    Config(#[from] rustls::Error),
}

/// The names of a verified client certificate (subject CN, then DNS
/// subject alternative names).
#[derive(Debug, Clone)]
pub struct ClientCert(pub Arc<[String]>);

impl ClientCert {
    /// The client certificate of a finished handshake, if one was sent.
    pub fn of(conn: &rustls::ServerConnection) -> Option<ClientCert> {
        let der = conn.peer_certificates()?.first()?;
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let mut names: Vec<String> = cert
            .subject()
            .iter_common_name()
            .filter_map(|cn| cn.as_str().ok().map(str::to_string))
            .collect();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                if let x509_parser::extensions::GeneralName::DNSName(dns) = name {
                    names.push(dns.to_string());
                }
            }
        }
        Some(ClientCert(names.into()))
    }
}

/// A reloadable TLS acceptor.
pub struct Tls {
    files: TlsConfig,
    /// With a client CA: refuse handshakes without a client certificate.
    require_client_cert: bool,
    /// ALPN protocols offered (HTTP/1.1 for HTTPS; none for syslog).
    alpn: Vec<Vec<u8>>,
    current: RwLock<TlsAcceptor>,
}

fn load(
    files: &TlsConfig,
    alpn: &[Vec<u8>],
    require_client_cert: bool,
) -> Result<TlsAcceptor, TlsError> {
    let certs = CertificateDer::pem_file_iter(&files.cert_file)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Cert {
            path: files.cert_file.clone(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Cert {
            path: files.cert_file.clone(),
            message: "no certificate in the file".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(&files.key_file).map_err(|e| TlsError::Key {
        path: files.key_file.clone(),
        message: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match &files.client_ca_file {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let ca_error = |message: String| TlsError::ClientCa {
                path: path.clone(),
                message,
            };
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(path).map_err(|e| ca_error(e.to_string()))? {
                roots
                    .add(cert.map_err(|e| ca_error(e.to_string()))?)
                    .map_err(|e| ca_error(e.to_string()))?;
            }
            if roots.is_empty() {
                return Err(ca_error("no certificate in the file".into()));
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if require_client_cert {
                verifier.build()
            } else {
                verifier.allow_unauthenticated().build()
            };
            builder.with_client_cert_verifier(verifier.map_err(|e| ca_error(e.to_string()))?)
        }
    };
    let mut config = builder.with_single_cert(certs, key)?;
    config.alpn_protocols = alpn.to_vec();
    Ok(TlsAcceptor::from(Arc::new(config)))
}

impl Tls {
    /// Loads the certificate and key; for HTTPS pass `b"http/1.1"` as ALPN.
    /// `require_client_cert` applies with a `client_ca_file`.
    pub fn new(
        files: &TlsConfig,
        alpn: &[&[u8]],
        require_client_cert: bool,
    ) -> Result<Arc<Tls>, TlsError> {
        let alpn: Vec<Vec<u8>> = alpn.iter().map(|p| p.to_vec()).collect();
        let acceptor = load(files, &alpn, require_client_cert)?;
        Ok(Arc::new(Tls {
            files: files.clone(),
            require_client_cert,
            alpn,
            current: RwLock::new(acceptor),
        }))
    }

    /// The acceptor for a new connection.
    pub fn acceptor(&self) -> TlsAcceptor {
        self.current.read().unwrap().clone()
    }

    /// Reads the files again; on error the current certificate stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let acceptor = load(&self.files, &self.alpn, self.require_client_cert)?;
        *self.current.write().unwrap() = acceptor;
        Ok(())
    }

    pub fn cert_file(&self) -> &Path {
        &self.files.cert_file
    }
}
