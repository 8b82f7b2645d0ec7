//! The engine-alone workload shared by `engine_bench`, the `load_test` harness and the
//! CI regression guard (`tests/engine_regression.rs`): a deterministic synthetic stream
//! (80 % transactions, 20 % events, 100,000 customers, records shuffled within 3 s, 1 %
//! producer retries, 0.5 % invalid amounts, 0.1 % two hours late) fed to one stage-1
//! `engine::Task` with no Kafka and no decoding. Records are built in memory in batches of
//! 100,000 outside the timed section; the timed section processes them, drains the outputs
//! every 1,000 records and flushes the changelog every 50,000 records, as a commit would.
//! Included with `#[path]` so every user measures exactly the same work.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use shopstream::engine::{testkit, EngineConfig, Input, Outputs, Task, TopicPartition};
use shopstream::model::{EventType, Record};
use shopstream::quality::Rejection;

const TX: &str = "shop.transactions";
const EV: &str = "shop.events";
pub const BATCH: usize = 100_000;

pub struct Pending {
    pub topic: &'static str,
    pub offset: i64,
    pub key: Vec<u8>,
    pub record: Result<Record, Rejection>,
    pub now: i64,
}

/// A deterministic synthetic stream: 80 % transactions, 20 % events, 100,000 customers,
/// about 2,000 records per second of event time.
pub struct Stream {
    x: u64,
    n: u64,
    offsets: [i64; 2],
    t: i64,
}

impl Default for Stream {
    fn default() -> Stream {
        Stream {
            x: 0x9e37_79b9_7f4a_7c15,
            n: 0,
            offsets: [0, 0],
            t: 1_700_000_000_000,
        }
    }
}

impl Stream {
    fn rnd(&mut self) -> u64 {
        self.x ^= self.x << 13;
        self.x ^= self.x >> 7;
        self.x ^= self.x << 17;
        self.x
    }

    pub fn next_batch(&mut self, out: &mut Vec<Pending>) {
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

/// One stage-1 task fed record by record, as the timed section does it.
pub struct Engine {
    pub task: Task,
    out: Outputs,
    value: Vec<u8>,
    fed: usize,
}

impl Default for Engine {
    fn default() -> Engine {
        let inputs = vec![TopicPartition::new(TX, 0), TopicPartition::new(EV, 0)];
        Engine {
            task: Task::new(EngineConfig::default(), inputs).expect("valid config"),
            out: Outputs::default(),
            value: vec![0u8; 300],
            fed: 0,
        }
    }
}

impl Engine {
    /// Processes one record; drains the outputs every 1,000 records and flushes the
    /// changelog every 50,000, as a commit would.
    pub fn feed(&mut self, p: Pending) {
        let input = Input {
            topic: p.topic,
            partition: 0,
            offset: p.offset,
            key: Some(&p.key),
            value: &self.value,
            timestamp: Some(p.now),
            record: p.record,
        };
        self.task
            .process(input, p.now, &mut self.out)
            .expect("known input");
        self.fed += 1;
        if self.fed % 1_000 == 0 {
            self.out.clear();
        }
        if self.fed % 50_000 == 0 {
            self.task
                .flush_changelog(&mut self.out)
                .expect("state encodes");
            self.out.clear();
        }
    }
}

/// Processes `records` records of the stream (rounded up to whole batches) in one task;
/// returns the time spent in the engine (batch building excluded) and the task, for its
/// counters.
pub fn run(records: usize) -> (Duration, Task) {
    let mut engine = Engine::default();
    let mut stream = Stream::default();
    let mut batch = Vec::with_capacity(BATCH);
    let mut elapsed = Duration::ZERO;
    let mut done = 0;
    while done < records {
        stream.next_batch(&mut batch);
        let start = Instant::now();
        for p in batch.drain(..) {
            engine.feed(p);
        }
        elapsed += start.elapsed();
        done += BATCH;
    }
    (elapsed, engine.task)
}
