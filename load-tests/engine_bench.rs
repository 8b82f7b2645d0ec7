//! Engine-alone throughput: validation, dedup, watermarks, window updates and emission of
//! one stage-1 task on one core, with no Kafka and no decoding (records are built in
//! memory beforehand, outside the timed section). Records arrive shuffled within the
//! out-of-orderness bound, with 1 % duplicates, 0.5 % invalid and a few late ones; the
//! changelog is on and flushed every 50,000 records, as a commit would; outputs are
//! drained every 1,000 records (the workload is `engine_workload.rs`).
//!
//! Run: `cargo run --release --example engine_bench [-- RECORDS RUNS]`
//! Prints one line per run and the median, min and max in records per second. The
//! benchmark uses the allocator of the `shopstream` binary (mimalloc, see `src/main.rs`);
//! `--features system-alloc` measures with the system allocator instead.

#[path = "engine_workload.rs"]
mod engine_workload;

/// The same process allocator as the `shopstream` binary.
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Which allocator this build measures.
const ALLOCATOR: &str = if cfg!(feature = "system-alloc") {
    "system"
} else {
    "mimalloc"
};

use engine_workload::run;

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let records = args.first().copied().unwrap_or(2_000_000);
    let runs = args.get(1).copied().unwrap_or(5);
    let mut rates = Vec::new();
    for run_no in 1..=runs {
        let (elapsed, task) = run(records);
        let rate = records as f64 / elapsed.as_secs_f64();
        let c = task.counters();
        let (ids, bytes) = task.dedup_size();
        println!(
            "run {run_no}: {records} records in {:.3} s = {:.0} records/s (counted {}, duplicates {}, late {}, dlq {}, kpi rows {}, dedup {} ids / {:.1} B per id)",
            elapsed.as_secs_f64(), rate, c.counted, c.duplicates, c.late, c.dlq, c.kpi_rows, ids, bytes as f64 / ids.max(1) as f64
        );
        rates.push(rate);
    }
    rates.sort_by(f64::total_cmp);
    println!(
        "engine alone: median {:.0} records/s (min {:.0}, max {:.0}) over {runs} runs of {records} records ({ALLOCATOR} allocator)",
        rates[rates.len() / 2],
        rates[0],
        rates[rates.len() - 1]
    );
}
