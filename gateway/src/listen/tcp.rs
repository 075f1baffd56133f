//! A plain TCP accept loop for stream protocols (syslog, Beats): a bound on
//! open connections, an optional TLS handshake within a deadline, and the
//! verified client certificate's names handed to the protocol's handler.
//! On shutdown it stops accepting and waits for every connection to end
//! (each handler watches the shutdown signal itself).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use super::accept_bounded;
use super::tls::{ClientCert, Tls};

/// What a connection is: bytes both ways, plain or TLS.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// A connection's byte stream, plain or TLS.
pub type Stream = Box<dyn Io>;

/// Accepts connections until shutdown and runs `handle` on each; returns
/// once every connection has ended.
pub async fn serve<H, F>(
    listener: TcpListener,
    max_connections: usize,
    tls: Option<Arc<Tls>>,
    handshake_timeout: Duration,
    mut shutdown: watch::Receiver<bool>,
    handle: H,
) where
    H: Fn(Stream, SocketAddr, Option<ClientCert>) -> F + Clone + Send + 'static,
    F: Future<Output = std::io::Result<()>> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(max_connections.max(1)));
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let Some((stream, peer, permit)) = accept_bounded(&listener, &permits, &mut shutdown).await
        else {
            break;
        };
        let (tls, handle) = (tls.clone(), handle.clone());
        connections.spawn(async move {
            let result = match tls {
                None => handle(Box::new(stream), peer, None).await,
                Some(tls) => {
                    match tokio::time::timeout(handshake_timeout, tls.acceptor().accept(stream))
                        .await
                    {
                        Ok(Ok(stream)) => {
                            let cert = ClientCert::of(stream.get_ref().1);
                            handle(Box::new(stream), peer, cert).await
                        }
                        Ok(Err(e)) => Err(e),
                        Err(_) => Err(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "TLS handshake timed out",
                        )),
                    }
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
            drop(permit);
        });
    }
    // Connections finish what they have read and close.
    while connections.join_next().await.is_some() {}
}
