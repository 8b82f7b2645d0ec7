//! Changelogging and restoring a [`Merger`], with the stage-1 format and rules (see
//! `state.rs`): `flush_changelog` (called before each commit, inside the same Kafka
//! transaction) emits the results changed since the last flush and the `meta/*` entries;
//! `snapshot` emits the whole state; `Merger::restore` rebuilds a merger from changelog
//! entries, ignoring those that the [`RestorePoint`] does not cover (written by
//! transactions that never committed). Every entry of one flush carries the merger's
//! consumed positions and flush sequence number ([`AppliedOffsets`]); the runtime commits
//! the sequence number as offset metadata, as for stage-1 tasks.
//!
//! Keys: `win/<kpi>/<start>/<end>/<dimension json>` (one result: the latest partial per
//! source and the emission state), `meta/clock` (the sources' marks, the merger watermark
//! and the early-result timer), `meta/position` (the consumed positions), and the business
//! alert state under `alert/` (`analytics::alert_state`).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::super::io::Outputs;
use super::super::state::{
    self, AppliedOffsets, ChangelogEntry, Incarnation, RestorePoint, StateError, TopicPartition,
};
use super::super::task::TaskError;
use super::family::EntrySink;
use super::{MergeConfig, Merger};
use crate::analytics::alert_state::ALERT_PREFIX;
use crate::model::time::Millis;

/// The `meta/clock` value.
#[derive(Serialize, Deserialize)]
struct ClockState {
    marks: Vec<Millis>,
    current: Millis,
    next_early_at: Option<Millis>,
}

impl Merger {
    /// The sequence number of the last flush, for the commit metadata (see
    /// [`RestorePoint`]).
    pub fn flush_seq(&self) -> u64 {
        self.flush_seq
    }

    fn position(&self) -> AppliedOffsets {
        AppliedOffsets {
            offsets: self.next_offsets(),
            flush_seq: self.flush_seq,
            incarnation: self.incarnation,
        }
    }

    fn meta_entries(&self, out: &mut EntrySink<'_>) -> Result<(), StateError> {
        let clock = ClockState {
            marks: self.marks.clone(),
            current: self.current,
            next_early_at: self.next_early_at,
        };
        let meta = [
            (
                state::META_CLOCK,
                state::to_json(state::META_CLOCK, &clock)?,
            ),
            (
                state::META_POSITION,
                state::to_json(state::META_POSITION, &self.position())?,
            ),
        ];
        for (key, value) in meta {
            out(key.to_vec(), Some(value));
        }
        Ok(())
    }

    /// Appends the state changed since the last flush to `out.changelog`.
    pub fn flush_changelog(&mut self, out: &mut Outputs) -> Result<(), TaskError> {
        self.flush_seq += 1;
        let mut push = tagged(Arc::new(self.position()), &mut out.changelog);
        for f in &mut self.families {
            f.flush(self.flush_seq, &mut push)?;
        }
        self.alerts.flush(&mut push)?;
        self.meta_entries(&mut push)?;
        Ok(())
    }

    /// The whole state as changelog entries (what a compacted changelog holds).
    pub fn snapshot(&self) -> Result<Vec<ChangelogEntry>, TaskError> {
        let mut entries = Vec::new();
        {
            let mut push = tagged(Arc::new(self.position()), &mut entries);
            for f in &self.families {
                f.snapshot(&mut push)?;
            }
            self.alerts.snapshot(&mut push)?;
            self.meta_entries(&mut push)?;
        }
        Ok(entries)
    }

    /// Rebuilds a merger with the engine's families from changelog entries in log order;
    /// entries that `committed` does not cover are ignored.
    pub fn restore<'a>(
        cfg: MergeConfig,
        sources: u32,
        inputs: Vec<TopicPartition>,
        entries: impl IntoIterator<Item = &'a ChangelogEntry>,
        committed: &RestorePoint,
    ) -> Result<Merger, TaskError> {
        Merger::new(cfg, sources, inputs)?.restored(entries, committed)
    }

    /// Applies changelog entries to a fresh merger (one with extra families registered);
    /// entries that `committed` does not cover are ignored.
    pub fn restored<'a>(
        mut self,
        entries: impl IntoIterator<Item = &'a ChangelogEntry>,
        committed: &RestorePoint,
    ) -> Result<Merger, TaskError> {
        if !self.is_empty() || !self.alerts.is_empty() || self.flush_seq != 0 {
            return Err(TaskError::Config("restore needs a fresh merger".into()));
        }
        // Key order puts results (`win/`) before member segments (`wseg/`), which stage 2
        // does not write anyway (its partials carry counts, not members).
        let compacted = state::compact_committed(entries, committed)?;
        for (key, value) in compacted.state {
            self.apply_entry(&key, &value)?;
        }
        self.incarnation = Incarnation {
            epoch: compacted.next_epoch,
            start: self.flush_seq,
        };
        Ok(self)
    }

    fn apply_entry(&mut self, key: &[u8], value: &[u8]) -> Result<(), TaskError> {
        if key == state::META_CLOCK {
            let clock: ClockState = state::from_json(key, value)?;
            if clock.marks.len() != self.marks.len() {
                return Err(StateError::bad_value(key, "number of sources differs").into());
            }
            self.marks = clock.marks;
            self.current = clock.current;
            self.next_early_at = clock.next_early_at;
        } else if key == state::META_POSITION {
            let pos: AppliedOffsets = state::from_json(key, value)?;
            for (tp, next) in self.inputs.iter().zip(self.applied.iter_mut()) {
                *next = pos.next_offset(tp).unwrap_or(0);
            }
            self.flush_seq = state::restored_flush_seq(key, pos.flush_seq)?;
        } else if key.starts_with(state::WINDOW_PREFIX.as_bytes())
            || key.starts_with(state::SEGMENT_PREFIX.as_bytes())
        {
            match self.families.iter_mut().find(|f| f.owns(key)) {
                Some(f) => f.restore(key, value)?,
                None => tracing::warn!(
                    key = %String::from_utf8_lossy(key),
                    "ignoring state of an unregistered KPI family"
                ),
            }
        } else if key.starts_with(ALERT_PREFIX.as_bytes()) {
            self.alerts.restore(key, value)?;
        } else {
            return Err(StateError::bad_key(key).into());
        }
        Ok(())
    }
}

/// A writer of changelog entries all tagged with `applied`.
fn tagged(
    applied: Arc<AppliedOffsets>,
    log: &mut Vec<ChangelogEntry>,
) -> impl FnMut(Vec<u8>, Option<Vec<u8>>) + '_ {
    move |key, value| {
        log.push(ChangelogEntry {
            key,
            value,
            applied: applied.clone(),
        })
    }
}
