//! Property tests of the stage-2 merger against stage 1. A random stream of transactions
//! (with producer-retry duplicates and records late within the allowed lateness) and user
//! events is split by customer across N stage-1 tasks (N = 1, 2, 3), as the input topics'
//! partitioning does. Each task's partial KPI rows and watermark marks go, in the task's
//! order, to one merger, interleaved with the other tasks' at random and with redelivered
//! partials and marks mixed in. The merger's final revenue and activity rows must equal
//! those of one task run over the whole stream (itself checked against a batch
//! recomputation in engine_props.rs), for every N and interleaving. A merger restored from
//! its changelog mid-stream must continue exactly like the one that never stopped.
//!
//! Records are never later than the allowed lateness relative to the whole stream, so no
//! split drops a record the single task keeps; the dedup TTL outlasts the stream, so
//! duplicates are dropped alike. The quality family is not compared: DLQ-free streams
//! aside, it counts records in the window of each task's own event-time frontier.

mod engine_common;

use std::collections::BTreeMap;

use engine_common::{final_rows, Key, EV, LATENESS, OOO, TX};
use proptest::prelude::*;
use rust_decimal::Decimal;
use shopstream::engine::{
    testkit, Aggregate, Consumed, EngineConfig, Input, MergeConfig, MergeDisposition, Merger,
    Outputs, ProductsAgg, RestorePoint, Task, TopicPartition,
};
use shopstream::model::{EventType, KpiRow, Record, TxStatus};

const PARTIALS: &str = "shop.internal.partials";

fn config() -> EngineConfig {
    let mut cfg = engine_common::config();
    cfg.dedup.ttl_ms = 7 * 24 * 3_600_000;
    cfg
}

#[derive(Debug, Clone)]
struct Choice {
    kind: u8,
    dt: i64,
    jitter: i64,
    customer: u64,
    status: u8,
    pick: usize,
}

fn choice() -> impl Strategy<Value = Choice> {
    (
        0u8..100,
        0i64..1_500,
        0..=OOO,
        0u64..6,
        0u8..10,
        any::<usize>(),
    )
        .prop_map(|(kind, dt, jitter, customer, status, pick)| Choice {
            kind,
            dt,
            jitter,
            customer,
            status,
            pick,
        })
}

/// A record (or a processing-time tick) at processing time `now`.
#[derive(Debug, Clone)]
struct Step {
    record: Option<Record>,
    now: i64,
}

fn customer_of(r: &Record) -> &str {
    match r {
        Record::Transaction(t) => &t.customer_id,
        Record::Event(e) => &e.customer_id,
    }
}

/// Event times advance by `dt` and go back by at most the out-of-orderness, or (late
/// records) by at most out-of-orderness + allowed lateness: late, but never beyond the
/// lateness for any task, whose watermark is at most the whole stream's.
fn build(choices: &[Choice]) -> Vec<Step> {
    let mut t: i64 = 1_700_000_000_000;
    // One transaction per possible source first: a task without any event time would hold
    // its watermark, hence the merger's, at the minimum forever.
    let mut steps: Vec<Step> = (0..3)
        .map(|c| Step {
            record: Some(Record::Transaction(testkit::transaction(c, c, t))),
            now: t,
        })
        .collect();
    let mut txs = Vec::new();
    for (i, c) in choices.iter().enumerate() {
        t += c.dt;
        let now = t + 500;
        let n = 10 + i as u64;
        let ts = match c.kind {
            80..=89 => t - OOO - c.jitter * LATENESS / OOO,
            _ => t - c.jitter,
        };
        let record = match c.kind {
            0..=49 | 80..=89 => {
                let mut tx = testkit::transaction(n, c.customer, ts);
                tx.status = match c.status {
                    0 => TxStatus::Failed,
                    1 => TxStatus::Pending,
                    _ => TxStatus::Completed,
                };
                txs.push(tx.clone());
                Some(Record::Transaction(tx))
            }
            50..=69 => {
                let types = [
                    EventType::PageView,
                    EventType::AddToCart,
                    EventType::Purchase,
                ];
                let e = testkit::event(n, c.customer, ts, types[c.pick % 3]);
                Some(Record::Event(e))
            }
            // A producer retry of an earlier transaction.
            70..=79 if !txs.is_empty() => {
                Some(Record::Transaction(txs[c.pick % txs.len()].clone()))
            }
            _ => None,
        };
        steps.push(Step { record, now });
    }
    steps
}

/// A stage-1 task for partition `p` with its input positions.
struct Stage1 {
    p: i32,
    task: Task,
    next: [i64; 2],
    out: Outputs,
}

impl Stage1 {
    fn new(p: i32) -> Self {
        let inputs = vec![TopicPartition::new(TX, p), TopicPartition::new(EV, p)];
        Stage1 {
            p,
            task: Task::new(config(), inputs).unwrap(),
            next: [0; 2],
            out: Outputs::default(),
        }
    }

