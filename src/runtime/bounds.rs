//! End offsets for a bounded run of stage 1 (a replay with `--to`): per input partition
//! the first offset *not* to process. A record at or past its partition's end is not
//! processed and the partition is paused; once every bounded partition has processed
//! up to its end, the stage reports itself finished and the consume loop commits and
//! stops. A partition whose end is not above its start offset is done from the start.

use std::collections::BTreeMap;

use anyhow::Result;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::{Offset, TopicPartitionList};

/// Per (topic, partition): the start and end (exclusive) offsets of the run.
#[derive(Debug, Clone, Default)]
pub struct Bounds {
    ranges: BTreeMap<(String, i32), (i64, i64)>,
}

/// What to do with a consumed record under the bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Process it.
    Process,
    /// Process it; it is the last one of its partition (pause the partition after it).
    Last,
    /// At or past the end: skip it (and pause the partition).
    Skip,
}

impl Bounds {
    /// Bounds from `(topic, partition, start, end)`: processing starts at `start` and
    /// stops before `end`.
    pub fn new(ranges: impl IntoIterator<Item = (String, i32, i64, i64)>) -> Bounds {
        Bounds {
            ranges: ranges
                .into_iter()
                .map(|(t, p, start, end)| ((t, p), (start, end)))
                .collect(),
        }
    }

    /// Whether to process the record at `offset` of `topic`/`partition`.
    pub fn check(&self, topic: &str, partition: i32, offset: i64) -> Verdict {
        match self.ranges.get(&(topic.to_string(), partition)) {
            Some(&(_, end)) if offset >= end => Verdict::Skip,
            Some(&(_, end)) if offset + 1 >= end => Verdict::Last,
            _ => Verdict::Process,
        }
    }

    /// True once every bounded partition is empty (start >= end) or has its consumer
    /// position (next offset to read) at or past its end. Positions rather than a count
    /// of processed records, so a rewind after an aborted transaction re-opens the
    /// partitions it moved back.
    pub fn finished(&self, positions: &TopicPartitionList) -> bool {
        self.ranges
            .iter()
            .all(|((topic, partition), &(start, end))| {
                start >= end
                    || matches!(
                        positions.find_partition(topic, *partition).map(|e| e.offset()),
                        Some(Offset::Offset(pos)) if pos >= end
                    )
            })
    }

    /// The (topic, partition, start, end) ranges.
    pub fn ranges(&self) -> impl Iterator<Item = (&str, i32, i64, i64)> {
        self.ranges
            .iter()
            .map(|((t, p), &(s, e))| (t.as_str(), *p, s, e))
    }
}

/// Pauses one partition of `consumer` (it has reached its end).
pub fn pause<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
    partition: i32,
) -> Result<()> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, partition);
    consumer.pause(&tpl)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_each_partition_at_its_end() {
        let b = Bounds::new([("t".to_string(), 0, 5, 7), ("t".to_string(), 1, 3, 3)]);
        assert_eq!(b.check("t", 0, 5), Verdict::Process);
        assert_eq!(b.check("t", 0, 6), Verdict::Last);
        assert_eq!(b.check("t", 0, 7), Verdict::Skip);
        assert_eq!(b.check("t", 1, 3), Verdict::Skip);
        assert_eq!(b.check("u", 0, 100), Verdict::Process);
        let mut pos = TopicPartitionList::new();
        pos.add_partition_offset("t", 0, Offset::Offset(6)).unwrap();
        assert!(!b.finished(&pos));
        pos.set_partition_offset("t", 0, Offset::Offset(7)).unwrap();
        assert!(b.finished(&pos));
    }
}
