//! Property tests of the engine against a batch oracle. For random streams with records
//! shuffled within the out-of-orderness bound, duplicates (producer retries), late records,
//! invalid and undecodable records, re-read offsets and processing-time ticks (early
//! results), the oracle below re-derives independently — with plain maps and loops —
//! which records are duplicates, late or invalid, and recomputes every window result in
//! one batch pass (revenue with margins and unknown products against a test catalog, in
//! the reporting currency; products, geo, payments, hourly; activity). The engine must
//! agree record by record and on every final result. The funnel and sessions families
//! have their own oracle in engine_sessions.rs.

mod engine_common;
#[allow(dead_code)]
#[path = "support/session_batch.rs"]
mod session_batch;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use engine_common::*;
use proptest::prelude::*;
use rust_decimal::Decimal;
use session_batch::windows;
use shopstream::engine::{Disposition, Outputs, RestorePoint, Task};
use shopstream::model::{EmitStatus, Record, TxStatus};

#[derive(Default)]
struct Rev {
    revenue: Decimal,
    orders: u64,
    items: u64,
    customers: BTreeSet<String>,
    attempts: u64,
    failed: u64,
    failed_amount: Decimal,
    cost: Decimal,
    margin: Decimal,
    unknown: u64,
}

/// hourly, geo and payments values.
#[derive(Default)]
struct Sales {
    attempts: u64,
    orders: u64,
    revenue: Decimal,
}

/// Per product: units, revenue, cost, unknown units.
type Products = BTreeMap<String, (u64, Decimal, Decimal, u64)>;

/// The default rate of the test records' currency (EUR) to the reporting currency.
fn eur() -> Decimal {
    Decimal::new(108, 2)
}

/// Independent batch recomputation.
#[derive(Default)]
struct Oracle {
    next: [i64; 2],
    part_max: [Option<i64>; 2],
    wm: Option<i64>,
    dedup: HashMap<String, i64>,
    revenue: BTreeMap<Key, Rev>,
    activity: BTreeMap<Key, (BTreeMap<String, u64>, BTreeSet<String>)>,
    sales: BTreeMap<Key, Sales>,
    products: BTreeMap<Key, Products>,
    dispositions: Vec<Disposition>,
}

const REVENUE_SPECS: [(i64, i64); 2] = [(10_000, 10_000), (20_000, 5_000)];
const ACTIVITY_SPEC: (i64, i64) = (10_000, 10_000);

impl Oracle {
    fn wm(&self) -> i64 {
        self.wm.unwrap_or(i64::MIN)
    }

    fn live(&self, ts: i64, specs: &[(i64, i64)]) -> Vec<(i64, i64)> {
        let wm = self.wm();
        specs
            .iter()
            .flat_map(|&(size, slide)| windows(ts, size, slide))
            .filter(|&(_, end)| end + LATENESS > wm)
            .collect()
    }

