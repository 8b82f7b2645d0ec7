//! The CI regression guard of the engine's throughput (issue 7, point 3). A timing taken
//! in CI means nothing alone — the test profile, the machine and its load all change it —
//! so the guard measures a ratio: the engine-alone workload of `engine_bench`
//! (load-tests/engine_workload.rs) against a simple in-process baseline over the very same
//! records, built with the same profile and run in the same process, alternating every
//! 500 records, so profile, CPU and load cancel out. The baseline does the textbook version of the work:
//! a `HashSet<String>` of transaction ids for dedup, a `HashMap` of per-minute, per-category
//! `Decimal` revenue sums, and dropping the record. The test fails if the median ratio of
//! five runs falls more than 30 % below the figure committed in
//! load-tests/engine_ratio.txt. `UPDATE_ENGINE_RATIO=1` rewrites that file with the figure
//! measured (after a deliberate change of the engine's cost).

#[path = "../load-tests/engine_workload.rs"]
mod engine_workload;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use engine_workload::{Engine, Pending, Stream, BATCH};
use rust_decimal::Decimal;
use shopstream::model::Record;

/// The same process allocator as the `shopstream` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// One batch of the workload (100,000 records) per measurement.
const RECORDS: usize = BATCH;
/// Measurements; the median is compared.
const RUNS: usize = 5;
/// Records fed to one side before the other takes its turn.
const CHUNK: usize = 500;
/// The allowed drop below the committed ratio.
const TOLERANCE: f64 = 0.30;

const FIGURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/load-tests/engine_ratio.txt");

/// The textbook pipeline: dedup in a `HashSet<String>`, per-minute and per-category
/// revenue in a `HashMap`, the record dropped.
#[derive(Default)]
struct Baseline {
    seen: HashSet<String>,
    revenue: HashMap<(i64, String), Decimal>,
    counted: u64,
}

impl Baseline {
    fn feed(&mut self, p: Pending) {
        if let Ok(Record::Transaction(t)) = p.record {
            if !self.seen.insert(t.transaction_id.clone()) {
                return;
            }
            let minute = t.timestamp.div_euclid(60_000);
            for item in &t.items {
                *self
                    .revenue
                    .entry((minute, item.category.clone()))
                    .or_default() += item.unit_price * Decimal::from(item.quantity);
            }
            self.counted += 1;
        }
    }
}

/// Feeds the same `records` records (two identical streams) to the baseline and to the
/// engine in alternating chunks of `CHUNK`, so both see the same machine load; returns
/// the engine's throughput divided by the baseline's.
fn ratio(records: usize) -> f64 {
    let (mut a, mut b) = (Stream::default(), Stream::default());
    let (mut batch_a, mut batch_b): (Vec<Pending>, Vec<Pending>) = (Vec::new(), Vec::new());
    let (mut baseline, mut engine) = (Baseline::default(), Engine::default());
    let (mut t_base, mut t_engine) = (Duration::ZERO, Duration::ZERO);
    let mut done = 0;
    while done < records {
        a.next_batch(&mut batch_a);
        b.next_batch(&mut batch_b);
        let mut it_a = batch_a.drain(..);
        let mut it_b = batch_b.drain(..);
        for _ in 0..BATCH / CHUNK {
            let start = Instant::now();
            it_a.by_ref().take(CHUNK).for_each(|p| baseline.feed(p));
            let mid = Instant::now();
            it_b.by_ref().take(CHUNK).for_each(|p| engine.feed(p));
            t_engine += mid.elapsed();
            t_base += mid - start;
        }
        done += BATCH;
    }
    assert!(baseline.counted > 0 && !baseline.revenue.is_empty());
    assert!(
        engine.task.counters().counted > 0,
        "the engine counted nothing"
    );
    t_base.as_secs_f64() / t_engine.as_secs_f64()
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
    let mut ratios: Vec<f64> = (0..RUNS).map(|_| ratio(RECORDS)).collect();
    ratios.sort_by(f64::total_cmp);
    let measured = ratios[RUNS / 2];
    eprintln!("engine ÷ baseline throughput per run: {ratios:.3?}, median {measured:.3}");
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
