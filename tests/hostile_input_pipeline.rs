//! Hostile input through the real pipeline (stage 1, stage 2 and the PostgreSQL sink on
//! the mock cluster): poison records placed between valid ones on one input partition
//! each reach dq_rejects once, with the reason that names what is wrong, and the valid
//! record after them is processed too — the partition keeps flowing and the process does
//! not stop. Avro: an oversized record (beyond `processing.max_record_bytes`), a wrong
//! magic byte, an unknown schema id (the registry answers 404), a truncated datum and
//! JSON sent to an Avro topic. JSON: nesting deeper than the depth limit (a record of
//! 50,000 `[` and a transaction with an object nested 40 deep), a 1.1 MB record beyond
//! the size limit and a 900 KB invalid one under it (both DLQ records keep a cut original,
//! else Kafka would refuse them and the partition would stop), a record of the wrong shape,
//! binary garbage and an empty payload. Outputs too large for a Kafka message: a
//! transaction of more items than `engine.quality.max_items`, one whose 1.03 MB field
//! (under the input limit) would make its enriched order larger than the producer's
//! 1 000 000-byte limit, and one of 400 items whose 1 200-byte product ids the enriched
//! order repeats (a 0.5 MB input whose order would take over 1 MB) are rejected before the
//! engine applies them (`too_many_items`, `oversized_output`).

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use shopstream::codec::{wire, OutputEncoder};
use shopstream::config::WireFormat;
use support::db::{start_pg, Db};
use support::kafka::MockKafka;
use support::pipeline::{mock_config, start};
use support::raw_input::{now_ms, reasons, valid_tx, write};
use support::{EmbeddedPostgres, EmbeddedRegistry};

const TOPIC: &str = "shop.transactions";

/// Runs the pipeline over `records` (written to partition 0 before it starts) and checks
/// that dq_rejects holds exactly `want` (offset, reason) and fact_orders exactly `valid`.
async fn run(
    config: shopstream::config::Config,
    k: &MockKafka,
    records: Vec<(String, Vec<u8>)>,
    want: &[(i64, &str)],
    valid: &[&str],
) -> (EmbeddedPostgres, Db) {
    let pg = start_pg();
    write(&k.bootstrap(), TOPIC, 0, &records);
    let pipeline = start(&config, &pg.connection_string("shop")).await;
    let db = Db::connect(&pg).await;
    db.wait_for(valid.len(), want.len(), None, Duration::from_secs(120))
        .await;
    assert!(
        !pipeline.processor_finished(),
        "the processor must still be running after the poison"
    );
    let got = reasons(&db.client, TOPIC, 0).await;
    let want: Vec<(i64, String)> = want.iter().map(|(o, r)| (*o, r.to_string())).collect();
    assert_eq!(got, want, "dq_rejects (offset, reason) of {TOPIC}/0");
    let orders = db.order_ids().await;
    let valid: BTreeSet<String> = valid.iter().map(|s| s.to_string()).collect();
    assert_eq!(orders, valid, "fact_orders holds exactly the valid records");
    pipeline.stop().await.unwrap();
    (pg, db)
}

