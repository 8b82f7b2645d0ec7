//! The stage-2 aggregate: for one (kpi, window, dimension) result, the latest partial of
//! every source task. [`SourcePartials`] is itself an [`Aggregate`], so the generic
//! [`WindowOperator`](super::super::WindowOperator) drives its emission life cycle,
//! lateness, purge and changelog exactly as in stage 1. Its `merge` keeps, per source, the
//! partial with the higher revision — commutative, associative and idempotent — so the
//! merged value depends only on the set of partials received, never on the order in which
//! different sources' partials interleave or on redeliveries. Its KPI values are those of
//! the family aggregate `A` merged over all sources.
//!
//! Unique-customer style counts (`CustomerSet`) arrive as counts and are added across
//! sources. That is exact because stage-1 inputs are keyed by customer_id: a customer's
//! records all live in one input partition, hence in one source task, so the tasks'
//! customer sets are disjoint.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::super::aggregate::Aggregate;

/// One source task's latest partial of a result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourcePartial<A> {
    pub source: u32,
    pub revision: u32,
    pub agg: A,
}

/// The latest partial per source task, sorted by source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourcePartials<A> {
    parts: Vec<SourcePartial<A>>,
}

impl<A> Default for SourcePartials<A> {
    fn default() -> Self {
        SourcePartials { parts: Vec::new() }
    }
}

impl<A: Aggregate> SourcePartials<A> {
    /// The revision of the latest partial of `source`, if any.
    pub fn revision_of(&self, source: u32) -> Option<u32> {
        self.find(source).ok().map(|i| self.parts[i].revision)
    }

    /// Whether a partial of `source` at `revision` is newer than the one held.
    pub fn is_newer(&self, source: u32, revision: u32) -> bool {
        self.revision_of(source).map_or(true, |r| revision > r)
    }

    /// Keeps `agg` as the partial of `source` if `revision` is newer than the one held.
    /// Returns whether it was kept.
    pub fn offer(&mut self, source: u32, revision: u32, agg: A) -> bool {
        match self.find(source) {
            Ok(i) if self.parts[i].revision >= revision => false,
            Ok(i) => {
                self.parts[i] = SourcePartial {
                    source,
                    revision,
                    agg,
                };
                true
            }
            Err(i) => {
                self.parts.insert(
                    i,
                    SourcePartial {
                        source,
                        revision,
                        agg,
                    },
                );
                true
            }
        }
    }

    /// The partials held, by source.
    pub fn parts(&self) -> &[SourcePartial<A>] {
        &self.parts
    }

    /// The family aggregate merged over all sources.
    pub fn merged(&self) -> A {
        let mut acc = A::default();
        for p in &self.parts {
            acc.merge(&p.agg);
        }
        acc
    }

    fn find(&self, source: u32) -> Result<usize, usize> {
        self.parts.binary_search_by_key(&source, |p| p.source)
    }
}

impl<A: Aggregate> Aggregate for SourcePartials<A> {
    fn merge(&mut self, other: &Self) {
        for p in &other.parts {
            self.offer(p.source, p.revision, p.agg.clone());
        }
    }

    fn write_values(&self, out: &mut BTreeMap<String, Decimal>) {
        self.merged().write_values(out);
    }

    /// Stage 2 is the last stage: its results are never merged from rows again. A row
    /// read back becomes the partial of source 0 at revision 0.
    fn from_values(values: &BTreeMap<String, Decimal>) -> Option<Self> {
        let mut s = SourcePartials::default();
        s.offer(0, 0, A::from_values(values)?);
        Some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::RevenueAgg;

    fn rev(revenue: i64, orders: u64, customers: u64) -> RevenueAgg {
        let mut v = BTreeMap::new();
        RevenueAgg {
            revenue: Decimal::from(revenue),
            orders,
            ..Default::default()
        }
        .write_values(&mut v);
        v.insert("unique_customers".into(), customers.into());
        RevenueAgg::from_values(&v).unwrap_or_default()
    }

    fn values(p: &SourcePartials<RevenueAgg>) -> BTreeMap<String, Decimal> {
        let mut v = BTreeMap::new();
        p.write_values(&mut v);
        v
    }

    #[test]
    fn keeps_the_latest_revision_per_source_and_ignores_redeliveries() {
        let mut p = SourcePartials::<RevenueAgg>::default();
        assert!(p.offer(1, 2, rev(10, 1, 1)));
        assert!(
            !p.offer(1, 2, rev(99, 9, 9)),
            "equal revision: a redelivery"
        );
        assert!(!p.offer(1, 1, rev(5, 1, 1)), "older revision");
        assert!(p.offer(0, 1, rev(7, 2, 2)));
        assert!(p.offer(1, 3, rev(12, 2, 1)));
        assert_eq!(p.revision_of(1), Some(3));
        assert!(p.is_newer(2, 0));
        let v = values(&p);
        assert_eq!(v["revenue"], Decimal::from(19));
        assert_eq!(v["orders"], Decimal::from(4));
        assert_eq!(v["unique_customers"], Decimal::from(3), "disjoint: summed");
        assert_eq!(v["avg_order_value"], Decimal::new(475, 2));
    }

    #[test]
    fn merge_is_order_insensitive_and_idempotent() {
        let mut a = SourcePartials::<RevenueAgg>::default();
        a.offer(0, 1, rev(1, 1, 1));
        a.offer(1, 4, rev(4, 1, 1));
        let mut b = SourcePartials::<RevenueAgg>::default();
        b.offer(0, 3, rev(3, 2, 1));
        b.offer(2, 1, rev(8, 1, 1));
        let mut ab = a.clone();
        ab.merge(&b);
        let mut ba = b.clone();
        ba.merge(&a);
        assert_eq!(ab, ba);
        let mut twice = ab.clone();
        twice.merge(&ab);
        assert_eq!(twice, ab);
        assert_eq!(values(&ab)["revenue"], Decimal::from(15));
    }

    #[test]
    fn serde_round_trip() {
        let mut a = SourcePartials::<RevenueAgg>::default();
        a.offer(3, 7, rev(42, 3, 2));
        let json = serde_json::to_vec(&a).unwrap();
        let b: SourcePartials<RevenueAgg> = serde_json::from_slice(&json).unwrap();
        assert_eq!(a, b);
    }
}
