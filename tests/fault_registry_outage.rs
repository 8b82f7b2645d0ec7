//! A schema registry outage mid-run is transient, not poison. With Avro input on the mock
//! cluster and the PostgreSQL sink, the registry starts answering 503 just before records
//! written with a schema id stage 1 has not seen yet arrive on partition 0. That partition
//! pauses at the first such record (the record after it waits behind it, order kept) while
//! partition 1 keeps flowing; nothing reaches dq_rejects. When the registry answers again
//! the held partition resumes at the held record and PostgreSQL ends with every record
//! exactly once.
//!
//! The sink likewise: a fraud alert whose schema id the sink has not fetched yet arrives
//! on `shop.fraud.alerts` partition 0 during an outage. The sink holds just that
//! partition; orders of both input partitions keep reaching fact_orders meanwhile, nothing
//! reaches dq_rejects, and once the registry answers the alert is written, every row once.

mod support;

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use shopstream::codec::{wire, AvroRecord, OutputEncoder};
use shopstream::config::WireFormat;
use shopstream::model::{FraudAlert, SourceCoord, Transaction};
use shopstream::runtime::app::Pipeline;
use support::db::{start_pg, Db};
use support::kafka::MockKafka;
use support::pipeline::{mock_config, start};
use support::raw_input::{now_ms, valid_tx, write};
use support::{EmbeddedPostgres, EmbeddedRegistry};

const TOPIC: &str = "shop.transactions";

/// The transaction schema plus an optional trailing field: a new schema id whose datum is
/// the v1 datum followed by the union branch of `null`.
fn v2_schema() -> String {
    let mut v: serde_json::Value = serde_json::from_str(Transaction::reader_schema().json).unwrap();
    v["fields"].as_array_mut().unwrap().push(serde_json::json!({
        "name": "note", "type": ["null", "string"], "default": null
    }));
    v.to_string()
}

/// Avro input and outputs through `registry`, and no fraud alerts from stage 1.
fn avro_config(bootstrap: &str, registry: &EmbeddedRegistry) -> shopstream::config::Config {
    let mut config = mock_config(bootstrap);
    config.processing.format = WireFormat::Avro;
    config.registry.url = registry.url().to_string();
    config.engine.fraud.threshold = 1.0;
    config
}

/// Both tests' first phase: two input partitions, Avro through a live registry, one
/// order per partition written and through the pipeline into PostgreSQL.
struct PhaseOne {
    k: MockKafka,
    _pg: EmbeddedPostgres,
    registry: EmbeddedRegistry,
    encoder: OutputEncoder,
    now: i64,
    db: Db,
}

impl PhaseOne {
    /// The phase, and the pipeline it started.
    async fn run() -> (PhaseOne, Pipeline) {
        let k = MockKafka::with_topics(2);
        let pg = start_pg();
        let registry = EmbeddedRegistry::start().await.unwrap();
        let encoder = OutputEncoder::avro(registry.url(), true).unwrap();
        let now = now_ms();
        for (p, id, customer) in [(0, "p0-a", "c0"), (1, "p1-a", "c1")] {
            let value = encoder
                .encode(TOPIC, &valid_tx(id, customer, now))
                .await
                .unwrap();
            write(&k.bootstrap(), TOPIC, p, &[(customer.to_string(), value)]);
        }
        let pipeline = start(
            &avro_config(&k.bootstrap(), &registry),
            &pg.connection_string("shop"),
        )
        .await;
        let db = Db::connect(&pg).await;
        db.wait_for(2, 0, None, Duration::from_secs(120)).await;
        assert_eq!(db.order_ids().await.len(), 2, "phase 1 went through");
        let one = PhaseOne {
            k,
            _pg: pg,
            registry,
            encoder,
            now,
            db,
        };
        (one, pipeline)
    }

