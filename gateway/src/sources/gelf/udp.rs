//! GELF over UDP: datagrams of one message, or chunks of one (magic
//! `1e 0f`, an 8-byte message id, sequence number, count), reassembled.
//!
//! UDP has no acknowledgement and no backpressure: what the gateway cannot
//! take is lost, and every loss it sees is counted in
//! `logway_gelf_dropped_total{listener, reason}`: `bad_chunk` (a chunk
//! header out of bounds), `incomplete` (chunks missing after
//! `chunk_timeout`), `memory` (incomplete messages over
//! `max_pending_bytes`: the oldest goes), `overloaded` (the store queue
//! full), `refused` (the pipeline refused the batch: rate limit, WAL full).
//! A large receive buffer (8 MiB asked of the kernel) absorbs bursts.
//!
//! Messages are stored in batches (up to [`MAX_BATCH`], or what arrived in
//! [`LINGER`]), one WAL append each, by tasks of their own (up to
//! [`IN_FLIGHT`] at once) so that the socket is read while batches are
//! built and made durable.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};

use super::config::GelfListener;
use crate::pipeline::{Admission, Pipeline};
use crate::telemetry::{GelfDropLabels, Metrics};
use crate::tenants::Route;

const MAGIC: [u8; 2] = [0x1e, 0x0f];
const HEADER: usize = 12;
/// Messages per WAL batch at most.
const MAX_BATCH: usize = 2000;
/// How long a batch waits for more messages.
const LINGER: Duration = Duration::from_millis(20);
/// Batches waiting to be stored at most.
const QUEUE: usize = 32;
/// Batches being built and stored at once.
const IN_FLIGHT: usize = 4;
const RECV_BUFFER: usize = 8 << 20;

/// Binds a UDP socket with a large receive buffer.
pub fn bind(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // Best effort: the kernel caps it at net.core.rmem_max.
    let _ = socket.set_recv_buffer_size(RECV_BUFFER);
    socket.bind(&addr.into())?;
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket.into())
}

/// One message's chunks as they arrive.
struct Partial {
    chunks: Vec<Option<Vec<u8>>>,
    have: usize,
    bytes: usize,
    first: Instant,
}

/// Incomplete messages, bounded in time and memory.
struct Reassembly {
    partial: HashMap<[u8; 8], Partial>,
    /// Ids by arrival of their first chunk (ids already completed are
    /// skipped when met).
    order: VecDeque<([u8; 8], Instant)>,
    bytes: usize,
    max_chunks: usize,
    max_bytes: usize,
    timeout: Duration,
}

/// What a chunk did.
enum Chunk {
    Complete(Vec<u8>),
    Pending,
    Bad,
}

impl Reassembly {
    fn add(&mut self, datagram: &[u8], now: Instant) -> Chunk {
        if datagram.len() < HEADER {
            return Chunk::Bad;
        }
        let id: [u8; 8] = datagram[2..10].try_into().expect("8 bytes");
        let (seq, count) = (datagram[10] as usize, datagram[11] as usize);
        if count == 0 || count > self.max_chunks || seq >= count {
            return Chunk::Bad;
        }
        let data = &datagram[HEADER..];
        let p = self.partial.entry(id).or_insert_with(|| {
            self.order.push_back((id, now));
            Partial {
                chunks: vec![None; count],
                have: 0,
                bytes: 0,
                first: now,
            }
        });
        if p.chunks.len() != count {
            return Chunk::Bad;
        }
        if p.chunks[seq].is_none() {
            p.chunks[seq] = Some(data.to_vec());
            p.have += 1;
            p.bytes += data.len();
            self.bytes += data.len();
        }
        if p.have < count {
            return Chunk::Pending;
        }
        let p = self.partial.remove(&id).expect("present");
        self.bytes -= p.bytes;
        Chunk::Complete(p.chunks.into_iter().flatten().flatten().collect())
    }

    /// Drops what timed out, then the oldest while over the memory bound;
    /// returns how many for each reason.
    fn expire(&mut self, now: Instant) -> (u64, u64) {
        let (mut timed_out, mut evicted) = (0, 0);
        while let Some(&(id, first)) = self.order.front() {
            let Some(p) = self.partial.get(&id).filter(|p| p.first == first) else {
                self.order.pop_front();
                continue;
            };
            let expired = now.duration_since(first) >= self.timeout;
            if !expired && self.bytes <= self.max_bytes {
                break;
            }
            self.bytes -= p.bytes;
            self.partial.remove(&id);
            self.order.pop_front();
            if expired {
                timed_out += 1;
            } else {
                evicted += 1;
            }
        }
        (timed_out, evicted)
    }
}

