//! Shared helpers of the engine integration tests: a generator of input streams with
//! out-of-order, duplicate, late, invalid and replayed records (driven by proptest-chosen
//! steps so failures shrink), a driver that feeds a stream into a task, and the checker of
//! the KPI emission life cycle.

#![allow(dead_code, clippy::large_enum_variant)]

use proptest::prelude::*;
use rust_decimal::Decimal;
use shopstream::engine::{
    testkit, Disposition, EngineConfig, Input, Outputs, Task, TopicPartition, WindowSpec,
};
use shopstream::model::{EmitStatus, EventType, KpiRow, Record, TxStatus};
use shopstream::quality::Rejection;
use std::collections::BTreeMap;

pub const TX: &str = "shop.transactions";
pub const EV: &str = "shop.events";
pub const PARTITION: i32 = 3;
pub const OOO: i64 = 3_000;
pub const LATENESS: i64 = 5_000;
pub const TTL: i64 = 20_000;

pub fn inputs() -> Vec<TopicPartition> {
    vec![
        TopicPartition::new(TX, PARTITION),
        TopicPartition::new(EV, PARTITION),
    ]
}

pub fn config() -> EngineConfig {
    let mut cfg = EngineConfig::default();
    cfg.watermark.max_out_of_orderness_ms = OOO;
    cfg.watermark.idle_timeout_ms = 1_000;
    cfg.windows.revenue = vec![
        WindowSpec::tumbling(10_000),
        WindowSpec::hopping(20_000, 5_000),
    ];
    cfg.windows.activity = WindowSpec::tumbling(10_000);
    cfg.windows.quality = WindowSpec::tumbling(10_000);
    cfg.windows.allowed_lateness_ms = LATENESS;
    cfg.windows.early_interval_ms = Some(2_000);
    cfg.dedup.ttl_ms = TTL;
    // RFM recency decays within the stream's seconds, so event-time timers fire.
    cfg.rfm.recency_ms = [2_000, 4_000, 8_000, 16_000];
    cfg.rfm.frequency_orders = [2, 3, 5, 8];
    cfg.rfm.monetary = [20, 60, 150, 400].map(Decimal::from);
    cfg
}

/// What the generator intended a record to be; the oracle re-derives late and duplicate
/// itself, the generator only knows which records it broke on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    Ok,
    Invalid,
    Replay,
}

#[derive(Debug, Clone)]
pub enum Step {
    Record {
        topic: &'static str,
        offset: i64,
        key: Option<Vec<u8>>,
        value: Vec<u8>,
        record: Result<Record, Rejection>,
        /// The Kafka message timestamp: the producer's clock when it sent the record.
        kafka_ts: Option<i64>,
        now: i64,
        intent: Intent,
    },
    Tick {
        now: i64,
    },
}

/// One generator choice; a stream is a vector of them.
#[derive(Debug, Clone)]
pub struct Choice {
    kind: u8,
    dt: i64,
    jitter: i64,
    customer: u64,
    status: u8,
    extra: i64,
    pick: usize,
}

impl Choice {
    /// A choice from raw random numbers (for deterministic long streams).
    pub fn from_raw(
        kind: u64,
        dt: u64,
        jitter: u64,
        customer: u64,
        status: u64,
        extra: u64,
        pick: usize,
    ) -> Self {
        Choice {
            kind: (kind % 100) as u8,
            dt: dt as i64,
            jitter: jitter as i64,
            customer,
            status: (status % 10) as u8,
            extra: extra as i64,
            pick,
        }
    }
}

pub fn choice() -> impl Strategy<Value = Choice> {
    (
        0u8..100,
        0i64..1_500,
        0..=OOO,
        0u64..6,
        0u8..10,
        0i64..25_000,
        any::<usize>(),
    )
        .prop_map(|(kind, dt, jitter, customer, status, extra, pick)| Choice {
            kind,
            dt,
            jitter,
            customer,
            status,
            extra,
            pick,
        })
}

