//! Scale test: instances of the real binary join and leave one consumer group mid-stream
//! (1 → 3 → 2 → 1, each leaving with SIGTERM, so every rebalance goes through the revoke
//! callback's commit), and PostgreSQL must end exactly as the oracle says — the same
//! result one instance gives (tests/crash_kill.rs, pipeline_mock.rs check that one) —
//! funnel, sessions (10 s session gap) and customer RFM included, and every KPI topic
//! and shop.customers.rfm must be undoubled and end at the tables' rows.

mod support;

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use shopstream::generator;
use support::analytics_check::{
    check_session_and_customer_analytics, set_session_gap, TEST_SESSION_GAP_MS,
};
use support::db::{generate_args, start_pg, Db};
use support::kafka::MockKafka;
use support::oracle::{
    check_all_activity, check_all_revenue, check_quality, expected, input_stats, QUALITY_TOTAL,
};
use support::proc::{log_report, log_tail, spawn_run, write_config};

#[tokio::test(flavor = "multi_thread")]
async fn instances_joining_and_leaving_give_the_exact_result() {
    let k = MockKafka::with_topics(6);
    let pg = start_pg();
    let dir = tempfile::tempdir().unwrap();
    let args = generate_args(
        &k.bootstrap(),
        dir.path(),
        &[
            ("count", "36000"),
            ("rate", "900"),
            ("event-rate", "900"),
            ("seed", "31"),
            // Pinned: the stream's density follows the time of day and the calendar.
            ("start", "2026-03-10T15:00:00Z"),
            ("customers", "1000"),
            ("products", "100"),
            ("late-rate", "0"),
            ("invalid-rate", "0.02"),
            ("duplicate-rate", "0.05"),
            ("payment-outage", "10s..30s"),
        ],
    );
    let producing = tokio::task::spawn_blocking(move || {
        generator::run(&args, &AtomicBool::new(false)).unwrap()
    });
    let log = dir.path().join("run.log");
    let configs: Vec<_> = (0..3)
        .map(|i| write_config(dir.path(), &k.bootstrap(), pg.port(), "exactly-once", i))
        .collect();
    for c in &configs {
        set_session_gap(c, TEST_SESSION_GAP_MS);
    }
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
    let mut input = input_stats(dir.path());
    input.close_event_time(&k.bootstrap(), 6);

    let db = Db::connect(&pg).await;
    db.wait_for(
        valid.len(),
        invalid,
        Some("SELECT count(*) FROM kpi_revenue WHERE status <> 'early'"),
        Duration::from_secs(180),
    )
    .await;
    db.wait_count(QUALITY_TOTAL, input.records, Duration::from_secs(150))
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Funnel, sessions and RFM against their recomputation, and every KPI topic and the
    // RFM topic against the tables, while the last instance's sink still catches up.
    let analytics = check_session_and_customer_analytics(
        &db.client,
        &k.bootstrap(),
        &input,
        &configs[2],
        input.max_event_time + 19 * 60_000,
        Duration::from_secs(60),
    )
    .await;
    assert!(
        c.terminate(),
        "the last instance must stop cleanly; log:\n{}",
        log_tail(&log, 60)
    );

    let got = db.order_ids().await;
    let missing: Vec<_> = valid.difference(&got).take(5).collect();
    let extra: Vec<_> = got.difference(&valid).take(5).collect();
    let revoked = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("partitions revoked"))
        .count();
    let windows = check_all_revenue(&db.client).await;
    let activity = check_all_activity(&db.client, &input).await;
    let quality = check_quality(&db.client, &input, invalid).await;
    let commerce = support::kpi_oracle::check_all_commerce(
        &db.client,
        &shopstream::engine::KpiConfig::default(),
    )
    .await;
    eprintln!("scale test: rows equal to the recomputation per family: {commerce:?}");
    // Every row present is checked; an hourly row exists only when the 40 s stream
    // happens to cross a full hour (engine_props covers the hourly family).
    for (family, n) in &commerce {
        assert!(
            *n > 0 || family.contains("hourly"),
            "at least one {family} row"
        );
    }
    eprintln!(
        "scale test: {analytics:?}; {} fact_orders rows, missing {}, extra {}, {revoked} revocations committed, \
         {windows} revenue, {activity} activity and {quality} quality rows checked",
        got.len(),
        valid.difference(&got).count(),
        got.difference(&valid).count()
    );
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?} extra {extra:?}; log:\n{}",
        log_report(&log, 40)
    );
    assert_eq!(db.count("SELECT count(*) FROM dq_rejects").await, invalid);
    assert!(revoked > 0, "rebalances must have revoked partitions");
    assert!(windows > 0);
}