    fn feed(&mut self, step: &Step) {
        let Some(record) = &step.record else {
            self.task.on_tick(step.now, &mut self.out);
            return;
        };
        let ix = usize::from(matches!(record, Record::Event(_)));
        let input = Input {
            topic: [TX, EV][ix],
            partition: self.p,
            offset: self.next[ix],
            key: Some(customer_of(record).as_bytes()),
            value: b"",
            timestamp: None,
            record: Ok(record.clone()),
        };
        self.next[ix] += 1;
        self.task.process(input, step.now, &mut self.out).unwrap();
    }

    fn drain(&mut self, after: i64) {
        for topic in [TX, EV] {
            self.task
                .on_partition_status(topic, self.p, true, after, &mut self.out)
                .unwrap();
        }
        self.task.on_tick(after + 1_000_000_000, &mut self.out);
    }
}

/// One record of the partials topic, or a processing-time tick of the merger.
#[derive(Debug, Clone)]
enum Delivery {
    Partial(u32, KpiRow),
    Mark(u32, i64),
    Tick(i64),
}

/// Runs N stage-1 tasks over the stream split by customer; per task, the sequence of
/// partials and marks it publishes (marks after the partials they cover).
fn stage1(steps: &[Step], n: u32) -> Vec<Vec<Delivery>> {
    let mut tasks: Vec<Stage1> = (0..n as i32).map(Stage1::new).collect();
    let mut published = vec![Vec::new(); n as usize];
    let mut marks = vec![i64::MIN; n as usize];
    let mut publish = |t: &mut Stage1| {
        let src = t.p as u32;
        let q: &mut Vec<Delivery> = &mut published[t.p as usize];
        q.extend(t.out.kpis.drain(..).map(|r| Delivery::Partial(src, r)));
        t.out.clear();
        let wm = t.task.watermark();
        if wm > marks[t.p as usize] {
            marks[t.p as usize] = wm;
            q.push(Delivery::Mark(src, wm));
        }
    };
    for s in steps {
        let owner = s.record.as_ref().map(|r| {
            let c: u64 = customer_of(r)["customer-".len()..].parse().unwrap();
            (c % u64::from(n)) as usize
        });
        for (i, t) in tasks.iter_mut().enumerate() {
            if owner.is_none() || owner == Some(i) {
                t.feed(s);
                publish(t);
            }
        }
    }
    let end = steps.last().map_or(0, |s| s.now);
    for t in &mut tasks {
        t.drain(end);
        publish(t);
    }
    published
}

/// A small deterministic generator for interleavings (proptest picks the seed).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}

/// Interleaves the sources' sequences at random, keeping each source's order, with
/// merger ticks and redeliveries of earlier partials and marks mixed in.
fn interleave(mut sources: Vec<Vec<Delivery>>, seed: u64, end: i64) -> Vec<Delivery> {
    let mut rng = Rng(seed | 1);
    for q in &mut sources {
        q.reverse();
    }
    let mut out: Vec<Delivery> = Vec::new();
    let mut now = end - 60_000;
    loop {
        let live: Vec<usize> = (0..sources.len())
            .filter(|&i| !sources[i].is_empty())
            .collect();
        if live.is_empty() {
            return out;
        }
        match rng.below(20) {
            0 | 1 if !out.is_empty() => {
                let again = out[rng.below(out.len())].clone();
                if !matches!(again, Delivery::Tick(_)) {
                    out.push(again);
                }
            }
            2 => {
                now += 1_000;
                out.push(Delivery::Tick(now));
            }
            _ => {
                let q = &mut sources[live[rng.below(live.len())]];
                out.extend(q.pop());
            }
        }
    }
}

fn merger(n: u32) -> Merger {
    let inputs = vec![TopicPartition::new(PARTIALS, 0)];
    Merger::new(MergeConfig::from(&config()), n, inputs).unwrap()
}

/// Feeds delivery `i` (its offset) to the merger; ticks consume no offset.
fn deliver(m: &mut Merger, i: usize, d: &Delivery, out: &mut Outputs) -> Option<MergeDisposition> {
    let at = Consumed {
        topic: PARTIALS,
        partition: 0,
        offset: i as i64,
    };
    match d {
        Delivery::Partial(src, row) => Some(m.on_partial(at, *src, row, out).unwrap()),
        Delivery::Mark(src, wm) => Some(m.on_watermark(at, *src, *wm, out).unwrap()),
        Delivery::Tick(now) => {
            m.on_tick(*now, out);
            None
        }
    }
}

type Finals = BTreeMap<Key, BTreeMap<String, Decimal>>;

/// Final values of the compared families, after checking the life cycle of every key.
fn finals(rows: &[KpiRow]) -> Result<Finals, TestCaseError> {
    Ok(final_rows(rows)?
        .into_iter()
        .filter(|(k, _)| k.0 != "quality")
        .map(|(k, r)| (k, r.values))
        .collect())
}

/// The single task over the whole stream.
fn reference(steps: &[Step]) -> Result<Finals, TestCaseError> {
    let mut t = Stage1::new(0);
    for s in steps {
        t.feed(s);
    }
    t.drain(steps.last().map_or(0, |s| s.now));
    Ok(ranked_products(finals(&t.out.kpis)?))
}

