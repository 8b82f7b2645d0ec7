//! DLQ redrive on the mock cluster and a throw-away PostgreSQL. Input stamped three hours
//! ahead is rejected by the default validation (`future_timestamp`, more than 1 h ahead),
//! so every transaction lands in the DLQ and none in fact_orders. After the fix (a
//! validation config allowing a day ahead) a dry run counts without submitting, the
//! redrive re-submits each DLQ record once, the restarted pipeline puts every valid
//! transaction in fact_orders exactly once (records invalid for another reason are
//! rejected again, for that reason), and a second redrive submits nothing.
//! (At-least-once for the pipeline: the mock does not store offsets sent in a transaction,
//! and the restarted pipeline must resume after the rejected input.)

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use shopstream::config::{Guarantee, Secrets};
use shopstream::dlq::redrive::{self, Plan};
use shopstream::generator;
use shopstream::quality::reason::FUTURE_TIMESTAMP;
use shopstream::runtime::app::Pipeline;
use support::db::{generate_args, start_pg, Db};
use support::kafka::MockKafka;
use support::oracle::expected;
use support::pipeline::{mock_config, start};

const COUNT: u64 = 1500;

/// Waits until stage 1 has committed `n` input records (two minutes at most).
async fn wait_committed(pipeline: &Pipeline, n: u64) {
    let started = Instant::now();
    while pipeline.stage1_progress().committed.load(Ordering::Relaxed) < n
        && started.elapsed() < Duration::from_secs(120)
    {
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn redriven_dlq_records_are_processed_exactly_once() {
    let k = MockKafka::with_topics(3);
    let pg = start_pg();
    let conn = pg.connection_string("shop");
    let dir = tempfile::tempdir().unwrap();
    let start_at = (shopstream::runtime::stage1::now_ms() + 3 * 3_600_000).to_string();
    let count = COUNT.to_string();
    let args = generate_args(
        &k.bootstrap(),
        dir.path(),
        &[
            ("count", &count),
            ("rate", "0"),
            ("event-rate", "50"),
            ("seed", "31"),
            ("start", &start_at),
            ("customers", "100"),
            ("products", "30"),
            ("late-rate", "0"),
            ("invalid-rate", "0.05"),
            ("duplicate-rate", "0"),
        ],
    );
    tokio::task::spawn_blocking(move || generator::run(&args, &AtomicBool::new(false)).unwrap())
        .await
        .unwrap();
    let (valid, invalid) = expected(dir.path());
    assert!(valid.len() > 10, "{} valid transactions", valid.len());

    let mut config = mock_config(&k.bootstrap());
    config.processing.guarantee = Guarantee::AtLeastOnce;
    let db = Db::connect(&pg).await;

    // Before the fix: everything is rejected.
    let pipeline = start(&config, &conn).await;
    wait_committed(&pipeline, COUNT).await;
    db.wait_for(0, COUNT as usize, None, Duration::from_secs(60))
        .await;
    pipeline.drain().await.unwrap();
    let rejected = "SELECT count(*) FROM dq_rejects WHERE reason = 'future_timestamp'";
    let in_dlq = db.count(rejected).await;
    assert!(in_dlq >= valid.len(), "{in_dlq} future_timestamp rejects");
    assert_eq!(db.count("SELECT count(*) FROM fact_orders").await, 0);

    // The fix, then a dry run: counts, submits nothing.
    config.engine.quality.max_future_ms = 86_400_000;
    let plan = |dry_run| Plan {
        reason: Some(FUTURE_TIMESTAMP.into()),
        dry_run,
    };
    let dry = redrive::run(&config, &Secrets::default(), &plan(true))
        .await
        .unwrap();
    assert_eq!(dry.submitted_total() as usize, in_dlq, "{dry:?}");
    let first = redrive::run(&config, &Secrets::default(), &plan(false))
        .await
        .unwrap();
    eprintln!("redrive: {first:?}");
    assert_eq!(
        first.submitted_total() as usize,
        in_dlq,
        "the dry run submitted nothing"
    );

    // The records that are invalid for another reason are rejected again, for that reason.
    let pipeline = start(&config, &conn).await;
    wait_committed(&pipeline, first.submitted_total()).await;
    db.wait_for(
        valid.len(),
        in_dlq + invalid,
        None,
        Duration::from_secs(120),
    )
    .await;
    let (stage1, _) = pipeline.drain().await.unwrap();
    assert_eq!(
        stage1.consumed as usize, in_dlq,
        "the restarted pipeline read the re-submitted records only"
    );
    let other = "SELECT count(*) FROM dq_rejects WHERE reason <> 'future_timestamp'";
    assert_eq!(
        db.count(other).await,
        invalid,
        "rejected again for their own reason"
    );
    assert_eq!(db.order_ids().await, valid);
    assert_eq!(
        db.count("SELECT count(*) FROM fact_orders").await,
        valid.len()
    );

    let second = redrive::run(&config, &Secrets::default(), &plan(false))
        .await
        .unwrap();
    assert_eq!(second.submitted_total(), 0, "{second:?}");
    // Read: only what was rejected again after the first redrive (its whole range is
    // committed): the re-submitted records that are invalid for another reason.
    let rejected_again = in_dlq + invalid - COUNT as usize;
    assert_eq!(second.read as usize, rejected_again, "{second:?}");
    assert_eq!(second.other_reason as usize, rejected_again, "{second:?}");
    eprintln!(
        "{in_dlq} DLQ records re-driven once; {} orders in fact_orders; second redrive: {second:?}",
        valid.len()
    );
}
