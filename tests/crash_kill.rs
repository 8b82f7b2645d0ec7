//! Crash test: the real `shopstream run` binary as a child process against the mock
//! cluster (in this test process, so it survives the child) and a throw-away PostgreSQL.
//! 200,000 input records arriving while the processor (stage 1, stage 2 and the sink, one
//! process) is killed with SIGKILL at random moments five times and restarted, with
//! duplicates, out-of-order, late and invalid records. When drained, PostgreSQL must hold
//! every valid, unique, on-time transaction exactly once in fact_orders, every invalid
//! record once in dq_rejects, every late record once in late_records, and every revenue
//! row (minute and hour windows, overall and per category) equal to the recomputation
//! from the orders. Nothing lost, nothing doubled.
//!
//! The mock cluster does not store offsets sent to a transaction, so in exactly-once mode a
//! restarted instance re-reads its inputs from the start and must recognise what its
//! restored state has already applied; the sink's offsets in PostgreSQL and its idempotent
//! upserts are under test as well. SHOPSTREAM_CRASH_RECORDS and SHOPSTREAM_CRASH_KILLS
//! change the bounds; SHOPSTREAM_CRASH_LOG=PATH keeps the child's log.

mod support;

use std::collections::BTreeSet;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use clap::Parser;
use rand::{Rng, SeedableRng};
use shopstream::generator::{self, GenerateArgs};
use support::kafka::MockKafka;
use support::oracle::{check_all_revenue, expected_all};
use support::proc::{spawn_run, write_config};
use support::EmbeddedPostgres;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn crash_test(guarantee: &str) {
    let records = env_usize("SHOPSTREAM_CRASH_RECORDS", 200_000);
    let kills = env_usize("SHOPSTREAM_CRASH_KILLS", 5);
    let t0 = Instant::now();
    let k = MockKafka::with_topics(3);
    let pg = EmbeddedPostgres::start().unwrap();
    pg.create_database("shop").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let args = GenerateArgs::parse_from([
        "generate",
        "--bootstrap-servers",
        &k.bootstrap(),
        "--count",
        &records.to_string(),
        "--rate",
        "3000",
        "--event-rate",
        "1500",
        "--seed",
        "23",
        "--customers",
        "1000",
        "--products",
        "100",
        "--late-rate",
        "0.003",
        "--invalid-rate",
        "0.02",
        "--duplicate-rate",
        "0.05",
        "--out",
        dir.path().to_str().unwrap(),
        "--truth",
        dir.path().join("truth.jsonl").to_str().unwrap(),
    ]);
    // The input keeps arriving while the processor is killed and restarted.
    let producing = tokio::task::spawn_blocking(move || {
        generator::run(&args, &AtomicBool::new(false)).unwrap()
    });

    let config = write_config(dir.path(), &k.bootstrap(), pg.port(), guarantee, 0);
    let log = dir.path().join("run.log");
    let (client, c) = tokio_postgres::connect(&pg.connection_string("shop"), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(c);
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

    let mut rng = rand::rngs::StdRng::seed_from_u64(99);
    let mut done_kills = 0;
    let mut rows = 0;
    let mut kills_mid_stream = 0;
    while done_kills < kills {
        let mut child = spawn_run(&config, &log);
        // Kill mid-stream: once this incarnation has written rows, at a random moment.
        let started = Instant::now();
        while count("SELECT count(*) FROM fact_orders").await <= rows
            && started.elapsed() < Duration::from_secs(25)
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..1_500))).await;
        if child.exited() {
            panic!(
                "run exited early; log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        let mid_stream = !producing.is_finished();
        child.kill(); // SIGKILL
        done_kills += 1;
        kills_mid_stream += usize::from(mid_stream);
        rows = count("SELECT count(*) FROM fact_orders").await;
        eprintln!(
            "kill {done_kills} at {:?} ({:?} after start): fact_orders has {rows} rows",
            t0.elapsed(),
            started.elapsed()
        );
    }
    producing.await.unwrap();
    let expect = expected_all(dir.path());
    let (valid, invalid) = (&expect.orders, expect.invalid);
    let child = spawn_run(&config, &log);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(180) {
        if count("SELECT count(*) FROM fact_orders").await >= valid.len()
            && count("SELECT count(*) FROM dq_rejects").await >= invalid
            && count("SELECT count(*) FROM late_records").await >= expect.late.len()
            && count("SELECT count(*) FROM kpi_revenue WHERE status <> 'early'").await > 0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Give a doubled row, if any, the time to show up before checking.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let clean = child.terminate();

    let got: BTreeSet<String> = client
        .query("SELECT transaction_id FROM fact_orders", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let missing: Vec<_> = valid.difference(&got).take(5).collect();
    let extra: Vec<_> = got.difference(valid).take(5).collect();
    let dq = count("SELECT count(*) FROM dq_rejects").await;
    let late: Vec<String> = client
        .query("SELECT record_id FROM late_records", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let late_set: BTreeSet<String> = late.iter().cloned().collect();
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    if let Ok(keep) = std::env::var("SHOPSTREAM_CRASH_LOG") {
        std::fs::write(format!("{keep}.{guarantee}"), &log_text).unwrap();
    }
    let restores: Vec<u64> = log_text
        .lines()
        .filter(|l| l.contains("task restored"))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["fields"]["restore_ms"].as_u64())
        .collect();
    eprintln!(
        "crash test ({guarantee}): {records} records in, {kills} kills ({kills_mid_stream} while input was arriving), {} fact_orders rows checked, {dq} dq_rejects, \
         {} late_records, missing {}, extra {}, task restores {} (max {} ms)",
        got.len(),
        late.len(),
        valid.difference(&got).count(),
        got.difference(valid).count(),
        restores.len(),
        restores.iter().max().copied().unwrap_or(0)
    );
    assert!(clean, "final run did not stop cleanly on SIGTERM");
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?} extra {extra:?}"
    );
    assert_eq!(
        dq, invalid,
        "every invalid record exactly once in dq_rejects"
    );
    assert_eq!(
        (late.len(), &late_set),
        (expect.late.len(), &expect.late),
        "every late record exactly once in late_records"
    );
    let rows = check_all_revenue(&client).await;
    let closed = count("SELECT count(*) FROM kpi_revenue WHERE status <> 'early'").await;
    eprintln!(
        "crash test ({guarantee}): {rows} revenue rows ({closed} closed) equal the recomputation"
    );
    assert!(closed > 0, "windows must have closed");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_at_least_once_loses_and_doubles_nothing() {
    crash_test("at-least-once").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_exactly_once_loses_and_doubles_nothing() {
    crash_test("exactly-once").await;
}