/// Receives until shutdown, then stores what it holds.
pub async fn serve(
    socket: UdpSocket,
    config: GelfListener,
    route: Route,
    pipeline: Arc<Pipeline>,
    max_message: usize,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    let listener = socket
        .local_addr()
        .map_or_else(|_| config.addr.to_string(), |a| a.to_string());
    let dropped = move |reason: &str, n: u64| {
        if n > 0 {
            metrics
                .gelf_dropped
                .get_or_create(&GelfDropLabels {
                    listener: listener.clone(),
                    reason: reason.to_string(),
                })
                .inc_by(n);
        }
    };
    let adm = Arc::new(pipeline.admit_listener(
        &config.tenant,
        format!("gelf:{}", config.addr),
        route,
        None,
    ));
    let (tx, rx) = mpsc::channel::<Vec<Vec<u8>>>(QUEUE);
    let store = tokio::spawn(store(rx, pipeline, adm, max_message, dropped.clone()));
    let mut reassembly = Reassembly {
        partial: HashMap::new(),
        order: VecDeque::new(),
        bytes: 0,
        max_chunks: config.max_chunks,
        max_bytes: config.max_pending_bytes,
        timeout: config.chunk_timeout,
    };
    let mut batch: Vec<Vec<u8>> = Vec::new();
    let mut buf = vec![0u8; 65_536];
    let mut tick = tokio::time::interval(LINGER);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let full = tokio::select! {
            _ = shutdown.changed() => break,
            _ = tick.tick() => {
                let (timed_out, evicted) = reassembly.expire(Instant::now());
                dropped("incomplete", timed_out);
                dropped("memory", evicted);
                !batch.is_empty()
            }
            r = socket.recv_from(&mut buf) => {
                let Ok((n, _)) = r else { continue };
                let datagram = &buf[..n];
                if datagram.starts_with(&MAGIC) {
                    match reassembly.add(datagram, Instant::now()) {
                        Chunk::Complete(m) => batch.push(m),
                        Chunk::Pending => {}
                        Chunk::Bad => dropped("bad_chunk", 1),
                    }
                    if reassembly.bytes > reassembly.max_bytes {
                        let (_, evicted) = reassembly.expire(Instant::now());
                        dropped("memory", evicted);
                    }
                } else {
                    batch.push(datagram.to_vec());
                }
                batch.len() >= MAX_BATCH
            }
        };
        if full {
            let n = batch.len() as u64;
            if tx.try_send(std::mem::take(&mut batch)).is_err() {
                dropped("overloaded", n);
            }
        }
    }
    if !batch.is_empty() {
        let _ = tx.send(batch).await;
    }
    drop(tx);
    let _ = store.await;
}

/// Stores batches, up to [`IN_FLIGHT`] at once (built in parallel on the
/// blocking pool, their WAL appends sharing fsyncs).
async fn store(
    mut rx: mpsc::Receiver<Vec<Vec<u8>>>,
    pipeline: Arc<Pipeline>,
    adm: Arc<Admission>,
    max_message: usize,
    dropped: impl Fn(&str, u64),
) {
    let mut in_flight = tokio::task::JoinSet::new();
    while let Some(batch) = rx.recv().await {
        while in_flight.len() >= IN_FLIGHT {
            if let Some(Ok((false, n))) = in_flight.join_next().await {
                dropped("refused", n);
            }
        }
        let n = batch.len() as u64;
        let bytes = batch.iter().map(Vec::len).sum();
        if pipeline.received(&adm, bytes).is_err() {
            dropped("refused", n);
            continue;
        }
        let (pipeline, adm) = (pipeline.clone(), adm.clone());
        in_flight.spawn(async move {
            let (worker, a) = (pipeline.clone(), adm.clone());
            let built = tokio::task::spawn_blocking(move || {
                let messages: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
                super::build(&worker, &a, &messages, max_message)
            })
            .await;
            let stored = match built {
                Ok(built) => pipeline.store(&adm, built, None).await.is_ok(),
                Err(_) => false,
            };
            (stored, n)
        });
    }
    while let Some(r) = in_flight.join_next().await {
        if let Ok((false, n)) = r {
            dropped("refused", n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(id: u8, seq: u8, count: u8, data: &[u8]) -> Vec<u8> {
        let mut c = vec![0x1e, 0x0f, id, 0, 0, 0, 0, 0, 0, 0, seq, count];
        c.extend_from_slice(data);
        c
    }

    fn reassembly() -> Reassembly {
        Reassembly {
            partial: HashMap::new(),
            order: VecDeque::new(),
            bytes: 0,
            max_chunks: 128,
            max_bytes: 10,
            timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn reassembles_in_any_order_and_bounds_the_rest() {
        let mut r = reassembly();
        let t = Instant::now();
        assert!(matches!(r.add(&chunk(1, 1, 2, b"def"), t), Chunk::Pending));
        assert!(
            matches!(r.add(&chunk(1, 1, 2, b"def"), t), Chunk::Pending),
            "a repeat"
        );
        match r.add(&chunk(1, 0, 2, b"abc"), t) {
            Chunk::Complete(m) => assert_eq!(m, b"abcdef"),
            _ => panic!("not complete"),
        }
        assert_eq!(r.bytes, 0);
        assert!(
            matches!(r.add(&chunk(2, 2, 2, b"x"), t), Chunk::Bad),
            "seq past count"
        );
        assert!(
            matches!(r.add(&chunk(2, 0, 129, b"x"), t), Chunk::Bad),
            "over 128"
        );
        assert!(matches!(r.add(&chunk(2, 0, 0, b"x"), t), Chunk::Bad));
        assert!(matches!(r.add(&[0x1e, 0x0f, 1], t), Chunk::Bad));
        // Timed out.
        assert!(matches!(r.add(&chunk(3, 0, 2, b"abc"), t), Chunk::Pending));
        assert_eq!(r.expire(t + Duration::from_secs(1)), (0, 0));
        assert_eq!(r.expire(t + Duration::from_secs(6)), (1, 0));
        assert_eq!(r.bytes, 0);
        // Over the memory bound (10 bytes): the oldest goes.
        assert!(matches!(
            r.add(&chunk(4, 0, 2, b"12345678"), t),
            Chunk::Pending
        ));
        assert!(matches!(
            r.add(&chunk(5, 0, 2, b"12345678"), t),
            Chunk::Pending
        ));
        assert_eq!(r.expire(t), (0, 1));
        assert!(r.partial.contains_key(&[5, 0, 0, 0, 0, 0, 0, 0]));
    }
}
