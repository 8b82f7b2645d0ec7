//! Turning a time into input offsets, per partition: the first offset whose record
//! timestamp is at or after the time (Kafka's offsetsForTimes), or the partition's end
//! when no record is that late. [`BrokerTimeIndex`] asks the broker (ListOffsets by
//! timestamp, the time index of a real Kafka); [`ScanTimeIndex`] reads the partition's
//! record timestamps itself, for brokers without a time index (librdkafka's mock cluster,
//! some Kafka-compatible brokers) — exact, but it reads the partition once per lookup.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

const TIMEOUT: Duration = Duration::from_secs(30);

/// Finds per-partition offsets for a timestamp.
pub trait TimeIndex: Send + Sync {
    /// For partitions `0..partitions` of `topic`: the first offset whose timestamp is
    /// `>= ts` (epoch milliseconds), or the partition's high watermark if there is none.
    fn offsets_for_time(&self, topic: &str, partitions: i32, ts: i64) -> Result<Vec<i64>>;
}

fn consumer(base: &ClientConfig) -> Result<BaseConsumer> {
    base.clone()
        .set("group.id", "shopstream-replay-lookup")
        .set("enable.auto.commit", "false")
        .create()
        .context("creating the offset-lookup consumer")
}

/// offsetsForTimes on the broker.
pub struct BrokerTimeIndex {
    pub base: ClientConfig,
}

impl TimeIndex for BrokerTimeIndex {
    fn offsets_for_time(&self, topic: &str, partitions: i32, ts: i64) -> Result<Vec<i64>> {
        let c = consumer(&self.base)?;
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition_offset(topic, p, Offset::Offset(ts))?;
        }
        let found = c
            .offsets_for_times(tpl, TIMEOUT)
            .with_context(|| format!("offsetsForTimes on {topic}"))?;
        (0..partitions)
            .map(
                |p| match found.find_partition(topic, p).map(|e| e.offset()) {
                    Some(Offset::Offset(o)) if o >= 0 => Ok(o),
                    // -1 / End: no record at or after ts.
                    _ => Ok(c
                        .fetch_watermarks(topic, p, TIMEOUT)
                        .with_context(|| format!("watermarks of {topic}/{p}"))?
                        .1),
                },
            )
            .collect()
    }
}

/// Reads each partition from its beginning to its current end and finds the first record
/// whose timestamp is at or after the time.
pub struct ScanTimeIndex {
    pub base: ClientConfig,
}

impl TimeIndex for ScanTimeIndex {
    fn offsets_for_time(&self, topic: &str, partitions: i32, ts: i64) -> Result<Vec<i64>> {
        (0..partitions)
            .map(|p| scan_partition(&self.base, topic, p, ts))
            .collect()
    }
}

fn scan_partition(base: &ClientConfig, topic: &str, partition: i32, ts: i64) -> Result<i64> {
    let c = consumer(base)?;
    let (low, high) = c
        .fetch_watermarks(topic, partition, TIMEOUT)
        .with_context(|| format!("watermarks of {topic}/{partition}"))?;
    if high <= low {
        return Ok(high);
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(low))?;
    c.assign(&tpl)?;
    let deadline = Instant::now() + TIMEOUT;
    let mut next = low;
    while next < high {
        if Instant::now() > deadline {
            bail!("reading {topic}/{partition} for timestamps timed out at offset {next}");
        }
        let Some(m) = c.poll(Duration::from_millis(200)) else {
            continue;
        };
        let m = m.with_context(|| format!("reading {topic}/{partition}"))?;
        if m.timestamp().to_millis().is_some_and(|t| t >= ts) {
            return Ok(m.offset());
        }
        next = m.offset() + 1;
    }
    Ok(high)
}