/// Builds the stream for a list of choices. Timestamps advance by `dt` and are shuffled
/// backwards by at most the out-of-orderness bound; "late" records go further back.
pub fn build(choices: &[Choice]) -> Vec<Step> {
    let base: i64 = 1_700_000_000_000;
    let mut t = base;
    let mut steps = Vec::new();
    let mut offsets = [0i64; 2];
    let mut txs: Vec<(Step, i64)> = Vec::new();
    let mut n = 0u64;
    for c in choices {
        t += c.dt;
        let now = t + 500;
        n += 1;
        let ts = t - c.jitter;
        let mut push_tx = |mut tx: shopstream::model::Transaction,
                           intent: Intent,
                           steps: &mut Vec<Step>,
                           key: Option<Vec<u8>>,
                           decoded: bool| {
            tx.status = match c.status {
                0 => TxStatus::Failed,
                1 => TxStatus::Pending,
                _ => TxStatus::Completed,
            };
            let key = key.or_else(|| Some(tx.customer_id.clone().into_bytes()));
            let value = serde_json::to_vec(&tx).unwrap();
            let record = if decoded {
                Ok(Record::Transaction(tx))
            } else {
                Err(Rejection::undecodable("json", "expected value at line 1"))
            };
            let step = Step::Record {
                topic: TX,
                offset: offsets[0],
                key,
                value,
                record,
                kafka_ts: Some(t),
                now,
                intent,
            };
            offsets[0] += 1;
            steps.push(step.clone());
            step
        };
        match c.kind {
            0..=49 => {
                let s = push_tx(
                    testkit::transaction(n, c.customer, ts),
                    Intent::Ok,
                    &mut steps,
                    None,
                    true,
                );
                txs.push((s, ts));
            }
            50..=64 => {
                let types = [
                    EventType::PageView,
                    EventType::AddToCart,
                    EventType::Purchase,
                ];
                let e = testkit::event(n, c.customer, ts, types[(c.extra % 3) as usize]);
                steps.push(Step::Record {
                    topic: EV,
                    offset: offsets[1],
                    key: Some(e.customer_id.clone().into_bytes()),
                    value: serde_json::to_vec(&e).unwrap(),
                    record: Ok(Record::Event(e)),
                    kafka_ts: Some(t),
                    now,
                    intent: Intent::Ok,
                });
                offsets[1] += 1;
            }
            65..=71 if !txs.is_empty() => {
                // A producer retry: same transaction (same id and content), new offset.
                let (prev, _) = &txs[c.pick % txs.len()];
                if let Step::Record {
                    key,
                    value,
                    record,
                    kafka_ts,
                    ..
                } = prev
                {
                    // The retried batch keeps its CreateTime.
                    steps.push(Step::Record {
                        topic: TX,
                        offset: offsets[0],
                        key: key.clone(),
                        value: value.clone(),
                        record: record.clone(),
                        kafka_ts: *kafka_ts,
                        now,
                        intent: Intent::Ok,
                    });
                    offsets[0] += 1;
                }
            }
            72..=79 => {
                let late_ts = t - OOO - LATENESS - c.extra;
                push_tx(
                    testkit::transaction(n, c.customer, late_ts),
                    Intent::Ok,
                    &mut steps,
                    None,
                    true,
                );
            }
            80..=89 => {
                let mut tx = testkit::transaction(n, c.customer, ts);
                let (key, decoded) = match c.extra % 6 {
                    0 => {
                        tx.amount = Decimal::ZERO;
                        (None, true)
                    }
                    1 => {
                        tx.currency = "XYZ".into();
                        (None, true)
                    }
                    2 => (Some(b"not-the-customer".to_vec()), true),
                    3 => (None, false),
                    4 => {
                        tx.timestamp = now + 2 * 3_600_000;
                        (None, true)
                    }
                    _ => {
                        tx.amount += Decimal::new(5, 2);
                        (None, true)
                    }
                };
                push_tx(tx, Intent::Invalid, &mut steps, key, decoded);
            }
            90..=94 if !steps.is_empty() => {
                // A re-read after a restart: an already applied offset comes again.
                let prev = steps
                    .iter()
                    .filter(|s| {
                        matches!(
                            s,
                            Step::Record {
                                intent: Intent::Ok | Intent::Invalid,
                                ..
                            }
                        )
                    })
                    .nth(c.pick % steps.len().max(1));
                if let Some(Step::Record {
                    topic,
                    offset,
                    key,
                    value,
                    record,
                    kafka_ts,
                    ..
                }) = prev.cloned()
                {
                    steps.push(Step::Record {
                        topic,
                        offset,
                        key,
                        value,
                        record,
                        kafka_ts,
                        now,
                        intent: Intent::Replay,
                    });
                }
            }
            _ => steps.push(Step::Tick { now }),
        }
    }
    steps
}

