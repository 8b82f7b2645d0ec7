//! Engine-alone throughput: validation, dedup, watermarks, window updates and emission of
//! one stage-1 task on one core, with no Kafka and no decoding (records are built in
//! memory beforehand, outside the timed section). Records arrive shuffled within the
//! out-of-orderness bound, with 1 % duplicates, 0.5 % invalid and a few late ones; the
//! changelog is on and flushed every 50,000 records, as a commit would; outputs are
//! drained every 1,000 records.
//!
//! Run: `cargo run --release --example engine_bench [-- RECORDS RUNS]`
//! Prints one line per run and the median, min and max in records per second. The
//! benchmark uses the allocator of the `shopstream` binary (mimalloc, see `src/main.rs`);
//! `--features system-alloc` measures with the system allocator instead.

use std::time::{Duration, Instant};

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

use rust_decimal::Decimal;
use shopstream::engine::{testkit, EngineConfig, Input, Outputs, Task, TopicPartition};
use shopstream::model::{EventType, Record};
use shopstream::quality::Rejection;

const TX: &str = "shop.transactions";
const EV: &str = "shop.events";
const BATCH: usize = 100_000;

struct Pending {
    topic: &'static str,
    offset: i64,
    key: Vec<u8>,
    record: Result<Record, Rejection>,
    now: i64,
}

/// A deterministic synthetic stream: 80 % transactions, 20 % events, 100,000 customers,
/// about 2,000 records per second of event time.
struct Stream {
    x: u64,
    n: u64,
    offsets: [i64; 2],
    t: i64,
}

impl Stream {
    fn rnd(&mut self) -> u64 {
        self.x ^= self.x << 13;
        self.x ^= self.x >> 7;
        self.x ^= self.x << 17;
        self.x
    }

    fn next_batch(&mut self, out: &mut Vec<Pending>) {
        out.clear();
        for _ in 0..BATCH {
            self.n += 1;
            self.t += 1;
            let r = self.rnd();
            let customer = (r >> 8) % 100_000;
            let ts = self.t - (r % 3_000) as i64 - if r % 1_000 == 7 { 7_200_000 } else { 0 };
            let now = self.t + 200;
            let (topic, record) = if r % 5 == 0 {
                let e = testkit::event(self.n, customer, ts, EventType::PageView);
                (EV, Ok(Record::Event(e)))
            } else {
                // 1 % producer retries of a recent transaction, 0.5 % broken amounts.
                let id = if r % 100 == 1 {
                    self.n.saturating_sub(50)
                } else {
                    self.n
                };
                let mut t = testkit::transaction(id, customer, ts);
                if r % 200 == 3 {
                    t.amount += Decimal::ONE;
                }
                (TX, Ok(Record::Transaction(t)))
            };
            let ix = usize::from(topic == EV);
            let key = testkit::customer_id(customer).into_bytes();
            out.push(Pending {
                topic,
                offset: self.offsets[ix],
                key,
                record,
                now,
            });
            self.offsets[ix] += 1;
        }
    }
}

fn run(records: usize) -> (Duration, Task) {
    let inputs = vec![TopicPartition::new(TX, 0), TopicPartition::new(EV, 0)];
    let mut task = Task::new(EngineConfig::default(), inputs).expect("valid config");
    let mut out = Outputs::default();
    let mut stream = Stream {
        x: 0x9e37_79b9_7f4a_7c15,
        n: 0,
        offsets: [0, 0],
        t: 1_700_000_000_000,
    };
    let mut batch = Vec::with_capacity(BATCH);
    let value = vec![0u8; 300];
    let mut elapsed = Duration::ZERO;
    let mut done = 0;
    while done < records {
        stream.next_batch(&mut batch);
        let start = Instant::now();
        for (i, p) in batch.drain(..).enumerate() {
            let input = Input {
                topic: p.topic,
                partition: 0,
                offset: p.offset,
                key: Some(&p.key),
                value: &value,
                record: p.record,
            };
            task.process(input, p.now, &mut out).expect("known input");
            if i % 1_000 == 999 {
                out.clear();
            }
            if (done + i) % 50_000 == 49_999 {
                task.flush_changelog(&mut out).expect("state encodes");
                out.clear();
            }
        }
        elapsed += start.elapsed();
        done += BATCH;
    }
    (elapsed, task)
}

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