    fn step(&mut self, step: &Step) {
        let Step::Record {
            topic,
            offset,
            record,
            intent,
            ..
        } = step
        else {
            return;
        };
        let ix = usize::from(*topic == EV);
        if *offset < self.next[ix] {
            self.dispositions.push(Disposition::AlreadyApplied);
            return;
        }
        self.next[ix] = offset + 1;
        let rec = match (record, intent) {
            (Ok(r), Intent::Ok) => r,
            _ => {
                self.dispositions.push(Disposition::Dlq);
                return;
            }
        };
        let wm = self.wm();
        let d = match rec {
            Record::Transaction(t) => {
                let ts = t.timestamp;
                let dup = self
                    .dedup
                    .get(&t.transaction_id)
                    .is_some_and(|exp| exp * 1_000 > wm);
                if dup {
                    Disposition::Duplicate
                } else {
                    let exp = ((ts + TTL) as f64 / 1_000.0).ceil() as i64;
                    self.dedup.insert(t.transaction_id.clone(), exp.max(1));
                    let live = self.live(ts, &REVENUE_SPECS);
                    if live.is_empty() {
                        Disposition::Late
                    } else {
                        let completed = t.status == TxStatus::Completed;
                        let amount = t.amount * eur();
                        let mut sales = |k: Key| {
                            let x = self.sales.entry(k).or_default();
                            x.attempts += 1;
                            if completed {
                                x.orders += 1;
                                x.revenue += amount;
                            }
                        };
                        for (s, e) in windows(ts, 3_600_000, 3_600_000) {
                            sales(("hourly".into(), s, e, "all".into()));
                        }
                        for &(s, e) in &live {
                            sales(("geo".into(), s, e, "country=DE".into()));
                            sales(("payments".into(), s, e, "method=card".into()));
                        }
                        let costs = catalog();
                        for (s, e) in live {
                            let k = |dim: String| ("revenue".to_owned(), s, e, dim);
                            let all = self.revenue.entry(k("all".into())).or_default();
                            all.attempts += 1;
                            if t.status == TxStatus::Failed {
                                all.failed += 1;
                                all.failed_amount += amount;
                            }
                            if !completed {
                                continue;
                            }
                            for i in &t.items {
                                let line =
                                    (Decimal::from(i.quantity) * i.unit_price - i.discount) * eur();
                                let q = i.quantity as u64;
                                let cost =
                                    costs.unit_cost(&i.product_id).map(|c| c * Decimal::from(q));
                                let key = (
                                    "products".to_owned(),
                                    s,
                                    e,
                                    format!("category={}", i.category),
                                );
                                let p = self
                                    .products
                                    .entry(key)
                                    .or_default()
                                    .entry(i.product_id.clone())
                                    .or_default();
                                p.0 += q;
                                p.1 += line;
                                for dim in ["all".to_owned(), format!("category={}", i.category)] {
                                    let r = self.revenue.entry(k(dim)).or_default();
                                    match cost {
                                        Some(c) => {
                                            r.cost += c;
                                            r.margin += line - c;
                                        }
                                        None => r.unknown += 1,
                                    }
                                }
                                match cost {
                                    Some(c) => p.2 += c,
                                    None => p.3 += q,
                                }
                            }
                            let all = self.revenue.entry(k("all".into())).or_default();
                            all.revenue += amount;
                            all.orders += 1;
                            all.items += t.items.iter().map(|i| i.quantity as u64).sum::<u64>();
                            all.customers.insert(t.customer_id.clone());
                            let cats: BTreeSet<&str> =
                                t.items.iter().map(|i| i.category.as_str()).collect();
                            for c in cats {
                                let r = self.revenue.entry(k(format!("category={c}"))).or_default();
                                for i in t.items.iter().filter(|i| i.category == c) {
                                    r.revenue += (Decimal::from(i.quantity) * i.unit_price
                                        - i.discount)
                                        * eur();
                                    r.items += i.quantity as u64;
                                }
                                r.orders += 1;
                                r.customers.insert(t.customer_id.clone());
                            }
                        }
                        Disposition::Counted
                    }
                }
            }
            Record::Event(e) => {
                let live = self.live(e.timestamp, &[ACTIVITY_SPEC]);
                // Too far behind for its session too (tests/engine_sessions.rs checks the
                // session rules in full; with the default 30 min gap nothing else applies).
                if live.is_empty() || e.timestamp + LATENESS < wm {
                    Disposition::Late
                } else {
                    for (s, end) in live {
                        let a = self
                            .activity
                            .entry(("activity".into(), s, end, "all".into()))
                            .or_default();
                        *a.0.entry(e.event_type.as_str().to_owned()).or_default() += 1;
                        a.1.insert(e.customer_id.clone());
                    }
                    Disposition::Counted
                }
            }
        };
        let ts = match rec {
            Record::Transaction(t) => t.timestamp,
            Record::Event(e) => e.timestamp,
        };
        self.part_max[ix] = Some(self.part_max[ix].map_or(ts, |m| m.max(ts)));
        if let (Some(a), Some(b)) = (self.part_max[0], self.part_max[1]) {
            let w = a.min(b) - OOO;
            self.wm = Some(self.wm.map_or(w, |x| x.max(w)));
        }
        self.dispositions.push(d);
    }

