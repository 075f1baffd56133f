//! Sockets: accept loops with their bounds and timeouts.

pub mod http;
pub mod syslog;
pub mod tls;

use tokio::sync::watch;

/// Resolves once shutdown is requested (at once if it already was).
pub(crate) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|&stop| stop).await;
}
