//! Sending generated records to Kafka with one librdkafka `BaseProducer`: idempotent,
//! acks=all, batched (linger 5 ms, up to 10,000 messages or 1 MiB per batch), compressed,
//! partitioned by murmur2 of the key like the Java client, so a customer's records land in
//! one partition whichever client wrote them. A full local queue is waited out by polling
//! rather than dropped; delivery callbacks count successes and remember the first failure.
//! The client starts from the runtime's client configuration, so the `[kafka]` security
//! settings and secrets apply to it too.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context as _;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;

use super::record::{GenRecord, TopicNames};
use crate::runtime::client::KafkaSecurity;

/// Producer compression codecs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Compression {
    None,
    Lz4,
    Snappy,
    Gzip,
}

impl Compression {
    fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Lz4 => "lz4",
            Compression::Snappy => "snappy",
            Compression::Gzip => "gzip",
        }
    }
}

/// Which timestamp Kafka messages carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MessageTimestamp {
    /// The record's event time (CreateTime); best for replays and time-based lookups.
    EventTime,
    /// The producer's wall clock; keeps broker retention from deleting historical starts.
    WallClock,
}

/// How to reach Kafka.
#[derive(Debug, Clone, PartialEq)]
pub struct KafkaOptions {
    pub bootstrap_servers: String,
    pub compression: Compression,
    pub message_timestamp: MessageTimestamp,
    /// Extra librdkafka properties, applied last.
    pub properties: Vec<(String, String)>,
    /// Security settings and the `[kafka]` properties, applied first.
    pub security: KafkaSecurity,
}

impl KafkaOptions {
    pub fn new(bootstrap_servers: impl Into<String>) -> Self {
        KafkaOptions {
            bootstrap_servers: bootstrap_servers.into(),
            compression: Compression::Lz4,
            message_timestamp: MessageTimestamp::EventTime,
            properties: Vec::new(),
            security: KafkaSecurity::default(),
        }
    }
}

/// Counts delivery reports.
#[derive(Default)]
pub struct Deliveries {
    delivered: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, _)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                let mut first = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
                first.get_or_insert_with(|| e.to_string());
            }
        }
    }
}

/// Totals of delivery reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    pub delivered: u64,
    pub failed: u64,
    pub first_error: Option<String>,
}

/// A producer for generated records.
pub struct KafkaSink {
    producer: BaseProducer<Deliveries>,
    topics: TopicNames,
    event_time: bool,
    unpolled: u32,
}

impl KafkaSink {
    pub fn new(opts: &KafkaOptions, topics: TopicNames) -> anyhow::Result<KafkaSink> {
        let mut cfg = opts.security.client_config(&opts.bootstrap_servers);
        cfg.set("client.id", "shopstream-generator")
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("batch.num.messages", "10000")
            .set("batch.size", "1048576")
            .set("queue.buffering.max.messages", "500000")
            .set("queue.buffering.max.kbytes", "524288")
            .set("compression.type", opts.compression.as_str())
            .set("partitioner", "murmur2_random")
            .set("message.timeout.ms", "60000");
        for (k, v) in &opts.properties {
            cfg.set(k, v);
        }
        let producer = cfg
            .create_with_context(Deliveries::default())
            .with_context(|| format!("creating a Kafka producer for {}", opts.bootstrap_servers))?;
        Ok(KafkaSink {
            producer,
            topics,
            event_time: opts.message_timestamp == MessageTimestamp::EventTime,
            unpolled: 0,
        })
    }

    /// Enqueues one record with `value` as its message value, waiting while the local
    /// queue is full.
    pub fn send(&mut self, record: &GenRecord, value: &[u8]) -> anyhow::Result<()> {
        let topic = self.topics.name(record.topic);
        let mut msg = BaseRecord::to(topic)
            .key(record.key.as_str())
            .payload(value);
        if self.event_time {
            msg = msg.timestamp(record.event_time);
        }
        loop {
            match self.producer.send(msg) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    msg = back;
                    self.producer.poll(Duration::from_millis(10));
                }
                Err((e, _)) => return Err(e).with_context(|| format!("producing to {topic}")),
            }
        }
        self.unpolled += 1;
        if self.unpolled >= 1000 {
            self.unpolled = 0;
            self.producer.poll(Duration::ZERO);
        }
        Ok(())
    }

    /// Serves delivery callbacks for up to `wait` (also a way to sleep while pacing).
    pub fn poll(&self, wait: Duration) {
        self.producer.poll(wait);
    }

    /// Delivery reports so far.
    pub fn report(&self) -> DeliveryReport {
        let ctx = self.producer.context();
        DeliveryReport {
            delivered: ctx.delivered.load(Ordering::Relaxed),
            failed: ctx.failed.load(Ordering::Relaxed),
            first_error: ctx
                .first_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }

    /// Waits until everything sent is delivered or failed.
    pub fn flush(&mut self, timeout: Duration) -> anyhow::Result<DeliveryReport> {
        self.producer
            .flush(timeout)
            .context("flushing the Kafka producer")?;
        Ok(self.report())
    }
}
