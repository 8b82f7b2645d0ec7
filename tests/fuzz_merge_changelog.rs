//! Fuzz target for the stage-2 merge changelog (proptest, bounded for CI). The base is
//! the changelog of a real merger — incremental flushes and a snapshot, with `win/`
//! results of every KPI family a stage-1 task publishes and the `meta/` entries — fed by
//! a stage-1 task over a deterministic 600-step stream. It is corrupted record by record
//! (tests/support/changelog_fuzz.rs: keys, values and the `ss-applied` header flipped,
//! cut, replaced, spliced, dropped or given extreme numbers, values moved under other
//! keys, records repeated), or replaced by records of arbitrary bytes under plausible
//! keys, and the commit metadata holding the flush sequence number is mangled. Decoding
//! the records as the runtime does and `Merger::restore` must give a merger or a typed
//! error, never a panic; a restored merger must then take more partials and marks, tick,
//! flush and snapshot without panicking.

#[path = "support/changelog_fuzz.rs"]
mod changelog_fuzz;
mod engine_common;

use std::sync::OnceLock;

use changelog_fuzz::{corrupt, corruption, decode, meta_extremes, seeded_choices, to_wire, Wire};
use engine_common::*;
use proptest::prelude::*;
use rdkafka::{Offset, TopicPartitionList};
use shopstream::engine::{
    ChangelogEntry, Consumed, MergeConfig, Merger, Outputs, RestorePoint, Task, TopicPartition,
};
use shopstream::model::KpiRow;
use shopstream::runtime::changelog::{restore_point, seq_metadata};

const PARTIALS: &str = "shop.internal.partials";
const Q: i32 = 1;

/// What a stage-1 task published, in order.
#[derive(Debug, Clone)]
enum Delivery {
    Partial(KpiRow),
    Mark(i64),
}

fn merge_config() -> MergeConfig {
    MergeConfig::from(&config())
}

fn merge_inputs() -> Vec<TopicPartition> {
    vec![TopicPartition::new(PARTIALS, Q)]
}

struct Base {
    log: Vec<ChangelogEntry>,
    /// The merger's snapshot at the end of the base (also the end of `log`).
    snapshot: Vec<ChangelogEntry>,
    next_offset: i64,
    flush_seq: u64,
    /// Deliveries after the base, offered to restored mergers.
    tail: Vec<Delivery>,
}

/// One merger (one source) over the partials of a task that ran a 600-step stream;
/// the last 60 steps' partials and marks are kept back as the tail.
fn base() -> &'static Base {
    static BASE: OnceLock<Base> = OnceLock::new();
    BASE.get_or_init(|| {
        let choices = seeded_choices(0x2545_f491_4f6c_dd1d, 600);
        let mut task = Task::new(config(), inputs()).unwrap();
        task.set_product_costs(catalog());
        let mut merger = Merger::new(merge_config(), 1, merge_inputs()).unwrap();
        let (mut out, mut merged) = (Outputs::default(), Outputs::default());
        let mut tail = Vec::new();
        let (mut offset, mut mark) = (0, i64::MIN);
        let steps = build(&choices);
        for (i, step) in steps.iter().enumerate() {
            feed(&mut task, step, &mut out);
            let mut published: Vec<Delivery> = out.kpis.drain(..).map(Delivery::Partial).collect();
            out.clear();
            if task.watermark() > mark {
                mark = task.watermark();
                published.push(Delivery::Mark(mark));
            }
            if i >= steps.len() - 60 {
                tail.extend(published);
                continue;
            }
            for d in &published {
                deliver(&mut merger, offset, d, &mut merged);
                offset += 1;
            }
            if i % 97 == 0 {
                merger.on_tick(last_now(std::slice::from_ref(step)), &mut merged);
                merger.flush_changelog(&mut merged).unwrap();
            }
        }
        merger.flush_changelog(&mut merged).unwrap();
        let mut log = std::mem::take(&mut merged.changelog);
        let snapshot = merger.snapshot().unwrap();
        log.extend(snapshot.iter().cloned());
        Base {
            log,
            snapshot,
            next_offset: offset,
            flush_seq: merger.flush_seq(),
            tail,
        }
    })
}

fn deliver(m: &mut Merger, offset: i64, d: &Delivery, out: &mut Outputs) {
    let at = Consumed {
        topic: PARTIALS,
        partition: Q,
        offset,
    };
    match d {
        Delivery::Partial(row) => m.on_partial(at, 0, row, out),
        Delivery::Mark(wm) => m.on_watermark(at, 0, *wm, out),
    }
    .expect("the merger's own input");
}

