//! The per-window data-quality KPI (`kpi = "quality"`): of the records that arrived for a
//! window, how many there were, how many passed validation, how many were rejected to the
//! DLQ, were duplicates or came too late, and the score valid / total. It is an
//! [`Aggregate`] like every KPI, so it is windowed, emitted and merged across tasks by the
//! same machinery (all its values are sums; the score is derived).

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::engine::Aggregate;

/// What happened to one input record, for the quality score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Passed validation and was counted in its windows.
    Counted,
    /// Passed validation but its transaction_id was seen within the TTL.
    Duplicate,
    /// Passed validation but arrived after its windows' allowed lateness.
    Late,
    /// Rejected to the DLQ.
    Invalid,
}

/// Counts of record outcomes in one window.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QualityAgg {
    pub total: u64,
    pub invalid: u64,
    pub duplicates: u64,
    pub late: u64,
}

impl QualityAgg {
    pub fn record(&mut self, outcome: Outcome) {
        self.total += 1;
        match outcome {
            Outcome::Counted => {}
            Outcome::Duplicate => self.duplicates += 1,
            Outcome::Late => self.late += 1,
            Outcome::Invalid => self.invalid += 1,
        }
    }

    /// Records that passed validation (counted, duplicate or late).
    pub fn valid(&self) -> u64 {
        self.total - self.invalid
    }

    /// valid / total, rounded to 4 decimal places; 1 for an empty window.
    pub fn score(&self) -> Decimal {
        if self.total == 0 {
            return Decimal::ONE;
        }
        (Decimal::from(self.valid()) / Decimal::from(self.total)).round_dp(4)
    }
}

impl Aggregate for QualityAgg {
    fn merge(&mut self, o: &Self) {
        self.total += o.total;
        self.invalid += o.invalid;
        self.duplicates += o.duplicates;
        self.late += o.late;
    }

    fn write_values(&self, out: &mut BTreeMap<String, Decimal>) {
        out.insert("total".into(), self.total.into());
        out.insert("valid".into(), self.valid().into());
        out.insert("invalid".into(), self.invalid.into());
        out.insert("duplicates".into(), self.duplicates.into());
        out.insert("late".into(), self.late.into());
        out.insert("score".into(), self.score());
    }

    fn from_values(v: &BTreeMap<String, Decimal>) -> Option<Self> {
        let get = |k: &str| v.get(k).and_then(|d| u64::try_from(*d).ok());
        let agg = QualityAgg {
            total: get("total")?,
            invalid: get("invalid")?,
            duplicates: get("duplicates")?,
            late: get("late")?,
        };
        (agg.invalid <= agg.total).then_some(agg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_and_round_trip_through_values() {
        let mut a = QualityAgg::default();
        for o in [
            Outcome::Counted,
            Outcome::Counted,
            Outcome::Invalid,
            Outcome::Duplicate,
            Outcome::Late,
            Outcome::Counted,
        ] {
            a.record(o);
        }
        assert_eq!(a.valid(), 5);
        assert_eq!(a.score(), Decimal::new(8333, 4));
        let mut v = BTreeMap::new();
        a.write_values(&mut v);
        let back = QualityAgg::from_values(&v).unwrap();
        assert_eq!(back, a);
        let mut m = back.clone();
        m.merge(&a);
        assert_eq!(m.total, 12);
    }
}
