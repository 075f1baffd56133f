//! GELF over TCP: messages of uncompressed JSON, each ended by a NUL byte,
//! plain or over TLS. A connection reads what is available, stores the
//! complete messages as one batch and reads on only once it is durable,
//! so a slow disk slows the sender instead of losing messages. A message
//! over `gelf.max_message_bytes` is kept as a rejected event (its first
//! bytes) and the rest of it up to the next NUL skipped.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::config::GelfListener;
use crate::listen::tcp::Stream;
use crate::listen::tls::Tls;
use crate::pipeline::{Admission, Pipeline};
use crate::sources::delimited::{Delimited, Frame};
use crate::tenants::Route;

const READ_CHUNK: usize = 256 * 1024;

struct Listener {
    config: GelfListener,
    route: Route,
    pipeline: Arc<Pipeline>,
    max_message: usize,
}

pub async fn serve(
    listener: TcpListener,
    config: GelfListener,
    route: Route,
    pipeline: Arc<Pipeline>,
    max_message: usize,
    tls: Option<Arc<Tls>>,
    shutdown: watch::Receiver<bool>,
) {
    let bound = crate::sources::BoundListener::new(
        "gelf",
        &config.tenant,
        config.tls.as_ref(),
        config.max_connections,
        config.idle_timeout,
    );
    let shared = Arc::new(Listener {
        config,
        route,
        pipeline: pipeline.clone(),
        max_message,
    });
    let watch = shutdown.clone();
    crate::sources::serve_bound(
        listener,
        bound,
        pipeline,
        tls,
        shutdown,
        move |stream, peer| connection(stream, peer, shared.clone(), watch.clone()),
    )
    .await
}

async fn connection(
    mut stream: Stream,
    peer: SocketAddr,
    listener: Arc<Listener>,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let adm = Arc::new(listener.pipeline.admit_listener(
        &listener.config.tenant,
        format!("gelf:{}", listener.config.addr),
        listener.route.clone(),
        Some(peer.ip()),
    ));
    let mut frames = Delimited::new(0, listener.max_message);
    let mut chunk = vec![0u8; READ_CHUNK];
    loop {
        let n = tokio::select! {
            _ = shutdown.changed() => 0,
            r = stream.read(&mut chunk) => r?,
        };
        if n == 0 {
            // A last message without its NUL still counts.
            if let Some(last) = frames.finish() {
                store(&listener, &adm, vec![last]).await?;
            }
            return Ok(());
        }
        let mut out = Vec::new();
        frames.push(&chunk[..n], &mut out);
        // One too long is kept (its first bytes) as a rejected event by the build.
        let messages: Vec<Vec<u8>> = out
            .into_iter()
            .map(|f| match f {
                Frame::Whole(m) | Frame::TooLong(m) => m,
            })
            .collect();
        if !messages.is_empty() {
            store(&listener, &adm, messages).await?;
        }
    }
}

/// One batch, durable before the connection reads on.
async fn store(
    listener: &Arc<Listener>,
    adm: &Arc<Admission>,
    messages: Vec<Vec<u8>>,
) -> std::io::Result<()> {
    let pipeline = &listener.pipeline;
    let bytes = messages.iter().map(Vec::len).sum();
    let refused = |e: crate::pipeline::Error| std::io::Error::other(e.to_string());
    // Over a rate limit: wait (the sender waits with us), as for a full WAL.
    loop {
        match pipeline.received(adm, bytes) {
            Ok(()) => break,
            Err(crate::pipeline::Error::Limited(r)) if r.retry_after.is_some() => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => return Err(refused(e)),
        }
    }
    let (worker, a, max) = (pipeline.clone(), adm.clone(), listener.max_message);
    let built = tokio::task::spawn_blocking(move || {
        let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        super::build(&worker, &a, &refs, max)
    })
    .await
    .map_err(std::io::Error::other)?;
    pipeline.store(adm, built, None).await.map_err(refused)
}