/// A single task's `products` results (one per category, every product in it) as the
/// merger's global rows: one per product, ranked within its category. The merger must
/// rank the merged totals of all sources exactly like this.
fn ranked_products(finals: Finals) -> Finals {
    let mut out = Finals::new();
    for (k, values) in finals {
        if k.0 != "products" {
            out.insert(k, values);
            continue;
        }
        let agg = ProductsAgg::from_values(&values).expect("a products partial");
        agg.write_global_rows(&k.3, MergeConfig::from(&config()).top_n, &mut |dim, v| {
            out.insert((k.0.clone(), k.1, k.2, dim), v);
        });
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1_000, max_shrink_iters: 300, ..ProptestConfig::default() })]

    /// One, two or three sources, any interleaving and redeliveries: the merger's final
    /// rows equal the single task's.
    #[test]
    fn merged_finals_equal_a_single_task_for_one_two_or_three_sources(
        choices in prop::collection::vec(choice(), 1..40),
        seed in any::<u64>(),
    ) {
        let steps = build(&choices);
        let expected = reference(&steps)?;
        prop_assert!(expected.keys().any(|k| k.0 == "revenue"));
        let end = steps.last().map_or(0, |s| s.now);
        for n in 1..=3u32 {
            let deliveries = interleave(stage1(&steps, n), seed.wrapping_add(u64::from(n)), end);
            let mut m = merger(n);
            let mut out = Outputs::default();
            for (i, d) in deliveries.iter().enumerate() {
                let disp = deliver(&mut m, i, d, &mut out);
                prop_assert!(!matches!(disp, Some(MergeDisposition::Invalid(_))), "{:?}", disp);
            }
            let got = finals(&out.kpis)?;
            let diff = expected.iter().find(|(k, v)| got.get(*k) != Some(*v));
            prop_assert!(diff.is_none(), "{} sources: {:?} merged to {:?}", n, diff, diff.map(|(k, _)| got.get(k)));
            prop_assert_eq!(got.len(), expected.len(), "{} sources: extra results", n);
            prop_assert!(m.is_empty(), "all state purged after final");
        }
    }

    /// A merger restored from its committed changelog, re-reading its input from the
    /// start, emits exactly what the merger that never stopped emits.
    #[test]
    fn restored_merger_continues_identically(
        choices in prop::collection::vec(choice(), 1..60),
        seed in any::<u64>(),
        n in 1u32..=3,
        cut in 0.0f64..1.0,
        uncommitted in 0usize..10,
    ) {
        let steps = build(&choices);
        let end = steps.last().map_or(0, |s| s.now);
        let deliveries = interleave(stage1(&steps, n), seed, end);
        let k = (deliveries.len() as f64 * cut) as usize;

        let mut reference = merger(n);
        let mut ref_out = Outputs::default();
        let mut original = merger(n);
        let mut out = Outputs::default();
        for (i, d) in deliveries[..k].iter().enumerate() {
            deliver(&mut reference, i, d, &mut ref_out);
            deliver(&mut original, i, d, &mut out);
            if i % 7 == 3 {
                original.flush_changelog(&mut out).unwrap();
            }
        }
        original.flush_changelog(&mut out).unwrap();
        let committed = RestorePoint {
            offsets: original.next_offsets(),
            flush_seq: Some(original.flush_seq()),
        };
        for (i, d) in deliveries.iter().enumerate().skip(k).take(uncommitted) {
            deliver(&mut original, i, d, &mut out);
        }
        original.flush_changelog(&mut out).unwrap();
        let log = std::mem::take(&mut out.changelog);

        let inputs = vec![TopicPartition::new(PARTIALS, 0)];
        let cfg = MergeConfig::from(&config());
        let mut restored = Merger::restore(cfg, n, inputs, &log, &committed).unwrap();
        prop_assert_eq!(restored.next_offsets(), committed.offsets.clone());
        prop_assert_eq!(restored.len(), reference.len());

        ref_out.clear();
        let mut res_out = Outputs::default();
        for (i, d) in deliveries.iter().enumerate() {
            if i < k {
                if !matches!(d, Delivery::Tick(_)) {
                    let disp = deliver(&mut restored, i, d, &mut res_out);
                    prop_assert_eq!(disp, Some(MergeDisposition::AlreadyApplied));
                }
            } else {
                let a = deliver(&mut restored, i, d, &mut res_out);
                let b = deliver(&mut reference, i, d, &mut ref_out);
                prop_assert_eq!(a, b);
            }
        }
        prop_assert_eq!(&res_out.kpis, &ref_out.kpis);
        // The whole state but the flush sequence number (the reference never flushed).
        let state = |m: &Merger| -> Vec<_> {
            m.snapshot()
                .unwrap()
                .into_iter()
                .filter(|e| e.key != b"meta/position")
                .map(|e| (e.key, e.value))
                .collect()
        };
        prop_assert_eq!(state(&restored), state(&reference));
    }
}
