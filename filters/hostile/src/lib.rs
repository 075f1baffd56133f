//! A misbehaving guest for the sandbox tests. The mode comes from the
//! config (`mode = "loop"`) or, when unset, from the first event's text:
//!
//! - `alloc`: allocates until the memory cap stops it;
//! - `loop`: never returns (the CPU deadline stops it);
//! - `panic`: panics (a trap);
//! - `huge`: splits each event into 1,000 copies of 1 KiB (past the output cap);
//! - `wrong-count`: answers one verdict fewer than it got events;
//! - `host-loop`: calls the host's `log` forever;
//! - `init-error`: refuses its config;
//! - `drop`: drops every event, although it declares that it never drops
//!   (`DROPS_EVENTS = false`), as a lying filter would;
//! - anything else: keeps each event, adding `batches`, the number of
//!   batches this instance has seen (1 after a fresh start); an event
//!   `retype T` also gets the log type `T`.

use logway_filter_sdk::{
    BatchContext, Config, Edit, Event, Filter, LogLevel, Verdict, export_filter, log, set,
};

struct Hostile {
    mode: Option<String>,
    batches: i64,
}

impl Filter for Hostile {
    const DROPS_EVENTS: bool = false;

    fn new(config: &Config) -> Result<Self, String> {
        let mode = config.get("mode").map(str::to_string);
        if mode.as_deref() == Some("init-error") {
            return Err("init-error mode refuses every config".into());
        }
        Ok(Hostile { mode, batches: 0 })
    }

    fn process(&mut self, _ctx: &BatchContext, _event: &Event) -> Verdict {
        Verdict::Keep
    }

    fn process_batch(&mut self, _ctx: &BatchContext, events: &[Event]) -> Vec<Verdict> {
        self.batches += 1;
        let mode = self
            .mode
            .clone()
            .or_else(|| {
                events
                    .first()
                    .and_then(|e| e.as_str())
                    .map(|s| s.trim().to_string())
            })
            .unwrap_or_default();
        match mode.as_str() {
            "alloc" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "panic" => panic!("hostile guest panics on purpose"),
            "huge" => events
                .iter()
                .map(|_| Verdict::Split(vec![vec![b'x'; 1024]; 1_000]))
                .collect(),
            "drop" => events.iter().map(|_| Verdict::Drop).collect(),
            "wrong-count" => events.iter().skip(1).map(|_| Verdict::Keep).collect(),
            "host-loop" => loop {
                log(LogLevel::Info, "hostile guest calls the host in a loop");
            },
            _ => events
                .iter()
                .map(|e| {
                    let mut edits = vec![set("batches", self.batches)];
                    if let Some(t) = e.as_str().and_then(|s| s.trim().strip_prefix("retype ")) {
                        edits.push(Edit::SetType(t.to_string()));
                    }
                    Verdict::Edits(edits)
                })
                .collect(),
        }
    }
}

export_filter!(Hostile);
