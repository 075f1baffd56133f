//! rdkafka against a tansu broker: the questions docs/cluster.md needs answered
//! before cluster mode is built on them. Usage:
//!
//!   kafka-tansu-spike <tansu binary> <empty data dir>
//!
//! Env: STRATEGY (partition.assignment.strategy, default "range"),
//! IDEMPOTENCE (default "true"), BROKER_LOG (RUST_LOG for the broker, default
//! "warn"), SESSION_MS (default 10000), PHASES (comma list, default all).
//! Every phase prints one line starting with "RESULT".
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use futures::executor::block_on;
use futures::future::join_all;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::util::Timeout;

const TOPIC: &str = "spike";
const PARTS: i32 = 6;
const ADDR: &str = "127.0.0.1:19092";

fn env(k: &str, d: &str) -> String {
    std::env::var(k).unwrap_or_else(|_| d.to_string())
}

fn t0() -> Instant {
    static T: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *T.get_or_init(Instant::now)
}

macro_rules! say {
    ($($a:tt)*) => { println!("[{:7.2}s] {}", t0().elapsed().as_secs_f64(), format!($($a)*)) };
}

struct Broker {
    bin: String,
    dir: String,
    child: Option<Child>,
}

impl Broker {
    fn start(&mut self) {
        assert!(
            TcpStream::connect(ADDR).is_err(),
            "something already listens on {ADDR}"
        );
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(format!("{}/broker.log", self.dir))
            .unwrap();
        let url = format!("tcp://{ADDR}");
        let child = Command::new(&self.bin)
            .args(["broker", "--kafka-listener-url", &url])
            .args(["--kafka-advertised-listener-url", &url])
            .args(["--storage-engine", "sqlite://tansu.db"])
            .current_dir(&self.dir)
            .env("RUST_LOG", env("BROKER_LOG", "warn"))
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start tansu");
        self.child = Some(child);
        let started = Instant::now();
        while TcpStream::connect(ADDR).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "broker did not listen"
            );
            thread::sleep(Duration::from_millis(50));
        }
        say!("broker listening after {:?}", started.elapsed());
    }
    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().ok();
            c.wait().ok();
            say!("broker killed (SIGKILL)");
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn producer(timeout_ms: u32) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", ADDR)
        .set("enable.idempotence", env("IDEMPOTENCE", "true"))
        .set("acks", "all")
        .set("compression.type", "zstd")
        .set("linger.ms", "5")
        .set("message.timeout.ms", timeout_ms.to_string())
        .create()
        .expect("producer")
}

/// Sends seqs [from, from+n); returns the acked seqs and the distinct errors.
fn produce(p: &FutureProducer, from: u64, n: u64) -> (BTreeSet<u64>, BTreeMap<String, u64>) {
    let futs = (from..from + n).map(|seq| async move {
        let key = format!("tenant-a/app/{}", seq % 64);
        let payload = format!("{{\"seq\":{seq},\"message\":\"event number {seq}\"}}");
        let rec = FutureRecord::to(TOPIC).key(&key).payload(&payload);
        (
            seq,
            p.send(rec, Timeout::Never)
                .await
                .map(|_| ())
                .map_err(|(e, _)| e.to_string()),
        )
    });
    let mut acked = BTreeSet::new();
    let mut errors = BTreeMap::new();
    for (seq, r) in block_on(join_all(futs)) {
        match r {
            Ok(()) => {
                acked.insert(seq);
            }
            Err(e) => *errors.entry(e).or_insert(0) += 1,
        }
    }
    (acked, errors)
}

fn consumer(group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", ADDR)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", env("SESSION_MS", "10000"))
        .set("partition.assignment.strategy", env("STRATEGY", "range"))
        .create()
        .expect("consumer")
}

fn seq_of(m: &impl Message) -> u64 {
    let v = std::str::from_utf8(m.payload().unwrap()).unwrap();
    v[7..v.find(',').unwrap()].parse().unwrap()
}

/// Seqs seen by all members of a run, with how many times each was delivered.
type Seen = Arc<Mutex<HashMap<u64, u32>>>;

struct Member {
    stop: Arc<AtomicBool>,
    owns: Arc<Mutex<Vec<i32>>>,
    handle: thread::JoinHandle<()>,
}

/// One group member on its own thread: polls, records, stores and commits.
fn member(name: String, group: String, seen: Seen) -> Member {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let owns: Arc<Mutex<Vec<i32>>> = Arc::default();
    let mine = owns.clone();
    let handle = thread::spawn(move || {
        let c = consumer(&group);
        c.subscribe(&[TOPIC]).unwrap();
        let mut last: Vec<i32> = vec![];
        let mut last_commit = Instant::now();
        while !flag.load(Ordering::Relaxed) {
            match c.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    *seen.lock().unwrap().entry(seq_of(&m)).or_insert(0) += 1;
                    c.store_offset_from_message(&m).ok();
                }
                Some(Err(e)) => say!("{name}: poll error {e}"),
                None => {}
            }
            let now: Vec<i32> = c
                .assignment()
                .unwrap()
                .elements()
                .iter()
                .map(|e| e.partition())
                .collect();
            if now != last {
                say!("{name}: assigned {now:?}");
                *mine.lock().unwrap() = now.clone();
                last = now;
            }
            if last_commit.elapsed() > Duration::from_millis(500) {
                if let Err(e) = c.commit_consumer_state(CommitMode::Sync) {
                    if !e.to_string().contains("NoOffset") {
                        say!("{name}: commit error {e}");
                    }
                }
                last_commit = Instant::now();
            }
        }
        c.commit_consumer_state(CommitMode::Sync).ok();
        say!("{name}: leaving");
    });
    Member { stop, owns, handle }
}

