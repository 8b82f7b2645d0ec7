//! Stage-1 state on Kafka: the changelog topic (compacted; partition p holds task p's
//! state) and the restore point committed with the input offsets.
//!
//! Each changelog record is an engine [`ChangelogEntry`]: key and value as the engine
//! wrote them, and the input position the entry reflects in the `ss-applied` header
//! (JSON [`AppliedOffsets`]). The task's flush sequence number travels as the commit
//! metadata (`flush_seq=N`) of the input offsets, so a restore knows exactly which flush
//! committed, even on a broker that does not hide aborted records. [`EntryDecoder`] turns
//! a record's key, payload and header back into an entry without I/O (stage 1 and stage 2
//! restore through it; tests/fuzz_*changelog.rs feed it hostile records).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::engine::{AppliedOffsets, ChangelogEntry, RestorePoint, TopicPartition};

pub const APPLIED_HEADER: &str = "ss-applied";
const SEQ_PREFIX: &str = "flush_seq=";

/// The `ss-applied` header value of an entry: its applied offsets as JSON.
pub fn applied_json(a: &AppliedOffsets) -> Vec<u8> {
    serde_json::to_vec(a).expect("applied offsets serialise infallibly")
}

/// The header carrying an entry's applied offsets; one per flush, shared by its entries.
pub fn applied_header(a: &AppliedOffsets) -> OwnedHeaders {
    OwnedHeaders::new().insert(Header {
        key: APPLIED_HEADER,
        value: Some(&applied_json(a)),
    })
}

/// Why a changelog record is not an entry. Restoring stops on it rather than guess.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EntryError {
    #[error("no {APPLIED_HEADER} header")]
    MissingHeader,
    #[error("bad {APPLIED_HEADER} header: {0}")]
    BadHeader(String),
}

/// Decodes changelog records into engine entries, parsing each distinct `ss-applied`
/// header once (the entries of one flush share it).
#[derive(Default)]
pub struct EntryDecoder {
    parsed: HashMap<Vec<u8>, Arc<AppliedOffsets>>,
}

impl EntryDecoder {
    /// The entry of a record with `key`, `payload` (`None`: a tombstone) and the value of
    /// its `ss-applied` header. A record without a key gets the empty key, which no state
    /// owns: restoring it fails with a bad-key error.
    pub fn decode(
        &mut self,
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
        applied: Option<&[u8]>,
    ) -> Result<ChangelogEntry, EntryError> {
        let raw = applied.ok_or(EntryError::MissingHeader)?;
        let applied = match self.parsed.get(raw) {
            Some(a) => a.clone(),
            None => {
                let a: Arc<AppliedOffsets> = Arc::new(
                    serde_json::from_slice(raw)
                        .map_err(|e| EntryError::BadHeader(e.to_string()))?,
                );
                self.parsed.insert(raw.to_vec(), a.clone());
                a
            }
        };
        Ok(ChangelogEntry {
            key: key.unwrap_or_default().to_vec(),
            value: payload.map(<[u8]>::to_vec),
            applied,
        })
    }
}

/// Commit metadata carrying the flush sequence number.
pub fn seq_metadata(seq: u64) -> String {
    format!("{SEQ_PREFIX}{seq}")
}

fn parse_seq(meta: &str) -> Option<u64> {
    meta.strip_prefix(SEQ_PREFIX)?.parse().ok()
}

/// The restore point of a task from the group's committed offsets of its inputs.
pub fn restore_point(committed: &TopicPartitionList, inputs: &[TopicPartition]) -> RestorePoint {
    let mut point = RestorePoint::default();
    for tp in inputs {
        if let Some(e) = committed.find_partition(&tp.topic, tp.partition) {
            if let Offset::Offset(o) = e.offset() {
                point.offsets.push((tp.clone(), o));
                // All inputs of a task are committed together with the same metadata.
                point.flush_seq = point.flush_seq.or(parse_seq(e.metadata()));
            }
        }
    }
    point
}

/// Reads changelog partition `partition` from the beginning to its current end.
pub fn read_partition(
    base: &ClientConfig,
    topic: &str,
    partition: i32,
    timeout: Duration,
) -> Result<Vec<ChangelogEntry>> {
    let consumer: BaseConsumer = base
        .clone()
        .set("group.id", "shopstream-restore")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .context("creating the restore consumer")?;
    let (low, high) = consumer
        .fetch_watermarks(topic, partition, Duration::from_secs(10))
        .with_context(|| format!("watermarks of {topic}/{partition}"))?;
    let mut entries = Vec::new();
    if high <= low {
        return Ok(entries);
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Beginning)?;
    consumer.assign(&tpl)?;
    let mut decoder = EntryDecoder::default();
    let start = Instant::now();
    loop {
        if start.elapsed() > timeout {
            bail!("restoring {topic}/{partition}: not at offset {high} after {timeout:?}");
        }
        let Some(m) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let m = m.with_context(|| format!("reading {topic}/{partition}"))?;
        let header = m.headers().and_then(|h| {
            h.iter()
                .find(|h| h.key == APPLIED_HEADER)
                .and_then(|h| h.value)
        });
        let entry = decoder
            .decode(m.key(), m.payload(), header)
            .with_context(|| format!("{topic}/{partition}@{}", m.offset()))?;
        entries.push(entry);
        if m.offset() + 1 >= high {
            return Ok(entries);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_point_reads_offsets_and_sequence() {
        let inputs = vec![
            TopicPartition::new("shop.transactions", 2),
            TopicPartition::new("shop.events", 2),
        ];
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("shop.transactions", 2, Offset::Offset(40))
            .unwrap();
        tpl.add_partition_offset("shop.events", 2, Offset::Offset(7))
            .unwrap();
        let mut tpl2 = TopicPartitionList::new();
        for (t, o) in [("shop.transactions", 40), ("shop.events", 7)] {
            let mut e = tpl2.add_partition(t, 2);
            e.set_offset(Offset::Offset(o)).unwrap();
            e.set_metadata(seq_metadata(9));
        }
        let p = restore_point(&tpl2, &inputs);
        assert_eq!(p.flush_seq, Some(9));
        assert_eq!(p.offsets.len(), 2);
        assert_eq!(restore_point(&tpl, &inputs).flush_seq, None);
    }
}