    fn expected(&self) -> BTreeMap<Key, BTreeMap<String, Decimal>> {
        let mut out = BTreeMap::new();
        for (k, r) in &self.revenue {
            let mut v = BTreeMap::new();
            v.insert("revenue".to_owned(), r.revenue);
            v.insert("orders".to_owned(), r.orders.into());
            v.insert("items".to_owned(), r.items.into());
            v.insert(
                "unique_customers".to_owned(),
                (r.customers.len() as u64).into(),
            );
            v.insert("attempts".to_owned(), r.attempts.into());
            v.insert("failed".to_owned(), r.failed.into());
            v.insert("failed_amount".to_owned(), r.failed_amount);
            v.insert("refunded".to_owned(), 0.into());
            v.insert("refunded_amount".to_owned(), 0.into());
            v.insert("unconverted".to_owned(), 0.into());
            v.insert("cost".to_owned(), r.cost);
            v.insert("gross_margin".to_owned(), r.margin);
            v.insert("unknown_products".to_owned(), r.unknown.into());
            if r.orders > 0 {
                v.insert(
                    "avg_order_value".to_owned(),
                    (r.revenue / Decimal::from(r.orders)).round_dp(2),
                );
            }
            out.insert(k.clone(), v);
        }
        for (k, x) in &self.sales {
            let v = BTreeMap::from([
                ("attempts".to_owned(), x.attempts.into()),
                ("orders".to_owned(), x.orders.into()),
                ("revenue".to_owned(), x.revenue),
            ]);
            out.insert(k.clone(), v);
        }
        for (k, products) in &self.products {
            let mut v = BTreeMap::new();
            for (id, (units, revenue, cost, unknown)) in products {
                v.insert(format!("{id}/units"), (*units).into());
                v.insert(format!("{id}/revenue"), *revenue);
                v.insert(format!("{id}/cost"), *cost);
                v.insert(format!("{id}/unknown_units"), (*unknown).into());
            }
            out.insert(k.clone(), v);
        }
        for (k, (types, users)) in &self.activity {
            let mut v: BTreeMap<String, Decimal> = [
                "page_view",
                "search",
                "add_to_cart",
                "remove_from_cart",
                "checkout_start",
                "purchase",
            ]
            .iter()
            .map(|t| (t.to_string(), types.get(*t).copied().unwrap_or(0).into()))
            .collect();
            v.insert("events".to_owned(), types.values().sum::<u64>().into());
            v.insert("active_users".to_owned(), (users.len() as u64).into());
            out.insert(k.clone(), v);
        }
        out
    }
}

