//! The catalog table reads the compacted products topic to its end before processing
//! starts, and keeps the latest version of each product.

mod support;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;
use rust_decimal::Decimal;
use shopstream::codec::{DecodeLimits, InputDecoder};
use shopstream::model::Product;
use shopstream::runtime::catalog::Catalog;
use support::kafka::MockKafka;

fn product(id: &str, updated_at: i64, name: &str) -> Vec<u8> {
    serde_json::to_vec(&Product {
        product_id: id.into(),
        name: name.into(),
        category: "books".into(),
        brand: "b".into(),
        price: Decimal::new(1000, 2),
        cost: Decimal::new(500, 2),
        inventory_count: 10,
        reorder_point: None,
        updated_at,
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn catalog_reads_the_whole_topic_before_processing_starts() {
    let k = MockKafka::with_topics(3);
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", k.bootstrap())
        .create()
        .unwrap();
    for i in 0..200 {
        let id = format!("p{i}");
        p.send(
            BaseRecord::to("shop.products")
                .key(&id)
                .payload(&product(&id, 1, "old")),
        )
        .unwrap();
    }
    p.send(
        BaseRecord::to("shop.products")
            .key("p7")
            .payload(&product("p7", 2, "new")),
    )
    .unwrap();
    p.flush(Duration::from_secs(10)).unwrap();
    let mut base = ClientConfig::new();
    base.set("bootstrap.servers", k.bootstrap());
    let started = Instant::now();
    let handle = tokio::runtime::Handle::current();
    let catalog = tokio::task::spawn_blocking(move || {
        Catalog::start(
            &base,
            "shop.products",
            Arc::new(InputDecoder::json(DecodeLimits::default())),
            handle,
            Arc::new(AtomicBool::new(false)),
            Duration::from_secs(20),
        )
        .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(
        catalog.len(),
        200,
        "caught up after {:?}",
        started.elapsed()
    );
    assert_eq!(catalog.get("p7").unwrap().name, "new");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}
