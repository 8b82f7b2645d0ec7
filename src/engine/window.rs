//! Event-time window shapes. A [`Window`] is a half-open interval `[start, end)` of event
//! time in epoch milliseconds; a [`WindowSpec`] (tumbling or hopping, aligned to the Unix
//! epoch like Flink and Kafka Streams) assigns a timestamp to the windows that contain it
//! without allocating. Windows order by `end` first so an ordered map of windows is also the
//! firing order of event-time timers. Session windows, whose bounds depend on the data, live
//! in `session.rs`.

use serde::{Deserialize, Serialize};

use crate::model::time::Millis;

/// A half-open event-time interval `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Window {
    pub start: Millis,
    pub end: Millis,
}

impl Window {
    pub fn new(start: Millis, end: Millis) -> Self {
        Window { start, end }
    }

    /// Whether `ts` lies inside the window.
    pub fn contains(&self, ts: Millis) -> bool {
        self.start <= ts && ts < self.end
    }

    /// The event time at which the window's allowed lateness has run out: once the
    /// watermark reaches it the window is final and its state can be purged.
    pub fn expiry(&self, allowed_lateness_ms: i64) -> Millis {
        self.end.saturating_add(allowed_lateness_ms)
    }
}

impl Ord for Window {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.end, self.start).cmp(&(other.end, other.start))
    }
}

impl PartialOrd for Window {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// A fixed-size window assigner on event time, aligned to the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WindowSpec {
    /// Non-overlapping windows of `size_ms`.
    Tumbling { size_ms: i64 },
    /// Windows of `size_ms` starting every `slide_ms` (`slide_ms` divides nothing in
    /// particular but must be `<= size_ms`, so every timestamp is in at least one window).
    Hopping { size_ms: i64, slide_ms: i64 },
}

impl WindowSpec {
    pub fn tumbling(size_ms: i64) -> Self {
        WindowSpec::Tumbling { size_ms }
    }

    pub fn hopping(size_ms: i64, slide_ms: i64) -> Self {
        WindowSpec::Hopping { size_ms, slide_ms }
    }

    pub fn size_ms(&self) -> i64 {
        match *self {
            WindowSpec::Tumbling { size_ms } | WindowSpec::Hopping { size_ms, .. } => size_ms,
        }
    }

    pub fn slide_ms(&self) -> i64 {
        match *self {
            WindowSpec::Tumbling { size_ms } => size_ms,
            WindowSpec::Hopping { slide_ms, .. } => slide_ms,
        }
    }

    /// Checks the sizes; called when configuration is loaded.
    pub fn validate(&self) -> Result<(), String> {
        let (size, slide) = (self.size_ms(), self.slide_ms());
        if size <= 0 || slide <= 0 {
            return Err(format!("window size and slide must be positive: {self:?}"));
        }
        if slide > size {
            return Err(format!(
                "hopping slide must not exceed the size (records would fall in gaps): {self:?}"
            ));
        }
        Ok(())
    }

    /// A stable name used in state keys and KPI rows, e.g. `tumbling_60000`.
    pub fn name(&self) -> String {
        match *self {
            WindowSpec::Tumbling { size_ms } => format!("tumbling_{size_ms}"),
            WindowSpec::Hopping { size_ms, slide_ms } => format!("hopping_{size_ms}_{slide_ms}"),
        }
    }

    /// Calls `f` for every window containing `ts`, in increasing order of start. Saturates
    /// instead of overflowing near the ends of the i64 range.
    #[inline]
    pub fn for_each_window(&self, ts: Millis, mut f: impl FnMut(Window)) {
        if let WindowSpec::Tumbling { size_ms: size } = *self {
            // The general loop below with one step: no second division, no loop.
            if size > 0 {
                let start = ts.saturating_sub(ts.rem_euclid(size));
                let w = Window::new(start, start.saturating_add(size));
                if w.contains(ts) {
                    f(w);
                }
            }
            return;
        }
        let (size, slide) = (self.size_ms(), self.slide_ms());
        if size <= 0 || slide <= 0 {
            return;
        }
        // The last window containing ts starts at the largest multiple of slide <= ts.
        let last_start = ts.saturating_sub(ts.rem_euclid(slide));
        // Earliest start s with s + size > ts, stepping back by whole slides.
        let steps = (size - 1) / slide;
        let mut start = last_start.saturating_sub(steps.saturating_mul(slide));
        while start <= last_start {
            let w = Window::new(start, start.saturating_add(size));
            if w.contains(ts) {
                f(w);
            }
            match start.checked_add(slide) {
                Some(s) => start = s,
                None => break,
            }
        }
    }

