//! Hot index benchmark: the CPU that turning stored events into tantivy
//! documents and indexing them costs, per part of the schema, so that each
//! part's price is measured rather than guessed.
//!
//! ```text
//! cargo build --release -p logway-bench
//! target/release/index-bench --events 1000000 --rounds 3
//! ```
//!
//! The events are the side-by-side benchmark's records (`ts`, `host`,
//! `level`, `status`, `method`, `path`, `latency_ms`, `user`, `seq`, `msg`)
//! built into stored events by the gateway's own event builder. Each
//! variant indexes all of them into a fresh index with one writer thread,
//! committing every `--commit-every` events (the gateway commits every
//! 500 ms: at 200k events/s, 100k events), then waits for merges. Printed:
//! CPU seconds per 1M events (this process, all threads: parsing, indexing,
//! merges), wall time, and the index's size. Variants run in rotation,
//! `--rounds` times; the medians close the report.

use std::time::Instant;

mod cpu;
use clap::Parser;
use logway::event::EventContext;
use logway::hot::HotSchema;
use logway::hot::schema::SchemaOptions;
use tantivy::{Index, IndexWriter, TantivyDocument};
use time::OffsetDateTime;

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 1_000_000)]
    events: usize,
    #[arg(long, default_value_t = 100_000)]
    commit_every: usize,
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Only the variants whose name contains this.
    #[arg(long)]
    only: Option<String>,
}

fn events(n: usize) -> Vec<Vec<u8>> {
    let now = OffsetDateTime::now_utc();
    let ctx = EventContext::new("bench", "bench", now, None, 1000);
    (0..n)
        .map(|i| {
            let v = serde_json::json!({
                "ts": "2026-11-30T05:00:08.123456Z",
                "host": format!("web-{:02}", i % 8),
                "level": (["info", "warn", "error", "info"][i % 4]),
                "status": ([200, 201, 404, 500][i % 4]),
                "method": "GET",
                "path": format!("/api/v1/items/{:06}", i % 100),
                "latency_ms": 12 + i % 50,
                "user": "alice",
                "seq": i % 100,
                "msg": format!("request served ok item {}", i % 100),
            });
            let serde_json::Value::Object(m) = v else {
                unreachable!()
            };
            logway::event::from_object(m, &ctx, None)
        })
        .collect()
}

struct Variant {
    name: &'static str,
    options: SchemaOptions,
    /// Only parse the events into documents (no index).
    parse_only: bool,
    merges: bool,
    /// Segments merged at once (tantivy's `LogMergePolicy`, default 8).
    merge_factor: Option<usize>,
    /// Hand documents to the writer 100 at a time (`IndexWriter::run`).
    batched: bool,
    /// Fields left out of every document (copied without them: the copy
    /// is a small part of the cost).
    without: &'static [&'static str],
}

fn run(v: &Variant, events: &[Vec<u8>], args: &Args) -> (f64, f64, u64) {
    let schema = HotSchema::with_options(v.options);
    let dir = tempfile::tempdir().expect("temp dir");
    let index = Index::create_in_dir(dir.path(), schema.schema.clone()).expect("index");
    let mut writer: IndexWriter<TantivyDocument> =
        index.writer_with_num_threads(1, 64 << 20).expect("writer");
    if !v.merges {
        writer.set_merge_policy(Box::new(tantivy::indexer::NoMergePolicy));
    }
    if let Some(n) = v.merge_factor {
        let mut policy = tantivy::indexer::LogMergePolicy::default();
        policy.set_min_num_segments(n);
        writer.set_merge_policy(Box::new(policy));
    }
    let cpu0 = cpu::process_seconds();
    let t0 = Instant::now();
    let mut kept = 0usize;
    let mut ops = Vec::with_capacity(100);
    for (i, e) in events.iter().enumerate() {
        let mut doc = schema.document(e).expect("indexable");
        if !v.without.is_empty() {
            let skip: Vec<tantivy::schema::Field> = v
                .without
                .iter()
                .map(|n| schema.schema.get_field(n).expect("a field of the schema"))
                .collect();
            let mut kept = TantivyDocument::new();
            for (f, value) in doc.field_values() {
                if !skip.contains(&f) {
                    kept.add_field_value(f, value);
                }
            }
            doc = kept;
        }
        if v.parse_only {
            kept += doc.len();
            continue;
        }
        if v.batched {
            ops.push(tantivy::indexer::UserOperation::Add(doc));
            if ops.len() == 100 {
                writer.run(ops.drain(..)).expect("add");
            }
        } else {
            writer.add_document(doc).expect("add");
        }
        if (i + 1) % args.commit_every == 0 {
            writer.run(ops.drain(..)).expect("add");
            writer.commit().expect("commit");
        }
    }
    writer.run(ops.drain(..)).expect("add");
    std::hint::black_box(kept);
    writer.commit().expect("commit");
    writer.wait_merging_threads().expect("merges");
    let cpu = cpu::process_seconds() - cpu0;
    let wall = t0.elapsed().as_secs_f64();
    let size = walk_size(dir.path());
    let per_m = 1e6 / events.len() as f64;
    (cpu * per_m, wall, size)
}

