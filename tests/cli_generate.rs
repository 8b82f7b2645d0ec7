//! `shopstream generate --format avro` through the real binary: values are Confluent-framed
//! with ids from the (fake) registry and decode with the codec, except exactly the records
//! the truth file labels as structurally invalid (missing field, undecodable bytes).

mod support;

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::ClientConfig;
use shopstream::codec::{DecodeLimits, InputDecoder, RecordKind};
use shopstream::model::Product;
use support::kafka::MockKafka;
use support::{shopstream, EmbeddedRegistry};

#[tokio::test(flavor = "multi_thread")]
async fn generate_avro_frames_values_that_decode_except_structural_faults() {
    let k = MockKafka::with_topics(3);
    let reg = EmbeddedRegistry::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let truth = dir.path().join("truth.jsonl");
    let out = shopstream()
        .args([
            "generate", "--format", "avro", "--count", "3000", "--rate", "0",
        ])
        .args([
            "--event-rate",
            "100",
            "--seed",
            "7",
            "--customers",
            "300",
            "--products",
            "50",
        ])
        .args(["--invalid-rate", "0.05", "--truth", truth.to_str().unwrap()])
        .env("SHOPSTREAM_KAFKA__BOOTSTRAP_SERVERS", k.bootstrap())
        .env("SHOPSTREAM_REGISTRY__URL", reg.url())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let structural = std::fs::read_to_string(&truth)
        .unwrap()
        .lines()
        .filter(|l| l.contains("invalid:missing_field") || l.contains("invalid:undecodable"))
        .count();
    assert!(structural > 0, "the run must include structural faults");

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", k.bootstrap())
        .set("group.id", "check")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer
        .subscribe(&["shop.transactions", "shop.events", "shop.products"])
        .unwrap();
    let decoder = InputDecoder::avro(reg.url(), DecodeLimits::default()).unwrap();
    let (mut ok, mut failed, mut inputs) = (0, 0, 0);
    let mut idle = 0;
    while idle < 30 {
        let Some(m) = consumer.poll(Duration::from_millis(200)) else {
            idle += 1;
            continue;
        };
        idle = 0;
        let m = m.unwrap();
        let payload = m.payload().unwrap_or_default();
        let r = match m.topic() {
            "shop.products" => decoder.decode::<Product>(payload).await.map(|_| ()),
            "shop.transactions" => decoder
                .decode_record(RecordKind::Transaction, Some(payload))
                .await
                .map(|_| ()),
            _ => decoder
                .decode_record(RecordKind::Event, Some(payload))
                .await
                .map(|_| ()),
        };
        if m.topic() != "shop.products" {
            inputs += 1;
        }
        match r {
            Ok(()) => ok += 1,
            Err(e) => {
                assert!(!e.is_retriable(), "{e}");
                failed += 1
            }
        }
    }
    assert_eq!(inputs, 3000);
    assert_eq!(
        failed, structural,
        "exactly the structural faults fail to decode"
    );
    assert!(ok > 3000 - structural, "catalog and valid records decode");
}