/// The processing time after the last step.
pub fn last_now(steps: &[Step]) -> i64 {
    steps
        .iter()
        .map(|s| match s {
            Step::Record { now, .. } | Step::Tick { now } => *now,
        })
        .max()
        .unwrap_or(0)
}

/// Feeds one step; returns the disposition of records.
pub fn feed(task: &mut Task, step: &Step, out: &mut Outputs) -> Option<Disposition> {
    match step {
        Step::Record {
            topic,
            offset,
            key,
            value,
            record,
            kafka_ts,
            now,
            ..
        } => Some(
            task.process(
                Input {
                    topic,
                    partition: PARTITION,
                    offset: *offset,
                    key: key.as_deref(),
                    value,
                    timestamp: *kafka_ts,
                    record: record.clone(),
                },
                *now,
                out,
            )
            .expect("known input"),
        ),
        Step::Tick { now } => {
            task.on_tick(*now, out);
            None
        }
    }
}

/// Declares both inputs caught up and lets a long quiet period pass, so the watermark
/// passes every window's lateness and every result is final.
pub fn drain(task: &mut Task, after: i64, out: &mut Outputs) {
    for tp in inputs() {
        task.on_partition_status(&tp.topic, tp.partition, true, after, out)
            .unwrap();
    }
    task.on_tick(after + 1_000_000_000, out);
}

/// A KPI result key: (kpi, window_start, window_end, dimension).
pub type Key = (String, i64, i64, String);

/// Checks the emission life cycle of every result and returns the final rows.
pub fn final_rows(rows: &[KpiRow]) -> Result<BTreeMap<Key, KpiRow>, TestCaseError> {
    let mut by_key: BTreeMap<Key, Vec<&KpiRow>> = BTreeMap::new();
    for r in rows {
        by_key
            .entry((
                r.kpi.clone(),
                r.window_start,
                r.window_end,
                r.dimension.clone(),
            ))
            .or_default()
            .push(r);
    }
    let mut finals = BTreeMap::new();
    for (k, rs) in by_key {
        for pair in rs.windows(2) {
            prop_assert!(
                pair[0].revision < pair[1].revision,
                "revision must grow: {k:?}"
            );
            prop_assert!(
                pair[0].status != EmitStatus::Final,
                "nothing after final: {k:?}"
            );
            prop_assert!(
                pair[0].status <= pair[1].status
                    || pair[1].status == EmitStatus::LateUpdate
                        && pair[0].status == EmitStatus::LateUpdate,
                "status order: {k:?}"
            );
        }
        let last = rs[rs.len() - 1];
        prop_assert_eq!(
            last.status,
            EmitStatus::Final,
            "every result ends final: {:?}",
            k
        );
        prop_assert_eq!(
            rs.iter().filter(|r| r.status == EmitStatus::OnTime).count() <= 1,
            true
        );
        finals.insert(k, last.clone());
    }
    Ok(finals)
}

/// A catalog knowing products p-0 to p-39 (unit cost 1.50 + 0.10 per number) but not
/// p-40 to p-49, so margins and unknown products are both exercised.
pub fn catalog() -> std::sync::Arc<dyn shopstream::engine::ProductCosts> {
    struct Costs;
    impl shopstream::engine::ProductCosts for Costs {
        fn unit_cost(&self, product_id: &str) -> Option<rust_decimal::Decimal> {
            let n: i64 = product_id.strip_prefix("p-")?.parse().ok()?;
            (n < 40).then(|| rust_decimal::Decimal::new(150 + 10 * n, 2))
        }
    }
    std::sync::Arc::new(Costs)
}
