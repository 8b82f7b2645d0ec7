//! Error injection into the transactional state machine on the mock cluster: a fenced
//! producer is fatal (the process stops with a clear error instead of writing on), a lost
//! or busy transaction coordinator is retried without losing or doubling output, and a
//! produce request that fails for good makes the transaction abortable: it is aborted, the
//! consumer rewound and the state restored, and PostgreSQL still ends exact.

mod support;

use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use shopstream::generator;
use support::db::{generate_args, start_pg, Db};
use support::oracle::expected;

use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use shopstream::config::{Config, Guarantee};
use shopstream::runtime::app::Pipeline;
use support::kafka::MockKafka;
use support::pipeline::{mock_config, start_opt};

async fn start(k: &MockKafka, sink_pg: Option<String>) -> Pipeline {
    start_with(k, sink_pg, |_| ()).await
}

async fn start_with(
    k: &MockKafka,
    sink_pg: Option<String>,
    tune: impl FnOnce(&mut Config),
) -> Pipeline {
    let mut config = Config::default();
    config.kafka.bootstrap_servers = k.bootstrap();
    config.processing.guarantee = Guarantee::ExactlyOnce;
    config.processing.commit_interval_ms = 200;
    tune(&mut config);
    start_opt(&config, sink_pg.as_deref()).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fenced_producer_stops_the_pipeline_with_a_clear_error() {
    let k = MockKafka::with_topics(1);
    let pipeline = start(&k, None).await;
    // Let both stages join their groups and commit a few intervals first.
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert!(!pipeline.processor_finished(), "healthy before the fault");
    k.cluster.request_errors(
        RDKafkaApiKey::EndTxn,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_PRODUCER_FENCED; 4],
    );
    let started = Instant::now();
    while !pipeline.processor_finished() && started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        pipeline.processor_finished(),
        "a fenced producer must stop the stage"
    );
    let err = pipeline
        .stop()
        .await
        .expect_err("fencing is fatal")
        .to_string();
    assert!(err.contains("fatal transaction error"), "{err}");
    assert!(err.to_lowercase().contains("fenced"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn coordinator_loss_on_commit_is_retried_and_the_pipeline_goes_on() {
    let k = MockKafka::with_topics(1);
    let pipeline = start(&k, None).await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    k.cluster.request_errors(
        RDKafkaApiKey::EndTxn,
        &[
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_CONCURRENT_TRANSACTIONS,
        ],
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        !pipeline.processor_finished(),
        "retriable coordinator errors must not stop it"
    );
    let (stage1, _) = pipeline
        .stop()
        .await
        .expect("clean stop after retried commits");
    assert!(stage1.commits > 10, "{} commits", stage1.commits);
    assert_eq!(stage1.aborts, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_abortable_produce_error_aborts_rewinds_and_loses_nothing() {
    let k = MockKafka::with_topics(2);
    let pg = start_pg();
    let conn = pg.connection_string("shop");
    let dir = tempfile::tempdir().unwrap();
    let start = support::FIXED_START_MS.to_string();
    let args = generate_args(
        &k.bootstrap(),
        dir.path(),
        &[
            ("count", "40000"),
            ("rate", "0"),
            ("event-rate", "50"),
            // Started at the wall clock at night, these records spanned ~53 min of event
            // time and their tail ran past `quality.max_future_ms` ahead of it.
            ("start", &start),
            ("seed", "17"),
            ("late-rate", "0"),
            ("invalid-rate", "0.02"),
            ("duplicate-rate", "0.05"),
        ],
    );
    tokio::task::spawn_blocking(move || generator::run(&args, &AtomicBool::new(false)).unwrap())
        .await
        .unwrap();
    let (valid, invalid) = expected(dir.path());
    let total: u64 = 40_000;
    // Stage 1 is slowed (few records in flight to a broker 100 ms away) so that it is still
    // reading input when the error is injected: at full speed it finished all 40,000
    // records in about a second, before any trigger fired, and only stage 2 met the error.
    k.cluster
        .broker_round_trip_time(1, Duration::from_millis(100))
        .unwrap();
    let pipeline = start_with(&k, Some(conn.clone()), |c| c.processing.max_in_flight = 500).await;
    let db = Db::connect(&pg).await;
    let progress = pipeline.stage1_progress();
    let started = Instant::now();
    while progress.committed.load(Relaxed) == 0 && started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let committed = progress.committed.load(Relaxed);
    let before = db.count("SELECT count(*) FROM fact_orders").await;
    // Stage 2 produces too, and either producer may take an injected error: inject one
    // at a time until stage 1 has aborted (a stage-2 abort on the way is fine: it takes
    // the same path, and PostgreSQL must still end exact).
    let mut injected = 0;
    while progress.aborts.load(Relaxed) == 0 && injected < 10 {
        k.cluster.request_errors(
            RDKafkaApiKey::Produce,
            &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED],
        );
        injected += 1;
        let t = Instant::now();
        while progress.aborts.load(Relaxed) == 0 && t.elapsed() < Duration::from_millis(1500) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let aborted_at = progress.committed.load(Relaxed);
    db.wait_for(valid.len(), invalid, None, Duration::from_secs(150))
        .await;
    let stopped = pipeline.processor_finished();
    let (stage1, _) = match pipeline.drain().await {
        Ok(t) if !stopped => t,
        Ok(_) => panic!("an abortable error must not stop the pipeline"),
        Err(e) => panic!("an abortable error must not stop the pipeline: {e:#}"),
    };
    let got = db.order_ids().await;
    eprintln!(
        "{injected} abortable error(s) injected with {committed} of {total} input records \
         committed ({before} of {} orders in PostgreSQL); stage 1 aborted with {aborted_at} \
         committed: {} commits, {} aborts, {} restores",
        valid.len(),
        stage1.commits,
        stage1.aborts,
        stage1.restores
    );
    assert!(
        committed > 0 && aborted_at < total,
        "the error must hit while stage 1 is mid-stream"
    );
    assert!(stage1.aborts >= 1, "the transaction must have been aborted");
    assert!(
        stage1.restores > 2,
        "tasks are restored from the changelog after the abort"
    );
    let missing: Vec<_> = valid.difference(&got).take(5).collect();
    let extra: Vec<_> = got.difference(&valid).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?} extra {extra:?}"
    );
    assert_eq!(db.count("SELECT count(*) FROM dq_rejects").await, invalid);
}

/// An exactly-once instance with long transactions (5 s), so that a rebalance almost
/// always finds one open with records.
async fn start_instance(bootstrap: &str, conn: &str, instance: &str) -> Pipeline {
    let mut config = mock_config(bootstrap);
    config.processing.guarantee = Guarantee::ExactlyOnce;
    config.processing.commit_interval_ms = 5_000;
    config.processing.instance_id = instance.into();
    start_opt(&config, Some(conn)).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rebalance_mid_transaction_commits_before_partitions_move() {
    let k = MockKafka::with_topics(4);
    let pg = start_pg();
    let conn = pg.connection_string("shop");
    let dir = tempfile::tempdir().unwrap();
    let args = generate_args(
        &k.bootstrap(),
        dir.path(),
        &[
            ("count", "30000"),
            ("rate", "800"),
            ("event-rate", "800"),
            ("seed", "29"),
            ("customers", "800"),
            ("late-rate", "0"),
            ("invalid-rate", "0.02"),
            ("duplicate-rate", "0.05"),
        ],
    );
    let producing = tokio::task::spawn_blocking(move || {
        generator::run(&args, &AtomicBool::new(false)).unwrap()
    });
    let a = start_instance(&k.bootstrap(), &conn, "0").await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let b = start_instance(&k.bootstrap(), &conn, "1").await;
    // Long enough for b to restore its tasks from the changelog (which the mock makes it
    // read from the start) and consume: once, b left after 15 s without a record.
    tokio::time::sleep(Duration::from_secs(25)).await;
    let (b_totals, _) = b.stop().await.expect("b leaves cleanly");
    producing.await.unwrap();
    let (valid, invalid) = expected(dir.path());
    let db = Db::connect(&pg).await;
    db.wait_for(valid.len(), invalid, None, Duration::from_secs(120))
        .await;
    let (a_totals, _) = a.drain().await.expect("a stops cleanly");
    eprintln!(
        "rebalance test: a {} commits ({} on revoke with records), b {} commits ({} on revoke), {} + {} consumed",
        a_totals.commits,
        a_totals.revoke_commits,
        b_totals.commits,
        b_totals.revoke_commits,
        a_totals.consumed,
        b_totals.consumed
    );
    assert!(
        a_totals.revoke_commits >= 1,
        "b joining must revoke partitions from a mid-transaction"
    );
    assert!(b_totals.consumed > 0, "b must have taken partitions");
    assert_eq!(a_totals.aborts + b_totals.aborts, 0, "nothing aborted");
    let got = db.order_ids().await;
    let missing: Vec<_> = valid.difference(&got).take(5).collect();
    let extra: Vec<_> = got.difference(&valid).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?} extra {extra:?}"
    );
    assert_eq!(db.count("SELECT count(*) FROM dq_rejects").await, invalid);
}
