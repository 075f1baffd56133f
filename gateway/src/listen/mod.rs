//! Sockets: accept loops with their bounds and timeouts, and TLS. What a
//! connection's bytes mean is the sources' business (`crate::sources`):
//! nothing here knows a protocol beyond HTTP framing.

pub mod http;
pub mod tcp;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

/// Resolves once shutdown is requested (at once if it already was).
pub(crate) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|&stop| stop).await;
}

/// Waits for a connection slot, then a connection; `None` once shutdown is
/// requested. The permit is the slot: drop it when the connection ends.
pub(crate) async fn accept_bounded(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<(TcpStream, SocketAddr, OwnedSemaphorePermit)> {
    let permit = tokio::select! {
        p = slots.clone().acquire_owned() => p.expect("semaphore never closes"),
        _ = stopped(shutdown) => return None,
    };
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => return Some((stream, peer, permit)),
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = stopped(shutdown) => return None,
        }
    }
}
