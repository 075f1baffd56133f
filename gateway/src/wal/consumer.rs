//! WAL consumers: the hot indexer, the archive writer and the idempotency
//! table each read the log from their own checkpoint. [`Consumer`] is
//! what one of them does with records; [`Driver`] is the loop they share:
//! read what is durable, hand it over, let the consumer make its work
//! durable, move its checkpoint, report the lag, wait, stop, give up.
//!
//! The records come from a [`Source`]: the WAL ([`WalSource`]), or in
//! cluster mode one partition of the events topic
//! (`crate::cluster::group`), where a position is the partition's offset.
//!
//! A consumer is a small impl: `consume` a record (decode, index, add to an
//! object), `flush` when its own rule says so (commit every interval,
//! upload a full round) and return the position now durable, `pending`
//! while some of its work is not.
//!
//! ## Stopping
//! The driver runs until its stop flag is set *and* the consumer has
//! consumed and flushed everything durable, or for [`STOP_WITHIN`] after
//! the flag is set, whichever comes first: a consumer far behind (the hot
//! index after a burst) flushes what it has consumed ([`Flush::ending`]),
//! logs how far behind it stops, and ends; the WAL keeps the rest, which
//! it consumes at the next start. While stopping, failures are
//! counted: after [`Consumer::GIVE_UP_WHILE_STOPPING`] in a row the driver
//! ends without the rest (what was not flushed is still in the WAL, past
//! the checkpoint, and is consumed again at the next start). Outside
//! shutdown a failure is logged and retried after [`RETRY`].

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use prometheus_client::metrics::gauge::Gauge;

use super::{Lsn, Record, Wal, WalReader};

/// Pause after a failed step outside shutdown.
pub const RETRY: Duration = Duration::from_millis(500);
/// Longest wait for new records, so a stop is noticed soon.
pub const MAX_WAIT: Duration = Duration::from_millis(200);
/// How long a consumer may go on catching up once the gateway stops.
pub const STOP_WITHIN: Duration = Duration::from_secs(3);
/// How often [`Consumer::housekeeping`] runs (retention, expiry).
pub const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(60);

/// Why the driver asks a consumer to flush, and where it stands.
pub struct Flush<'a> {
    /// Everything before this position has been consumed.
    pub position: Lsn,
    /// Everything durable has been consumed.
    pub caught_up: bool,
    /// The consumer refused the next record ([`Consumer::accepts`]): its
    /// unit of work is full and must be flushed before it can go on.
    pub full: bool,
    /// The driver ends after this flush, caught up or not ([`STOP_WITHIN`]):
    /// make durable what was consumed, up to `position`.
    pub ending: bool,
    stop: &'a AtomicBool,
    /// The source's end when the flush began.
    end: Lsn,
}

impl Flush<'_> {
    /// The end of what the source held when the flush began (a long flush
    /// reports its lag).
    pub fn durable_lsn(&self) -> Lsn {
        self.end
    }

    /// Whether the gateway is stopping (read afresh: a long flush checks it
    /// while it retries).
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }
}

/// One reader of the WAL with its own checkpoint.
pub trait Consumer {
    /// Its checkpoint's name in the WAL and in log lines.
    const NAME: &'static str;

    /// The name of this one (two consumers of one type may differ, as the
    /// WAL's hot indexer and the events' do).
    fn name(&self) -> &'static str {
        Self::NAME
    }
    /// WAL payload bytes read per step (bounds memory and step time).
    const READ_BYTES: usize;
    /// Failures in a row, while stopping, before the driver gives up.
    const GIVE_UP_WHILE_STOPPING: usize = 3;

    /// Where it resumes: everything before this is durably processed.
    fn checkpoint(&self) -> Lsn;

    /// Whether `record` may join the work in hand; `false` makes the
    /// driver flush first.
    fn accepts(&self, _record: &Record) -> bool {
        true
    }

    /// Processes one durable record. An error is logged and the record is
    /// not offered again.
    fn consume(&mut self, record: Record) -> Result<(), String>;

    /// Makes consumed work durable if its rule says it is due (always when
    /// stopping and caught up, or when full). Returns the position now
    /// durable, to become the WAL checkpoint, or `None` if nothing moved.
    fn flush(&mut self, at: &Flush) -> Result<Option<Lsn>, String>;

    /// Whether consumed work is not yet durable.
    fn pending(&self) -> bool;

    /// Time until a flush is due with no new records (`None`: none pending).
    fn flush_in(&self) -> Option<Duration> {
        None
    }

    /// Periodic work: retention, expiry (every [`HOUSEKEEPING_EVERY`]).
    fn housekeeping(&mut self) {}

    /// The gauge of durable WAL bytes not yet past its checkpoint.
    fn lag_gauge(&self) -> Option<&Gauge> {
        None
    }

    /// Called once when the driver ends: `complete` when everything was
    /// flushed, `false` when it gave up.
    fn finish(self, _complete: bool)
    where
        Self: Sized,
    {
    }
}

