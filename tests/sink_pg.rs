//! The PostgreSQL sink against the mock cluster and a throw-away PostgreSQL: rows land in
//! their tables, the highest KPI revision wins whatever the arrival order, redelivery
//! (a new consumer group re-reading everything) changes nothing because the offsets stored
//! in PostgreSQL are authoritative, and an undecodable output record becomes a dq_rejects row.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;
use rust_decimal::Decimal;
use shopstream::codec::{DecodeLimits, InputDecoder};
use shopstream::model::*;
use shopstream::sink::consumer::{self, SinkSettings};
use support::kafka::MockKafka;
use support::EmbeddedPostgres;

fn order(id: &str, customer: &str, amount: i64) -> EnrichedOrder {
    EnrichedOrder {
        order: Transaction {
            transaction_id: id.into(),
            customer_id: customer.into(),
            session_id: "s1".into(),
            timestamp: 1_700_000_000_000,
            status: TxStatus::Completed,
            currency: "USD".into(),
            amount: Decimal::new(amount, 2),
            payment_method: "card".into(),
            items: vec![LineItem {
                product_id: "p1".into(),
                category: "books".into(),
                quantity: 1,
                unit_price: Decimal::new(amount, 2),
                discount: Decimal::ZERO,
            }],
            location: Location {
                country: "US".into(),
                state: Some("CA".into()),
                city: None,
                lat: 1.0,
                lon: 2.0,
            },
            device: Device {
                device_type: "mobile".into(),
                os: "ios".into(),
                fingerprint: "f".into(),
            },
            ip_address: "10.0.0.1".into(),
            channel: "web".into(),
            email: None,
        },
        items: vec![EnrichedItem {
            product_id: "p1".into(),
            product_name: Some("Book".into()),
            brand: Some("B".into()),
            unit_cost: Some(Decimal::new(100, 2)),
            known: true,
        }],
        fraud_score: 0.25,
        fraud_reasons: vec!["new_device".into(), "velocity_1h".into()],
        source: SourceCoord {
            topic: "shop.transactions".into(),
            partition: 0,
            offset: 7,
        },
    }
}

fn kpi(revision: u32, revenue: i64) -> KpiRow {
    KpiRow {
        kpi: "revenue".into(),
        window_start: 1_700_000_000_000,
        window_end: 1_700_000_060_000,
        dimension: "all".into(),
        values: BTreeMap::from([("revenue".to_string(), Decimal::new(revenue, 2))]),
        status: if revision == 0 {
            EmitStatus::OnTime
        } else {
            EmitStatus::LateUpdate
        },
        revision,
    }
}

fn produce(bootstrap: &str, records: &[(&str, Vec<u8>)]) {
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    for (topic, payload) in records {
        p.send(BaseRecord::<(), _>::to(topic).payload(payload))
            .unwrap();
    }
    p.flush(Duration::from_secs(10)).unwrap();
}

async fn sink_once(bootstrap: &str, pg: &str, group: &str) -> consumer::SinkTotals {
    let mut base = ClientConfig::new();
    base.set("bootstrap.servers", bootstrap)
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500");
    let mut settings = SinkSettings::pipeline(pg.to_string());
    settings.group = group.into();
    settings.linger = Duration::from_millis(1500);
    let (_tx, rx) = tokio::sync::watch::channel(consumer::SinkControl::Drain);
    consumer::run(
        base,
        Arc::new(InputDecoder::json(DecodeLimits::default())),
        settings,
        rx,
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn sink_upserts_keeps_highest_revision_and_ignores_redelivery() {
    let k = MockKafka::with_topics(2);
    let pg = EmbeddedPostgres::start().unwrap();
    pg.create_database("sink").unwrap();
    let conn = pg.connection_string("sink");
    let j = |v: &dyn erased::Ser| v.json();
    let o1 = order("t1", "c1", 1250);
    let o2 = order("t2", "c1", 500);
    produce(
        &k.bootstrap(),
        &[
            ("shop.orders.enriched", j(&o1)),
            ("shop.orders.enriched", j(&o2)),
            ("shop.orders.enriched", j(&o1)), // a duplicate delivery of the same order
            ("shop.kpi.revenue", j(&kpi(0, 1000))),
            ("shop.kpi.revenue", j(&kpi(2, 3000))),
            ("shop.kpi.revenue", j(&kpi(1, 2000))), // older revision arriving last
            ("shop.dlq", b"{not json".to_vec()),    // undecodable output record
        ],
    );
    let t = std::time::Instant::now();
    let totals = sink_once(&k.bootstrap(), &conn, "shopstream-sink").await;
    eprintln!("first sink run took {:?}", t.elapsed());
    assert_eq!(totals.records, 7);

    let (client, c) = tokio_postgres::connect(&conn, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(c);
    let count = |sql: &'static str| {
        let client = &client;
        async move { client.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    assert_eq!(count("SELECT count(*) FROM fact_orders").await, 2);
    assert_eq!(count("SELECT count(*) FROM fact_order_items").await, 2);
    let row = client
        .query_one(
            "SELECT order_count, lifetime_value::text FROM dim_customers WHERE customer_id='c1'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 2);
    assert_eq!(row.get::<_, String>(1), "17.50");
    let row = client
        .query_one("SELECT revision, metrics->>'revenue' FROM kpi_revenue", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 2);
    assert_eq!(row.get::<_, String>(1), "30.00");
    let reasons: Vec<String> = client
        .query_one(
            "SELECT fraud_reasons FROM fact_orders WHERE transaction_id='t1'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(reasons, vec!["new_device", "velocity_1h"]);
    assert_eq!(
        count("SELECT count(*) FROM dq_rejects WHERE rule='sink_decode'").await,
        1
    );

    // A new group re-reads everything from the start: stored offsets make it a no-op.
    let t = std::time::Instant::now();
    let again = sink_once(&k.bootstrap(), &conn, "shopstream-sink").await;
    eprintln!("second sink run took {:?}", t.elapsed());
    assert_eq!(
        again.records, 0,
        "records below the stored offsets must be skipped"
    );
    assert_eq!(count("SELECT count(*) FROM fact_orders").await, 2);
    assert_eq!(
        count("SELECT sum(next_offset)::bigint FROM sink_offsets").await,
        7
    );
}

/// A tiny helper so the test can JSON-encode heterogeneous records in one list.
mod erased {
    pub trait Ser {
        fn json(&self) -> Vec<u8>;
    }
    impl<T: serde::Serialize> Ser for T {
        fn json(&self) -> Vec<u8> {
            serde_json::to_vec(self).unwrap()
        }
    }
}
