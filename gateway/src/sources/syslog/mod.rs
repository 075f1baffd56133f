//! TCP syslog: RFC 5424 and RFC 3164 messages, octet-counting or newline
//! framing (RFC 6587), plain or over TLS (RFC 5425), into the same WAL
//! batches as HTTP ingest, through the pipeline.
//!
//! A listener is bound to one tenant and log type in config. Syslog has no
//! keys: a listener either requires client certificates (TLS with a
//! `client_ca_file`; the certificate must carry a name the tenant lists in
//! `ingest_cert_names`) or is switched on with `unauthenticated = true`.
//! Sockets, the connection bound and TLS are `crate::listen::tcp`'s;
//! framing and parsing live in the `logway-syslog` crate (`syslog/`, with
//! its fuzz targets); parsing uses `syslog_loose` (Vector's parser):
//! lenient, both RFCs. Frames become items in [`build`].
//!
//! Delivery: syslog over TCP has no application-level ack. A connection
//! reads what is available and cuts the complete frames into batches of up
//! to [`MAX_BATCH`]. Up to [`BUILD_AHEAD`] batches are parsed and built at
//! once on the blocking pool while it reads on, and up to [`IN_FLIGHT`]
//! wait for their fsync, queued in the WAL in stream order. At those bounds
//! it stops reading, so a slow disk slows the senders (TCP backpressure)
//! instead of dropping messages. What was read is durable before it is
//! counted as received; what is still in a socket buffer when the process
//! dies is lost, as with any syslog receiver.
//!
//! An oversize frame (over `max_message_bytes`) or one that is not UTF-8 is
//! stored as a rejected event (its first `max_message_bytes` bytes) and the
//! connection continues: with octet counting the rest of the frame is
//! skipped, with newline framing everything up to the next newline.

pub mod build;
pub mod config;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use logway_syslog::{Frame, Framer};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::listen::stopped;
use crate::listen::tcp::Stream;
use crate::listen::tls::Tls;
use crate::pipeline::{Admission, Error, Meta, Pipeline, Sealed};
use crate::tenants::Route;
use config::SyslogConfig;

/// Frames per WAL batch at most.
const MAX_BATCH: usize = 2000;
const READ_CHUNK: usize = 256 * 1024;
/// WAL appends one connection may have waiting for their fsync while it
/// reads and parses on (order is kept: they are queued in order).
const IN_FLIGHT: usize = 4;
/// Batches one connection may have being built at once, on the blocking
/// pool, while it reads on: one busy connection can use both cores.
const BUILD_AHEAD: usize = 2;
/// Wait before retrying a WAL append refused for space.
const FULL_RETRY: Duration = Duration::from_millis(100);

/// What every connection of one listener shares.
struct Listener {
    config: SyslogConfig,
    route: Route,
    pipeline: Arc<Pipeline>,
}

