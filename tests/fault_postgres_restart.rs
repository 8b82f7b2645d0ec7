//! PostgreSQL restarted mid-run: generated input (duplicates and invalid records included)
//! keeps arriving while the in-process pipeline runs; once the sink has written part of it
//! the throw-away cluster is stopped (`pg_ctl -m immediate`, connections cut), kept down
//! for several seconds and started again on the same port. The sink retries with backoff
//! and, once reconnected, rereads from the offsets PostgreSQL holds: the throw-away
//! cluster runs with synchronous_commit=off, so the crash loses commits it had already
//! acknowledged (as a failover to an asynchronous standby would), and a sink that went on
//! from its in-memory offsets lost those rows (it did, before the rewind). PostgreSQL must
//! end equal to the oracle: every valid unique transaction once in fact_orders, every
//! invalid record once in dq_rejects.

mod support;

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use shopstream::generator;
use support::db::{generate_args, start_pg, Db};
use support::kafka::MockKafka;
use support::oracle::expected;
use support::pipeline::{mock_config, start};

#[tokio::test(flavor = "multi_thread")]
async fn postgres_restart_mid_run_loses_and_doubles_nothing() {
    let k = MockKafka::with_topics(3);
    let mut pg = start_pg();
    let conn = pg.connection_string("shop");
    let dir = tempfile::tempdir().unwrap();
    let args = generate_args(
        &k.bootstrap(),
        dir.path(),
        &[
            ("count", "24000"),
            ("rate", "1200"),
            ("event-rate", "50"),
            ("seed", "31"),
            ("customers", "400"),
            ("products", "60"),
            ("late-rate", "0"),
            ("invalid-rate", "0.03"),
            ("duplicate-rate", "0.05"),
        ],
    );
    let producing =
        tokio::task::spawn_blocking(move || generator::run(&args, &AtomicBool::new(false)));
    let config = mock_config(&k.bootstrap());
    let pipeline = start(&config, &conn).await;
    let db = Db::connect(&pg).await;
    let started = Instant::now();
    let mut before = 0;
    while before < 80 && started.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        before = db.count("SELECT count(*) FROM fact_orders").await;
    }
    assert!(before >= 80, "the sink wrote rows before the outage");
    drop(db);
    pg.stop().unwrap();
    let down = Instant::now();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let input_done_during_outage = producing.is_finished();
    pg.restart().unwrap();
    eprintln!(
        "postgres down for {:?} with {before} fact_orders rows written \
         (input finished during the outage: {input_done_during_outage})",
        down.elapsed()
    );
    producing.await.unwrap().unwrap();
    let (valid, invalid) = expected(dir.path());
    assert!(before < valid.len(), "the outage came mid-stream");
    let db = Db::connect(&pg).await;
    db.wait_for(valid.len(), invalid, None, Duration::from_secs(180))
        .await;
    assert!(
        !pipeline.processor_finished(),
        "the pipeline survived the outage"
    );
    let (stage1, sink) = pipeline.drain().await.unwrap();
    let got = db.order_ids().await;
    let missing: Vec<_> = valid.difference(&got).take(5).collect();
    let extra: Vec<_> = got.difference(&valid).take(5).collect();
    eprintln!(
        "postgres restart: {} valid orders, {} in fact_orders, {} dq_rejects of {invalid}; \
         stage 1 consumed {}, sink {:?}",
        valid.len(),
        got.len(),
        db.count("SELECT count(*) FROM dq_rejects").await,
        stage1.consumed,
        sink
    );
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?} extra {extra:?}"
    );
    assert_eq!(db.count("SELECT count(*) FROM dq_rejects").await, invalid);
}
