//! The WAL's tests: torn tails, recycling, trimming, the cap, order.

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::record::HEADER_BYTES;
use super::*;
use crate::disk_format;

fn opts() -> WalOptions {
    WalOptions {
        max_bytes: 1 << 30,
        segment_bytes: 1 << 20,
        queue_len: 64,
        event_queue_len: 64,
        log_share: 1.0,
        metric_share: 1.0,
    }
}

fn read_all(wal: &Wal) -> Vec<Vec<u8>> {
    wal.reader(0)
        .read_available(usize::MAX)
        .unwrap()
        .into_iter()
        .map(|r| r.payload)
        .collect()
}

async fn write_n(dir: &Path, n: usize) {
    let (wal, thread) = Wal::open(dir, opts()).unwrap();
    for i in 0..n {
        wal.append(format!("record-{i}").into_bytes())
            .await
            .unwrap();
    }
    drop(wal);
    tokio::task::spawn_blocking(move || thread.join())
        .await
        .unwrap();
}

/// Files with this extension in `dir`, sorted.
fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    files
}

fn last_segment(dir: &Path) -> PathBuf {
    files(dir, "wal").pop().unwrap()
}

/// A consumer waiting on a closed WAL pauses (briefly) instead of
/// returning at once, which made a consumer not yet told to stop spin.
#[tokio::test]
async fn waiting_on_a_closed_wal_takes_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, writer) = Wal::open(dir.path(), opts()).unwrap();
    let lsn = wal.append("one").await.unwrap();
    let end = wal.durable_lsn();
    assert!(end > lsn);
    let start = std::time::Instant::now();
    wal.wait_past(lsn, Duration::from_secs(5));
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "data past lsn: no wait"
    );
    wal.close().await;
    tokio::task::spawn_blocking(move || writer.join())
        .await
        .unwrap();
    assert!(wal.is_closed());
    let start = std::time::Instant::now();
    wal.wait_past(end, Duration::from_secs(5));
    let waited = start.elapsed();
    assert!(waited >= CLOSED_WAIT, "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
}

#[tokio::test]
async fn records_survive_reopen_in_order() {
    let dir = tempfile::tempdir().unwrap();
    write_n(dir.path(), 100).await;
    let (wal, _t) = Wal::open(dir.path(), opts()).unwrap();
    let all = read_all(&wal);
    assert_eq!(all.len(), 100);
    assert_eq!(all[99], b"record-99");
    assert_eq!(wal.torn_bytes(), 0);
}

#[tokio::test]
async fn torn_tail_truncated_mid_record_is_cut_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    write_n(dir.path(), 10).await;
    let path = last_segment(dir.path());
    let len = fs::metadata(&path).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    let (wal, _t) = Wal::open(dir.path(), opts()).unwrap();
    assert_eq!(read_all(&wal).len(), 9);
    assert_eq!(wal.torn_bytes(), (HEADER_BYTES + 8) - 3);
    // The log stays writable after the cut, and the new record is readable.
    wal.append(b"after".to_vec()).await.unwrap();
    let all = read_all(&wal);
    assert_eq!(all.len(), 10);
    assert_eq!(all[9], b"after");
}

#[tokio::test]
async fn zeroed_length_and_flipped_checksum_are_cut() {
    for damage in ["zero-length", "flip-crc"] {
        let dir = tempfile::tempdir().unwrap();
        write_n(dir.path(), 10).await;
        let path = last_segment(dir.path());
        let mut bytes = fs::read(&path).unwrap();
        let record = HEADER_BYTES as usize + 8; // "record-N"
        let at = record * 7; // the 8th record
        match damage {
            "zero-length" => bytes[at..at + 4].copy_from_slice(&[0, 0, 0, 0]),
            _ => bytes[at + 4] ^= 0x01,
        }
        fs::write(&path, &bytes).unwrap();
        let (wal, _t) = Wal::open(dir.path(), opts()).unwrap();
        assert_eq!(read_all(&wal).len(), 7, "{damage}");
        assert_eq!(wal.torn_bytes(), (record * 3) as u64, "{damage}");
    }
}

