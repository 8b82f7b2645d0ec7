//! Replay on the mock cluster and a throw-away PostgreSQL. A live run processes batch A;
//! batch B (a month later) is then appended to the same input topics. A replay of the
//! range [start of A, halfway to B) into a shadow schema must give tables identical to the
//! live ones (`replay diff` finds nothing; B, past `--to`, is not processed), two replays
//! of the same range into the live tables must leave every live table exactly as it was
//! (full dumps compared), and a replay from the start of B to the end reads exactly B.
//! The mock has no time index, so offsets come from the record timestamps
//! (`ScanTimeIndex`); the replay's topics are created through the mock.

mod support;

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use shopstream::config::Secrets;
use shopstream::generator;
use shopstream::replay::{self, time_index::ScanTimeIndex, Plan, Target};
use shopstream::runtime::topology::Topology;
use shopstream::runtime::{client, topics};
use support::db::{dump, generate_args, start_pg, Db};
use support::kafka::MockKafka;
use support::oracle::expected;
use support::pipeline::{mock_config, start};

const START_A: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
const START_B: i64 = START_A + 30 * 86_400_000;

fn generate(bootstrap: &str, dir: &std::path::Path, seed: &str, start: i64, products: &str) {
    let start = start.to_string();
    let args = generate_args(
        bootstrap,
        dir,
        &[
            ("count", "3000"),
            ("rate", "0"),
            ("event-rate", "5"),
            ("seed", seed),
            ("start", &start),
            ("customers", "200"),
            ("products", "40"),
            ("late-rate", "0"),
            // Rejected records count in the quality window of their own partition's
            // event time, so kpi_quality is the same however a run interleaves the inputs.
            ("invalid-rate", "0.03"),
            ("duplicate-rate", "0.05"),
            ("topic-products", products),
        ],
    );
    generator::run(&args, &AtomicBool::new(false)).unwrap();
}

