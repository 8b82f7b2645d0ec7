//! Fraud scoring quality on generated data, in process: the default shop (default fraud
//! mix and fault rates) is scored by one engine task with the default rules, and the
//! alerts at the default threshold must reach F1 ≥ 0.9 against the generator's ground
//! truth, on a seed the defaults were not tuned on. The full report over more records
//! and seeds is `load-tests/fraud_quality.rs` (results in load-tests/RESULTS.md).

use shopstream::engine::EngineConfig;
use shopstream::fraud::quality::evaluate;
use shopstream::generator::GenerateArgs;

/// 2024-03-04 17:00 UTC, an ordinary Monday.
const START: i64 = 1_709_571_600_000;

#[test]
fn alerts_reach_f1_of_0_9_on_the_default_fraud_mix() {
    let mut gen = GenerateArgs::default().generator_config().unwrap();
    gen.shop.seed = 4;
    gen.shop.start = START;
    gen.limit = Some(2_000_000);
    let rep = evaluate(&gen, EngineConfig::default(), |_, _, _| {}).unwrap();
    eprintln!("{rep:#?}");
    eprintln!(
        "precision {:.4} recall {:.4} f1 {:.4}",
        rep.precision(),
        rep.recall(),
        rep.f1()
    );
    assert!(rep.fraud > 500, "enough fraud to measure ({})", rep.fraud);
    assert_eq!(
        rep.true_positives + rep.false_negatives,
        rep.fraud,
        "every labelled transaction is counted once"
    );
    assert!(rep.f1() >= 0.9, "F1 {:.4} below 0.9", rep.f1());
}
