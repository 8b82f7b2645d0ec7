//! Changelogging and restoring a [`Task`]. `flush_changelog` (called by the runtime before
//! each commit, inside the same Kafka transaction) emits the state changed since the last
//! flush; `snapshot` emits the whole state; `Task::restore` rebuilds a task from changelog
//! entries, skipping those whose input position is past the committed offsets (written by
//! transactions that never committed). All entries of one flush carry the same
//! [`AppliedOffsets`]: the next input offset per partition at the time of the flush and
//! the flush's sequence number (which the runtime commits as offset metadata, so that
//! input-free transactions can be told apart too). The restored task knows those offsets
//! and treats re-read records below them as already applied. Every flush rewrites the
//! small `meta/*` entries. Key layout and encodings are described in `state.rs`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::config::EngineConfig;
use super::io::Outputs;
use super::state::{
    self, AppliedOffsets, ChangelogEntry, Incarnation, RestorePoint, StateError, TopicPartition,
};
use super::task::{Task, TaskError};
use super::watermark::Watermarks;
use crate::model::time::Millis;

/// The `meta/clock` value.
#[derive(Serialize, Deserialize)]
struct ClockState {
    watermarks: Watermarks,
    next_early_at: Option<Millis>,
}

/// The `meta/position` value.
#[derive(Serialize, Deserialize)]
struct Position {
    offsets: Vec<(TopicPartition, i64)>,
    flush_seq: u64,
}

impl Task {
    fn position(&self) -> Arc<AppliedOffsets> {
        Arc::new(AppliedOffsets {
            offsets: self.next_offsets(),
            flush_seq: self.flush_seq,
            incarnation: self.incarnation,
        })
    }

    /// The sequence number of the last flush. The runtime stores it in the commit metadata
    /// of the offsets it sends to the transaction, and passes it back in [`RestorePoint`].
    pub fn flush_seq(&self) -> u64 {
        self.flush_seq
    }

    fn meta_entries(
        &self,
        out: &mut impl FnMut(Vec<u8>, Option<Vec<u8>>),
    ) -> Result<(), StateError> {
        let clock = ClockState {
            watermarks: self.clock.clone(),
            next_early_at: self.next_early_at,
        };
        out(
            state::META_CLOCK.to_vec(),
            Some(state::to_json(state::META_CLOCK, &clock)?),
        );
        let pos = Position {
            offsets: self.next_offsets(),
            flush_seq: self.flush_seq,
        };
        out(
            state::META_POSITION.to_vec(),
            Some(state::to_json(state::META_POSITION, &pos)?),
        );
        Ok(())
    }

    /// Switches changelog tracking on or off (off: for benchmarks and throw-away replays;
    /// the state can then not be restored).
    pub fn set_changelog(&mut self, on: bool) {
        for op in &mut self.revenue {
            op.set_changelog(on);
        }
        self.activity.set_changelog(on);
        self.quality.set_changelog(on);
        self.commerce.set_changelog(on);
        self.sessions.set_changelog(on);
        self.dedup.set_changelog(on);
        self.fraud.set_changelog(on);
        self.rfm.set_changelog(on);
    }

    /// Appends the state changed since the last flush to `out.changelog`.
    pub fn flush_changelog(&mut self, out: &mut Outputs) -> Result<(), TaskError> {
        self.flush_seq += 1;
        let applied = self.position();
        let log = &mut out.changelog;
        let mut push = |key, value| {
            log.push(ChangelogEntry {
                key,
                value,
                applied: applied.clone(),
            })
        };
        let seq = self.flush_seq;
        let names = &self.customers;
        for op in &mut self.revenue {
            op.flush(seq, names, &mut push)?;
        }
        self.activity.flush(seq, names, &mut push)?;
        self.quality.flush(seq, names, &mut push)?;
        self.commerce.flush(seq, names, &mut push)?;
        self.sessions.flush(seq, names, &mut push)?;
        self.dedup.flush(&mut push);
        self.fraud.flush(&mut push)?;
        self.rfm.flush(&mut push)?;
        self.meta_entries(&mut push)?;
        Ok(())
    }