fn replay_topics(k: &MockKafka, run: &str) {
    let defs = topics::parse(topics::BUILTIN, Some(3)).unwrap();
    for d in Topology::replay(run).unwrap().own_topics(&defs) {
        k.cluster
            .create_topic(&d.name, d.partitions, 1)
            .expect("create replay topic");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_of_a_range_equals_live_and_is_idempotent() {
    let k = MockKafka::with_topics(3);
    k.cluster.create_topic("scratch.products", 1, 1).unwrap();
    for run in ["s1", "l1", "l2", "b1"] {
        replay_topics(&k, run);
    }
    let pg = start_pg();
    let conn = pg.connection_string("shop");
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let bootstrap = k.bootstrap();
    let (b, d) = (bootstrap.clone(), dir_a.path().to_path_buf());
    tokio::task::spawn_blocking(move || generate(&b, &d, "21", START_A, "shop.products"))
        .await
        .unwrap();
    let (valid, invalid) = expected(dir_a.path());

    let config = mock_config(&bootstrap);
    let pipeline = start(&config, &conn).await;
    let db = Db::connect(&pg).await;
    db.wait_for(valid.len(), invalid, None, Duration::from_secs(120))
        .await;
    let (live, _) = pipeline.drain().await.unwrap();
    assert_eq!(db.order_ids().await, valid, "the live run is complete");

    // Batch B, a month later, on the same inputs (its catalog elsewhere: the live
    // catalog stays as the live run saw it).
    let (b, d) = (bootstrap.clone(), dir_b.path().to_path_buf());
    tokio::task::spawn_blocking(move || generate(&b, &d, "22", START_B, "scratch.products"))
        .await
        .unwrap();
    let before = dump(&db.client, "public").await;
    let rows: usize = before.values().map(Vec::len).sum();
    eprintln!(
        "live run: {} records consumed, {rows} rows in {} tables",
        live.consumed,
        before.len()
    );

    let base = client::base_config(&config.kafka, &Secrets::default());
    let plan = |run: &str, target| Plan {
        run: run.into(),
        from: START_A - 3_600_000,
        to: Some(START_A + 15 * 86_400_000),
        target,
        schema: "shadow".into(),
        pg_conn: conn.clone(),
        create_topics: false,
    };
    let index = || Box::new(ScanTimeIndex { base: base.clone() });

    // Shadow: identical tables.
    let shadow = replay::run(
        &config,
        &Secrets::default(),
        &plan("s1", Target::Shadow),
        index(),
    )
    .await
    .unwrap();
    assert_eq!(
        shadow.consumed, live.consumed,
        "the replay read exactly batch A (B is past --to)"
    );
    let diff = replay::diff::diff(&db.client, "public", "shadow")
        .await
        .unwrap();
    let compared: i64 = diff.iter().map(|t| t.live_rows).sum();
    for t in &diff {
        eprintln!("{t}");
    }
    let differences: i64 = diff.iter().map(|t| t.differences()).sum();
    assert_eq!(differences, 0, "shadow differs from live");
    assert_eq!(compared as usize, rows, "every live row was compared");
    eprintln!(
        "shadow replay: {compared} rows in {} tables compared, 0 differences",
        diff.len()
    );
    assert_eq!(dump(&db.client, "shadow").await, before);

    // Live target, twice: nothing changes.
    for run in ["l1", "l2"] {
        let s = replay::run(
            &config,
            &Secrets::default(),
            &plan(run, Target::Live),
            index(),
        )
        .await
        .unwrap();
        assert_eq!(s.consumed, live.consumed);
        let after = dump(&db.client, "public").await;
        for (table, rows) in &before {
            let now = &after[table];
            let gone: Vec<_> = rows.iter().filter(|r| !now.contains(r)).collect();
            let new: Vec<_> = now.iter().filter(|r| !rows.contains(r)).collect();
            assert!(
                gone.is_empty() && new.is_empty(),
                "replay {run} changed {table}: before {gone:#?} after {new:#?}"
            );
        }
        assert_eq!(after, before, "replay {run} changed the live tables");
        eprintln!(
            "live replay {run}: {} rows written, tables unchanged",
            s.sink_rows
        );
    }

    // From the middle of the topics (batch B only) to their end, into another schema:
    // the replay starts at the offsets found for --from, not at the beginning.
    let (valid_b, _) = expected(dir_b.path());
    let mut from_b = plan("b1", Target::Shadow);
    (from_b.from, from_b.to, from_b.schema) = (START_B - 60_000, None, "shadow_b".into());
    let b = replay::run(&config, &Secrets::default(), &from_b, index())
        .await
        .unwrap();
    assert!(b.ranges.iter().all(|r| r.2 > 0), "{:?}", b.ranges);
    assert_eq!(b.consumed, 3000, "exactly batch B");
    let ids = db
        .ids("SELECT transaction_id FROM shadow_b.fact_orders")
        .await;
    assert_eq!(
        ids.into_iter().collect::<std::collections::BTreeSet<_>>(),
        valid_b
    );
    eprintln!(
        "replay of batch B alone: {} records, {} orders",
        b.consumed,
        valid_b.len()
    );
}

/// The time lookup on out-of-order timestamps: the first offset at or after the time, in
/// log order, as offsetsForTimes defines it; the end when no record is that late. What the
/// mock's own ListOffsets answers is printed, not relied on (it has no time index).
#[test]
fn scan_time_index_finds_the_first_offset_at_or_after_a_time() {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    use shopstream::replay::time_index::{BrokerTimeIndex, TimeIndex};
    let k = MockKafka::empty();
    k.cluster.create_topic("t", 1, 1).unwrap();
    let base = client::base_config(&mock_config(&k.bootstrap()).kafka, &Secrets::default());
    let producer: BaseProducer = base.create().unwrap();
    for ts in [10_000, 20_000, 5_000, 30_000] {
        producer
            .send(
                BaseRecord::<[u8], [u8]>::to("t")
                    .payload(b"x")
                    .partition(0)
                    .timestamp(ts),
            )
            .unwrap();
    }
    producer.flush(Duration::from_secs(10)).unwrap();
    let scan = ScanTimeIndex { base: base.clone() };
    for (ts, offset) in [(0, 0), (10_000, 0), (15_000, 1), (25_000, 3), (31_000, 4)] {
        assert_eq!(
            scan.offsets_for_time("t", 1, ts).unwrap(),
            vec![offset],
            "at {ts}"
        );
    }
    let broker = BrokerTimeIndex { base };
    eprintln!(
        "mock ListOffsets by timestamp for 15000 (a time index would say 1): {:?}",
        broker.offsets_for_time("t", 1, 15_000)
    );
}