/// Where a consumer's records come from.
pub trait Source {
    /// Reads what is available, up to about `max_bytes` of payload.
    fn read_available(&mut self, max_bytes: usize) -> io::Result<Vec<Record>>;
    /// Position of the next record to read.
    fn position(&self) -> Lsn;
    /// Everything before this position can be read now.
    fn end(&self) -> Lsn;
    /// Waits at most `wait` for something past `position`.
    fn wait_past(&mut self, position: Lsn, wait: Duration);
    /// The consumer's work is durable up to `lsn`: the source may let go
    /// of what is before it.
    fn set_checkpoint(&mut self, name: &'static str, lsn: Lsn) -> io::Result<()>;
    /// Bytes not yet past `checkpoint`, for the consumer's lag gauge
    /// (`None`: the source does not count bytes).
    fn lag_bytes(&self, checkpoint: Lsn) -> Option<u64>;
}

/// Cluster mode: what the consumer group knows of a topic partition
/// beyond its records, for the partition's consumer
/// (`crate::cluster::group`).
#[derive(Debug)]
pub struct PartitionOffsets {
    /// The group's offset, as the broker confirmed it (a commit returned).
    pub confirmed: std::sync::atomic::AtomicU64,
    /// The partition's high watermark as the broker last said it
    /// (`u64::MAX` until then; asked every second for the roles that use
    /// it).
    pub high: std::sync::atomic::AtomicU64,
}

/// The local WAL as a [`Source`]: what is fsynced, in order.
pub struct WalSource {
    wal: Wal,
    reader: WalReader,
}

impl WalSource {
    /// Registers the consumer's checkpoint with the WAL (segments it still
    /// needs are kept) and positions a reader there.
    pub fn new(wal: Wal, name: &'static str, checkpoint: Lsn) -> WalSource {
        wal.register_consumer(name, checkpoint);
        WalSource {
            reader: wal.reader(checkpoint),
            wal,
        }
    }
}

impl Source for WalSource {
    fn read_available(&mut self, max_bytes: usize) -> io::Result<Vec<Record>> {
        self.reader.read_available(max_bytes)
    }

    fn position(&self) -> Lsn {
        self.reader.position()
    }

    fn end(&self) -> Lsn {
        self.wal.durable_lsn()
    }

    fn wait_past(&mut self, position: Lsn, wait: Duration) {
        self.wal.wait_past(position, wait);
    }

    fn set_checkpoint(&mut self, name: &'static str, lsn: Lsn) -> io::Result<()> {
        self.wal.set_checkpoint(name, lsn)
    }

    fn lag_bytes(&self, checkpoint: Lsn) -> Option<u64> {
        Some(self.wal.durable_lsn().saturating_sub(checkpoint))
    }
}

/// The loop that feeds one consumer from its source (the WAL by default).
pub struct Driver<C: Consumer, S: Source = WalSource> {
    /// The consumer's name ([`Consumer::name`]).
    name: &'static str,
    consumer: C,
    source: S,
    /// Records read but not yet accepted.
    carry: VecDeque<Record>,
    checkpoint: Lsn,
    stop: Arc<AtomicBool>,
    /// Failures in a row while stopping.
    failures: usize,
}

impl<C: Consumer> Driver<C> {
    /// Feeds the consumer from the WAL, from its checkpoint.
    pub fn new(consumer: C, wal: Wal, stop: Arc<AtomicBool>) -> Driver<C> {
        let source = WalSource::new(wal, consumer.name(), consumer.checkpoint());
        Driver::with_source(consumer, source, stop)
    }
}

impl<C: Consumer, S: Source> Driver<C, S> {
    /// Feeds the consumer from `source`, positioned at its checkpoint.
    pub fn with_source(consumer: C, source: S, stop: Arc<AtomicBool>) -> Driver<C, S> {
        Driver {
            name: consumer.name(),
            checkpoint: consumer.checkpoint(),
            consumer,
            source,
            carry: VecDeque::new(),
            stop,
            failures: 0,
        }
    }

    /// The consumer, e.g. for a test.
    pub fn consumer_mut(&mut self) -> &mut C {
        &mut self.consumer
    }

    /// Where the next record to consume starts.
    fn position(&self) -> Lsn {
        self.carry.front().map_or(self.source.position(), |r| r.lsn)
    }

    /// Reads what is durable, consumes what the consumer accepts, and
    /// flushes if due. Returns the records consumed, and whether the flush
    /// failed.
    fn step(&mut self) -> (usize, Result<(), String>) {
        if self.carry.is_empty() {
            match self.source.read_available(C::READ_BYTES) {
                Ok(records) => self.carry.extend(records),
                Err(e) => return (0, Err(format!("reading the log failed: {e}"))),
            }
        }
        let mut consumed = 0;
        while let Some(record) = self.carry.front() {
            if !self.consumer.accepts(record) {
                break;
            }
            let record = self.carry.pop_front().expect("front exists");
            let lsn = record.lsn;
            if let Err(e) = self.consumer.consume(record) {
                tracing::error!(consumer = self.name, lsn, error = %e, "WAL record not processed");
            }
            consumed += 1;
        }
        (consumed, self.flush(false))
    }