#[tokio::test]
async fn segments_rotate_and_trim_only_past_every_consumer() {
    let dir = tempfile::tempdir().unwrap();
    let small = WalOptions {
        segment_bytes: 4096,
        ..opts()
    };
    let (wal, _t) = Wal::open(dir.path(), small).unwrap();
    wal.register_consumer("a", 0);
    wal.register_consumer("b", 0);
    let mut last = 0;
    for _ in 0..100 {
        last = wal.append(vec![7u8; 500]).await.unwrap();
    }
    let segments = files(dir.path(), "wal").len();
    assert!(segments > 5, "{segments}");
    wal.set_checkpoint("a", last).unwrap();
    assert_eq!(
        files(dir.path(), "wal").len(),
        segments,
        "b still needs them"
    );
    wal.set_checkpoint("b", last).unwrap();
    assert!(files(dir.path(), "wal").len() <= 2);
    // Trimmed segments: MAX_FREE kept for reuse, the rest deleted.
    assert_eq!(files(dir.path(), "free").len(), MAX_FREE);
    assert_eq!(
        wal.reader(last).read_available(usize::MAX).unwrap().len(),
        1
    );
}

#[tokio::test]
async fn recycled_segment_files_never_yield_their_old_records() {
    let dir = tempfile::tempdir().unwrap();
    let small = WalOptions {
        segment_bytes: 4096,
        ..opts()
    };
    let (wal, t) = Wal::open(dir.path(), small.clone()).unwrap();
    wal.register_consumer("c", 0);
    let mut end = 0;
    for i in 0..40 {
        let lsn = wal
            .append(format!("old-{i:04}-{}", "x".repeat(480)))
            .await
            .unwrap();
        end = lsn + HEADER_BYTES + 489;
    }
    wal.set_checkpoint("c", end).unwrap();
    let free = files(dir.path(), "free");
    assert_eq!(free.len(), MAX_FREE);
    let free_len = fs::metadata(&free[0]).unwrap().len();
    // Enough new records to rotate into a free file, few enough to
    // leave most of its old records after the new ones.
    // New records as long as the old, so the first stale one starts
    // right where the new ones end and is whole: only its checksum,
    // bound to its old LSN, tells it apart.
    let before = files(dir.path(), "wal");
    let mut new = 0;
    while files(dir.path(), "wal") == before {
        wal.append(format!("new-{new:04}-{}", "y".repeat(480)))
            .await
            .unwrap();
        new += 1;
    }
    wal.append(format!("new-{new:04}-{}", "y".repeat(480)))
        .await
        .unwrap();
    new += 1;
    let reused = last_segment(dir.path());
    assert!(!before.contains(&reused));
    assert_eq!(
        files(dir.path(), "free").len(),
        MAX_FREE - 1,
        "one file reused"
    );
    assert!(fs::metadata(&reused).unwrap().len() <= free_len);
    // The disk as a crash leaves it: every acked record is durable, and
    // the reused file still holds old records past the new ones (a clean
    // stop cuts them; the crash's copy is put back after it).
    let crashed = fs::read(&reused).unwrap();
    let durable = wal.durable_lsn() - reused_start(&reused);
    assert!((crashed.len() as u64) > durable, "old records past the new");
    drop(wal);
    tokio::task::spawn_blocking(move || t.join()).await.unwrap();
    assert_eq!(fs::metadata(&reused).unwrap().len(), durable, "cut at stop");
    fs::write(&reused, &crashed).unwrap();
    let (wal, _t) = Wal::open(dir.path(), small).unwrap();
    assert_eq!(wal.torn_bytes(), crashed.len() as u64 - durable);
    let payloads: Vec<String> = wal
        .reader(end)
        .read_available(usize::MAX)
        .unwrap()
        .into_iter()
        .map(|r| String::from_utf8(r.payload).unwrap())
        .collect();
    assert_eq!(payloads.len(), new);
    assert!(
        payloads.iter().all(|p| p.starts_with("new-")),
        "{payloads:?}"
    );
    assert_eq!(fs::metadata(&reused).unwrap().len(), durable);
}

