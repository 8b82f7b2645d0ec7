//! Event-time progress of one task. Each input partition tracks its maximum event time; its
//! watermark is that maximum minus the configured out-of-orderness. The task watermark is
//! the minimum over the partitions that hold it back, and never goes down.
//!
//! Idleness, decided only from inputs (the runtime passes processing time `now`; the engine
//! never reads a clock): a partition is idle when the runtime has reported it caught up
//! (position = high watermark) AND no record has arrived on it for `idle_timeout_ms` of
//! processing time. Idle partitions do not hold the watermark back; a partition that is
//! behind, or whose status was never reported, always does (a partition without records
//! holds it at the minimum). When every partition is idle the watermark advances with
//! processing time: it becomes the largest partition watermark plus the processing time
//! elapsed since the last partition went idle, so windows close during quiet periods at the
//! pace of the clock, and a fresh live record arriving afterwards is on time. The state is
//! plain data and is changelogged, so a restored task continues from the same watermark;
//! the caught-up reports are not state (they were about another process's positions) and
//! are made anew by the restored task's runtime.

use serde::{Deserialize, Serialize};

use crate::model::time::Millis;

/// Watermark knobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WatermarkConfig {
    /// How far behind the maximum event time a record may arrive and still be in order.
    pub max_out_of_orderness_ms: i64,
    /// Processing time a caught-up partition must be quiet before it stops holding the
    /// watermark back.
    pub idle_timeout_ms: i64,
}

impl Default for WatermarkConfig {
    fn default() -> Self {
        WatermarkConfig {
            max_out_of_orderness_ms: 5_000,
            idle_timeout_ms: 30_000,
        }
    }
}

/// Event-time progress of one input partition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionClock {
    /// Largest event time of a valid record, if any.
    pub max_event_time: Option<Millis>,
    /// Last reported by the runtime: position == high watermark. Not changelogged: the
    /// report was about positions another process had, and a partition caught up when
    /// the state was flushed may have a backlog after the downtime; a restored partition
    /// holds the watermark until the runtime reports it caught up again.
    #[serde(skip)]
    pub caught_up: bool,
    /// Processing time of the last record, or of the first status report.
    pub quiet_since: Option<Millis>,
}

/// Watermarks of a task's input partitions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watermarks {
    #[serde(skip)]
    cfg: WatermarkConfig,
    parts: Vec<PartitionClock>,
    current: Millis,
}

impl Watermarks {
    pub fn new(cfg: WatermarkConfig, partitions: usize) -> Self {
        Watermarks {
            cfg,
            parts: vec![PartitionClock::default(); partitions],
            current: Millis::MIN,
        }
    }

    /// Replaces the configuration (after restoring the state from a changelog).
    pub fn set_config(&mut self, cfg: WatermarkConfig) {
        self.cfg = cfg;
    }

    /// The task watermark.
    pub fn current(&self) -> Millis {
        self.current
    }

    pub fn partitions(&self) -> &[PartitionClock] {
        &self.parts
    }

    /// The largest event time seen on any partition.
    pub fn max_event_time(&self) -> Option<Millis> {
        self.parts.iter().filter_map(|p| p.max_event_time).max()
    }

    /// A record arrived on partition `ix` at processing time `now`.
    pub fn on_record(&mut self, ix: usize, now: Millis) {
        if let Some(p) = self.parts.get_mut(ix) {
            p.quiet_since = Some(now);
        }
    }

    /// A valid record with event time `ts` was applied from partition `ix`.
    pub fn on_event_time(&mut self, ix: usize, ts: Millis) {
        if let Some(p) = self.parts.get_mut(ix) {
            p.max_event_time = Some(p.max_event_time.map_or(ts, |m| m.max(ts)));
        }
    }

    /// The runtime reports whether partition `ix` is caught up.
    pub fn on_status(&mut self, ix: usize, caught_up: bool, now: Millis) {
        if let Some(p) = self.parts.get_mut(ix) {
            p.caught_up = caught_up;
            p.quiet_since.get_or_insert(now);
        }
    }

    fn partition_watermark(&self, p: &PartitionClock) -> Millis {
        p.max_event_time.map_or(Millis::MIN, |m| {
            m.saturating_sub(self.cfg.max_out_of_orderness_ms)
        })
    }