    /// The whole state as changelog entries (what a compacted changelog holds).
    pub fn snapshot(&self) -> Result<Vec<ChangelogEntry>, TaskError> {
        let applied = self.position();
        let mut entries = Vec::new();
        let mut push = |key, value| {
            entries.push(ChangelogEntry {
                key,
                value,
                applied: applied.clone(),
            })
        };
        let names = &self.customers;
        for op in &self.revenue {
            op.snapshot(names, &mut push)?;
        }
        self.activity.snapshot(names, &mut push)?;
        self.quality.snapshot(names, &mut push)?;
        self.commerce.snapshot(names, &mut push)?;
        self.sessions.snapshot(names, &mut push)?;
        self.dedup.snapshot(&mut push);
        self.fraud.snapshot(&mut push)?;
        self.rfm.snapshot(&mut push)?;
        self.meta_entries(&mut push)?;
        Ok(entries)
    }

    /// Rebuilds a task from changelog entries in log order; entries that `committed` does
    /// not cover (written by transactions that never committed) are ignored.
    pub fn restore<'a>(
        cfg: EngineConfig,
        inputs: Vec<TopicPartition>,
        entries: impl IntoIterator<Item = &'a ChangelogEntry>,
        committed: &RestorePoint,
    ) -> Result<Task, TaskError> {
        let mut task = Task::new(cfg, inputs)?;
        let compacted = state::compact_committed(entries, committed)?;
        // Results before their member segments.
        let (segments, rest): (Vec<_>, Vec<_>) = compacted
            .state
            .iter()
            .partition(|(k, _)| k.starts_with(state::SEGMENT_PREFIX.as_bytes()));
        let mut positioned = false;
        for (key, value) in rest.into_iter().chain(segments) {
            positioned |= key == state::META_POSITION;
            task.apply_entry(key, value)?;
        }
        if !positioned {
            // No committed state, but committed offsets (a group whose offsets were set
            // for a replay, or reset by kafka-consumer-groups): nothing was applied and
            // processing starts at those offsets, so the first commit does not move the
            // group back to the beginning.
            for (tp, next) in task.inputs.iter().zip(task.applied.iter_mut()) {
                if let Some((_, o)) = committed.offsets.iter().find(|(t, _)| t == tp) {
                    *next = *o;
                }
            }
        }
        task.incarnation = Incarnation {
            epoch: compacted.next_epoch,
            start: task.flush_seq,
        };
        Ok(task)
    }

    fn apply_entry(&mut self, key: &[u8], value: &[u8]) -> Result<(), TaskError> {
        if key == state::META_CLOCK {
            let clock: ClockState = state::from_json(key, value)?;
            if clock.watermarks.partitions().len() != self.inputs.len() {
                return Err(StateError::bad_value(
                    key,
                    "partition count differs from the task's inputs",
                )
                .into());
            }
            self.clock = clock.watermarks;
            self.clock.set_config(self.cfg.watermark);
            self.next_early_at = clock.next_early_at;
        } else if key == state::META_POSITION {
            let pos: Position = state::from_json(key, value)?;
            for (tp, next) in self.inputs.iter().zip(self.applied.iter_mut()) {
                *next = pos
                    .offsets
                    .iter()
                    .find(|(t, _)| t == tp)
                    .map_or(0, |(_, o)| *o);
            }
            self.flush_seq = state::restored_flush_seq(key, pos.flush_seq)?;
        } else if key.starts_with(crate::fraud::FRAUD_PREFIX.as_bytes()) {
            self.fraud.restore(key, value)?;
        } else if key.starts_with(crate::analytics::rfm_state::RFM_PREFIX.as_bytes()) {
            self.rfm.restore(key, value)?;
        } else if key.starts_with(state::DEDUP_PREFIX.as_bytes()) {
            self.dedup.restore(key, Some(value))?;
        } else if key.starts_with(state::SESSION_PREFIX.as_bytes()) {
            if !self.sessions.restore(key, value, &mut self.customers)? {
                tracing::warn!(key = %String::from_utf8_lossy(key), "ignoring state of an unknown session operator");
            }
        } else if key.starts_with(state::WINDOW_PREFIX.as_bytes())
            || key.starts_with(state::SEGMENT_PREFIX.as_bytes())
        {
            let names = &mut self.customers;
            if let Some(op) = self.revenue.iter_mut().find(|op| op.owns(key)) {
                op.restore(key, value, names)?;
            } else if self.activity.owns(key) {
                self.activity.restore(key, value, names)?;
            } else if self.quality.owns(key) {
                self.quality.restore(key, value, names)?;
            } else if self.commerce.restore(key, value, names)?
                || self.sessions.restore(key, value, names)?
            {
            } else {
                // A window of an operator that the current configuration no longer has.
                tracing::warn!(key = %String::from_utf8_lossy(key), "ignoring state of an unconfigured window");
            }
        } else {
            return Err(StateError::bad_key(key).into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::{
        testkit, EngineConfig, Input, Outputs, RestorePoint, Task, TopicPartition,
    };
    use crate::model::{EventType, Record};

    /// A caught-up report was made about another process's positions: a restored task
    /// holds the watermark until the runtime reports its partitions caught up again.
    #[test]
    fn caught_up_reports_are_not_restored() {
        let inputs = vec![
            TopicPartition::new("shop.transactions", 0),
            TopicPartition::new("shop.events", 0),
        ];
        let cfg = EngineConfig::default();
        let (ooo, idle) = (
            cfg.watermark.max_out_of_orderness_ms,
            cfg.watermark.idle_timeout_ms,
        );
        let mut task = Task::new(cfg.clone(), inputs.clone()).unwrap();
        let mut out = Outputs::default();
        let t = 1_773_154_800_000;
        let key = testkit::customer_id(1);
        let records = [
            Record::Transaction(testkit::transaction(1, 1, t)),
            Record::Event(testkit::event(1, 1, t, EventType::PageView)),
        ];
        for (tp, record) in inputs.iter().zip(records) {
            let input = Input {
                topic: &tp.topic,
                partition: 0,
                offset: 0,
                key: Some(key.as_bytes()),
                value: b"",
                timestamp: Some(t),
                record: Ok(record),
            };
            task.process(input, t, &mut out).unwrap();
            task.on_partition_status(&tp.topic, 0, true, t, &mut out)
                .unwrap();
        }
        task.flush_changelog(&mut out).unwrap();
        let point = RestorePoint {
            offsets: task.next_offsets(),
            flush_seq: Some(task.flush_seq()),
        };
        let mut restored = Task::restore(cfg, inputs.clone(), &out.changelog, &point).unwrap();
        assert_eq!(restored.watermark(), t - ooo);

        // Quiet for longer than the idle timeout: the original goes by processing time,
        // the restored task waits for a report.
        let later = t + idle + 60_000;
        task.on_tick(later, &mut out);
        restored.on_tick(later, &mut out);
        assert!(task.watermark() > t - ooo);
        assert_eq!(restored.watermark(), t - ooo);
        for tp in &inputs {
            restored
                .on_partition_status(&tp.topic, 0, true, later, &mut out)
                .unwrap();
        }
        restored.on_tick(later + 1, &mut out);
        assert!(restored.watermark() > t - ooo, "idle again once reported");
    }

    #[test]
    fn a_task_without_state_starts_at_the_committed_offsets() {
        let inputs = vec![TopicPartition::new("a", 0), TopicPartition::new("b", 0)];
        let point = RestorePoint {
            offsets: vec![(inputs[0].clone(), 120)],
            flush_seq: None,
        };
        let task = Task::restore(
            EngineConfig::default(),
            inputs.clone(),
            std::iter::empty(),
            &point,
        )
        .unwrap();
        assert_eq!(
            task.next_offsets(),
            vec![(inputs[0].clone(), 120), (inputs[1].clone(), 0)]
        );
    }
}
