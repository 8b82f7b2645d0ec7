//! The aggregate and dimension of the simple sales breakdowns: `hourly` (orders per 1 h
//! window, overall), `geo` (by `country=DE` and `country=US/state=CA`) and `payments` (by
//! `method=credit_card`). [`SalesAgg`] counts every valid transaction as an attempt and
//! completed ones as orders with their revenue in the reporting currency; [`LabelDim`]
//! is a one- or two-level label dimension whose names come from a [`Labels`] marker type,
//! with a borrowed form ([`LabelRef`]) for allocation-free lookups on the hot path.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::aggregate::{Aggregate, Dimension};
use super::families::same_name;

/// Orders and revenue of one sales breakdown row.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SalesAgg {
    /// Valid transactions of any status.
    pub attempts: u64,
    /// Completed transactions.
    pub orders: u64,
    /// Completed amounts in the reporting currency.
    pub revenue: Decimal,
}

impl SalesAgg {
    /// Adds one transaction; `completed` carries its converted amount.
    #[inline]
    pub fn add(&mut self, completed: Option<Decimal>) {
        self.attempts += 1;
        if let Some(amount) = completed {
            self.orders += 1;
            self.revenue = self.revenue.saturating_add(amount);
        }
    }
}

impl Aggregate for SalesAgg {
    fn merge(&mut self, o: &Self) {
        self.attempts += o.attempts;
        self.orders += o.orders;
        self.revenue = self.revenue.saturating_add(o.revenue);
    }

    fn write_values(&self, out: &mut BTreeMap<String, Decimal>) {
        out.insert("attempts".into(), self.attempts.into());
        out.insert("orders".into(), self.orders.into());
        out.insert("revenue".into(), self.revenue);
    }

    fn from_values(v: &BTreeMap<String, Decimal>) -> Option<Self> {
        let n = |k: &str| v.get(k).and_then(|d| u64::try_from(*d).ok());
        Some(SalesAgg {
            attempts: n("attempts")?,
            orders: n("orders")?,
            revenue: *v.get("revenue")?,
        })
    }
}

/// The label names of a [`LabelDim`].
pub trait Labels {
    const FIRST: &'static str;
    const SECOND: &'static str;
}

/// `country=..` and `country=../state=..`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GeoLabels;

impl Labels for GeoLabels {
    const FIRST: &'static str = "country";
    const SECOND: &'static str = "state";
}

/// `method=..`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MethodLabels;

impl Labels for MethodLabels {
    const FIRST: &'static str = "method";
    const SECOND: &'static str = "detail";
}

/// A one- or two-level label dimension.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct LabelDim<L> {
    pub first: Box<str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub second: Option<Box<str>>,
    #[serde(skip)]
    _labels: PhantomData<L>,
}

/// Borrowed [`LabelDim`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabelRef<'a>(pub &'a str, pub Option<&'a str>);

impl Hash for LabelRef<'_> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.0.hash(h);
        self.1.hash(h);
    }
}

impl<L> Hash for LabelDim<L> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        LabelRef(&self.first, self.second.as_deref()).hash(h);
    }
}

impl<L> hashbrown::Equivalent<LabelDim<L>> for LabelRef<'_> {
    #[inline]
    fn equivalent(&self, k: &LabelDim<L>) -> bool {
        same_name(self.0, &k.first)
            && match (self.1, k.second.as_deref()) {
                (None, None) => true,
                (Some(a), Some(b)) => same_name(a, b),
                _ => false,
            }
    }
}

impl<L> From<&LabelRef<'_>> for LabelDim<L> {
    fn from(r: &LabelRef<'_>) -> Self {
        LabelDim {
            first: r.0.into(),
            second: r.1.map(Into::into),
            _labels: PhantomData,
        }
    }
}

impl<L> Dimension for LabelDim<L>
where
    L: Labels + Clone + Eq + Ord + std::fmt::Debug + Send + Sync + 'static,
{
    fn render(&self) -> String {
        match &self.second {
            None => format!("{}={}", L::FIRST, self.first),
            Some(s) => format!("{}={}/{}={}", L::FIRST, self.first, L::SECOND, s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agg(attempts: u64, orders: u64, revenue: i64) -> SalesAgg {
        SalesAgg {
            attempts,
            orders,
            revenue: Decimal::new(revenue, 2),
        }
    }

    #[test]
    fn merge_is_associative_and_round_trips_through_values() {
        let (a, b, c) = (agg(2, 1, 1050), agg(1, 0, 0), agg(3, 3, 99));
        let mut ab_c = a.clone();
        ab_c.merge(&b);
        ab_c.merge(&c);
        let mut bc = b.clone();
        bc.merge(&c);
        let mut a_bc = a.clone();
        a_bc.merge(&bc);
        assert_eq!(ab_c, a_bc);
        assert_eq!(ab_c, agg(6, 4, 1149));
        let mut v = BTreeMap::new();
        ab_c.write_values(&mut v);
        assert_eq!(SalesAgg::from_values(&v), Some(ab_c));
        v.remove("orders");
        assert_eq!(SalesAgg::from_values(&v), None);
    }

    #[test]
    fn label_dimensions_render_and_look_up_by_reference() {
        let s = ahash::RandomState::new();
        let geo: LabelDim<GeoLabels> = LabelDim::from(&LabelRef("US", Some("CA")));
        assert_eq!(geo.render(), "country=US/state=CA");
        assert_eq!(s.hash_one(&geo), s.hash_one(LabelRef("US", Some("CA"))));
        assert!(hashbrown::Equivalent::equivalent(
            &LabelRef("US", Some("CA")),
            &geo
        ));
        assert!(!hashbrown::Equivalent::equivalent(
            &LabelRef("US", None),
            &geo
        ));
        let m: LabelDim<MethodLabels> = LabelDim::from(&LabelRef("paypal", None));
        assert_eq!(m.render(), "method=paypal");
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(
            serde_json::from_str::<LabelDim<MethodLabels>>(&json).unwrap(),
            m
        );
    }
}