    /// A v1-encoded valid transaction of `customer` (the future borrows only `self`).
    fn tx(&self, id: &str, customer: &str) -> impl std::future::Future<Output = Vec<u8>> + '_ {
        let tx = valid_tx(id, customer, self.now);
        async move { self.encoder.encode(TOPIC, &tx).await.unwrap() }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn registry_outage_pauses_the_partition_and_loses_nothing() {
    // No fraud alert, whose schema id the sink would have to fetch during the outage (it
    // would hold its partition too, as the second test shows).
    let (one, pipeline) = PhaseOne::run().await;
    let (registry, db) = (&one.registry, &one.db);
    let bootstrap = one.k.bootstrap();
    let v1 = |id: &str, customer: &str| one.tx(id, customer);

    // The outage: the registry answers 503 from now on; a compatible v2 schema exists
    // (registered directly in the store) but stage 1 has never fetched it.
    registry.set_available(false);
    let v2_id = registry
        .register(&format!("{TOPIC}-value"), &v2_schema())
        .unwrap();
    let mut held = Vec::new();
    for id in ["p0-v2-1", "p0-v2-2"] {
        let mut datum = v1(id, "c0").await[5..].to_vec();
        datum.push(0);
        held.push(("c0".to_string(), wire::frame(v2_id, &datum)));
        held.push(("c0".to_string(), v1(&format!("{id}-after"), "c0").await));
    }
    write(&bootstrap, TOPIC, 0, &held);
    write(
        &bootstrap,
        TOPIC,
        1,
        &[("c1".into(), v1("p1-b", "c1").await)],
    );

    // Partition 1 flows during the outage; partition 0 is held at its v2 record.
    let started = Instant::now();
    db.wait_for(3, 0, None, Duration::from_secs(60)).await;
    let progress = pipeline.stage1_progress();
    while progress.registry_holds.load(Ordering::Relaxed) == 0
        && started.elapsed() < Duration::from_secs(60)
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Let retries happen while the registry is down (several backoff rounds).
    tokio::time::sleep(Duration::from_secs(6)).await;
    let during: BTreeSet<String> = db.order_ids().await;
    let expect_during: BTreeSet<String> = ["p0-a", "p1-a", "p1-b"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(
        during, expect_during,
        "partition 1 flows, partition 0 waits"
    );
    assert!(
        progress.registry_holds.load(Ordering::Relaxed) > 0,
        "stage 1 held a partition for the outage"
    );
    assert_eq!(
        db.count("SELECT count(*) FROM dq_rejects").await,
        0,
        "a registry outage sends nothing to the DLQ"
    );
    assert!(
        !pipeline.processor_finished(),
        "the processor keeps running"
    );

    registry.set_available(true);
    db.wait_for(7, 0, None, Duration::from_secs(120)).await;
    let all: BTreeSet<String> = [
        "p0-a",
        "p1-a",
        "p1-b",
        "p0-v2-1",
        "p0-v2-1-after",
        "p0-v2-2",
        "p0-v2-2-after",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(
        db.order_ids().await,
        all,
        "every record once after the outage"
    );
    assert_eq!(db.count("SELECT count(*) FROM dq_rejects").await, 0);
    let holds = progress.registry_holds.load(Ordering::Relaxed);
    let (stage1, _) = pipeline.stop().await.unwrap();
    eprintln!(
        "registry outage: {holds} partition holds, {} records consumed, {} aborts",
        stage1.consumed, stage1.aborts
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sink_holds_only_the_partition_it_cannot_decode() {
    let (one, pipeline) = PhaseOne::run().await;
    let (registry, encoder, now, db) = (&one.registry, &one.encoder, one.now, &one.db);
    let bootstrap = one.k.bootstrap();
    let tx = |id: &str, customer: &str| one.tx(id, customer);
    // Encoded while the registry answers: the id stage 1 registered for the alerts,
    // which the sink has never needed (no alert so far).
    let alert = FraudAlert {
        transaction_id: "alert-1".into(),
        customer_id: "c0".into(),
        timestamp: now,
        amount: "12.50".parse().unwrap(),
        currency: "USD".into(),
        score: 0.9,
        reasons: vec!["velocity".into()],
        features: [("amount".to_string(), 12.5)].into_iter().collect(),
        source: SourceCoord {
            topic: TOPIC.into(),
            partition: 0,
            offset: 0,
        },
    };
    let alerts = "shop.fraud.alerts";
    let alert = encoder.encode(alerts, &alert).await.unwrap();
    let (p0b, p1b) = (tx("p0-b", "c0").await, tx("p1-b", "c1").await);

    registry.set_available(false);
    write(&bootstrap, alerts, 0, &[("alert-1".into(), alert)]);
    // Give the sink time to meet the alert and hold its partition.
    tokio::time::sleep(Duration::from_secs(3)).await;
    write(&bootstrap, TOPIC, 0, &[("c0".into(), p0b)]);
    write(&bootstrap, TOPIC, 1, &[("c1".into(), p1b)]);
    db.wait_for(4, 0, None, Duration::from_secs(60)).await;
    let orders = |ids: &[&str]| -> BTreeSet<String> { ids.iter().map(|s| s.to_string()).collect() };
    let all = orders(&["p0-a", "p1-a", "p0-b", "p1-b"]);
    assert_eq!(
        db.order_ids().await,
        all,
        "orders keep arriving during the outage"
    );
    let count = |sql| db.count(sql);
    assert_eq!(
        count("SELECT count(*) FROM fraud_alerts").await,
        0,
        "the alert waits"
    );
    assert_eq!(
        count("SELECT count(*) FROM dq_rejects").await,
        0,
        "nothing to the DLQ"
    );

    registry.set_available(true);
    db.wait_count(
        "SELECT count(*) FROM fraud_alerts",
        1,
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(
        count("SELECT count(*) FROM fraud_alerts").await,
        1,
        "the alert, once"
    );
    assert_eq!(db.order_ids().await, all, "every order once");
    assert_eq!(count("SELECT count(*) FROM fact_orders").await, 4);
    assert_eq!(count("SELECT count(*) FROM dq_rejects").await, 0);
    let (_, sink) = pipeline.stop().await.unwrap();
    let sink = sink.expect("the sink ran");
    eprintln!(
        "sink during the outage: {} partition holds, {} records, {} rows",
        sink.registry_holds, sink.records, sink.rows
    );
    assert!(sink.registry_holds > 0, "the sink held a partition");
}
