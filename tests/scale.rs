//! Scale test: instances of the real binary join and leave one consumer group mid-stream
//! (1 → 3 → 2 → 1, each leaving with SIGTERM, so every rebalance goes through the revoke
//! callback's commit), and PostgreSQL must end exactly as the oracle says — the same
//! result one instance gives (tests/crash_kill.rs, pipeline_mock.rs check that one).

mod support;

use std::collections::BTreeSet;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use clap::Parser;
use shopstream::generator::{self, GenerateArgs};
use support::kafka::MockKafka;
use support::oracle::{check_revenue_windows, expected};
use support::proc::{log_report, log_tail, spawn_run, write_config};
use support::EmbeddedPostgres;

#[tokio::test(flavor = "multi_thread")]
async fn instances_joining_and_leaving_give_the_exact_result() {
    let k = MockKafka::with_topics(6);
    let pg = EmbeddedPostgres::start().unwrap();
    pg.create_database("shop").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let args = GenerateArgs::parse_from([
        "generate",
        "--bootstrap-servers",
        &k.bootstrap(),
        "--count",
        "36000",
        "--rate",
        "900",
        "--event-rate",
        "900",
        "--seed",
        "31",
        "--customers",
        "1000",
        "--products",
        "100",
        "--late-rate",
        "0",
        "--invalid-rate",
        "0.02",
        "--duplicate-rate",
        "0.05",
        "--out",
        dir.path().to_str().unwrap(),
        "--truth",
        dir.path().join("truth.jsonl").to_str().unwrap(),
    ]);
    let producing = tokio::task::spawn_blocking(move || {
        generator::run(&args, &AtomicBool::new(false)).unwrap()
    });
    let log = dir.path().join("run.log");
    let configs: Vec<_> = (0..3)
        .map(|i| write_config(dir.path(), &k.bootstrap(), pg.port(), "exactly-once", i))
        .collect();
    let a = spawn_run(&configs[0], &log);
    tokio::time::sleep(Duration::from_secs(8)).await;
    let b = spawn_run(&configs[1], &log);
    let c = spawn_run(&configs[2], &log);
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert!(
        b.terminate(),
        "instance 1 must leave cleanly; log:\n{}",
        log_tail(&log, 60)
    );
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(
        a.terminate(),
        "instance 0 must leave cleanly; log:\n{}",
        log_tail(&log, 60)
    );
    producing.await.unwrap();
    let (valid, invalid) = expected(dir.path());

    let (client, conn) =
        tokio_postgres::connect(&pg.connection_string("shop"), tokio_postgres::NoTls)
            .await
            .unwrap();
    tokio::spawn(conn);
    let count = |sql: &'static str| {
        let client = &client;
        async move {
            client
                .query_one(sql, &[])
                .await
                .map(|r| r.get::<_, i64>(0) as usize)
                .unwrap_or(0)
        }
    };
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(180) {
        if count("SELECT count(*) FROM fact_orders").await >= valid.len()
            && count("SELECT count(*) FROM dq_rejects").await >= invalid
            && count("SELECT count(*) FROM kpi_revenue WHERE status <> 'early'").await > 0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        c.terminate(),
        "the last instance must stop cleanly; log:\n{}",
        log_tail(&log, 60)
    );

    let got: BTreeSet<String> = client
        .query("SELECT transaction_id FROM fact_orders", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let missing: Vec<_> = valid.difference(&got).take(5).collect();
    let extra: Vec<_> = got.difference(&valid).take(5).collect();
    let revoked = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("partitions revoked"))
        .count();
    let windows = check_revenue_windows(&client).await;
    eprintln!(
        "scale test: {} fact_orders rows, missing {}, extra {}, {revoked} revocations committed, {windows} windows checked",
        got.len(),
        valid.difference(&got).count(),
        got.difference(&valid).count()
    );
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?} extra {extra:?}; log:\n{}",
        log_report(&log, 40)
    );
    assert_eq!(count("SELECT count(*) FROM dq_rejects").await, invalid);
    assert!(revoked > 0, "rebalances must have revoked partitions");
    assert!(windows > 0);
}