#[tokio::test(flavor = "multi_thread")]
async fn avro_poison_goes_to_the_dlq_with_its_reason_and_the_partition_flows_on() {
    let k = MockKafka::with_topics(1);
    let registry = EmbeddedRegistry::start().await.unwrap();
    let encoder = OutputEncoder::avro(registry.url(), true).unwrap();
    let now = now_ms();
    let enc = |id: &str| {
        let tx = valid_tx(id, "c1", now);
        let encoder = &encoder;
        async move { encoder.encode(TOPIC, &tx).await.unwrap() }
    };
    let ok1 = enc("ok-1").await;
    let schema_id = u32::from_be_bytes(ok1[1..5].try_into().unwrap());
    let mut bad_magic = enc("bad-magic").await;
    bad_magic[0] = 0x01;
    let unknown_id = wire::frame(4_000_000, &enc("unknown-id").await[5..]);
    let truncated = enc("truncated").await;
    let truncated = truncated[..truncated.len() / 2].to_vec();
    let json = serde_json::to_vec(&valid_tx("json", "c1", now)).unwrap();
    let oversized = wire::frame(schema_id, &vec![0u8; 8_000]);
    let key = || "c1".to_string();
    let records = vec![
        (key(), ok1),
        (key(), oversized),
        (key(), bad_magic),
        (key(), unknown_id),
        (key(), truncated),
        (key(), json),
        (key(), enc("ok-2").await),
    ];
    let mut config = mock_config(&k.bootstrap());
    config.processing.format = WireFormat::Avro;
    config.registry.url = registry.url().to_string();
    config.processing.max_record_bytes = 4_096;
    let want = [
        (1, "oversized_record"),
        (2, "bad_magic_byte"),
        (3, "unknown_schema_id"),
        (4, "malformed_avro"),
        (5, "bad_magic_byte"),
    ];
    run(config, &k, records, &want, &["ok-1", "ok-2"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn json_poison_goes_to_the_dlq_with_its_reason_and_the_partition_flows_on() {
    let k = MockKafka::with_topics(1);
    let now = now_ms();
    let tx = |id: &str| serde_json::to_vec(&valid_tx(id, "c1", now)).unwrap();
    let mut nested = serde_json::to_value(valid_tx("nested", "c1", now)).unwrap();
    let mut deep = serde_json::json!(1);
    for _ in 0..40 {
        deep = serde_json::json!({ "a": deep });
    }
    nested["device"]["extra"] = deep;
    let text = |id: &str, n: usize| {
        format!(
            "{{\"transaction_id\":\"{id}\",\"session_id\":\"{}\"}}",
            "x".repeat(n)
        )
    };
    // Over the limit; and under it but invalid, with a DLQ record (the original in
    // base64) that would exceed Kafka's 1 MB message size if the original were kept whole.
    let huge = text("huge", 1_100_000);
    let big_invalid = text("big-invalid", 900_000);
    let wrong_shape = serde_json::json!({
        "transaction_id": "wrong-shape",
        "customer_id": "c1",
        "items": vec![1; 20_000],
    });
    let key = || "c1".to_string();
    let records = vec![
        (key(), tx("ok-1")),
        (key(), "[".repeat(50_000).into_bytes()),
        (key(), serde_json::to_vec(&nested).unwrap()),
        (key(), huge.into_bytes()),
        (key(), big_invalid.into_bytes()),
        (key(), serde_json::to_vec(&wrong_shape).unwrap()),
        (key(), vec![0xff, 0xfe, 0x00, 0x9c, 0x7b]),
        (key(), Vec::new()),
        (key(), tx("ok-2")),
    ];
    let mut config = mock_config(&k.bootstrap());
    config.processing.max_record_bytes = 1_000_000;
    let want = [
        (1, "json_too_deep"),
        (2, "json_too_deep"),
        (3, "oversized_record"),
        (4, "missing_field"),
        (5, "wrong_type"),
        (6, "json_syntax"),
        (7, "empty_payload"),
    ];
    let (_pg, db) = run(config, &k, records, &want, &["ok-1", "ok-2"]).await;
    // The two large records' originals are cut to 512 KiB, and their detail says so.
    let cut: Vec<(i64, i32, bool)> = db
        .client
        .query(
            "SELECT source_offset, length(original), detail LIKE '%original truncated%'
               FROM dq_rejects WHERE length(original) > 100000 ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(cut, [(3, 524_288, true), (4, 524_288, true)]);
}

/// `t` with `n` copies of its item, each with product id `id`, and the amount to match.
fn with_items(mut t: shopstream::model::Transaction, n: usize, id: &str) -> Vec<u8> {
    let mut item = t.items[0].clone();
    item.product_id = id.to_string();
    t.items = vec![item; n];
    t.amount = t
        .items
        .iter()
        .map(|i| rust_decimal::Decimal::from(i.quantity) * i.unit_price - i.discount)
        .sum();
    serde_json::to_vec(&t).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn outputs_beyond_the_message_limit_are_rejected_and_the_partition_flows_on() {
    let k = MockKafka::with_topics(1);
    let now = now_ms();
    let tx = |id: &str| valid_tx(id, "c1", now);
    let mut long_field = tx("long-field");
    long_field.device.fingerprint = "f".repeat(1_030_000);
    let long_field = serde_json::to_vec(&long_field).unwrap();
    assert!(long_field.len() < 1_048_576, "under the input limit");
    let long_ids = with_items(tx("long-ids"), 400, &"p".repeat(1_200));
    assert!(long_ids.len() < 600_000, "{} bytes", long_ids.len());
    let key = || "c1".to_string();
    let records = vec![
        (key(), serde_json::to_vec(&tx("ok-1")).unwrap()),
        (key(), with_items(tx("many-items"), 501, "p-1")),
        (key(), long_field),
        (key(), long_ids),
        (key(), with_items(tx("ok-500-items"), 500, "p-1")),
        (key(), serde_json::to_vec(&tx("ok-2")).unwrap()),
    ];
    // The defaults: 1 MiB inputs, 500 items, outputs within librdkafka's 1 000 000 bytes.
    let config = mock_config(&k.bootstrap());
    let want = [
        (1, "too_many_items"),
        (2, "oversized_output"),
        (3, "oversized_output"),
    ];
    let (_pg, db) = run(
        config,
        &k,
        records,
        &want,
        &["ok-1", "ok-500-items", "ok-2"],
    )
    .await;
    let rules: Vec<(i64, String)> = db
        .client
        .query("SELECT source_offset, rule FROM dq_rejects ORDER BY 1", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let rules: Vec<(i64, &str)> = rules.iter().map(|(o, r)| (*o, r.as_str())).collect();
    assert_eq!(
        rules,
        [
            (1, "max_items"),
            (2, "output_fits_message"),
            (3, "output_fits_message")
        ]
    );
}
