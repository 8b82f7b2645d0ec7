//! Mid-stream snapshot and rebuild: a task runs half a stream (with periodic changelog
//! flushes, early results, idle periods and caught-up reports), a fresh task is rebuilt
//! from the changelog entries alone, and both must produce identical outputs for the rest
//! of the stream (both told, as a restarted runtime would, that their inputs are behind:
//! caught-up reports are not state). Also checks that the compacted changelog equals a
//! full snapshot.

mod engine_common;

use engine_common::*;
use shopstream::engine::{compact_committed, Outputs, RestorePoint, Task};

fn stream() -> Vec<Step> {
    // A long deterministic stream covering every kind of step.
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let choices: Vec<Choice> = (0..3_000)
        .map(|_| {
            Choice::from_raw(
                rnd() % 100,
                rnd() % 1_500,
                rnd() % (OOO as u64 + 1),
                rnd() % 40,
                rnd() % 10,
                rnd() % 25_000,
                rnd() as usize,
            )
        })
        .collect();
    build(&choices)
}

fn run_to(task: &mut Task, steps: &[Step], out: &mut Outputs, flush_every: usize) {
    for (i, s) in steps.iter().enumerate() {
        feed(task, s, out);
        if i % 50 == 49 {
            // A quiet spell: both inputs caught up, processing time passes.
            let now = match s {
                Step::Record { now, .. } | Step::Tick { now } => *now,
            };
            for tp in inputs() {
                task.on_partition_status(&tp.topic, tp.partition, i % 100 == 49, now, out)
                    .unwrap();
            }
            task.on_tick(now + 1_500, out);
        }
        if flush_every > 0 && i % flush_every == 0 {
            task.flush_changelog(out).unwrap();
        }
    }
}

#[test]
fn rebuilt_task_produces_identical_outputs_for_the_rest_of_the_stream() {
    let steps = stream();
    let half = steps.len() / 2;
    let mut original = Task::new(config(), inputs()).unwrap();
    original.set_product_costs(catalog());
    let mut out = Outputs::default();
    run_to(&mut original, &steps[..half], &mut out, 37);
    original.flush_changelog(&mut out).unwrap();
    assert!(
        !out.kpis.is_empty() && !out.dlq.is_empty() && !out.late.is_empty(),
        "the prefix exercises every output"
    );
    let log = std::mem::take(&mut out.changelog);
    let point = RestorePoint {
        offsets: original.next_offsets(),
        flush_seq: Some(original.flush_seq()),
    };

    let mut rebuilt = Task::restore(config(), inputs(), &log, &point).unwrap();
    rebuilt.set_product_costs(catalog());

    // The rebuilt task holds exactly the original's state (full snapshots normalise the
    // member segments, so they compare equal only if every result and member came back)...
    let as_map = |t: &Task| -> std::collections::BTreeMap<Vec<u8>, Vec<u8>> {
        t.snapshot()
            .unwrap()
            .into_iter()
            .map(|e| (e.key, e.value.unwrap()))
            .collect()
    };
    let snapshot = as_map(&original);
    assert!(
        snapshot.keys().any(|k| k.starts_with(b"wseg/"))
            && snapshot.keys().any(|k| k.starts_with(b"dedup/"))
            && snapshot.keys().any(|k| k.starts_with(b"rfm/"))
    );
    for family in ["revenue", "products", "geo", "payments", "hourly"] {
        let prefix = format!("win/{family}:");
        assert!(
            snapshot.keys().any(|k| k.starts_with(prefix.as_bytes())),
            "the snapshot holds {family} results"
        );
    }
    assert_eq!(as_map(&rebuilt), snapshot);
    // ...and a task restored from that snapshot holds it too.
    let snap_entries = original.snapshot().unwrap();
    let from_snapshot = Task::restore(config(), inputs(), &snap_entries, &point).unwrap();
    assert_eq!(as_map(&from_snapshot), snapshot);
    assert!(compact_committed(&log, &point).unwrap().state.len() >= snapshot.len());

    let (mut a, mut b) = (Outputs::default(), Outputs::default());
    // Caught-up reports are not state: a restarted runtime reports its partitions anew
    // (at its first commit, before it has read anything: behind). Both tasks get that
    // report, so both continue from the same inputs.
    let at = last_now(&steps[..half]);
    for (task, out) in [(&mut original, &mut a), (&mut rebuilt, &mut b)] {
        for tp in inputs() {
            task.on_partition_status(&tp.topic, tp.partition, false, at, out)
                .unwrap();
        }
    }
    run_to(&mut original, &steps[half..], &mut a, 0);
    run_to(&mut rebuilt, &steps[half..], &mut b, 0);
    let end = last_now(&steps);
    drain(&mut original, end, &mut a);
    drain(&mut rebuilt, end, &mut b);
    assert!(a.kpis.len() > 100);
    for family in ["revenue", "products", "geo", "payments", "hourly"] {
        assert!(
            a.kpis.iter().any(|r| r.kpi == family),
            "{family} rows after the restore"
        );
    }
    assert!(
        a.kpis.iter().any(|r| r.kpi == "revenue"
            && r.values.get("gross_margin").is_some_and(|m| !m.is_zero())
            && r.values
                .get("unknown_products")
                .is_some_and(|u| !u.is_zero())),
        "margins and unknown products are exercised"
    );
    assert_eq!(a.kpis, b.kpis);
    assert_eq!(a.dlq, b.dlq);
    assert_eq!(a.late, b.late);
    assert_eq!(a.transactions, b.transactions);
    assert_eq!(a.events, b.events);
    assert!(
        a.rfm.iter().any(|u| u.profile.as_of > u.profile.last) && a.rfm.len() > 10,
        "RFM purchases and recency timers are exercised after the restore"
    );
    assert_eq!(
        a.rfm, b.rfm,
        "restored RFM profiles and timers emit the same"
    );
    assert_eq!(original.watermark(), rebuilt.watermark());
}