    /// The single window containing `ts` whose start is the latest (the tumbling window
    /// for tumbling specs).
    pub fn latest_window(&self, ts: Millis) -> Window {
        let slide = self.slide_ms().max(1);
        let start = ts.saturating_sub(ts.rem_euclid(slide));
        Window::new(start, start.saturating_add(self.size_ms().max(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn windows(spec: WindowSpec, ts: Millis) -> Vec<Window> {
        let mut v = Vec::new();
        spec.for_each_window(ts, |w| v.push(w));
        v
    }

    #[test]
    fn tumbling_assigns_exactly_one_aligned_window() {
        let spec = WindowSpec::tumbling(60_000);
        assert_eq!(windows(spec, 0), vec![Window::new(0, 60_000)]);
        assert_eq!(windows(spec, 59_999), vec![Window::new(0, 60_000)]);
        assert_eq!(windows(spec, 60_000), vec![Window::new(60_000, 120_000)]);
        assert_eq!(windows(spec, -1), vec![Window::new(-60_000, 0)]);
    }

    #[test]
    fn hopping_assigns_size_over_slide_windows() {
        let spec = WindowSpec::hopping(10, 5);
        assert_eq!(
            windows(spec, 7),
            vec![Window::new(0, 10), Window::new(5, 15)]
        );
        let spec = WindowSpec::hopping(10, 3);
        let got = windows(spec, 9);
        assert_eq!(
            got,
            vec![
                Window::new(0, 10),
                Window::new(3, 13),
                Window::new(6, 16),
                Window::new(9, 19)
            ]
        );
        for w in got {
            assert!(w.contains(9));
        }
    }

    #[test]
    fn every_window_contains_the_timestamp_for_many_specs() {
        for (size, slide) in [(1, 1), (7, 3), (60, 60), (100, 7), (5, 5)] {
            let spec = WindowSpec::hopping(size, slide);
            for ts in -50..50 {
                let ws = windows(spec, ts);
                assert!(!ws.is_empty());
                assert!(ws.iter().all(|w| w.contains(ts)));
                // completeness: count equals the number of starts in (ts-size, ts]
                let expected = (ts - size + 1..=ts)
                    .filter(|s| s.rem_euclid(slide) == 0)
                    .count();
                assert_eq!(ws.len(), expected, "size {size} slide {slide} ts {ts}");
            }
        }
    }

    /// The general hopping loop with slide = size, as the tumbling fast path must behave.
    fn hopping_equivalent(size: i64, ts: Millis) -> Vec<Window> {
        let mut v = Vec::new();
        let last_start = ts.saturating_sub(ts.rem_euclid(size));
        let w = Window::new(last_start, last_start.saturating_add(size));
        if w.contains(ts) {
            v.push(w);
        }
        v
    }

    #[test]
    fn tumbling_fast_path_matches_the_general_loop() {
        for size in [1, 7, 60_000, 3_600_000, i64::MAX] {
            for ts in [
                i64::MIN,
                i64::MIN + 1,
                -3_600_001,
                -1,
                0,
                1,
                59_999,
                60_000,
                1_700_000_123_456,
                i64::MAX - 1,
                i64::MAX,
            ] {
                assert_eq!(
                    windows(WindowSpec::tumbling(size), ts),
                    hopping_equivalent(size, ts),
                    "size {size} ts {ts}"
                );
                assert_eq!(
                    windows(WindowSpec::tumbling(size), ts),
                    windows(WindowSpec::hopping(size, size), ts),
                    "size {size} ts {ts}"
                );
            }
        }
    }

    #[test]
    fn extreme_timestamps_do_not_panic() {
        let spec = WindowSpec::hopping(60_000, 1_000);
        spec.for_each_window(i64::MAX, |_| {});
        spec.for_each_window(i64::MIN, |_| {});
        let _ = spec.latest_window(i64::MIN);
    }

    #[test]
    fn validation_rejects_gaps_and_zero() {
        assert!(WindowSpec::tumbling(0).validate().is_err());
        assert!(WindowSpec::hopping(5, 10).validate().is_err());
        assert!(WindowSpec::hopping(10, 5).validate().is_ok());
    }

    #[test]
    fn windows_order_by_end_then_start() {
        let mut v = [Window::new(0, 20), Window::new(5, 10), Window::new(0, 10)];
        v.sort();
        assert_eq!(
            v,
            [Window::new(0, 10), Window::new(5, 10), Window::new(0, 20)]
        );
    }
}
