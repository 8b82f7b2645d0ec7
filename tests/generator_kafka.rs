//! `generate` against librdkafka's in-process mock cluster: everything produced is consumed
//! back per topic, identical to the JSONL export, with keys pinned to one partition and
//! event time as the message timestamp; an endless run stops on the stop flag; Avro says
//! plainly that it is not wired yet.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use clap::Parser;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::{Message, Offset, TopicPartitionList};
use shopstream::generator::{run, GenerateArgs};

const TOPICS: [(&str, i32); 3] = [
    ("shop.transactions", 4),
    ("shop.events", 4),
    ("shop.products", 2),
];

/// (key, value as JSON or raw bytes, timestamp) of one message.
type Msg = (String, serde_json::Value, i64);

fn value_of(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).unwrap_or_else(|_| {
        serde_json::Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
    })
}

fn consume_all(bootstrap: &str, expected: u64) -> BTreeMap<String, Vec<(i32, Msg)>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "generator-test")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for (t, n) in TOPICS {
        for p in 0..n {
            tpl.add_partition_offset(t, p, Offset::Beginning).unwrap();
        }
    }
    consumer.assign(&tpl).unwrap();
    let mut out: BTreeMap<String, Vec<(i32, Msg)>> = BTreeMap::new();
    let (mut n, deadline) = (0, Instant::now() + Duration::from_secs(60));
    while n < expected && Instant::now() < deadline {
        let Some(m) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let m = m.unwrap();
        let key = String::from_utf8(m.key().unwrap().to_vec()).unwrap();
        let msg = (
            key,
            value_of(m.payload().unwrap()),
            m.timestamp().to_millis().unwrap(),
        );
        out.entry(m.topic().to_string())
            .or_default()
            .push((m.partition(), msg));
        n += 1;
    }
    out
}

fn exported(dir: &Path, topic: &str) -> Vec<Msg> {
    fs::read_to_string(dir.join(format!("{topic}.jsonl")))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let value = match v.get("value") {
                Some(j) => j.clone(),
                None => serde_json::Value::String(v["value_b64"].as_str().unwrap().to_string()),
            };
            (
                v["key"].as_str().unwrap().to_string(),
                value,
                v["timestamp"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn sorted(mut v: Vec<Msg>) -> Vec<String> {
    let mut s: Vec<String> = v
        .drain(..)
        .map(|m| serde_json::to_string(&m).unwrap())
        .collect();
    s.sort();
    s
}

#[test]
fn produces_to_a_mock_cluster_and_consumes_everything_back() {
    let cluster = MockCluster::new(1).unwrap();
    for (t, n) in TOPICS {
        cluster.create_topic(t, n, 1).unwrap();
    }
    let bootstrap = cluster.bootstrap_servers();
    let tmp = tempfile::tempdir().unwrap();
    let (out, truth) = (tmp.path().join("out"), tmp.path().join("truth.jsonl"));
    let args = GenerateArgs::parse_from([
        "generate",
        "--bootstrap-servers",
        &bootstrap,
        "--count",
        "5000",
        "--rate",
        "0",
        "--seed",
        "4",
        "--start",
        "2024-03-04T17:00:00Z",
        "--customers",
        "500",
        "--products",
        "100",
        "--invalid-rate",
        "0.03",
        "--truth",
        truth.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let summary = run(&args, &AtomicBool::new(false)).unwrap();
    assert_eq!(summary.inputs, 5000);
    assert_eq!(
        summary.delivery.as_ref().unwrap().delivered,
        summary.records()
    );
    assert_eq!(
        fs::read_to_string(&truth).unwrap().lines().count() as u64,
        summary.truth_lines
    );

    let consumed = consume_all(&bootstrap, summary.records());
    for (topic, _) in TOPICS {
        let msgs = consumed.get(topic).cloned().unwrap_or_default();
        assert_eq!(msgs.len() as u64, summary.per_topic[topic], "{topic}");
        let mut partition_of: HashMap<String, i32> = HashMap::new();
        for (p, (key, _, _)) in &msgs {
            assert_eq!(
                *partition_of.entry(key.clone()).or_insert(*p),
                *p,
                "key {key} in two partitions of {topic}"
            );
        }
        let from_kafka = sorted(msgs.into_iter().map(|(_, m)| m).collect());
        assert!(
            from_kafka == sorted(exported(&out, topic)),
            "{topic}: Kafka and the export differ"
        );
    }
}

#[test]
fn an_endless_run_stops_on_the_stop_flag() {
    let cluster = MockCluster::new(1).unwrap();
    let args = GenerateArgs::parse_from([
        "generate",
        "--bootstrap-servers",
        &cluster.bootstrap_servers(),
        "--rate",
        "2000",
        "--customers",
        "200",
        "--products",
        "50",
        "--message-timestamp",
        "wall-clock",
        "--event-rate",
        "50",
    ]);
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let t = std::thread::spawn(move || run(&args, &flag));
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    let summary = t.join().unwrap().unwrap();
    assert!(
        (500..=4000).contains(&summary.inputs),
        "{} records in ~1.5 s at 2000/s",
        summary.inputs
    );
    assert_eq!(
        summary.delivery.as_ref().unwrap().delivered,
        summary.records()
    );
}

#[test]
fn avro_without_a_registry_and_bad_flags_are_named() {
    let stop = AtomicBool::new(false);
    let avro =
        GenerateArgs::parse_from(["generate", "--format", "avro", "--out", "/nonexistent/x"]);
    let err = run(&avro, &stop).unwrap_err().to_string();
    assert!(err.contains("needs a schema registry"), "{err}");
    let bad = GenerateArgs::parse_from(["generate", "--invalid-rate", "0.7", "--late-rate", "0.5"]);
    let err = run(&bad, &stop).unwrap_err().to_string();
    assert!(err.starts_with("--invalid-rate"), "{err}");
    assert!(GenerateArgs::try_parse_from(["generate", "--lateness", "ten minutes"]).is_err());
}