/// The restore point the runtime reads from the group's committed offset and metadata.
fn point(offset: i64, metadata: &str) -> RestorePoint {
    let mut tpl = TopicPartitionList::new();
    let mut e = tpl.add_partition(PARTIALS, Q);
    e.set_offset(Offset::Offset(offset)).unwrap();
    e.set_metadata(metadata);
    restore_point(&tpl, &merge_inputs())
}

/// Restores from `wire` as stage 2 does; a restored merger must keep working.
fn restore_and_run(wire: &[Wire], point: &RestorePoint) {
    // A record the runtime cannot decode stops the restore with its error.
    let Ok(log) = decode(wire) else { return };
    let Ok(mut m) = Merger::restore(merge_config(), 1, merge_inputs(), &log, point) else {
        return;
    };
    let mut out = Outputs::default();
    let b = base();
    let mut offset = m.next_offsets().first().map_or(0, |(_, o)| *o).max(0);
    for d in &b.tail {
        deliver(&mut m, offset, d, &mut out);
        offset = offset.saturating_add(1);
    }
    m.on_tick(i64::MAX, &mut out);
    let _ = m.flush_changelog(&mut out);
    let _ = m.snapshot();
}

/// A record of arbitrary bytes under a key of each kind the merger knows.
fn arbitrary_record() -> impl Strategy<Value = Wire> {
    let keys = prop_oneof![
        Just(b"meta/clock".to_vec()),
        Just(b"meta/position".to_vec()),
        Just(b"win/revenue/0/60000/".to_vec()),
        Just(b"win/products/".to_vec()),
        Just(b"wseg/activity/0/60000/1/".to_vec()),
        Just(Vec::new()),
    ];
    (
        keys,
        prop::collection::vec(any::<u8>(), 0..24),
        prop::option::of(prop::collection::vec(any::<u8>(), 0..64)),
        prop::option::of(prop::collection::vec(any::<u8>(), 0..64)),
    )
        .prop_map(|(mut key, suffix, payload, header)| {
            key.extend(suffix);
            Wire {
                key: Some(key),
                payload,
                header,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn corrupted_merge_changelogs_restore_or_fail_typed(
        corruptions in prop::collection::vec(corruption(), 1..4),
        metadata in prop_oneof![
            3 => Just(None),
            1 => prop::collection::vec(any::<u8>(), 0..24).prop_map(Some),
        ],
    ) {
        let b = base();
        let mut wire = to_wire(&b.log);
        for c in &corruptions {
            corrupt(&mut wire, c);
        }
        let meta = match metadata {
            None => seq_metadata(b.flush_seq),
            Some(bytes) => format!("flush_seq={}", String::from_utf8_lossy(&bytes)),
        };
        restore_and_run(&wire, &point(b.next_offset, &meta));
    }

    #[test]
    fn arbitrary_records_restore_or_fail_typed(
        records in prop::collection::vec(arbitrary_record(), 1..12),
        valid_header in any::<bool>(),
    ) {
        let b = base();
        let mut wire = records;
        if valid_header {
            // Past the header check: the values themselves are what is fuzzed.
            let header = to_wire(&b.log[..1])[0].header.clone();
            for w in &mut wire {
                w.header = header.clone();
            }
        }
        restore_and_run(&wire, &point(b.next_offset, &seq_metadata(b.flush_seq)));
    }
}

#[test]
fn extreme_numbers_in_meta_entries_restore_or_fail_typed() {
    let b = base();
    let point = point(b.next_offset, &seq_metadata(b.flush_seq));
    let variants = meta_extremes(&to_wire(&b.log));
    assert!(variants.len() > 20, "{} variants", variants.len());
    for wire in &variants {
        restore_and_run(wire, &point);
    }
}

#[test]
fn the_base_merge_changelog_restores_exactly_and_covers_every_entry_kind() {
    let b = base();
    let point = point(b.next_offset, &seq_metadata(b.flush_seq));
    let m = Merger::restore(merge_config(), 1, merge_inputs(), &b.log, &point)
        .expect("the uncorrupted log restores");
    let results = |log: &[ChangelogEntry]| -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        log.iter()
            .filter(|e| e.key.starts_with(b"win/"))
            .map(|e| (e.key.clone(), e.value.clone()))
            .collect()
    };
    let snapshot = m.snapshot().unwrap();
    assert_eq!(results(&snapshot), results(&b.snapshot));
    assert!(!results(&snapshot).is_empty());
    for prefix in [
        "meta/clock",
        "meta/position",
        "win/revenue/",
        "win/products/",
    ] {
        assert!(
            b.log.iter().any(|e| e.key.starts_with(prefix.as_bytes())),
            "the fuzzed log has {prefix} entries"
        );
    }
    assert!(!b.tail.is_empty(), "restored mergers get more input");
    // The runtime's decoding of the records gives back the log.
    assert_eq!(decode(&to_wire(&b.log)).unwrap(), b.log);
}
