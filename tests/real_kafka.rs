//! Transactional isolation against a real Kafka: runs only when SHOPSTREAM_TEST_KAFKA
//! names a bootstrap server of a dedicated, empty test cluster (Kafka 3.x/4.x with
//! transactions; e.g. the `kafka` service of docker-compose.yml on localhost:29092).
//! Otherwise it is skipped with a message: librdkafka's mock cluster and the other local
//! brokers leak aborted records to read_committed consumers, so they cannot prove this.
//!
//! The real binary runs in exactly-once mode and is killed with SIGKILL mid-stream and
//! restarted; a read_committed consumer then reads shop.orders.enriched from the start and
//! must see every valid unique transaction exactly once: no aborted output, no duplicate.

mod support;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use clap::Parser;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::ClientConfig;
use shopstream::generator::{self, GenerateArgs};
use shopstream::model::EnrichedOrder;
use support::{shopstream, EmbeddedPostgres};

#[tokio::test(flavor = "multi_thread")]
async fn read_committed_sees_no_aborted_or_duplicated_output_after_sigkill() {
    let Ok(bootstrap) = std::env::var("SHOPSTREAM_TEST_KAFKA") else {
        eprintln!(
            "SKIPPED real_kafka: set SHOPSTREAM_TEST_KAFKA=host:port (a dedicated, empty Kafka \
             cluster with transactions) to run the transactional isolation suite"
        );
        return;
    };
    let created = shopstream()
        .args(["topics", "create", "--partitions", "3"])
        .env("SHOPSTREAM_KAFKA__BOOTSTRAP_SERVERS", &bootstrap)
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stdout)
    );
    let pg = EmbeddedPostgres::start().unwrap();
    pg.create_database("shop").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let args = GenerateArgs::parse_from([
        "generate",
        "--bootstrap-servers",
        &bootstrap,
        "--count",
        "40000",
        "--rate",
        "2000",
        "--event-rate",
        "2000",
        "--seed",
        "5",
        "--late-rate",
        "0",
        "--out",
        dir.path().to_str().unwrap(),
        "--truth",
        dir.path().join("truth.jsonl").to_str().unwrap(),
    ]);
    let producing = tokio::task::spawn_blocking(move || {
        generator::run(&args, &AtomicBool::new(false)).unwrap()
    });
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        format!(
            "[kafka]\nbootstrap_servers = \"{bootstrap}\"\n[postgres]\nhost = \"127.0.0.1\"\nport = {}\n\
             user = \"shop\"\ndbname = \"shop\"\nsslmode = \"disable\"\n[processing]\nguarantee = \"exactly-once\"\n",
            pg.port()
        ),
    )
    .unwrap();
    for life_ms in [4_000u64, 7_000, 5_000] {
        let mut child = shopstream()
            .args(["--config", config.to_str().unwrap(), "run"])
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(life_ms)).await;
        child.kill().unwrap();
        child.wait().unwrap();
    }
    producing.await.unwrap();
    let mut child = shopstream()
        .args(["--config", config.to_str().unwrap(), "run"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(30)).await;
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    child.wait().unwrap();

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set(
            "group.id",
            format!("isolation-check-{}", std::process::id()),
        )
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&["shop.orders.enriched"]).unwrap();
    let mut seen: BTreeMap<String, u32> = BTreeMap::new();
    let mut idle = Instant::now();
    while idle.elapsed() < Duration::from_secs(10) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            idle = Instant::now();
            let o: EnrichedOrder = serde_json::from_slice(m.payload().unwrap()).unwrap();
            *seen.entry(o.order.transaction_id).or_default() += 1;
        }
    }
    let doubled: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(
        doubled.is_empty(),
        "read_committed saw duplicated output: {doubled:?}"
    );
    assert!(!seen.is_empty());
}