fn run(steps: &[Step]) -> (Task, Outputs, Vec<Disposition>) {
    let mut task = Task::new(config(), inputs()).unwrap();
    task.set_product_costs(catalog());
    let mut out = Outputs::default();
    let mut ds = Vec::new();
    for s in steps {
        if let Some(d) = feed(&mut task, s, &mut out) {
            ds.push(d);
        }
    }
    drain(&mut task, last_now(steps), &mut out);
    (task, out, ds)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1_000, max_shrink_iters: 300, ..ProptestConfig::default() })]

    #[test]
    fn final_results_equal_batch_recomputation(choices in prop::collection::vec(choice(), 1..120)) {
        let steps = build(&choices);
        let mut oracle = Oracle::default();
        for s in &steps {
            oracle.step(s);
        }
        let (task, out, ds) = run(&steps);

        // Every input record is accounted for exactly once, as the oracle says.
        prop_assert_eq!(&ds, &oracle.dispositions);
        let count = |d| ds.iter().filter(|x| **x == d).count();
        prop_assert_eq!(out.dlq.len(), count(Disposition::Dlq));
        prop_assert_eq!(out.late.len(), count(Disposition::Late));
        prop_assert_eq!(out.transactions.len() + out.events.len(), count(Disposition::Counted));
        let c = task.counters();
        prop_assert_eq!(c.records as usize, ds.len());
        prop_assert_eq!(c.duplicates as usize, count(Disposition::Duplicate));
        prop_assert_eq!(c.already_applied as usize, count(Disposition::AlreadyApplied));

        // Without any valid record there is no event time, so the watermark cannot move
        // and nothing is final (the quality counts of the rejected records stay open).
        if oracle.part_max.iter().all(Option::is_none) {
            prop_assert_eq!(task.watermark(), i64::MIN);
            prop_assert!(out.kpis.iter().all(|r| r.status != EmitStatus::Final));
            return Ok(());
        }

        // Final window results equal the batch recomputation.
        let finals = final_rows(&out.kpis)?;
        let mut got: BTreeMap<Key, BTreeMap<String, Decimal>> = finals
            .iter()
            .filter(|(k, _)| !["quality", "funnel", "sessions"].contains(&k.0.as_str()))
            .map(|(k, r)| (k.clone(), r.values.clone()))
            .collect();
        let expected = oracle.expected();
        for (k, v) in &expected {
            let g = got.remove(k);
            prop_assert_eq!(g.as_ref(), Some(v), "window {:?}", k);
        }
        prop_assert!(got.is_empty(), "results the oracle does not know: {:?}", got.keys().collect::<Vec<_>>());

        // The quality KPI accounts for every applied record.
        let q = |name: &str| -> Decimal { finals.iter().filter(|(k, _)| k.0 == "quality").map(|(_, r)| r.values[name]).sum() };
        let applied = ds.len() - count(Disposition::AlreadyApplied);
        prop_assert_eq!(q("total"), Decimal::from(applied));
        prop_assert_eq!(q("invalid"), Decimal::from(count(Disposition::Dlq)));
        prop_assert_eq!(q("duplicates"), Decimal::from(count(Disposition::Duplicate)));
        prop_assert_eq!(q("late"), Decimal::from(count(Disposition::Late)));
        prop_assert_eq!(task.window_results(), 0, "all state purged after final");
    }

    #[test]
    fn restored_task_continues_identically(
        choices in prop::collection::vec(choice(), 2..100),
        cut in 0.0f64..1.0,
        uncommitted in 0usize..10,
    ) {
        let steps = build(&choices);
        let k = ((steps.len() as f64) * cut) as usize;
        // Reference: one task over the whole stream, outputs after the cut kept.
        let mut reference = Task::new(config(), inputs()).unwrap();
        let mut ref_out = Outputs::default();
        for s in &steps[..k] {
            feed(&mut reference, s, &mut ref_out);
        }
        // The original: flushes its changelog at the cut (a commit), then processes a few
        // more records whose changelog is written but never committed.
        let mut original = Task::new(config(), inputs()).unwrap();
        let mut out = Outputs::default();
        for (i, s) in steps[..k].iter().enumerate() {
            feed(&mut original, s, &mut out);
            if i % 7 == 3 {
                original.flush_changelog(&mut out).unwrap();
            }
        }
        original.flush_changelog(&mut out).unwrap();
        let committed = RestorePoint { offsets: original.next_offsets(), flush_seq: Some(original.flush_seq()) };
        for s in steps[k..].iter().take(uncommitted) {
            feed(&mut original, s, &mut out);
        }
        original.flush_changelog(&mut out).unwrap();
        let log = std::mem::take(&mut out.changelog);

        let mut restored = Task::restore(config(), inputs(), &log, &committed).unwrap();
        prop_assert_eq!(restored.next_offsets(), committed.offsets.clone());

        // The restored task re-reads the whole stream (a broker that cannot seek): records
        // before the commit are recognised as applied, the rest continue identically.
        ref_out.clear();
        let mut res_out = Outputs::default();
        for (i, s) in steps.iter().enumerate() {
            if i < k {
                if matches!(s, Step::Record { .. }) {
                    let d = feed(&mut restored, s, &mut res_out);
                    prop_assert_eq!(d, Some(Disposition::AlreadyApplied));
                }
            } else {
                let d = feed(&mut restored, s, &mut res_out);
                let r = feed(&mut reference, s, &mut ref_out);
                prop_assert_eq!(d, r);
            }
        }
        prop_assert!(res_out.is_empty() || k < steps.len(), "re-read records emit nothing");
        let end = last_now(&steps);
        drain(&mut reference, end, &mut ref_out);
        drain(&mut restored, end, &mut res_out);
        let diff = res_out.kpis.iter().zip(&ref_out.kpis).position(|(a, b)| a != b);
        prop_assert!(
            diff.is_none() && res_out.kpis.len() == ref_out.kpis.len(),
            "KPI rows differ at {:?} (restored {} rows, reference {}): {:?} vs {:?}",
            diff,
            res_out.kpis.len(),
            ref_out.kpis.len(),
            diff.map(|i| &res_out.kpis[i]),
            diff.map(|i| &ref_out.kpis[i])
        );
        prop_assert_eq!(&res_out.dlq, &ref_out.dlq);
        prop_assert_eq!(&res_out.late, &ref_out.late);
        prop_assert_eq!(&res_out.transactions, &ref_out.transactions);
        prop_assert_eq!(&res_out.events, &ref_out.events);
    }

    #[test]
    fn rejected_records_count_in_the_same_quality_window_however_inputs_interleave(
        choices in prop::collection::vec(choice(), 2..100),
        order in prop::collection::vec(any::<bool>(), 200),
    ) {
        let steps = build(&choices);
        let records: Vec<&Step> = steps.iter().filter(|s| matches!(s, Step::Record { .. })).collect();
        // A rejected record before its partition has a valid one included: it goes by its
        // own Kafka timestamp then, not by the task's other partition.
        // The same per-partition sequences, merged in another order (and no ticks).
        let (mut tx, mut ev): (std::collections::VecDeque<&Step>, std::collections::VecDeque<&Step>) =
            records.iter().partition(|s| matches!(s, Step::Record { topic, .. } if *topic == TX));
        let mut other = Vec::new();
        for pick_tx in order.iter().copied().chain(std::iter::repeat(true)) {
            let next = match (pick_tx, tx.is_empty(), ev.is_empty()) {
                (_, true, true) => break,
                (true, false, _) | (false, false, true) => tx.pop_front(),
                _ => ev.pop_front(),
            };
            other.push(next.unwrap().clone());
        }
        let invalid_per_window = |steps: &[Step]| -> Result<BTreeMap<(i64, i64), Decimal>, TestCaseError> {
            let (_, out, _) = run(steps);
            Ok(final_rows(&out.kpis)?
                .into_iter()
                .filter(|(k, _)| k.0 == "quality")
                .map(|(k, r)| ((k.1, k.2), r.values["invalid"]))
                .filter(|(_, n)| !n.is_zero())
                .collect())
        };
        let records: Vec<Step> = records.into_iter().cloned().collect();
        prop_assert_eq!(invalid_per_window(&records)?, invalid_per_window(&other)?);
    }
}

