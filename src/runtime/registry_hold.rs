//! Partitions held back while the schema registry is unreachable. When stage 1 (or the
//! PostgreSQL sink) cannot decode a record because the registry is down (a retriable
//! [`DecodeError`]), the record
//! is neither processed nor dead-lettered: its partition is paused and remembered here
//! with the record's offset and bytes. The consume loop keeps polling (heartbeats,
//! commits of the other partitions, rebalances), and on each tick the held record is
//! probed again with backoff; once the registry answers (or says the record is poison) the
//! partition is sought back to the held offset and resumed, so the record is processed —
//! or sent to the DLQ — exactly as if there had been no outage. Records of a held partition
//! that were already fetched are ignored, which is safe because of that seek. A hold
//! remembers what the record is (`K`: stage 1's [`RecordKind`], the sink's topic) so the
//! probe decodes it the same way; any consumer type works (stage 1's `BaseConsumer`, the
//! sink's `StreamConsumer`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rdkafka::consumer::{Consumer, ConsumerContext};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};
use tracing::{info, warn};

use crate::codec::retry::Backoff;
use crate::codec::{DecodeError, RecordKind};

/// One held partition.
struct Hold<K> {
    offset: i64,
    kind: K,
    payload: Vec<u8>,
    retry_at: Instant,
    backoff: Backoff,
}

/// The partitions held for a registry outage, by (topic, partition).
pub struct RegistryHolds<K = RecordKind> {
    held: BTreeMap<(String, i32), Hold<K>>,
    /// Times a partition was held (for tests and the stage's counters).
    pub holds: u64,
}

impl<K> Default for RegistryHolds<K> {
    fn default() -> Self {
        RegistryHolds {
            held: BTreeMap::new(),
            holds: 0,
        }
    }
}

fn tpl(topic: &str, partition: i32) -> TopicPartitionList {
    let mut t = TopicPartitionList::new();
    t.add_partition(topic, partition);
    t
}

impl<K> RegistryHolds<K> {
    /// True while no partition is held.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// True while `topic/partition` is held: a fetched record of it must be ignored.
    pub fn is_held(&self, topic: &str, partition: i32) -> bool {
        self.held.contains_key(&(topic.to_string(), partition))
    }

    /// Holds the partition of `m` at `m`'s offset after `error`: pauses it until a probe
    /// succeeds.
    pub fn hold<C: ConsumerContext, X: Consumer<C>>(
        &mut self,
        consumer: &X,
        m: &BorrowedMessage<'_>,
        kind: K,
        error: &DecodeError,
    ) -> Result<()> {
        let (topic, partition, offset) = (m.topic(), m.partition(), m.offset());
        let payload = m.payload().unwrap_or_default();
        let mut backoff = Backoff::default();
        let delay = backoff.next_delay();
        warn!(topic, partition, offset, error = %error,
            "schema registry unavailable: pausing the partition until it answers (nothing goes to the DLQ)");
        consumer
            .pause(&tpl(topic, partition))
            .with_context(|| format!("pausing {topic}/{partition}"))?;
        self.holds += 1;
        self.held.insert(
            (topic.to_string(), partition),
            Hold {
                offset,
                kind,
                payload: payload.to_vec(),
                retry_at: Instant::now() + delay,
                backoff,
            },
        );
        Ok(())
    }

    /// Keeps a held partition paused (another pause/resume, e.g. backpressure's, may have
    /// resumed it).
    pub fn repause<C: ConsumerContext, X: Consumer<C>>(
        &self,
        consumer: &X,
        topic: &str,
        partition: i32,
    ) -> Result<()> {
        consumer
            .pause(&tpl(topic, partition))
            .with_context(|| format!("pausing {topic}/{partition}"))
    }

    /// Drops the holds of partitions no longer assigned, probes every held record that is
    /// due with `probe`, and releases the partitions whose
    /// probe no longer fails retriably (seek back to the held offset, resume).
    pub fn tick<C: ConsumerContext, X: Consumer<C>>(
        &mut self,
        consumer: &X,
        mut probe: impl FnMut(&K, &[u8]) -> Result<(), DecodeError>,
    ) -> Result<()> {
        if self.held.is_empty() {
            return Ok(());
        }
        // A revoked partition's hold goes: its next owner reads it from the committed offset.
        let assignment = consumer.assignment().context("assignment")?;
        self.held.retain(|(t, p), _| {
            assignment
                .elements()
                .iter()
                .any(|e| e.topic() == t && e.partition() == *p)
        });
        let now = Instant::now();
        let due: Vec<(String, i32)> = self
            .held
            .iter()
            .filter(|(_, h)| h.retry_at <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            let Some(h) = self.held.get_mut(&key) else {
                continue;
            };
            match probe(&h.kind, &h.payload) {
                Err(e) if e.is_retriable() => {
                    let delay = h.backoff.next_delay();
                    h.retry_at = Instant::now() + delay;
                    warn!(topic = %key.0, partition = key.1, offset = h.offset, error = %e,
                        attempt = h.backoff.attempts(), waited_ms = h.backoff.waited().as_millis() as u64,
                        "schema registry still unavailable; partition stays paused");
                }
                _ => self.release(consumer, key)?,
            }
        }
        Ok(())
    }

    fn release<C: ConsumerContext, X: Consumer<C>>(
        &mut self,
        consumer: &X,
        key: (String, i32),
    ) -> Result<()> {
        let Some(h) = self.held.remove(&key) else {
            return Ok(());
        };
        let (topic, partition) = key;
        let mut seek = TopicPartitionList::new();
        seek.add_partition_offset(&topic, partition, Offset::Offset(h.offset))?;
        consumer
            .seek_partitions(seek, Duration::from_secs(10))
            .with_context(|| format!("seeking {topic}/{partition} back to {}", h.offset))?;
        consumer
            .resume(&tpl(&topic, partition))
            .with_context(|| format!("resuming {topic}/{partition}"))?;
        info!(
            topic,
            partition,
            offset = h.offset,
            waited_ms = h.backoff.waited().as_millis() as u64,
            "schema registry answers again: partition resumed at the held record"
        );
        Ok(())
    }

    /// Resumes every held partition without seeking: after an abort the consumer was
    /// rewound to the committed offsets, which lie at or before every held record.
    pub fn release_after_rewind<C: ConsumerContext, X: Consumer<C>>(
        &mut self,
        consumer: &X,
    ) -> Result<()> {
        for ((topic, partition), _) in std::mem::take(&mut self.held) {
            consumer
                .resume(&tpl(&topic, partition))
                .with_context(|| format!("resuming {topic}/{partition}"))?;
        }
        Ok(())
    }
}