/// Accepts syslog connections until shutdown; `route` is the listener's
/// log type, filters and field names ([`SyslogConfig::route`]).
pub async fn serve(
    listener: TcpListener,
    config: SyslogConfig,
    route: Route,
    pipeline: Arc<Pipeline>,
    tls: Option<Arc<Tls>>,
    shutdown: watch::Receiver<bool>,
) {
    let bound = crate::sources::BoundListener::new(
        "syslog",
        &config.tenant,
        config.tls.as_ref(),
        config.max_connections,
        config.idle_timeout,
    );
    // Shared by every connection and every batch's tasks.
    let shared = Arc::new(Listener {
        config,
        route,
        pipeline: pipeline.clone(),
    });
    let watch = shutdown.clone();
    super::serve_bound(
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
    let config = &listener.config;
    let adm = Arc::new(listener.pipeline.admit_listener(
        &config.tenant,
        format!("syslog:{}", config.addr),
        listener.route.clone(),
        Some(peer.ip()),
    ));
    let mut framer = Framer::default();
    let mut chunk = vec![0u8; READ_CHUNK];
    // Batches being built, then waiting for their fsync; each in stream order.
    let mut building: VecDeque<JoinHandle<Sealed>> = VecDeque::new();
    let mut storing: VecDeque<JoinHandle<std::io::Result<()>>> = VecDeque::new();
    // A failed read ends the connection like its end does: what was read
    // is still stored, then the error is returned.
    let mut failed = None;
    loop {
        // Read on, and queue each batch in the WAL as soon as it is built.
        let next = tokio::select! {
            built = async { building.front_mut().expect("not empty").await }, if !building.is_empty() => {
                Next::Built(built)
            }
            read = tokio::time::timeout(config.idle_timeout, stream.read(&mut chunk)) => match read {
                Ok(Ok(n)) => Next::Read(n),
                Ok(Err(e)) => {
                    failed = Some(e);
                    Next::Read(0)
                }
                Err(_) => {
                    tracing::debug!(%peer, "syslog connection idle; closing");
                    Next::Read(0)
                }
            },
            _ = stopped(&mut shutdown) => Next::Read(0),
        };
        let n = match next {
            Next::Built(built) => {
                building.pop_front();
                let sealed = built.map_err(std::io::Error::other)?;
                submit(&listener.pipeline, sealed, &mut storing).await?;
                continue;
            }
            Next::Read(n) => n,
        };
        if n > 0 {
            framer.push(&chunk[..n]);
        }
        // Every complete frame read so far, one batch at a time.
        loop {
            let mut frames = Vec::new();
            while frames.len() < MAX_BATCH {
                match framer.next_frame(config.max_message_bytes) {
                    Some(f) => frames.push(f),
                    None => break,
                }
            }
            if n == 0 && frames.len() < MAX_BATCH {
                frames.extend(framer.finish(config.max_message_bytes));
            }
            if frames.is_empty() {
                break;
            }
            if building.len() >= BUILD_AHEAD {
                let built = building.pop_front().expect("not empty");
                let sealed = built.await.map_err(std::io::Error::other)?;
                submit(&listener.pipeline, sealed, &mut storing).await?;
            }
            // Parsing, event building, filters and compression are CPU work
            // of their own: off the reactor, and beside the next read.
            let (listener, adm) = (listener.clone(), adm.clone());
            building.push_back(tokio::task::spawn_blocking(move || {
                seal(&listener, &adm, &frames)
            }));
        }
        if n == 0 {
            // Everything read is durable before the connection is done.
            for built in building {
                let sealed = built.await.map_err(std::io::Error::other)?;
                submit(&listener.pipeline, sealed, &mut storing).await?;
            }
            for pending in storing {
                pending.await.map_err(std::io::Error::other)??;
            }
            return failed.map_or(Ok(()), Err);
        }
    }
}

/// What a connection does next: read bytes (0: the end), or queue the
/// batch that finished building first.
enum Next {
    Read(usize),
    Built(Result<Sealed, tokio::task::JoinError>),
}

/// One batch of frames through the pipeline, sealed for the WAL.
fn seal(listener: &Listener, adm: &Admission, frames: &[Frame]) -> Sealed {
    let pipeline = &listener.pipeline;
    let max = listener.config.max_message_bytes;
    let meta = Meta {
        max_line: Some(max),
        ..Meta::now()
    };
    let ctx = pipeline.context(adm, &meta);
    let prebuilt = adm.route.filters.is_empty();
    let items = build::items(frames, max, &ctx, prebuilt);
    let built = pipeline.build(adm, items, &meta);
    pipeline.seal(adm, built, None)
}

/// Queues a batch in the WAL behind the connection's earlier ones (waiting,
/// not dropping, while the WAL is full) and leaves a task waiting for its
/// fsync, which then counts it as received; at most [`IN_FLIGHT`] wait at
/// once.
async fn submit(
    pipeline: &Arc<Pipeline>,
    sealed: Sealed,
    storing: &mut VecDeque<JoinHandle<std::io::Result<()>>>,
) -> std::io::Result<()> {
    if storing.len() >= IN_FLIGHT {
        let oldest = storing.pop_front().expect("not empty");
        oldest.await.map_err(std::io::Error::other)??;
    }
    let durable = loop {
        match pipeline.submit(&sealed) {
            Ok(durable) => break durable,
            Err(e) if e.is_full() => tokio::time::sleep(FULL_RETRY).await,
            Err(e) => return Err(std::io::Error::other(e.to_string())),
        }
    };
    let pipeline = pipeline.clone();
    storing.push_back(tokio::spawn(async move {
        let mut result = durable.await;
        // A full disk fails the write after it was queued: queue it again
        // (behind what the connection sent since).
        while let Err(e) = &result
            && e.is_full()
        {
            tokio::time::sleep(FULL_RETRY).await;
            result = pipeline.append(&sealed).await;
        }
        result.map_err(|e: Error| std::io::Error::other(e.to_string()))?;
        pipeline.count(&sealed);
        Ok(())
    }));
    Ok(())
}
