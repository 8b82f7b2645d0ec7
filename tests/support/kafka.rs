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
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let producer: BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("producer");
    let mut written = Vec::new();
    for p in 0..partitions {
        let customer = format!("closing-{p}");
        let id = format!("closing-event-{p}");
        let value = serde_json::json!({
            "event_id": id,
            "customer_id": customer,
            "session_id": format!("closing-session-{p}"),
            "event_type": "page_view",
            "timestamp": at,
            "page_url": "/",
            "device": {"type": "desktop", "os": "linux", "fingerprint": "closing"},
        })
        .to_string();
        producer
            .send(
                BaseRecord::to("shop.events")
                    .partition(p)
                    .key(&customer)
                    .payload(&value),
            )
            .expect("enqueue the closing event");
        written.push((id, customer));
    }
    producer
        .flush(std::time::Duration::from_secs(10))
        .expect("closing events delivered");
    written
}
