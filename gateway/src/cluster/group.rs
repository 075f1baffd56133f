//! # A role's consumer group member: one consumer per owned partition
//!
//! The indexer and archiver roles read the events topic as members of
//! their groups (`{group_prefix}-index`, `{group_prefix}-archive`).
//! Kafka's group coordinator decides which node owns which partition;
//! this member turns that into work: at **assignment** it asks the role
//! where the partition's reading starts (the indexer's own checkpoint,
//! the archiver's group offset), seeks there and runs the role's
//! consumer for the partition on a thread of its own
//! ([`crate::wal::consumer::Driver`]), fed through a [`PartitionSource`];
//! at **revocation** it stops that consumer (which flushes) and waits for
//! it before the partition moves on. The group's committed offsets follow
//! the consumers' checkpoints.
//!
//! The assignment strategy is `cooperative-sticky`: with the eager ones
//! the test broker never hands a crashed member's partitions on (the
//! spike in `docs/cluster.md`), and with it a rebalance only moves the
//! partitions that change owner.
//!
//! One thread polls the member and hands each record to its partition's
//! channel. A partition whose consumer is more than [`MAX_QUEUED_BYTES`]
//! behind is paused until it has read half of that, so a slow consumer
//! bounds memory and never stalls the others.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;

use super::config::ClusterConfig;
use crate::config::value::kafka_client;
use crate::wal::consumer::{Consumer, Driver, PartitionOffsets, Source};
use crate::wal::{Lsn, Record};

/// Record bytes queued for one partition's consumer before the partition
/// is paused.
pub const MAX_QUEUED_BYTES: u64 = 32 << 20;
/// How often the group's offsets are committed from the checkpoints.
const COMMIT_EVERY: Duration = Duration::from_secs(1);
/// One poll's wait, so a stop is noticed soon.
const POLL: Duration = Duration::from_millis(100);
/// Longest wait for a partition's high watermark.
const WATERMARK_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest wait for the group's committed offsets at assignment.
const COMMITTED_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for the consumer's close (leaving the group) at a stop:
/// longer than the session timeout, so that a close that is only slow
/// (seen at 5-8 s against the test broker) still leaves the group.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(15);

/// What a role does with the partitions it owns.
pub trait Work: Send + Sync + 'static {
    /// The role's name, in thread names and log lines (`index`).
    const ROLE: &'static str;
    /// Whether it starts from the group's offset (then read at each
    /// assignment; otherwise [`Work::start`] gets `Ok(None)`).
    const GROUP_OFFSET: bool = false;
    /// Whether its consumers use the partition's high watermark
    /// ([`PartitionOffsets::high`]: one request a second per partition).
    const HIGH_WATERMARK: bool = false;
    /// What runs over one partition's records.
    type Consumer: Consumer + Send + 'static;
    /// Where reading partition `p` starts: the offset of the first record
    /// not yet done, `None` for the earliest record Kafka still has.
    /// `committed` is the group's committed offset (`Ok(None)`: none yet,
    /// or the role does not start there, [`Work::GROUP_OFFSET`]).
    fn start(&self, p: u32, committed: Result<Option<Lsn>, String>) -> io::Result<Option<Lsn>>;
    /// Partition `p`'s consumer, from `checkpoint`.
    fn consumer(&self, p: u32, checkpoint: Lsn, offsets: Arc<PartitionOffsets>) -> Self::Consumer;
    /// The partitions owned changed (the search's scope).
    fn owned(&self, _owned: &BTreeSet<u32>) {}
}

/// One partition's records as a consumer's [`Source`]: positions are
/// offsets, a record at offset `o` ends at `o + 1`.
pub struct PartitionSource {
    rx: Receiver<Record>,
    buffered: VecDeque<Record>,
    position: Lsn,
    queue: Arc<Queue>,
}

/// What the polling thread and a partition's source share.
struct Queue {
    /// Just past the last record handed over.
    end: AtomicU64,
    /// Payload bytes handed over and not yet read.
    bytes: AtomicU64,
    /// The consumer's checkpoint: the group offset to commit.
    checkpoint: AtomicU64,
    offsets: Arc<PartitionOffsets>,
}

impl PartitionSource {
    fn take(&mut self, record: Record) {
        self.queue
            .bytes
            .fetch_sub(record.payload.len() as u64, Ordering::AcqRel);
        // A record the consumer has passed (fetched again after a pause) is
        // not offered twice.
        let next = self.buffered.back().map_or(self.position, |r| r.end);
        if record.lsn >= next {
            self.buffered.push_back(record);
        }
    }
}

