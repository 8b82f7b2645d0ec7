//! Fraud scores are exactly-once across a crash: a task scores a generated stream (with
//! fraud episodes, duplicates, out-of-order, late and invalid records), flushing its
//! changelog as it goes; at a commit point it is "committed", processes some more (with
//! a flush whose entries belong to a transaction that never commits) and dies. A task
//! restored from the changelog at the commit point then re-reads the input from the
//! committed offsets: every transaction after the commit point must get the same score,
//! reasons and alert decision as in a run without the crash.

use std::collections::BTreeMap;

use shopstream::engine::{EngineConfig, Outputs, RestorePoint, Task};
use shopstream::fraud::quality::{GeneratedInput, GeneratedInputs};
use shopstream::fraud::Verdict;
use shopstream::generator::{GenerateArgs, GeneratorConfig};

/// 2024-03-04 17:00 UTC.
const START: i64 = 1_709_571_600_000;

fn generator() -> GeneratorConfig {
    let mut g = GenerateArgs::default().generator_config().unwrap();
    g.shop.seed = 5;
    g.shop.start = START;
    g.shop.customers = 300;
    g.shop.fraud_rate = 0.3;
    g.limit = Some(40_000);
    g
}

type Scores = BTreeMap<String, Verdict>;

fn run(task: &mut Task, inputs: &[GeneratedInput], out: &mut Outputs, scores: &mut Scores) {
    for (i, input) in inputs.iter().enumerate() {
        input.clone().process(task, out).unwrap();
        for (a, v) in out.transactions.drain(..).zip(out.fraud.drain(..)) {
            scores.insert(a.record.transaction_id, v);
        }
        if i % 400 == 399 {
            task.flush_changelog(out).unwrap();
        }
        out.kpis.clear();
        out.dlq.clear();
        out.late.clear();
        out.events.clear();
    }
}

#[test]
fn scores_after_a_crash_and_restore_equal_the_uninterrupted_run() {
    let gen = generator();
    let mut source = GeneratedInputs::new(&gen);
    let tps = source.task_inputs();
    let inputs: Vec<GeneratedInput> = source.by_ref().collect();
    let engine = EngineConfig::default();

    let mut reference = Scores::new();
    let mut whole = Task::new(engine.clone(), tps.clone()).unwrap();
    run(&mut whole, &inputs, &mut Outputs::default(), &mut reference);
    let alerts = reference.values().filter(|v| v.alert).count();
    assert!(alerts > 10, "the stream raises alerts ({alerts})");

    // The crashing run: commit after `commit_at` inputs, go on, die without committing.
    let commit_at = inputs.len() / 2 + 123;
    let mut crashed = Task::new(engine.clone(), tps.clone()).unwrap();
    let mut out = Outputs::default();
    let mut committed = Scores::new();
    run(&mut crashed, &inputs[..commit_at], &mut out, &mut committed);
    crashed.flush_changelog(&mut out).unwrap();
    let point = RestorePoint {
        offsets: crashed.next_offsets(),
        flush_seq: Some(crashed.flush_seq()),
    };
    let mut lost = Scores::new();
    run(
        &mut crashed,
        &inputs[commit_at..commit_at + 5_000],
        &mut out,
        &mut lost,
    );
    crashed.flush_changelog(&mut out).unwrap(); // never committed
    let log = std::mem::take(&mut out.changelog);
    assert!(log.iter().any(|e| e
        .key
        .starts_with(shopstream::fraud::FRAUD_PREFIX.as_bytes())));

    let mut restored = Task::restore(engine, tps, &log, &point).unwrap();
    assert!(restored.fraud_profiles() > 0);
    let mut after = Scores::new();
    // Re-read from an earlier position: records below the committed offsets are skipped.
    run(
        &mut restored,
        &inputs[commit_at - 300..],
        &mut out,
        &mut after,
    );

    // Exactly the transactions after the commit point are scored again, as without the
    // crash.
    let expected: Scores = reference
        .iter()
        .filter(|(id, _)| !committed.contains_key(*id))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert!(!lost.is_empty() && lost.keys().all(|id| expected.contains_key(id)));
    assert!(after.values().any(|v| v.alert));
    assert_eq!(after.len(), expected.len());
    for (id, v) in &expected {
        assert_eq!(after.get(id), Some(v), "transaction {id}");
    }
}
