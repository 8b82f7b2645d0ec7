//! Fuzz target for the stage-1 changelog format (proptest, bounded for CI): a real
//! task's changelog — a full snapshot plus incremental flushes, covering windows, member
//! segments, dedup, fraud and RFM profiles, user sessions and the meta entries — is
//! corrupted record by record the ways a broken or hostile changelog topic could be
//! (tests/support/changelog_fuzz.rs): keys, values and the `ss-applied` header flipped,
//! cut, replaced, spliced, dropped or given extreme numbers, values moved under other keys
//! (type confusion), records repeated. Decoding the records (as the runtime does) and
//! restoring a task from them must give a task or a typed error (restoring stops rather
//! than guess), never a panic; a restored task must still snapshot and tick without
//! panicking. The binary values — fraud profiles (version byte, then fixed fields and
//! varints), RFM profiles and user sessions (version byte, then fixed-width fields) — get
//! corruptions of their own, aimed at them only: bytes flipped, cut, spliced in, the
//! version byte changed, and arbitrary bytes behind a valid version byte.

#[path = "support/changelog_fuzz.rs"]
mod changelog_fuzz;
mod engine_common;

use std::sync::OnceLock;

use changelog_fuzz::{corrupt, corruption, decode, meta_extremes, seeded_choices, to_wire, Wire};
use engine_common::*;
use proptest::prelude::*;
use shopstream::engine::{ChangelogEntry, Outputs, RestorePoint, Task};

/// The changelog of a task that ran a deterministic 600-step stream, and its restore point.
fn base() -> &'static (Vec<ChangelogEntry>, RestorePoint) {
    static BASE: OnceLock<(Vec<ChangelogEntry>, RestorePoint)> = OnceLock::new();
    BASE.get_or_init(|| {
        let choices = seeded_choices(0x9e37_79b9_7f4a_7c15, 600);
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

/// The key prefixes of binary values, with the error an unknown format of each gives.
const BINARY: [(&str, &str); 3] = [
    ("fraud/", "unknown fraud profile format"),
    ("rfm/", "unknown RFM profile format"),
    ("ses/", "unknown sessions format"),
];

/// Indices of the entries with a value under `prefix`.
fn entries_under(log: &[ChangelogEntry], prefix: &str) -> Vec<usize> {
    (0..log.len())
        .filter(|&i| log[i].key.starts_with(prefix.as_bytes()) && log[i].value.is_some())
        .collect()
}

/// Indices of the entries with a binary value (fraud and RFM profiles, sessions).
fn binary_entries(log: &[ChangelogEntry]) -> Vec<usize> {
    (0..log.len())
        .filter(|&i| {
            log[i].value.is_some()
                && BINARY
                    .iter()
                    .any(|(p, _)| log[i].key.starts_with(p.as_bytes()))
        })
        .collect()
}

/// One corruption of a binary value.
#[derive(Debug, Clone)]
enum ValueCorruption {
    Flip {
        entry: usize,
        at: usize,
        byte: u8,
    },
    Cut {
        entry: usize,
        at: usize,
    },
    Splice {
        entry: usize,
        at: usize,
        bytes: Vec<u8>,
    },
    Version {
        entry: usize,
        byte: u8,
    },
    /// A valid version byte followed by arbitrary bytes.
    Garbage {
        entry: usize,
        bytes: Vec<u8>,
    },
}

fn value_corruption() -> impl Strategy<Value = ValueCorruption> {
    let bytes = || prop::collection::vec(any::<u8>(), 0..64);
    prop_oneof![
        (any::<usize>(), any::<usize>(), any::<u8>())
            .prop_map(|(entry, at, byte)| ValueCorruption::Flip { entry, at, byte }),
        (any::<usize>(), any::<usize>()).prop_map(|(entry, at)| ValueCorruption::Cut { entry, at }),
        (any::<usize>(), any::<usize>(), bytes())
            .prop_map(|(entry, at, bytes)| ValueCorruption::Splice { entry, at, bytes }),
        (any::<usize>(), any::<u8>())
            .prop_map(|(entry, byte)| ValueCorruption::Version { entry, byte }),
        (any::<usize>(), bytes())
            .prop_map(|(entry, bytes)| ValueCorruption::Garbage { entry, bytes }),
    ]
}

fn corrupt_value(log: &mut [ChangelogEntry], c: &ValueCorruption) {
    let binary = binary_entries(log);
    let value = |entry: &usize| binary[entry % binary.len()];
    let v = |log: &mut [ChangelogEntry], i: usize| log[i].value.take().unwrap_or_default();
    match c {
        ValueCorruption::Flip { entry, at, byte } => {
            let i = value(entry);
            let mut b = v(log, i);
            let at = at % b.len().max(1);
            if let Some(x) = b.get_mut(at) {
                *x ^= byte | 1;
            }
            log[i].value = Some(b);
        }
        ValueCorruption::Cut { entry, at } => {
            let i = value(entry);
            let mut b = v(log, i);
            b.truncate(at % (b.len() + 1));
            log[i].value = Some(b);
        }
        ValueCorruption::Splice { entry, at, bytes } => {
            let i = value(entry);
            let mut b = v(log, i);
            let at = at % (b.len() + 1);
            b.splice(at..at, bytes.iter().copied());
            log[i].value = Some(b);
        }
        ValueCorruption::Version { entry, byte } => {
            let i = value(entry);
            let mut b = v(log, i);
            if let Some(x) = b.first_mut() {
                *x = *byte;
            }
            log[i].value = Some(b);
        }
        ValueCorruption::Garbage { entry, bytes } => {
            let i = value(entry);
            let mut b = vec![1];
            b.extend(bytes);
            log[i].value = Some(b);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn corrupted_binary_values_restore_or_fail_typed(
        corruptions in prop::collection::vec(value_corruption(), 1..4),
    ) {
        let (log, point) = base();
        let mut log = log.clone();
        for c in &corruptions {
            corrupt_value(&mut log, c);
        }
        restore_and_run(&to_wire(&log), point);
    }

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
    for prefix in ["meta/", "win/", "wseg/", "dedup/", "fraud/", "rfm/", "ses/"] {
        assert!(
            log.iter().any(|e| e.key.starts_with(prefix.as_bytes())),
            "the fuzzed log has {prefix} entries"
        );
    }
}

#[test]
fn profiles_and_sessions_are_binary_and_an_unknown_format_fails_with_a_clear_error() {
    let (log, point) = base();
    for (prefix, message) in BINARY {
        let entries = entries_under(log, prefix);
        assert!(entries
            .iter()
            .all(|&i| log[i].value.as_ref().unwrap()[0] == 1));
        // The last write of its key (the snapshot's), so it is the one restored.
        let last = *entries.last().unwrap();
        for byte in [0u8, 2, 0x7f, 0xff] {
            let mut log = log.clone();
            log[last].value.as_mut().unwrap()[0] = byte;
            let err = Task::restore(config(), inputs(), &log, point)
                .err()
                .expect("an unknown format is refused")
                .to_string();
            assert!(err.contains(message) && err.contains(prefix), "{err}");
        }
    }
}
