//! RFM profiles against a batch recomputation. Streams from the engine test generator
//! (shuffled within the out-of-orderness bound, duplicated, late, invalid, replayed
//! offsets, failed and pending payments) go through a stage-1 task; the last emitted
//! profile of every customer must equal the profile recomputed from the completed
//! transactions the task accepted (order count, lifetime value in the reporting currency,
//! first and last order), scored at the task's final watermark; revisions must grow by one
//! per emission; every emission must be scored at its own `as_of`; and no customer without
//! an accepted completed purchase may have a profile.

mod engine_common;

use std::collections::BTreeMap;

use engine_common::*;
use proptest::prelude::*;
use rust_decimal::Decimal;
use shopstream::analytics::rfm::RfmConfig;
use shopstream::analytics::rfm_state::RfmUpdate;
use shopstream::engine::{Converter, Disposition, Outputs, Task};
use shopstream::model::{Record, TxStatus};

/// (orders, value, first, last) per customer.
type Batch = BTreeMap<String, (u64, Decimal, i64, i64)>;

fn run(steps: &[Step]) -> (Task, Vec<RfmUpdate>, Batch) {
    let cfg = config();
    let converter = Converter::new(&cfg.kpis);
    let mut task = Task::new(cfg, inputs()).unwrap();
    task.set_product_costs(catalog());
    let mut out = Outputs::default();
    let mut emitted = Vec::new();
    let mut batch = Batch::new();
    for step in steps {
        let d = feed(&mut task, step, &mut out);
        if let (
            Some(Disposition::Counted),
            Step::Record {
                record: Ok(Record::Transaction(t)),
                ..
            },
        ) = (d, step)
        {
            if t.status == TxStatus::Completed {
                let value = converter
                    .rate(&t.currency)
                    .map_or(Decimal::ZERO, |r| r.apply(t.amount));
                let e = batch.entry(t.customer_id.clone()).or_insert((
                    0,
                    Decimal::ZERO,
                    i64::MAX,
                    i64::MIN,
                ));
                e.0 += 1;
                e.1 += value;
                e.2 = e.2.min(t.timestamp);
                e.3 = e.3.max(t.timestamp);
            }
        }
        emitted.append(&mut out.rfm);
        out.clear();
    }
    drain(&mut task, last_now(steps), &mut out);
    emitted.append(&mut out.rfm);
    (task, emitted, batch)
}

fn check(steps: &[Step]) -> Result<usize, TestCaseError> {
    let (task, emitted, batch) = run(steps);
    let rfm: RfmConfig = config().rfm;
    let w = task.watermark();
    let mut latest: BTreeMap<String, &RfmUpdate> = BTreeMap::new();
    for u in &emitted {
        let p = &u.profile;
        prop_assert_eq!(
            u.scores,
            rfm.score(p.orders, p.value, p.last, p.as_of),
            "scored at its own as_of"
        );
        let prev = latest.insert(u.customer.to_string(), u);
        let prev_rev = prev.map_or(0, |x| x.profile.revision);
        prop_assert_eq!(p.revision, prev_rev + 1, "revision grows by one");
        if let Some(prev) = prev {
            prop_assert!(p.as_of >= prev.profile.as_of, "as_of never goes back");
        }
    }
    prop_assert_eq!(
        latest.keys().collect::<Vec<_>>(),
        batch.keys().collect::<Vec<_>>(),
        "exactly the customers with an accepted completed purchase"
    );
    for (customer, (orders, value, first, last)) in &batch {
        let u = latest[customer];
        let p = &u.profile;
        prop_assert_eq!(
            (p.orders, p.value, p.first, p.last),
            (*orders, *value, *first, *last),
            "profile of {}",
            customer
        );
        prop_assert_eq!(
            u.scores,
            rfm.score(*orders, *value, *last, w),
            "scores of {} at the final watermark {}",
            customer,
            w
        );
        prop_assert_eq!(task.rfm().profile(customer), Some(p));
    }
    Ok(emitted.len())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn rfm_profiles_equal_the_batch_recomputation(choices in prop::collection::vec(choice(), 20..400)) {
        check(&build(&choices))?;
    }
}

#[test]
fn a_long_stream_decays_recency_through_every_score() {
    let choices: Vec<Choice> = (0..3_000u64)
        .map(|i| {
            let r = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            Choice::from_raw(
                r % 100,
                (r >> 8) % 1_500,
                (r >> 20) % 3_000,
                (r >> 32) % 6,
                r >> 40,
                (r >> 44) % 25_000,
                i as usize,
            )
        })
        .collect();
    let steps = build(&choices);
    let (_, emitted, _) = run(&steps);
    for score in 1..=5u8 {
        assert!(
            emitted.iter().any(|u| u.scores.recency == score),
            "some emission has recency {score}"
        );
    }
    assert!(emitted
        .iter()
        .any(|u| u.profile.as_of > u.profile.last + 2_000));
    check(&steps).unwrap();
}