    /// Asks the consumer to flush (`ending`: the driver ends after it) and
    /// moves the source's checkpoint to what it made durable.
    fn flush(&mut self, ending: bool) -> Result<(), String> {
        let position = self.position();
        let end = self.source.end();
        let at = Flush {
            position,
            caught_up: self.carry.is_empty() && position >= end,
            full: !self.carry.is_empty(),
            ending,
            stop: &self.stop,
            end,
        };
        if let Some(lsn) = self.consumer.flush(&at)? {
            self.checkpoint = lsn;
            if let Err(e) = self.source.set_checkpoint(self.name, lsn) {
                tracing::error!(consumer = self.name, error = %e, "checkpoint failed");
            }
        }
        Ok(())
    }

    /// Steps until everything durable now is consumed and flushed; the
    /// first failure is returned (start-up, before serving).
    pub fn catch_up(&mut self) -> Result<(), String> {
        loop {
            let (consumed, flushed) = self.step();
            flushed?;
            if consumed == 0 && self.carry.is_empty() && !self.consumer.pending() {
                return Ok(());
            }
        }
    }

    /// Flushes what was consumed and ends, behind the WAL's end
    /// ([`STOP_WITHIN`] has passed since the stop).
    fn end_behind(mut self) {
        if let Err(e) = self.flush(true) {
            tracing::error!(consumer = self.name, error = %e, "last flush failed");
        }
        let behind = self.source.end().saturating_sub(self.checkpoint);
        tracing::warn!(
            consumer = self.name,
            from = self.checkpoint,
            behind,
            within_s = STOP_WITHIN.as_secs(),
            "stopping before catching up; the log keeps the rest, consumed at the next start"
        );
        self.consumer.finish(false);
    }

    /// Runs until stopped and caught up, given up, or [`STOP_WITHIN`]
    /// after the stop.
    pub fn run(mut self) {
        let mut housekeeping: Option<Instant> = None;
        let mut stopped_at: Option<Instant> = None;
        loop {
            let stopping = self.stop.load(Ordering::Acquire);
            if stopping && stopped_at.get_or_insert_with(Instant::now).elapsed() >= STOP_WITHIN {
                return self.end_behind();
            }
            let checkpoint_before = self.checkpoint;
            let (consumed, flushed) = self.step();
            match flushed {
                Ok(()) => self.failures = 0,
                Err(e) if self.stop.load(Ordering::Acquire) => {
                    self.failures += 1;
                    tracing::error!(consumer = self.name, error = %e, failures = self.failures, "failed while stopping");
                    if self.failures >= C::GIVE_UP_WHILE_STOPPING {
                        tracing::error!(
                            consumer = self.name,
                            from = self.checkpoint,
                            "stopping without its last work; the log keeps it for the next start"
                        );
                        self.consumer.finish(false);
                        return;
                    }
                }
                Err(e) => {
                    tracing::error!(consumer = self.name, error = %e, "failed; retrying");
                    std::thread::sleep(RETRY);
                }
            }
            let caught_up = self.carry.is_empty() && self.position() >= self.source.end();
            if stopping && caught_up && !self.consumer.pending() {
                self.consumer.finish(true);
                return;
            }
            if housekeeping.is_none_or(|t| t.elapsed() >= HOUSEKEEPING_EVERY) {
                self.consumer.housekeeping();
                housekeeping = Some(Instant::now());
            }
            if let (Some(gauge), Some(lag)) = (
                self.consumer.lag_gauge(),
                self.source.lag_bytes(self.checkpoint),
            ) {
                gauge.set(lag as i64);
            }
            if consumed == 0 && self.carry.is_empty() {
                let wait = self
                    .consumer
                    .flush_in()
                    .map_or(MAX_WAIT, |d| d.min(MAX_WAIT));
                let position = self.position();
                self.source
                    .wait_past(position, wait.max(Duration::from_millis(1)));
            } else if consumed == 0 && self.checkpoint == checkpoint_before {
                // The consumer refuses the next record and its flush moved
                // nothing: never spin on it.
                std::thread::sleep(MAX_WAIT);
            }
        }
    }

    /// Runs [`Driver::run`] on a thread of its own, `thread`, at `nice`.
    pub fn spawn(self, thread: &str, nice: i32) -> std::io::Result<std::thread::JoinHandle<()>>
    where
        C: Send + 'static,
        S: Send + 'static,
    {
        crate::background::spawn(thread, nice, move || self.run())
    }
}
