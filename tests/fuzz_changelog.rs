//! Fuzz target for the stage-1 changelog format (proptest, bounded for CI): a real
//! task's changelog — a full snapshot plus incremental flushes, covering windows, member
//! segments, dedup, fraud profiles and the meta entries — is corrupted record by record
//! the ways a broken or hostile changelog topic could be (tests/support/changelog_fuzz.rs):
//! keys, values and the `ss-applied` header flipped, cut, replaced, spliced, dropped or
//! given extreme numbers, values moved under other keys (type confusion), records
//! repeated. Decoding the records (as the runtime does) and restoring a task from them
//! must give a task or a typed error (restoring stops rather than guess), never a panic;
//! a restored task must still snapshot and tick without panicking.

#[path = "support/changelog_fuzz.rs"]
mod changelog_fuzz;
mod engine_common;

use std::sync::OnceLock;

use changelog_fuzz::{corrupt, corruption, decode, meta_extremes, to_wire, Lcg, Wire};
use engine_common::*;
use proptest::prelude::*;
use shopstream::engine::{ChangelogEntry, Outputs, RestorePoint, Task};

/// The changelog of a task that ran a deterministic 600-step stream, and its restore point.
fn base() -> &'static (Vec<ChangelogEntry>, RestorePoint) {
    static BASE: OnceLock<(Vec<ChangelogEntry>, RestorePoint)> = OnceLock::new();
    BASE.get_or_init(|| {
        let mut rng = Lcg(0x9e37_79b9_7f4a_7c15);
        let choices: Vec<Choice> = (0..600)
            .map(|_| {
                let raw: Vec<u64> = (0..7).map(|_| rng.next()).collect();
                Choice::from_raw(
                    raw[0],
                    raw[1] % 1_500,
                    raw[2] % (OOO as u64 + 1),
                    raw[3] % 40,
                    raw[4],
                    raw[5] % 25_000,
                    raw[6] as usize,
                )
            })
            .collect();
        let mut task = Task::new(config(), inputs()).unwrap();
        task.set_product_costs(catalog());
        let mut out = Outputs::default();
        for (i, step) in build(&choices).iter().enumerate() {
            feed(&mut task, step, &mut out);
            if i % 97 == 0 {
                task.flush_changelog(&mut out).unwrap();
            }
        }
        task.flush_changelog(&mut out).unwrap();
        let mut log = std::mem::take(&mut out.changelog);
        log.extend(task.snapshot().unwrap());
        let point = RestorePoint {
            offsets: task.next_offsets(),
            flush_seq: Some(task.flush_seq()),
        };
        (log, point)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn corrupted_changelogs_restore_or_fail_typed(
        corruptions in prop::collection::vec(corruption(), 1..4),
    ) {
        let (log, point) = base();
        let mut wire = to_wire(log);
        for c in &corruptions {
            corrupt(&mut wire, c);
        }
        restore_and_run(&wire, point);
    }
}

/// Restores a task from `wire` as stage 1 does; a restored task must keep working.
fn restore_and_run(wire: &[Wire], point: &RestorePoint) {
    // A record the runtime cannot decode stops the restore with its error.
    let Ok(log) = decode(wire) else { return };
    if let Ok(mut task) = Task::restore(config(), inputs(), &log, point) {
        let _ = task.snapshot();
        let mut out = Outputs::default();
        task.on_tick(last_now(&[]) + 1_000_000, &mut out);
        let _ = task.flush_changelog(&mut out);
    }
}

#[test]
fn extreme_numbers_in_meta_entries_restore_or_fail_typed() {
    let (log, point) = base();
    let variants = meta_extremes(&to_wire(log));
    assert!(variants.len() > 20, "{} variants", variants.len());
    for wire in &variants {
        restore_and_run(wire, point);
    }
}

#[test]
fn the_base_changelog_restores_and_covers_every_entry_kind() {
    let (log, point) = base();
    Task::restore(config(), inputs(), log, point).expect("the uncorrupted log restores");
    // (Session state, `ses/`, joins once session windows run in the task.)
    for prefix in ["meta/", "win/", "wseg/", "dedup/", "fraud/"] {
        assert!(
            log.iter().any(|e| e.key.starts_with(prefix.as_bytes())),
            "the fuzzed log has {prefix} entries"
        );
    }
}