fn walk_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
                .sum()
        })
        .unwrap_or(0)
}

fn main() {
    let args = Args::parse();
    let all = SchemaOptions::default();
    // The gateway's schema and way of indexing, with one thing changed.
    let v = |name: &'static str| Variant {
        name,
        options: all,
        parse_only: false,
        merges: true,
        merge_factor: None,
        batched: false,
        without: &[],
    };
    let variants = [
        Variant {
            parse_only: true,
            ..v("parse only")
        },
        v("current schema"),
        Variant {
            merges: false,
            ..v("current, no merges")
        },
        Variant {
            batched: true,
            ..v("current, 100 documents per hand-over")
        },
        Variant {
            merge_factor: Some(16),
            ..v("current, merging 16 segments at once")
        },
        Variant {
            options: SchemaOptions {
                fields_positions: false,
                ..all
            },
            ..v("fields without positions")
        },
        Variant {
            options: SchemaOptions {
                fields_fast: false,
                ..all
            },
            ..v("fields without fast columns")
        },
        Variant {
            options: SchemaOptions {
                fields_positions: false,
                fields_fast: false,
                ..all
            },
            ..v("fields without positions or fast")
        },
        Variant {
            options: SchemaOptions {
                message_positions: false,
                fields_positions: false,
                fields_fast: false,
            },
            ..v("no positions anywhere, fields without fast")
        },
        Variant {
            without: &["id"],
            ..v("without id")
        },
        Variant {
            without: &["received_at"],
            ..v("without received_at")
        },
        Variant {
            without: &["fields"],
            ..v("without fields")
        },
        Variant {
            without: &["_source"],
            ..v("without _source")
        },
        Variant {
            without: &["message"],
            ..v("without message")
        },
    ];
    let variants: Vec<&Variant> = variants
        .iter()
        .filter(|v| args.only.as_deref().is_none_or(|o| v.name.contains(o)))
        .collect();
    let events = events(args.events);
    let bytes: usize = events.iter().map(|e| e.len() + 1).sum();
    println!(
        "{} stored events, {:.0} bytes each on average; commit every {}",
        events.len(),
        bytes as f64 / events.len() as f64,
        args.commit_every
    );
    let mut results: Vec<Vec<(f64, f64, u64)>> = vec![Vec::new(); variants.len()];
    for round in 1..=args.rounds {
        for (i, v) in variants.iter().enumerate() {
            let r = run(v, &events, &args);
            println!(
                "round {round} {:<44} CPU {:>5.2} s per 1M events, wall {:>5.2} s, index {:>6.1} MB",
                v.name,
                r.0,
                r.1,
                r.2 as f64 / 1e6
            );
            results[i].push(r);
        }
    }
    println!("medians:");
    for (v, rs) in variants.iter().zip(&mut results) {
        rs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let m = rs[rs.len() / 2];
        println!(
            "  {:<44} CPU {:>5.2} s per 1M events, index {:>6.1} MB",
            v.name,
            m.0,
            m.2 as f64 / 1e6
        );
    }
}