impl Source for PartitionSource {
    fn read_available(&mut self, max_bytes: usize) -> io::Result<Vec<Record>> {
        let mut buffered: usize = self.buffered.iter().map(|r| r.payload.len()).sum();
        while buffered < max_bytes
            && let Ok(r) = self.rx.try_recv()
        {
            buffered += r.payload.len();
            self.take(r);
        }
        let mut out = Vec::new();
        let mut bytes = 0;
        while bytes < max_bytes
            && let Some(r) = self.buffered.pop_front()
        {
            bytes += r.payload.len();
            self.position = r.end;
            out.push(r);
        }
        Ok(out)
    }

    fn position(&self) -> Lsn {
        self.position
    }

    fn end(&self) -> Lsn {
        self.queue.end.load(Ordering::Acquire).max(self.position)
    }

    fn wait_past(&mut self, _position: Lsn, wait: Duration) {
        if !self.buffered.is_empty() {
            return;
        }
        match self.rx.recv_timeout(wait) {
            Ok(r) => self.take(r),
            Err(RecvTimeoutError::Timeout) => {}
            // Revoked: the driver is being stopped; do not spin.
            Err(RecvTimeoutError::Disconnected) => std::thread::sleep(wait),
        }
    }

    fn set_checkpoint(&mut self, _name: &'static str, lsn: Lsn) -> io::Result<()> {
        self.queue.checkpoint.store(lsn, Ordering::Release);
        Ok(())
    }

    fn lag_bytes(&self, _checkpoint: Lsn) -> Option<u64> {
        None
    }
}

/// A partition this member owns and its running consumer.
struct Owned {
    tx: Sender<Record>,
    queue: Arc<Queue>,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
    paused: bool,
    /// The checkpoint last committed to the group.
    committed: Lsn,
}

/// The member's callbacks: assignment starts consumers, revocation stops them.
struct Member<W: Work> {
    work: Arc<W>,
    topic: String,
    /// Priority of the partitions' consumer threads.
    nice: i32,
    owned: std::sync::Mutex<BTreeMap<u32, Owned>>,
}

impl<W: Work> ClientContext for Member<W> {
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(role = W::ROLE, %error, reason, "kafka consumer");
    }
}

impl<W: Work> ConsumerContext for Member<W> {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let partitions: Vec<u32> = tpl
            .elements_for_topic(&self.topic)
            .iter()
            .map(|e| e.partition() as u32)
            .collect();
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let committed = W::GROUP_OFFSET.then(|| self.committed(consumer, tpl));
                let committed = |p| committed.as_ref().map_or(Ok(None), |c| c(p));
                for &p in &partitions {
                    let offset = match self.assign(p, committed(p)) {
                        Ok(Some(n)) => Offset::Offset(n as i64),
                        Ok(None) => Offset::Beginning,
                        Err(e) => {
                            // Its records are dropped unread until a later
                            // rebalance gives it to this or another node.
                            tracing::error!(role = W::ROLE, partition = p, error = %e, "cannot start the partition's consumer; it waits for the next rebalance");
                            continue;
                        }
                    };
                    let _ = tpl.set_partition_offset(&self.topic, p as i32, offset);
                }
                if let Err(e) = consumer.incremental_assign(tpl) {
                    tracing::error!(role = W::ROLE, error = %e, "assignment failed");
                }
                tracing::info!(role = W::ROLE, ?partitions, "partitions assigned");
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                self.release(consumer, &partitions);
                if let Err(e) = consumer.incremental_unassign(tpl) {
                    tracing::error!(role = W::ROLE, error = %e, "unassignment failed");
                }
                tracing::info!(role = W::ROLE, ?partitions, "partitions revoked");
            }
            other => tracing::error!(role = W::ROLE, error = ?other, "rebalance failed"),
        }
        self.work
            .owned(&self.owned.lock().unwrap().keys().copied().collect());
    }
}

impl<W: Work> Member<W> {
    /// The group's committed offsets of the partitions in `tpl`, by partition.
    fn committed(
        &self,
        consumer: &BaseConsumer<Self>,
        tpl: &TopicPartitionList,
    ) -> impl Fn(u32) -> Result<Option<Lsn>, String> + use<W> {
        let mut got = consumer.committed_offsets(tpl.clone(), COMMITTED_TIMEOUT);
        for _ in 1..3 {
            if got.is_ok() {
                break;
            }
            got = consumer.committed_offsets(tpl.clone(), COMMITTED_TIMEOUT);
        }
        let got = got.map_err(|e| format!("cannot read the group's offsets: {e}"));
        move |p| match &got {
            Err(e) => Err(e.clone()),
            Ok(list) => Ok(list
                .elements()
                .iter()
                .find(|e| e.partition() as u32 == p)
                .and_then(|e| match e.offset() {
                    Offset::Offset(n) if n >= 0 => Some(n as u64),
                    _ => None,
                })),
        }
    }

