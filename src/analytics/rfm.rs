//! RFM scoring: how a customer's profile (orders, lifetime value in the reporting currency,
//! first and last order time) becomes recency, frequency and monetary scores from 1 to 5
//! and a segment. Scores come from configured thresholds, not from quintiles: quintiles
//! rank a customer against all customers, which no stage-1 task can see (each holds the
//! customers of its input partition only) and which would move every customer's score
//! whenever any other customer buys. Thresholds are deterministic in event time, so a
//! replay, a restore or a batch recomputation gives the same scores. Recency is measured
//! at an event time `as_of` (the watermark when the profile is emitted) and decays as the
//! watermark advances; [`RfmConfig::recency_changes_at`] names the event time at which a
//! profile's recency score next drops, so the state can set an event-time timer for it.
//! Segments (first matching rule wins; R, F, M are the scores):
//! `champions` R≥4 F≥4 M≥4 · `loyal` R≥3 F≥4 · `new` R≥4 F=1 · `potential` R≥4 ·
//! `at_risk` R≤2 and (F≥3 or M≥4) · `lost` R=1 · `hibernating` R=2 · `needs_attention` (R=3).

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::model::time::Millis;

/// One day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;

/// Score thresholds. Each list holds four ascending bounds between the five scores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RfmConfig {
    /// Time since the last order (ms, event time): at most `recency_ms[0]` scores 5, at most
    /// `[1]` 4, at most `[2]` 3, at most `[3]` 2, more 1. Default 7, 30, 90, 180 days.
    pub recency_ms: [i64; 4],
    /// Orders: at least `frequency_orders[3]` scores 5, `[2]` 4, `[1]` 3, `[0]` 2, fewer 1.
    /// Default 2, 3, 5, 10.
    pub frequency_orders: [u64; 4],
    /// Lifetime value in the reporting currency, scored like frequency.
    /// Default 50, 200, 500, 1000.
    pub monetary: [Decimal; 4],
}

impl Default for RfmConfig {
    fn default() -> Self {
        RfmConfig {
            recency_ms: [7 * DAY_MS, 30 * DAY_MS, 90 * DAY_MS, 180 * DAY_MS],
            frequency_orders: [2, 3, 5, 10],
            monetary: [50, 200, 500, 1000].map(Decimal::from),
        }
    }
}

fn ascending<T: PartialOrd>(xs: &[T]) -> bool {
    xs.windows(2).all(|w| w[0] < w[1])
}

/// The number of bounds at or below `x`, plus one: the score of an ascending scale.
fn rising_score<T: PartialOrd>(bounds: &[T; 4], x: &T) -> u8 {
    1 + bounds.iter().filter(|b| *b <= x).count() as u8
}

impl RfmConfig {
    /// Checks the thresholds; the error names the offending knob.
    pub fn validate(&self) -> Result<(), String> {
        if self.recency_ms[0] < 0 || !ascending(&self.recency_ms) {
            return Err("rfm.recency_ms must be four ascending non-negative durations".into());
        }
        if self.frequency_orders[0] < 2 || !ascending(&self.frequency_orders) {
            return Err("rfm.frequency_orders must be four ascending counts from 2".into());
        }
        if self.monetary[0] <= Decimal::ZERO || !ascending(&self.monetary) {
            return Err("rfm.monetary must be four ascending positive amounts".into());
        }
        Ok(())
    }

    /// Recency score of a customer whose last order was at `last`, measured at `as_of`.
    pub fn recency(&self, last: Millis, as_of: Millis) -> u8 {
        let since = as_of.saturating_sub(last).max(0);
        5 - self.recency_ms.iter().filter(|b| since > **b).count() as u8
    }

    /// The event time at which the recency score (measured at `as_of`) next drops; `None`
    /// once it is 1.
    pub fn recency_changes_at(&self, last: Millis, as_of: Millis) -> Option<Millis> {
        let since = as_of.saturating_sub(last).max(0);
        self.recency_ms
            .iter()
            .find(|b| since <= **b)
            .map(|b| last.saturating_add(*b).saturating_add(1))
    }

    pub fn frequency(&self, orders: u64) -> u8 {
        rising_score(&self.frequency_orders, &orders)
    }

    pub fn monetary(&self, value: Decimal) -> u8 {
        rising_score(&self.monetary, &value)
    }

    /// The scores and segment of a profile measured at `as_of`.
    pub fn score(&self, orders: u64, value: Decimal, last: Millis, as_of: Millis) -> Scores {
        let (r, f, m) = (
            self.recency(last, as_of),
            self.frequency(orders),
            self.monetary(value),
        );
        Scores {
            recency: r,
            frequency: f,
            monetary: m,
            segment: segment(r, f, m),
        }
    }
}

/// Recency, frequency and monetary scores (1–5) and the segment they put a customer in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scores {
    pub recency: u8,
    pub frequency: u8,
    pub monetary: u8,
    pub segment: &'static str,
}

/// Every segment name, in rule order.
pub const SEGMENTS: [&str; 8] = [
    "champions",
    "loyal",
    "new",
    "potential",
    "at_risk",
    "lost",
    "hibernating",
    "needs_attention",
];

/// The segment of scores R, F, M (see the module doc for the rules).
pub fn segment(r: u8, f: u8, m: u8) -> &'static str {
    match (r, f, m) {
        (4.., 4.., 4..) => "champions",
        (3.., 4.., _) => "loyal",
        (4.., 1, _) => "new",
        (4.., _, _) => "potential",
        (..=2, 3.., _) | (..=2, _, 4..) => "at_risk",
        (..=1, _, _) => "lost",
        (2, _, _) => "hibernating",
        _ => "needs_attention",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_follow_the_thresholds() {
        let c = RfmConfig::default();
        assert_eq!(c.recency(0, 0), 5);
        assert_eq!(c.recency(0, 7 * DAY_MS), 5);
        assert_eq!(c.recency(0, 7 * DAY_MS + 1), 4);
        assert_eq!(c.recency(0, 181 * DAY_MS), 1);
        assert_eq!(c.recency(10, 0), 5, "an order ahead of as_of is recent");
        assert_eq!(c.recency_changes_at(0, 0), Some(7 * DAY_MS + 1));
        assert_eq!(
            c.recency_changes_at(0, 7 * DAY_MS + 1),
            Some(30 * DAY_MS + 1)
        );
        assert_eq!(c.recency_changes_at(0, 180 * DAY_MS + 1), None);
        assert_eq!((c.frequency(1), c.frequency(2), c.frequency(10)), (1, 2, 5));
        assert_eq!(c.monetary(Decimal::new(4999, 2)), 1);
        assert_eq!(c.monetary(Decimal::from(1000)), 5);
        assert!(c.validate().is_ok());
        let mut bad = c.clone();
        bad.recency_ms[2] = bad.recency_ms[1];
        assert!(bad.validate().unwrap_err().contains("recency_ms"));
    }

    #[test]
    fn every_score_triple_has_a_documented_segment() {
        for r in 1..=5 {
            for f in 1..=5 {
                for m in 1..=5 {
                    assert!(SEGMENTS.contains(&segment(r, f, m)));
                }
            }
        }
        assert_eq!(segment(5, 5, 5), "champions");
        assert_eq!(segment(5, 1, 1), "new");
        assert_eq!(segment(1, 4, 5), "at_risk");
        assert_eq!(segment(1, 1, 1), "lost");
        assert_eq!(segment(3, 2, 2), "needs_attention");
    }
}
