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
//! binary garbage and an empty payload.

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
