//! The data side of a measured run: a fresh librdkafka mock cluster with shopstream's
//! topics, the generator preloading it with N input records (JSON, or Confluent Avro
//! through the embedded registry) or producing at a fixed offered rate on an absolute
//! schedule (open loop: the schedule does not wait for the pipeline), and B0 — a plain
//! rdkafka consumer reading the preloaded input topics to their end with no processing,
//! the physical limit every pipeline figure is compared with.

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use clap::Parser;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use shopstream::codec::subjects::{EVENTS, PRODUCTS, TRANSACTIONS};
use shopstream::generator::{self, avro::AvroPayloadEncoder, GenerateArgs, PayloadEncoder};
use shopstream::runtime::topics;

/// One broker holding one scenario's data.
pub struct Broker {
    pub cluster: MockCluster<'static, DefaultProducerContext>,
    pub partitions: i32,
}

impl Broker {
    /// A fresh one-broker mock cluster with every topic of topics/topics.toml, the inputs
    /// (and the changelog) at `partitions`.
    pub fn new(partitions: i32) -> Result<Broker> {
        let cluster = MockCluster::new(1).context("mock cluster")?;
        for d in topics::parse(topics::BUILTIN, Some(partitions))? {
            cluster.create_topic(&d.name, d.partitions, 1)?;
        }
        Ok(Broker {
            cluster,
            partitions,
        })
    }

    pub fn bootstrap(&self) -> String {
        self.cluster.bootstrap_servers()
    }
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct Load {
    pub records: u64,
    /// Records per second; 0 = as fast as possible (a preload).
    pub rate: f64,
    pub seed: u64,
    /// The registry's URL for Confluent Avro; None writes JSON.
    pub avro_registry: Option<String>,
}

impl Load {
    pub fn args(&self, bootstrap: &str) -> Result<GenerateArgs> {
        let format = if self.avro_registry.is_some() {
            "avro"
        } else {
            "json"
        };
        // Paced runs stamp records with the wall clock, so the pipeline's latency histogram
        // measures from the moment each record was produced; event time then runs at the
        // offered rate too.
        let (stamp, event_rate) = if self.rate > 0.0 {
            ("wall-clock", self.rate)
        } else {
            ("event-time", 1000.0)
        };
        Ok(GenerateArgs::try_parse_from([
            "generate".to_string(),
            format!("--bootstrap-servers={bootstrap}"),
            format!("--count={}", self.records),
            format!("--rate={}", self.rate),
            format!("--event-rate={event_rate}"),
            format!("--seed={}", self.seed),
            format!("--format={format}"),
            format!("--message-timestamp={stamp}"),
        ])?)
    }

    /// Produces the load to `bootstrap` and returns the input records written. Blocking.
    pub async fn produce(&self, bootstrap: &str) -> Result<u64> {
        let args = self.args(bootstrap)?;
        let encoder: Box<dyn PayloadEncoder> = match &self.avro_registry {
            Some(url) => {
                Box::new(AvroPayloadEncoder::register(url, [TRANSACTIONS, EVENTS, PRODUCTS]).await?)
            }
            None => generator::encoder_for(args.format)?,
        };
        let summary = tokio::task::spawn_blocking(move || {
            generator::run_encoded(&args, encoder, &AtomicBool::new(false))
        })
        .await??;
        Ok(summary.inputs)
    }
}

fn consumer(bootstrap: &str, group: &str) -> Result<BaseConsumer> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest")
        .create()?)
}

/// Fails unless every input partition still starts at offset 0: the mock keeps only about
/// 5 MB per partition and silently drops the oldest records beyond that.
pub fn check_nothing_dropped(bootstrap: &str, partitions: i32) -> Result<()> {
    let c = consumer(bootstrap, "load-test-check")?;
    for topic in [TRANSACTIONS, EVENTS] {
        for p in 0..partitions {
            let (low, _) = c.fetch_watermarks(topic, p, Duration::from_secs(10))?;
            ensure!(
                low == 0,
                "{topic}/{p} starts at offset {low}: the mock broker dropped records; \
                 use more --partitions"
            );
        }
    }
    Ok(())
}

/// B0: reads `expected` input records from the start of both input topics with a plain
/// consumer, touching each payload; returns records per second from the first record to
/// the last.
pub fn raw_consume(bootstrap: &str, partitions: i32, expected: u64, run: u32) -> Result<f64> {
    let c = consumer(bootstrap, &format!("load-test-b0-{run}"))?;
    let mut tpl = TopicPartitionList::new();
    for topic in [TRANSACTIONS, EVENTS] {
        for p in 0..partitions {
            tpl.add_partition_offset(topic, p, Offset::Beginning)?;
        }
    }
    c.assign(&tpl)?;
    let deadline = Instant::now() + Duration::from_secs(300);
    let (mut seen, mut bytes, mut first) = (0u64, 0usize, None);
    while seen < expected {
        ensure!(
            Instant::now() < deadline,
            "B0: only {seen} of {expected} records"
        );
        if let Some(m) = c.poll(Duration::from_millis(100)) {
            let m = m?;
            first.get_or_insert_with(Instant::now);
            bytes += m.payload().map_or(0, <[u8]>::len);
            seen += 1;
        }
    }
    let secs = first.map_or(0.0, |t| t.elapsed().as_secs_f64());
    ensure!(bytes > 0, "B0 read no payload bytes");
    Ok((seen.saturating_sub(1)) as f64 / secs.max(1e-9))
}
