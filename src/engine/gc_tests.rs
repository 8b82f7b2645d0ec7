//! Collection of interned customer ids inside a running task: after the windows that
//! held a population of customers are purged, the interner forgets them (ids are reused
//! by later customers) and the distinct-customer counts of later windows stay exact.

use rust_decimal::Decimal;

use super::testkit;
use super::{EngineConfig, Input, Outputs, Task, TopicPartition};
use crate::model::{EmitStatus, EventType, Record};

const TX: &str = "shop.transactions";
const EV: &str = "shop.events";

struct Feed {
    task: Task,
    out: Outputs,
    offsets: [i64; 2],
    n: u64,
}

impl Feed {
    /// One event and one completed transaction of customer `c` at `ts`.
    fn both(&mut self, c: u64, ts: i64) {
        self.n += 1;
        let key = testkit::customer_id(c).into_bytes();
        let records = [
            (
                EV,
                Record::Event(testkit::event(self.n, c, ts, EventType::PageView)),
            ),
            (TX, Record::Transaction(testkit::transaction(self.n, c, ts))),
        ];
        for (ix, (topic, record)) in records.into_iter().enumerate() {
            let input = Input {
                topic,
                partition: 0,
                offset: self.offsets[ix],
                key: Some(&key),
                value: b"",
                timestamp: None,
                record: Ok(record),
            };
            self.offsets[ix] += 1;
            self.task.process(input, ts, &mut self.out).unwrap();
        }
    }
}

fn final_value(out: &Outputs, kpi: &str, start: i64, dim: &str, name: &str) -> Decimal {
    out.kpis
        .iter()
        .find(|r| {
            r.kpi == kpi
                && r.window_start == start
                && r.dimension == dim
                && r.status == EmitStatus::Final
        })
        .map(|r| r.values[name])
        .expect("final row")
}

#[test]
fn purged_customers_are_collected_and_later_counts_stay_exact() {
    let inputs = vec![TopicPartition::new(TX, 0), TopicPartition::new(EV, 0)];
    let mut f = Feed {
        task: Task::new(EngineConfig::default(), inputs).unwrap(),
        out: Outputs::default(),
        offsets: [0, 0],
        n: 0,
    };
    let hour = 3_600_000;
    let t0 = 100 * hour;
    // 10,000 customers in the first hour.
    for c in 0..10_000 {
        f.both(c, t0 + c as i64);
    }
    assert_eq!(f.task.customers.len(), 10_000);
    // Three hours later (all first-hour windows purged): 12,000 others, each twice, and
    // 1,000 of the first population again, all within one minute.
    let t1 = t0 + 3 * hour;
    for round in 0..2 {
        for c in 20_000..32_000 {
            f.both(c, t1 + round * 10_000 + (c - 20_000) as i64);
        }
    }
    for c in 0..1_000 {
        f.both(c, t1 + 30_000 + c as i64);
    }
    // The interner is collected once it doubles: it now holds exactly the live customers,
    // and the ids of collected ones were reused (without collection it would hold 22,000).
    assert_eq!(f.task.customers.len(), 13_000);
    assert!(f.task.customers.id_bound() < 22_000);
    // Close everything and check the counts of the later windows.
    f.both(99_999, t1 + 5 * hour);
    let first = final_value(&f.out, "activity", t0, "all", "active_users");
    assert_eq!(first, Decimal::from(10_000));
    let later = final_value(&f.out, "activity", t1, "all", "active_users");
    assert_eq!(later, Decimal::from(13_000));
    let hourly = final_value(&f.out, "revenue", t1, "all", "unique_customers");
    assert_eq!(hourly, Decimal::from(13_000));
}