    fn idle_at(&self, p: &PartitionClock) -> Option<Millis> {
        if !p.caught_up {
            return None;
        }
        p.quiet_since
            .map(|q| q.saturating_add(self.cfg.idle_timeout_ms))
    }

    /// The watermark the inputs call for at processing time `now` (not yet monotonic).
    fn target(&self, now: Millis) -> Millis {
        let mut held = Millis::MAX;
        let mut any_active = false;
        let mut all_idle_since = Millis::MIN;
        for p in &self.parts {
            match self.idle_at(p) {
                Some(at) if at <= now => all_idle_since = all_idle_since.max(at),
                _ => {
                    any_active = true;
                    held = held.min(self.partition_watermark(p));
                }
            }
        }
        if self.parts.is_empty() {
            return Millis::MIN;
        }
        if any_active {
            return held;
        }
        let base = self.parts.iter().map(|p| self.partition_watermark(p)).max();
        match base {
            Some(b) if b > Millis::MIN => b.saturating_add(now.saturating_sub(all_idle_since)),
            _ => Millis::MIN,
        }
    }

    /// Recomputes the task watermark at processing time `now`. Returns the new watermark
    /// when it advanced.
    pub fn advance(&mut self, now: Millis) -> Option<Millis> {
        let t = self.target(now);
        if t > self.current {
            self.current = t;
            Some(t)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wm(ooo: i64, idle: i64) -> Watermarks {
        Watermarks::new(
            WatermarkConfig {
                max_out_of_orderness_ms: ooo,
                idle_timeout_ms: idle,
            },
            2,
        )
    }

    #[test]
    fn minimum_over_partitions_minus_out_of_orderness() {
        let mut w = wm(10, 1_000);
        w.on_event_time(0, 100);
        assert_eq!(w.advance(0), None, "partition 1 has no data: holds at MIN");
        w.on_event_time(1, 50);
        assert_eq!(w.advance(0), Some(40));
        w.on_event_time(1, 500);
        assert_eq!(w.advance(0), Some(90));
        w.on_event_time(1, 20); // out of order: no regression
        assert_eq!(w.advance(0), None);
        assert_eq!(w.current(), 90);
    }

    #[test]
    fn caught_up_and_quiet_partition_stops_holding() {
        let mut w = wm(10, 1_000);
        w.on_event_time(0, 100);
        w.on_record(0, 0);
        w.on_status(1, true, 0);
        assert_eq!(w.advance(999), None, "not quiet long enough");
        assert_eq!(w.advance(1_000), Some(90));
    }

    #[test]
    fn a_partition_behind_always_holds() {
        let mut w = wm(10, 1_000);
        w.on_event_time(0, 100);
        w.on_status(1, false, 0);
        assert_eq!(w.advance(1_000_000), None);
    }

    #[test]
    fn all_idle_advances_with_processing_time() {
        let mut w = wm(10, 1_000);
        w.on_event_time(0, 100);
        w.on_record(0, 0);
        w.on_event_time(1, 80);
        w.on_record(1, 500);
        w.on_status(0, true, 0);
        w.on_status(1, true, 500);
        assert_eq!(w.advance(600), Some(70));
        // partition 0 idle at 1000 (no longer holds), partition 1 still active until 1500
        assert_eq!(w.advance(1_400), None);
        // all idle from 1500: the largest partition watermark, then processing time
        assert_eq!(w.advance(1_500), Some(90));
        assert_eq!(w.advance(2_500), Some(1_090));
        // a record makes partition 1 active again; the watermark never goes down
        w.on_record(1, 2_600);
        w.on_event_time(1, 200);
        assert_eq!(w.advance(2_600), None);
        assert_eq!(w.current(), 1_090);
    }

    #[test]
    fn never_reported_partitions_without_data_never_advance() {
        let mut w = wm(0, 0);
        assert_eq!(w.advance(i64::MAX), None);
        w.on_status(0, true, 0);
        w.on_status(1, true, 0);
        assert_eq!(
            w.advance(i64::MAX),
            None,
            "no event time at all: nothing to close"
        );
    }
}
