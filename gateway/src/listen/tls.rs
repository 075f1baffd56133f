//! TLS (rustls, `ring` provider) for HTTPS and syslog over TLS (RFC 5425).
//!
//! A [`Tls`] holds the acceptor built from a PEM certificate chain and key.
//! Each new connection takes the current acceptor, so [`Tls::reload`]
//! (config reload, `SIGHUP`) switches certificates for new connections
//! without dropping open ones. A handshake must finish within the
//! listener's header/idle timeout.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::config::TlsConfig;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read certificate chain {path}: {message}")]
    Cert { path: PathBuf, message: String },
    #[error("cannot read private key {path}: {message}")]
    Key { path: PathBuf, message: String },
    #[error("certificate and key do not form a valid TLS config: {0}")]
    Config(#[from] rustls::Error),
}

/// A reloadable TLS acceptor.
pub struct Tls {
    files: TlsConfig,
    /// ALPN protocols offered (HTTP/1.1 for HTTPS; none for syslog).
    alpn: Vec<Vec<u8>>,
    current: RwLock<TlsAcceptor>,
}

fn load(files: &TlsConfig, alpn: &[Vec<u8>]) -> Result<TlsAcceptor, TlsError> {
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
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = alpn.to_vec();
    Ok(TlsAcceptor::from(Arc::new(config)))
}

impl Tls {
    /// Loads the certificate and key; for HTTPS pass `b"http/1.1"` as ALPN.
    pub fn new(files: &TlsConfig, alpn: &[&[u8]]) -> Result<Arc<Tls>, TlsError> {
        let alpn: Vec<Vec<u8>> = alpn.iter().map(|p| p.to_vec()).collect();
        let acceptor = load(files, &alpn)?;
        Ok(Arc::new(Tls {
            files: files.clone(),
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
        let acceptor = load(&self.files, &self.alpn)?;
        *self.current.write().unwrap() = acceptor;
        Ok(())
    }

    pub fn cert_file(&self) -> &Path {
        &self.files.cert_file
    }
}