fn reused_start(path: &Path) -> Lsn {
    let name = path.file_stem().unwrap().to_str().unwrap();
    name.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_stop_leaves_no_tail_to_cut() {
    // Rotating into recycled files, then stopping cleanly: the next start
    // finds nothing torn (no warning, no torn bytes counted).
    let dir = tempfile::tempdir().unwrap();
    let small = WalOptions {
        segment_bytes: 4096,
        ..opts()
    };
    let (wal, t) = Wal::open(dir.path(), small.clone()).unwrap();
    wal.register_consumer("c", 0);
    let mut end = 0;
    for i in 0..40 {
        let lsn = wal
            .append(format!("a-{i:04}-{}", "x".repeat(480)))
            .await
            .unwrap();
        end = lsn + HEADER_BYTES + 487;
    }
    wal.set_checkpoint("c", end).unwrap();
    assert!(!files(dir.path(), "free").is_empty());
    let before = files(dir.path(), "free").len();
    while files(dir.path(), "free").len() == before {
        wal.append("b".repeat(100)).await.unwrap();
    }
    wal.append("b".repeat(100)).await.unwrap();
    drop(wal);
    tokio::task::spawn_blocking(move || t.join()).await.unwrap();
    let (wal, _t) = Wal::open(dir.path(), small).unwrap();
    assert_eq!(wal.torn_bytes(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_tailing_recycled_segments_reads_every_record_once() {
    // A reader that buffers ahead must never take a recycled file's old
    // bytes past the durable end for records.
    let dir = tempfile::tempdir().unwrap();
    let small = WalOptions {
        segment_bytes: 4096,
        ..opts()
    };
    let (wal, _t) = Wal::open(dir.path(), small).unwrap();
    wal.register_consumer("tail", 0);
    const N: usize = 400;
    let tail = wal.clone();
    let reader = std::thread::spawn(move || {
        let mut r = tail.reader(0);
        let mut got = Vec::new();
        while got.len() < N && tail.torn_bytes() == 0 {
            let records = r.read_available(usize::MAX).unwrap();
            if records.is_empty() {
                tail.wait_past(r.position(), Duration::from_millis(20));
            }
            for rec in records {
                got.push(String::from_utf8(rec.payload).unwrap());
                tail.set_checkpoint("tail", rec.end).unwrap();
            }
        }
        got
    });
    let mut sent = Vec::new();
    for i in 0..N {
        let payload = format!("rec-{i:04}-{}", "z".repeat(100 + i % 300));
        wal.append(payload.clone()).await.unwrap();
        sent.push(payload);
    }
    let got = tokio::task::spawn_blocking(move || reader.join().unwrap())
        .await
        .unwrap();
    assert_eq!(wal.torn_bytes(), 0, "a reader took old bytes for records");
    assert_eq!(got, sent);
    assert!(!files(dir.path(), "free").is_empty() || files(dir.path(), "wal").len() < 3);
}

#[tokio::test]
async fn a_wal_of_another_format_is_refused_not_misread() {
    let dir = tempfile::tempdir().unwrap();
    write_n(dir.path(), 3).await;
    fs::remove_file(dir.path().join(disk_format::FILE)).unwrap();
    let err = Wal::open(dir.path(), opts()).err().expect("refused");
    assert!(err.to_string().contains("format 1"), "{err}");
    fs::write(dir.path().join(disk_format::FILE), "9\n").unwrap();
    let err = Wal::open(dir.path(), opts()).err().expect("refused");
    assert!(err.to_string().contains("format 9"), "{err}");
}

#[tokio::test]
async fn a_format_2_wal_is_read_and_marked_3() {
    let dir = tempfile::tempdir().unwrap();
    write_n(dir.path(), 3).await;
    fs::write(dir.path().join(disk_format::FILE), "2\n").unwrap();
    let (wal, _t) = Wal::open(dir.path(), opts()).expect("format 2 is read");
    let records = wal.reader(0).read_available(usize::MAX).unwrap();
    assert_eq!(records.len(), 3);
    let marked = fs::read_to_string(dir.path().join(disk_format::FILE)).unwrap();
    assert_eq!(marked.trim(), super::segment::FORMAT);
}

#[tokio::test]
async fn appends_past_the_cap_fail_with_full() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = WalOptions {
        max_bytes: 10_000,
        segment_bytes: 4096,
        ..opts()
    };
    let (wal, _t) = Wal::open(dir.path(), tiny).unwrap();
    wal.register_consumer("slow", 0);
    let mut full = false;
    for _ in 0..100 {
        match wal.append(vec![1u8; 1000]).await {
            Ok(_) => {}
            Err(WalError::Full { .. }) => {
                full = true;
                break;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(full);
    assert!(wal.disk_bytes() <= 10_000);
}

/// Fills the WAL with `class` until it refuses; returns the bytes then used.
async fn fill(wal: &Wal, class: Class) -> u64 {
    loop {
        match wal.submit_class(vec![7u8; 500], class) {
            Ok(done) => {
                done.await.unwrap();
            }
            Err(WalError::Full { used, .. }) => return used,
            Err(e) => panic!("{e}"),
        }
    }
}

#[tokio::test]
async fn each_class_may_fill_its_share_of_the_wal_events_all_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let shared = WalOptions {
        max_bytes: 20_000,
        segment_bytes: 4096,
        log_share: 0.5,
        metric_share: 0.75,
        ..opts()
    };
    let (wal, _t) = Wal::open(dir.path(), shared).unwrap();
    wal.register_consumer("slow", 0);
    let logs = fill(&wal, Class::Log).await;
    assert!(
        (9_400..=10_000).contains(&logs),
        "logs stop at half: {logs}"
    );
    let metrics = fill(&wal, Class::Metric).await;
    assert!(
        (14_400..=15_000).contains(&metrics),
        "metrics at 3/4: {metrics}"
    );
    assert!(wal.submit_class(vec![7u8; 500], Class::Log).is_err());
    let events = fill(&wal, Class::Event).await;
    assert!(
        (19_400..=20_000).contains(&events),
        "events at the cap: {events}"
    );
}

#[tokio::test]
async fn events_wait_in_their_own_queue_when_the_log_queue_is_full() {
    let dir = tempfile::tempdir().unwrap();
    let one = WalOptions {
        queue_len: 1,
        event_queue_len: 8,
        ..opts()
    };
    let (wal, _t) = Wal::open(dir.path(), one).unwrap();
    // Submitting without yielding: the writer cannot keep up, so the
    // one-slot log queue refuses, while the event lane takes eight.
    let mut logs = Vec::new();
    let mut log_refused = false;
    for i in 0..64 {
        match wal.submit_class(format!("log-{i}").into_bytes(), Class::Log) {
            Ok(d) => logs.push(d),
            Err(WalError::QueueFull) => log_refused = true,
            Err(e) => panic!("{e}"),
        }
    }
    let events: Vec<_> = (0..8)
        .map(|i| {
            wal.submit_class(format!("event-{i}").into_bytes(), Class::Event)
                .unwrap()
        })
        .collect();
    assert!(log_refused, "the log queue held one");
    for d in logs.into_iter().chain(events) {
        d.await.unwrap();
    }
    let payloads: Vec<String> = wal
        .reader(0)
        .read_available(usize::MAX)
        .unwrap()
        .iter()
        .map(|r| String::from_utf8(r.payload.clone()).unwrap())
        .collect();
    let events: Vec<&String> = payloads.iter().filter(|p| p.starts_with("event")).collect();
    let want: Vec<String> = (0..8).map(|i| format!("event-{i}")).collect();
    assert_eq!(
        events,
        want.iter().collect::<Vec<_>>(),
        "events in their order"
    );
}

#[tokio::test]
async fn submitted_records_keep_their_order_while_waiting_together() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _t) = Wal::open(dir.path(), opts()).unwrap();
    let pending: Vec<_> = (0..50)
        .map(|i| wal.submit(format!("rec-{i:02}").into_bytes()).unwrap())
        .collect();
    let mut lsns = Vec::new();
    for p in pending {
        lsns.push(p.await.unwrap());
    }
    assert!(lsns.windows(2).all(|w| w[0] < w[1]), "{lsns:?}");
    let records = wal.reader(0).read_available(usize::MAX).unwrap();
    let payloads: Vec<String> = records
        .iter()
        .map(|r| String::from_utf8(r.payload.clone()).unwrap())
        .collect();
    let sent: Vec<String> = (0..50).map(|i| format!("rec-{i:02}")).collect();
    assert_eq!(payloads, sent);
}

#[tokio::test]
async fn concurrent_appends_share_fsyncs_and_all_get_distinct_lsns() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _t) = Wal::open(
        dir.path(),
        WalOptions {
            queue_len: 256,
            ..opts()
        },
    )
    .unwrap();
    let mut tasks = Vec::new();
    for i in 0..200 {
        let wal = wal.clone();
        tasks.push(tokio::spawn(async move {
            wal.append(format!("{i:08}").into_bytes()).await.unwrap()
        }));
    }
    let mut lsns = Vec::new();
    for t in tasks {
        lsns.push(t.await.unwrap());
    }
    lsns.sort_unstable();
    lsns.dedup();
    assert_eq!(lsns.len(), 200);
    assert_eq!(read_all(&wal).len(), 200);
}

/// A consumer that takes its time: 50 ms a record, durable only when it
/// flushes at the end.
struct Slow {
    consumed: std::sync::Arc<std::sync::Mutex<Vec<Lsn>>>,
    ended_behind: std::sync::Arc<std::sync::atomic::AtomicBool>,
    position: Lsn,
}

impl consumer::Consumer for Slow {
    const NAME: &'static str = "slow";
    const READ_BYTES: usize = 64;
    fn checkpoint(&self) -> Lsn {
        0
    }
    fn consume(&mut self, record: Record) -> Result<(), String> {
        std::thread::sleep(Duration::from_millis(50));
        self.consumed.lock().unwrap().push(record.lsn);
        self.position = record.end;
        Ok(())
    }
    fn flush(&mut self, at: &consumer::Flush) -> Result<Option<Lsn>, String> {
        Ok(((at.caught_up && at.stopping()) || at.ending).then_some(at.position))
    }
    fn pending(&self) -> bool {
        true
    }
    fn finish(self, complete: bool) {
        self.ended_behind
            .store(!complete, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Stopping does not wait for a consumer far behind: it ends within
/// `STOP_WITHIN`, its checkpoint at what it consumed, the rest left in the
/// WAL for the next start.
#[tokio::test]
async fn a_consumer_far_behind_stops_within_the_bound_and_keeps_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _t) = Wal::open(dir.path(), opts()).unwrap();
    let mut last = 0;
    // 200 records at 50 ms each: 10 s of work, more than STOP_WITHIN.
    for i in 0..200 {
        last = wal
            .append(format!("record-{i}").into_bytes())
            .await
            .unwrap();
    }
    let consumed = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let ended_behind = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let slow = Slow {
        consumed: consumed.clone(),
        ended_behind: ended_behind.clone(),
        position: 0,
    };
    let driver = consumer::Driver::new(slow, wal.clone(), stop);
    tokio::task::spawn_blocking(move || driver.run())
        .await
        .unwrap();
    let consumed = consumed.lock().unwrap().clone();
    assert!(!consumed.is_empty());
    assert!(
        consumed.len() < 200,
        "it consumed everything: {}",
        consumed.len()
    );
    assert!(ended_behind.load(std::sync::atomic::Ordering::Relaxed));
    // Its checkpoint is where it stopped: the next start reads from there.
    let next = wal.reader(0).read_available(usize::MAX).unwrap();
    let resume = next[consumed.len()].lsn;
    assert_eq!(wal.checkpoint_of("slow"), Some(resume));
    assert!(resume <= last);
}
