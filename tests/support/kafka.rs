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
