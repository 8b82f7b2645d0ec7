//! librdkafka's in-process mock cluster with shopstream's topics created (the mock has no
//! CreateTopics API, so topics are made through the mock's own call). The cluster is
//! `!Send`: keep it on the test's thread and talk to it over TCP via `bootstrap()`.

use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

pub struct MockKafka {
    pub cluster: MockCluster<'static, DefaultProducerContext>,
}

impl MockKafka {
    /// A one-broker mock cluster with no topics.
    pub fn empty() -> MockKafka {
        MockKafka {
            cluster: MockCluster::new(1).expect("mock cluster"),
        }
    }

    /// A mock cluster with every topic of topics/topics.toml, inputs at `partitions`.
    pub fn with_topics(partitions: i32) -> MockKafka {
        let k = MockKafka::empty();
        for d in shopstream::runtime::topics::parse(
            shopstream::runtime::topics::BUILTIN,
            Some(partitions),
        )
        .expect("topics")
        {
            k.cluster
                .create_topic(&d.name, d.partitions, 1)
                .expect("create topic");
        }
        k
    }

    pub fn bootstrap(&self) -> String {
        self.cluster.bootstrap_servers()
    }
}

/// Ends the stream's event time: one valid page view per partition of shop.events at
/// event time `at`, so that once the transaction partitions have gone idle the watermark
/// passes every window (and its allowed lateness) before `at`: they are all emitted and
/// final, and the checks can cover every window. Returns the events written as
/// (event_id, customer_id).
pub fn close_event_time(bootstrap: &str, partitions: i32, at: i64) -> Vec<(String, String)> {
    page_views(bootstrap, partitions, at, "closing")
}

/// What `open_event_time` wrote: transaction ids, and events as (event_id, customer_id).
pub struct Opening {
    pub transactions: Vec<String>,
    pub events: Vec<(String, String)>,
}

/// Starts the stream's event time: before any other input, one valid (failed) transaction
/// per partition of shop.transactions and one page view per partition of shop.events at
/// event time `at`, so every input partition has an event time from its first record and
/// the watermark never sits at its minimum while a record is judged. Without them, a
/// record far behind the stream that comes before its task has seen both partitions is
/// counted on one attempt and late on another, and the mock broker shows both attempts.
pub fn open_event_time(bootstrap: &str, partitions: i32, at: i64) -> Opening {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    use shopstream::model::TxStatus;
    let producer: BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("producer");
    let mut transactions = Vec::new();
    for p in 0..partitions {
        let mut t =
            super::raw_input::valid_tx(&format!("opening-tx-{p}"), &format!("opening-{p}"), at);
        t.session_id = format!("opening-session-{p}");
        t.status = TxStatus::Failed;
        t.amount = "1.00".parse().unwrap();
        t.items[0].product_id = "opening-product".into();
        t.items[0].unit_price = "1.00".parse().unwrap();
        t.device.fingerprint = "opening".into();
        let value = serde_json::to_string(&t).unwrap();
        producer
            .send(
                BaseRecord::to("shop.transactions")
                    .partition(p)
                    .key(&t.customer_id)
                    .payload(&value),
            )
            .expect("enqueue the opening transaction");
        transactions.push(t.transaction_id);
    }
    producer
        .flush(std::time::Duration::from_secs(10))
        .expect("opening transactions delivered");
    Opening {
        transactions,
        events: page_views(bootstrap, partitions, at, "opening"),
    }
}

/// One valid page view per partition of shop.events at event time `at`, by customers
/// `<name>-<p>`; returns them as (event_id, customer_id).
fn page_views(bootstrap: &str, partitions: i32, at: i64, name: &str) -> Vec<(String, String)> {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let producer: BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("producer");
    let mut written = Vec::new();
    for p in 0..partitions {
        let customer = format!("{name}-{p}");
        let id = format!("{name}-event-{p}");
        let value = serde_json::json!({
            "event_id": id,
            "customer_id": customer,
            "session_id": format!("{name}-session-{p}"),
            "event_type": "page_view",
            "timestamp": at,
            "page_url": "/",
            "device": {"type": "desktop", "os": "linux", "fingerprint": name},
        })
        .to_string();
        producer
            .send(
                BaseRecord::to("shop.events")
                    .partition(p)
                    .key(&customer)
                    .payload(&value),
            )
            .expect("enqueue the page view");
        written.push((id, customer));
    }
    producer
        .flush(std::time::Duration::from_secs(10))
        .expect("page views delivered");
    written
}

/// Passes the payload of every record on `topic` (read_committed; on the mock that still
/// includes aborted records) to `each`, from the beginning to the end of each partition.
pub fn read_to_end(bootstrap: &str, topic: &str, mut each: impl FnMut(&[u8])) {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::Message;
    use std::time::Duration;
    let c: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "test-topic-reader")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .expect("consumer");
    let md = c
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    // Per partition holding records, the offset just past its last one.
    let mut ends = std::collections::HashMap::new();
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in md.topics()[0].partitions() {
        let (low, high) = c
            .fetch_watermarks(topic, p.id(), Duration::from_secs(10))
            .expect("watermarks");
        if high > low {
            tpl.add_partition_offset(topic, p.id(), rdkafka::Offset::Offset(low))
                .unwrap();
            ends.insert(p.id(), high);
        }
    }
    c.assign(&tpl).expect("assign");
    let started = std::time::Instant::now();
    // The end is judged by position, not by the last message: a partition of a
    // transactional topic ends with a commit marker, which is never delivered.
    let at_end = |c: &BaseConsumer| {
        let pos = c.position().expect("position");
        ends.iter().all(|(p, end)| {
            matches!(pos.find_partition(topic, *p).map(|e| e.offset()),
                     Some(rdkafka::Offset::Offset(o)) if o >= *end)
        })
    };
    while started.elapsed() < Duration::from_secs(60) {
        let Some(m) = c.poll(Duration::from_millis(200)) else {
            if at_end(&c) {
                break;
            }
            continue;
        };
        let m = m.expect("consume");
        if let Some(payload) = m.payload() {
            each(payload);
        }
    }
    assert!(at_end(&c), "{topic}: not read to its end within 60 s");
}