    /// Starts partition `p`'s consumer; returns where it reads from.
    fn assign(&self, p: u32, committed: Result<Option<Lsn>, String>) -> io::Result<Option<Lsn>> {
        let mut owned = self.owned.lock().unwrap();
        if owned.contains_key(&p) {
            return Ok(Some(owned[&p].queue.checkpoint.load(Ordering::Acquire)));
        }
        let offsets = Arc::new(PartitionOffsets {
            confirmed: AtomicU64::new(committed.as_ref().ok().copied().flatten().unwrap_or(0)),
            high: AtomicU64::new(u64::MAX),
        });
        let start = self.work.start(p, committed)?;
        let checkpoint = start.unwrap_or(0);
        let (tx, rx) = mpsc::channel();
        let queue = Arc::new(Queue {
            end: AtomicU64::new(checkpoint),
            bytes: AtomicU64::new(0),
            checkpoint: AtomicU64::new(checkpoint),
            offsets: offsets.clone(),
        });
        let source = PartitionSource {
            rx,
            buffered: VecDeque::new(),
            position: checkpoint,
            queue: queue.clone(),
        };
        let stop = Arc::new(AtomicBool::new(false));
        let consumer = self.work.consumer(p, checkpoint, offsets);
        let thread = Driver::with_source(consumer, source, stop.clone())
            .spawn(&format!("{}-k{p}", W::ROLE), self.nice)?;
        owned.insert(
            p,
            Owned {
                tx,
                queue,
                stop,
                thread,
                paused: false,
                committed: checkpoint,
            },
        );
        Ok(start)
    }

    /// Stops the consumers of `partitions` (each flushes what it read)
    /// and commits their checkpoints.
    fn release(&self, consumer: &BaseConsumer<Self>, partitions: &[u32]) {
        let gone: Vec<(u32, Owned)> = {
            let mut owned = self.owned.lock().unwrap();
            partitions
                .iter()
                .filter_map(|p| owned.remove(p).map(|o| (*p, o)))
                .collect()
        };
        for (_, o) in &gone {
            o.stop.store(true, Ordering::Release);
        }
        let mut tpl = TopicPartitionList::new();
        for (p, o) in gone {
            drop(o.tx);
            if o.thread.join().is_err() {
                tracing::error!(role = W::ROLE, partition = p, "partition consumer panicked");
            }
            let at = o.queue.checkpoint.load(Ordering::Acquire);
            if at > 0 {
                let _ = tpl.add_partition_offset(&self.topic, p as i32, Offset::Offset(at as i64));
            }
        }
        if tpl.count() > 0
            && let Err(e) = consumer.commit(&tpl, CommitMode::Sync)
        {
            tracing::warn!(role = W::ROLE, error = %e, "offset commit failed");
        }
    }

    /// Hands a record to its partition's consumer; pauses the partition
    /// when its queue is full.
    fn dispatch(&self, consumer: &BaseConsumer<Self>, record: Record, p: u32) {
        let mut owned = self.owned.lock().unwrap();
        let Some(o) = owned.get_mut(&p) else {
            return; // revoked meanwhile: its next owner reads it
        };
        let len = record.payload.len() as u64;
        o.queue.end.fetch_max(record.end, Ordering::AcqRel);
        let queued = o.queue.bytes.fetch_add(len, Ordering::AcqRel) + len;
        let _ = o.tx.send(record);
        if queued > MAX_QUEUED_BYTES && !o.paused {
            o.paused = self.pause(consumer, p, true);
        }
    }

