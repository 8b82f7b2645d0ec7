//! Fuzz target for the changelog format (proptest, bounded for CI): a real task's
//! changelog — a full snapshot plus incremental flushes, covering windows, member
//! segments, dedup, fraud profiles and the meta entries — is corrupted the ways
//! a broken or hostile changelog topic could be: value bytes flipped, cut or replaced by
//! arbitrary bytes, values moved under other keys (type confusion), keys damaged, entries
//! turned into tombstones, and the `ss-applied` header JSON mangled. Restoring a task from
//! it must give a task or a typed error (restoring stops rather than guess), never a
//! panic; a restored task must still snapshot and tick without panicking.

mod engine_common;

use std::sync::{Arc, OnceLock};

use engine_common::*;
use proptest::prelude::*;
use shopstream::engine::{AppliedOffsets, ChangelogEntry, Outputs, RestorePoint, Task};

/// The changelog of a task that ran a deterministic 600-step stream, and its restore point.
fn base() -> &'static (Vec<ChangelogEntry>, RestorePoint) {
    static BASE: OnceLock<(Vec<ChangelogEntry>, RestorePoint)> = OnceLock::new();
    BASE.get_or_init(|| {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            seed >> 11
        };
        let choices: Vec<Choice> = (0..600)
            .map(|_| {
                let raw: Vec<u64> = (0..7).map(|_| next()).collect();
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

/// One corruption of the changelog.
#[derive(Debug, Clone)]
enum Corruption {
    FlipValueByte {
        entry: usize,
        at: usize,
        byte: u8,
    },
    CutValue {
        entry: usize,
        at: usize,
    },
    ReplaceValue {
        entry: usize,
        bytes: Vec<u8>,
    },
    MoveValue {
        from: usize,
        to: usize,
    },
    DamageKey {
        entry: usize,
        at: usize,
        byte: u8,
    },
    Tombstone {
        entry: usize,
    },
    MangleApplied {
        entry: usize,
        at: usize,
        bytes: Vec<u8>,
    },
}

fn corruption() -> impl Strategy<Value = Corruption> {
    let bytes = || prop::collection::vec(any::<u8>(), 0..48);
    prop_oneof![
        (any::<usize>(), any::<usize>(), any::<u8>())
            .prop_map(|(entry, at, byte)| Corruption::FlipValueByte { entry, at, byte }),
        (any::<usize>(), any::<usize>()).prop_map(|(entry, at)| Corruption::CutValue { entry, at }),
        (any::<usize>(), bytes())
            .prop_map(|(entry, bytes)| Corruption::ReplaceValue { entry, bytes }),
        (any::<usize>(), any::<usize>()).prop_map(|(from, to)| Corruption::MoveValue { from, to }),
        (any::<usize>(), any::<usize>(), any::<u8>())
            .prop_map(|(entry, at, byte)| Corruption::DamageKey { entry, at, byte }),
        any::<usize>().prop_map(|entry| Corruption::Tombstone { entry }),
        (any::<usize>(), any::<usize>(), bytes())
            .prop_map(|(entry, at, bytes)| Corruption::MangleApplied { entry, at, bytes }),
    ]
}

fn corrupt(log: &mut [ChangelogEntry], c: &Corruption) {
    let n = log.len();
    match c {
        Corruption::FlipValueByte { entry, at, byte } => {
            if let Some(v) = log[entry % n].value.as_mut().filter(|v| !v.is_empty()) {
                let i = at % v.len();
                v[i] ^= byte | 1;
            }
        }
        Corruption::CutValue { entry, at } => {
            if let Some(v) = log[entry % n].value.as_mut() {
                let keep = at % (v.len() + 1);
                v.truncate(keep);
            }
        }
        Corruption::ReplaceValue { entry, bytes } => log[entry % n].value = Some(bytes.clone()),
        Corruption::MoveValue { from, to } => log[to % n].value = log[from % n].value.clone(),
        Corruption::DamageKey { entry, at, byte } => {
            let k = &mut log[entry % n].key;
            if !k.is_empty() {
                let i = at % k.len();
                k[i] = *byte;
            }
        }
        Corruption::Tombstone { entry } => log[entry % n].value = None,
        Corruption::MangleApplied { entry, at, bytes } => {
            let e = &mut log[entry % n];
            let mut json = serde_json::to_vec(&*e.applied).unwrap();
            let i = at % (json.len() + 1);
            json.splice(i..i, bytes.iter().copied());
            // The runtime parses the header like this and stops on an error.
            if let Ok(applied) = serde_json::from_slice::<AppliedOffsets>(&json) {
                e.applied = Arc::new(applied);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn corrupted_changelogs_restore_or_fail_typed(
        corruptions in prop::collection::vec(corruption(), 1..4),
    ) {
        let (log, point) = base();
        let mut log = log.clone();
        for c in &corruptions {
            corrupt(&mut log, c);
        }
        if let Ok(mut task) = Task::restore(config(), inputs(), &log, point) {
            let _ = task.snapshot();
            let mut out = Outputs::default();
            task.on_tick(last_now(&[]) + 1_000_000, &mut out);
            let _ = task.flush_changelog(&mut out);
        }
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
