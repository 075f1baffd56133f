//! The HTTP accept loop (hyper: HTTP/1.1 and HTTP/2; HTTPS when
//! `server.tls` is set, with HTTP/2 chosen by ALPN).
//!
//! A semaphore bounds open connections (`server.max_connections`): past it
//! the loop stops accepting and new connections wait in the kernel backlog.
//! hyper closes a connection whose headers do not arrive within
//! `server.header_read_timeout` (a slowloris defence; it needs the timer set
//! below). On shutdown the loop stops accepting, in-flight requests finish,
//! and idle keep-alive connections are closed.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

use super::accept_bounded;
use super::tls::{ClientCert, Tls};

/// Concurrent requests on one HTTP/2 connection.
pub const MAX_HTTP2_STREAMS: u32 = 64;

/// In-flight requests get this long to finish at shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Serves `router` until shutdown: at most `max_connections` open, headers
/// within `header_read_timeout` (also the TLS handshake's deadline).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    max_connections: usize,
    header_read_timeout: Duration,
    tls: Option<Arc<Tls>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    // HTTP/1.1, and HTTP/2 (negotiated by ALPN over TLS, by prior
    // knowledge in plain text).
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .keep_alive(true)
        // A client that sends its request and closes its side without
        // waiting for the answer (graypy's GELF handler) still has the
        // whole request read and handled; the answer then goes nowhere.
        .half_close(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_HTTP2_STREAMS);
    loop {
        let Some((stream, peer, permit)) = accept_bounded(&listener, &permits, &mut shutdown).await
        else {
            break;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        // Each request carries the peer address and, over TLS, the
        // verified client certificate's names.
        let service = move |client: Option<ClientCert>| {
            hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                if let Some(c) = &client {
                    req.extensions_mut().insert(c.clone());
                }
                router.clone().oneshot(req.map(Body::new))
            })
        };
        let watcher = graceful.watcher();
        let builder = builder.clone();
        let tls = tls.clone();
        let handshake_timeout = header_read_timeout;
        tokio::spawn(async move {
            let result = match tls {
                None => {
                    watcher
                        .watch(builder.serve_connection(TokioIo::new(stream), service(None)))
                        .await
                }
                Some(tls) => {
                    match tokio::time::timeout(handshake_timeout, tls.acceptor().accept(stream))
                        .await
                    {
                        Ok(Ok(stream)) => {
                            let client = ClientCert::of(stream.get_ref().1);
                            watcher
                                .watch(
                                    builder.serve_connection(TokioIo::new(stream), service(client)),
                                )
                                .await
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, %peer, "TLS handshake failed");
                            Ok(())
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            Ok(())
                        }
                    }
                }
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(SHUTDOWN_GRACE) => tracing::warn!("in-flight requests did not finish within the grace period"),
    }
}
