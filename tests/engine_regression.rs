//! The CI regression guard of the engine's throughput (issue 7, point 3). A timing taken
//! in CI means nothing alone — the test profile, the machine and its load all change it —
//! so the guard measures a ratio: the engine-alone workload of `engine_bench`
//! (load-tests/engine_workload.rs) against a simple in-process baseline over the very same
//! records, built with the same profile and run in the same process, alternately, so
//! profile, CPU and load cancel out. The baseline does the textbook version of the work:
//! a `HashSet<String>` of transaction ids for dedup, a `HashMap` of per-minute, per-category
//! `Decimal` revenue sums, and dropping the record. The test fails if the median ratio of
//! the pairs falls more than 30 % below the figure committed in
//! load-tests/engine_ratio.txt. `UPDATE_ENGINE_RATIO=1` rewrites that file with the figure
//! measured (after a deliberate change of the engine's cost).

#[path = "../load-tests/engine_workload.rs"]
mod engine_workload;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use engine_workload::{Pending, Stream, BATCH};
use rust_decimal::Decimal;
use shopstream::model::Record;

/// The same process allocator as the `shopstream` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// One batch of the workload (100,000 records) per measurement.
const RECORDS: usize = BATCH;
/// Alternating (baseline, engine) pairs.
const PAIRS: usize = 5;
/// The allowed drop below the committed ratio.
const TOLERANCE: f64 = 0.30;

const FIGURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/load-tests/engine_ratio.txt");

/// The textbook pipeline over one batch of the workload's records; returns the time spent.
fn baseline(records: usize) -> (Duration, u64) {
    let mut stream = Stream::default();
    let mut batch: Vec<Pending> = Vec::with_capacity(BATCH);
    let mut seen: HashSet<String> = HashSet::new();
    let mut revenue: HashMap<(i64, String), Decimal> = HashMap::new();
    let mut counted = 0;
    let mut elapsed = Duration::ZERO;
    let mut done = 0;
    while done < records {
        stream.next_batch(&mut batch);
        let start = Instant::now();
        for p in batch.drain(..) {
            if let Ok(Record::Transaction(t)) = p.record {
                if !seen.insert(t.transaction_id.clone()) {
                    continue;
                }
                let minute = t.timestamp.div_euclid(60_000);
                for item in &t.items {
                    *revenue.entry((minute, item.category.clone())).or_default() +=
                        item.unit_price * Decimal::from(item.quantity);
                }
                counted += 1;
            }
        }
        elapsed += start.elapsed();
        done += BATCH;
    }
    (elapsed, counted + revenue.len() as u64)
}

fn committed_ratio() -> f64 {
    let text = std::fs::read_to_string(FIGURE).expect("load-tests/engine_ratio.txt");
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .and_then(|l| l.parse().ok())
        .expect("a ratio on the first line that is not a comment")
}

#[test]
fn engine_throughput_relative_to_a_plain_baseline_has_not_regressed() {
    // One unmeasured pair warms caches, the allocator and the CPU's clock.
    baseline(RECORDS);
    engine_workload::run(RECORDS);
    let mut ratios = Vec::with_capacity(PAIRS);
    for _ in 0..PAIRS {
        let (base, work) = baseline(RECORDS);
        assert!(work > 0);
        let (engine, task) = engine_workload::run(RECORDS);
        assert!(task.counters().counted > 0, "the engine counted nothing");
        ratios.push(base.as_secs_f64() / engine.as_secs_f64());
    }
    ratios.sort_by(f64::total_cmp);
    let measured = ratios[PAIRS / 2];
    eprintln!("engine ÷ baseline throughput per pair: {ratios:.3?}, median {measured:.3}");
    if std::env::var_os("UPDATE_ENGINE_RATIO").is_some() {
        let old = std::fs::read_to_string(FIGURE).unwrap_or_default();
        let comments: String = old
            .lines()
            .filter(|l| l.starts_with('#'))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(FIGURE, format!("{measured:.3}\n{comments}")).unwrap();
        return;
    }
    let committed = committed_ratio();
    let floor = committed * (1.0 - TOLERANCE);
    assert!(
        measured >= floor,
        "engine regression: engine ÷ baseline throughput {measured:.3} is more than 30 % below \
         the committed {committed:.3} (floor {floor:.3}); if the slowdown is intended, rerun \
         with UPDATE_ENGINE_RATIO=1 and commit load-tests/engine_ratio.txt"
    );
}