    fn pause(&self, consumer: &BaseConsumer<Self>, p: u32, pause: bool) -> bool {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&self.topic, p as i32);
        let done = if pause {
            consumer.pause(&tpl)
        } else {
            consumer.resume(&tpl)
        };
        if let Err(e) = done {
            tracing::warn!(role = W::ROLE, partition = p, pause, error = %e, "pause/resume failed");
            return !pause;
        }
        pause
    }

    /// Resumes drained partitions and commits moved checkpoints (a
    /// synchronous commit, a round trip a second: once it returns, the
    /// offsets are confirmed to the partitions' consumers).
    fn tend(&self, consumer: &BaseConsumer<Self>) {
        let mut tpl = TopicPartitionList::new();
        let mut moved = Vec::new();
        let mut owned = self.owned.lock().unwrap();
        for (&p, o) in owned.iter_mut() {
            if o.paused && o.queue.bytes.load(Ordering::Acquire) < MAX_QUEUED_BYTES / 2 {
                o.paused = self.pause(consumer, p, false);
            }
            let at = o.queue.checkpoint.load(Ordering::Acquire);
            if at > o.committed {
                let _ = tpl.add_partition_offset(&self.topic, p as i32, Offset::Offset(at as i64));
                moved.push((p, at));
            }
        }
        let offsets: Vec<(u32, Arc<PartitionOffsets>)> = owned
            .iter()
            .filter(|_| W::HIGH_WATERMARK)
            .map(|(&p, o)| (p, o.queue.offsets.clone()))
            .collect();
        // Requests to the broker are made without the lock (the rebalance
        // callbacks, on this thread too, take it).
        drop(owned);
        for (p, offsets) in offsets {
            if let Ok((_, high)) =
                consumer.fetch_watermarks(&self.topic, p as i32, WATERMARK_TIMEOUT)
            {
                offsets.high.store(high.max(0) as u64, Ordering::Release);
            }
        }
        if tpl.count() == 0 {
            return;
        }
        if let Err(e) = consumer.commit(&tpl, CommitMode::Sync) {
            tracing::warn!(role = W::ROLE, error = %e, "offset commit failed; will retry");
            return;
        }
        // Nothing was revoked meanwhile: that happens on this thread.
        let mut owned = self.owned.lock().unwrap();
        for (p, at) in moved {
            if let Some(o) = owned.get_mut(&p) {
                o.queue.offsets.confirmed.fetch_max(at, Ordering::AcqRel);
                o.committed = o.committed.max(at);
            }
        }
    }
}

/// Joins group `{group_prefix}-{W::ROLE}` on a thread of its own, which
/// runs until `stop`: then every partition's consumer flushes and the
/// member leaves the group. The partitions' consumers run at `nice`.
pub fn start<W: Work>(
    config: &ClusterConfig,
    work: W,
    nice: i32,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<JoinHandle<()>> {
    let member = Member {
        work: Arc::new(work),
        topic: config.topic.clone(),
        nice,
        owned: Default::default(),
    };
    // A default the user's `client` may change, then theirs, then what
    // the design depends on.
    let mut client = kafka_client(
        &config.brokers,
        &[("session.timeout.ms", "10000")],
        &config.client,
    );
    client
        .set("group.id", format!("{}-{}", config.group_prefix, W::ROLE))
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest");
    let consumer: BaseConsumer<Member<W>> = client.create_with_context(member)?;
    consumer.subscribe(&[&config.topic])?;
    Ok(crate::background::spawn(
        &format!("{}-group", W::ROLE),
        0,
        move || run(consumer, stop),
    )?)
}

/// Polls the member until `stop`, then stops every consumer and leaves.
fn run<W: Work>(consumer: BaseConsumer<Member<W>>, stop: Arc<AtomicBool>) {
    let mut last_tend = Instant::now();
    while !stop.load(Ordering::Acquire) {
        match consumer.poll(POLL) {
            Some(Ok(m)) => {
                let offset = m.offset() as u64;
                let record = Record {
                    lsn: offset,
                    end: offset + 1,
                    payload: m.payload().unwrap_or_default().to_vec(),
                };
                consumer
                    .context()
                    .dispatch(&consumer, record, m.partition() as u32);
            }
            Some(Err(e)) => tracing::warn!(role = W::ROLE, error = %e, "kafka consumer"),
            None => {}
        }
        if last_tend.elapsed() >= COMMIT_EVERY {
            consumer.context().tend(&consumer);
            last_tend = Instant::now();
        }
    }
    let member = consumer.context();
    let all: Vec<u32> = member.owned.lock().unwrap().keys().copied().collect();
    member.release(&consumer, &all);
    member.work.owned(&BTreeSet::new());
    consumer.unsubscribe();
    // Dropping the consumer closes it, which leaves the group. librdkafka
    // can wait for ever there: it asks for a revocation during the close
    // and then does not serve the unassignment the callback makes (seen
    // once against the test broker, a node that never stopped). Everything
    // is flushed and committed above, so the close gets CLOSE_TIMEOUT on a
    // thread of its own and is then left to the process's exit; the
    // partitions then move after the session timeout instead of at once.
    let (closed_tx, closed_rx) = mpsc::channel();
    let closer = std::thread::Builder::new()
        .name(format!("{}-close", W::ROLE))
        .spawn(move || {
            drop(consumer);
            let _ = closed_tx.send(());
        });
    if closer.is_ok() && closed_rx.recv_timeout(CLOSE_TIMEOUT).is_err() {
        tracing::warn!(role = W::ROLE, timeout = ?CLOSE_TIMEOUT, "the Kafka consumer did not close in time; left to the exit");
    }
    tracing::info!(role = W::ROLE, "left the group");
}