/// Feeds an undecodable transaction with Kafka timestamp `kafka_ts` as the first record,
/// then thirty seconds of valid transactions and events from `t0` (Kafka timestamp = event
/// time), all at processing time `now`; returns the final quality rows.
fn rejected_first_then_data(t0: i64, kafka_ts: i64, now: i64) -> Vec<shopstream::model::KpiRow> {
    use shopstream::engine::{testkit, Input};
    use shopstream::model::EventType;
    use shopstream::quality::Rejection;

    let mut task = Task::new(config(), inputs()).unwrap();
    let mut out = Outputs::default();
    let mut offsets = [0i64; 2];
    let key = testkit::customer_id(1);
    let mut process = |task: &mut Task, topic, record, kafka_ts, out: &mut Outputs| {
        let ix = usize::from(topic == EV);
        let input = Input {
            topic,
            partition: PARTITION,
            offset: offsets[ix],
            key: Some(key.as_bytes()),
            value: b"{",
            timestamp: Some(kafka_ts),
            record,
        };
        offsets[ix] += 1;
        task.process(input, now, out).unwrap()
    };
    let undecodable = Err(Rejection::undecodable("json", "EOF while parsing"));
    let d = process(&mut task, TX, undecodable, kafka_ts, &mut out);
    assert_eq!(d, Disposition::Dlq);
    // The watermark passes the first window's end and allowed lateness.
    for (n, ts) in (1..=30).map(|s| (s as u64, t0 + s * 1_000)) {
        let tx = Record::Transaction(testkit::transaction(n, 1, ts));
        process(&mut task, TX, Ok(tx), ts, &mut out);
        let ev = Record::Event(testkit::event(n, 1, ts, EventType::PageView));
        process(&mut task, EV, Ok(ev), ts, &mut out);
    }
    out.kpis
        .into_iter()
        .filter(|r| r.kpi == "quality" && r.status == EmitStatus::Final)
        .collect()
}

/// The invalid count of the final quality row of the window starting at `start`.
fn invalid_in(rows: &[shopstream::model::KpiRow], start: i64) -> Decimal {
    let row = rows.iter().find(|r| r.window_start == start);
    row.expect("the window is final").values["invalid"]
}

/// A backfill: months-old records replayed today. A rejected record that comes first on
/// its partition has no event time of the partition to go by; it is counted at its Kafka
/// timestamp, in the old window the replayed data closes, not at today's processing time
/// in a window that replayed data never reaches.
#[test]
fn a_rejected_first_record_of_a_backfill_counts_in_the_window_of_its_kafka_timestamp() {
    let t0: i64 = 1_773_154_800_000; // 2026-03-10T15:00:00Z, a window start
    let today: i64 = 1_795_500_000_000; // 2026-11-24, processing time of the replay
    let rows = rejected_first_then_data(t0, t0 + 500, today);
    assert_eq!(invalid_in(&rows, t0), Decimal::ONE);
    // The rejected record and the 9 transactions and 9 events of seconds 1..9.
    let first = rows.iter().find(|r| r.window_start == t0).unwrap();
    assert_eq!(first.values["total"], Decimal::from(19));
}

/// A producer whose clock is a year ahead: the rejected first record is counted at
/// processing time, not in a window of its Kafka timestamp that nothing would close.
#[test]
fn a_kafka_timestamp_ahead_of_processing_time_counts_at_processing_time() {
    let t0: i64 = 1_773_154_800_000;
    let now = t0 + 500;
    let rows = rejected_first_then_data(t0, now + 365 * 86_400_000, now);
    assert_eq!(invalid_in(&rows, t0), Decimal::ONE);
}