impl Member {
    fn leave(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap();
    }
}

/// Waits until every seq in `want` was seen; returns (seconds, missing, dupes).
fn wait_seen(seen: &Seen, want: &BTreeSet<u64>, limit: Duration) -> (f64, usize, usize) {
    let start = Instant::now();
    loop {
        let s = seen.lock().unwrap();
        let missing = want.iter().filter(|q| !s.contains_key(q)).count();
        if missing == 0 || start.elapsed() > limit {
            let dupes = s.values().filter(|&&n| n > 1).count();
            return (start.elapsed().as_secs_f64(), missing, dupes);
        }
        drop(s);
        thread::sleep(Duration::from_millis(200));
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let bin = args.next().expect("tansu binary");
    if bin == "--member" {
        // A group member in its own process, for the kill -9 phase.
        let m = member(args.next().unwrap(), args.next().unwrap(), Arc::default());
        m.handle.join().unwrap();
        return;
    }
    let dir = args.next().expect("data dir");
    let phases = env(
        "PHASES",
        "produce,assign,group,leave,resume,metadata,second,restart,crash",
    );
    let on = |p: &str| phases.split(',').any(|x| x == p);
    t0();
    let mut broker = Broker {
        bin,
        dir,
        child: None,
    };
    broker.start();

    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", ADDR)
        .create()
        .unwrap();
    let topic = NewTopic::new(TOPIC, PARTS, TopicReplication::Fixed(1));
    let r = block_on(admin.create_topics(&[topic], &AdminOptions::new()));
    say!("RESULT create_topics {PARTS} partitions: {r:?}");

    // MSG_TIMEOUT=0: librdkafka never times a record out (so never bumps the
    // idempotent producer's epoch); the caller times out instead.
    let p = producer(env("MSG_TIMEOUT", "3000").parse().unwrap());
    let mut acked = BTreeSet::new();
    let mut next = 0u64;
    for n in [10_000u64, 100_000] {
        let s = Instant::now();
        let (a, e) = produce(&p, next, n);
        let secs = s.elapsed().as_secs_f64();
        say!(
            "RESULT produce {n}: acked {} in {secs:.2}s ({:.0}/s), errors {e:?}",
            a.len(),
            a.len() as f64 / secs
        );
        acked.extend(a);
        next += n;
    }

    if on("assign") {
        // librdkafka wants a group.id even for assign(); no join happens.
        let c = consumer("no-join");
        let mut tpl = TopicPartitionList::new();
        for part in 0..PARTS {
            tpl.add_partition_offset(TOPIC, part, Offset::Beginning)
                .unwrap();
        }
        c.assign(&tpl).unwrap();
        let (s, mut got) = (Instant::now(), BTreeSet::new());
        while got.len() < acked.len() && s.elapsed() < Duration::from_secs(60) {
            if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
                got.insert(seq_of(&m));
            }
        }
        let missing = acked.difference(&got).count();
        say!(
            "RESULT assign (no group) read {} distinct in {:.2}s, missing {missing}",
            got.len(),
            s.elapsed().as_secs_f64()
        );
    }

    let mut seen: Seen = Arc::default();
    let mut g1_from = 0u64;
    let mut members = vec![];
    if on("group") {
        members = (0..3)
            .map(|i| member(format!("c{i}"), "g1".into(), seen.clone()))
            .collect::<Vec<_>>();
        let (secs, missing, dupes) = wait_seen(&seen, &acked, Duration::from_secs(90));
        say!("RESULT group of 3: all {} read after {secs:.2}s? missing {missing}, delivered twice {dupes}", acked.len());
    }
    if on("leave") && members.len() == 3 {
        members.pop().unwrap().leave();
        let (a, e) = produce(&p, next, 3_000);
        next += 3_000;
        acked.extend(a);
        let (secs, missing, dupes) = wait_seen(&seen, &acked, Duration::from_secs(60));
        say!("RESULT one member left + 3000 more: missing {missing} after {secs:.2}s, dupes {dupes}, errors {e:?}");
    }
    if on("resume") {
        for m in members.drain(..) {
            m.leave();
        }
        let before: BTreeSet<u64> = seen.lock().unwrap().keys().copied().collect();
        g1_from = next;
        let (a, e) = produce(&p, next, 2_000);
        next += 2_000;
        acked.extend(a.iter().copied());
        let again: Seen = Arc::default();
        let c3 = member("c3".into(), "g1".into(), again.clone());
        let (secs, missing, _) = wait_seen(&again, &a, Duration::from_secs(60));
        let redelivered = again
            .lock()
            .unwrap()
            .keys()
            .filter(|q| before.contains(q))
            .count();
        say!("RESULT empty group resumed by new member: 2000 new missing {missing} after {secs:.2}s, already-read redelivered {redelivered}, errors {e:?}");
        members.push(c3);
        seen = again;
    }
    if on("metadata") {
        let c = consumer("meta");
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(TOPIC, 0, Offset::Offset(5))
            .unwrap();
        tpl.find_partition(TOPIC, 0)
            .unwrap()
            .set_metadata(r#"{"pending":{"start":5,"end":9}}"#);
        let w = c.commit(&tpl, CommitMode::Sync);
        let mut ask = TopicPartitionList::new();
        ask.add_partition(TOPIC, 0);
        let back = consumer("meta").committed_offsets(ask, Timeout::After(Duration::from_secs(10)));
        let got = back
            .as_ref()
            .ok()
            .and_then(|t| t.find_partition(TOPIC, 0))
            .map(|e| (e.offset(), e.metadata().to_string()));
        say!("RESULT commit with metadata: write {w:?}, read back {got:?}");
    }
    if on("second") {
        let other: Seen = Arc::default();
        let m = member("g2-c0".into(), "g2".into(), other.clone());
        let (secs, missing, dupes) = wait_seen(&other, &acked, Duration::from_secs(60));
        say!("RESULT second group reads all {} independently: missing {missing} after {secs:.2}s, dupes {dupes}", acked.len());
        m.leave();
    }
    if on("restart") {
        broker.kill9();
        let down = {
            let (p, from) = (p.clone(), next);
            thread::spawn(move || produce(&p, from, 100))
        };
        next += 100;
        thread::sleep(Duration::from_secs(4));
        say!("RESULT 100 sent by the long-lived producer while the broker is down: finished within 4 s? {}", down.is_finished());
        let inflight = {
            let from = next;
            next += 1_000;
            thread::spawn(move || produce(&producer(30_000), from, 1_000))
        };
        thread::sleep(Duration::from_secs(2));
        broker.start();
        let (a, e) = down.join().unwrap();
        say!(
            "RESULT those 100 once the broker is back: acked {}, errors {e:?}",
            a.len()
        );
        acked.extend(a);
        let (a, e) = inflight.join().unwrap();
        say!(
            "RESULT 1000 sent while down, broker back after 2 s: acked {}, errors {e:?}",
            a.len()
        );
        acked.extend(a);
        let (a, e) = produce(&p, next, 1_000);
        say!(
            "RESULT long-lived producer after restart: acked {} of 1000, errors {e:?}",
            a.len()
        );
        acked.extend(a);
        let want: BTreeSet<u64> = acked.range(g1_from..).copied().collect();
        let (secs, missing, dupes) = wait_seen(&seen, &want, Duration::from_secs(90));
        say!("RESULT group g1 member after restart: missing {missing} of {} after {secs:.2}s, dupes {dupes}", want.len());
        let fresh: Seen = Arc::default();
        let m = member("g3-c0".into(), "g3".into(), fresh.clone());
        let (secs, missing, _) = wait_seen(&fresh, &acked, Duration::from_secs(90));
        say!("RESULT everything acked survives the restart (new group g3): missing {missing} of {} after {secs:.2}s", acked.len());
        m.leave();
    }
    if on("crash") {
        let mine: Seen = Arc::default();
        let stay = member("g4-stay".into(), "g4".into(), mine);
        if env("CRASH", "leader") == "follower" {
            // The survivor joins first and leads; the member killed follows.
            let s = Instant::now();
            while stay.owns.lock().unwrap().len() != 6 && s.elapsed() < Duration::from_secs(30) {
                thread::sleep(Duration::from_millis(50));
            }
        }
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--member", "g4-crash", "g4"])
            .spawn()
            .unwrap();
        let s = Instant::now();
        while stay.owns.lock().unwrap().len() != 3 && s.elapsed() < Duration::from_secs(60) {
            thread::sleep(Duration::from_millis(50));
        }
        say!(
            "RESULT two members split 6 partitions after {:.2}s: {:?}",
            s.elapsed().as_secs_f64(),
            stay.owns.lock().unwrap()
        );
        thread::sleep(Duration::from_secs(2));
        child.kill().unwrap();
        child.wait().unwrap();
        let s = Instant::now();
        while stay.owns.lock().unwrap().len() != 6 && s.elapsed() < Duration::from_secs(90) {
            thread::sleep(Duration::from_millis(50));
        }
        say!("RESULT after kill -9 of the other member (session {} ms), the survivor owns {:?} after {:.2}s", env("SESSION_MS", "10000"), stay.owns.lock().unwrap(), s.elapsed().as_secs_f64());
        stay.leave();
    }
    for m in members {
        m.leave();
    }
    broker.kill9();
}
