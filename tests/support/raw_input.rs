//! Hand-made input for the hostile-input and fault tests: valid transactions with chosen
//! ids (each keyed by its customer), raw payloads written to one input partition in order,
//! and the DLQ reasons PostgreSQL holds for a partition, so a test can put poison between
//! valid records and check that each lands where it must.

use std::time::Duration;

use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use shopstream::model::{Device, LineItem, Location, Transaction, TxStatus};

/// A valid completed transaction `id` of `customer` at event time `at`.
pub fn valid_tx(id: &str, customer: &str, at: i64) -> Transaction {
    Transaction {
        transaction_id: id.into(),
        customer_id: customer.into(),
        session_id: format!("{customer}-session"),
        timestamp: at,
        status: TxStatus::Completed,
        currency: "USD".into(),
        amount: "12.50".parse().unwrap(),
        payment_method: "credit_card".into(),
        items: vec![LineItem {
            product_id: "p-1".into(),
            category: "books".into(),
            quantity: 1,
            unit_price: "12.50".parse().unwrap(),
            discount: "0.00".parse().unwrap(),
        }],
        location: Location {
            country: "US".into(),
            state: Some("CA".into()),
            city: Some("San Francisco".into()),
            lat: 37.77,
            lon: -122.42,
        },
        device: Device {
            device_type: "desktop".into(),
            os: "linux".into(),
            fingerprint: format!("{customer}-fp"),
        },
        ip_address: "10.0.0.1".into(),
        channel: "web".into(),
        email: None,
    }
}

/// Writes `(key, payload)` pairs to `topic`/`partition` in order and waits for delivery.
pub fn write(bootstrap: &str, topic: &str, partition: i32, records: &[(String, Vec<u8>)]) {
    let producer: BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("message.max.bytes", "4000000")
        .create()
        .expect("producer");
    for (key, payload) in records {
        producer
            .send(
                BaseRecord::to(topic)
                    .partition(partition)
                    .key(key)
                    .payload(payload),
            )
            .map_err(|(e, _)| e)
            .expect("enqueue");
        producer.poll(Duration::ZERO);
    }
    producer
        .flush(Duration::from_secs(20))
        .expect("records delivered");
}

/// The DLQ reasons in dq_rejects for `topic`/`partition`, by source offset.
pub async fn reasons(
    client: &tokio_postgres::Client,
    topic: &str,
    partition: i32,
) -> Vec<(i64, String)> {
    client
        .query(
            "SELECT source_offset, reason FROM dq_rejects
              WHERE source_topic = $1 AND source_partition = $2 ORDER BY 1",
            &[&topic, &partition],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}
