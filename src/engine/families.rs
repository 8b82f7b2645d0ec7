//! The KPI families the engine computes itself, each an [`Aggregate`] with its dimension
//! type. `revenue` (per revenue window, overall and by category): revenue, orders, items
//! and unique customers of completed transactions (exact decimals), plus attempts and
//! failed payments overall; average order value is derived; failed and refunded counts and
//! amounts overall; catalog cost, gross margin and unknown products (lines missing from the
//! catalog). Money is in the reporting currency (`currency.rs`). `activity` (per activity
//! window): user events by type and active users, the base of funnel KPIs. The quality
//! family lives in `quality::score`. Other KPI families (analytics) build on the same
//! operator with their own aggregates.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::aggregate::{Aggregate, Dimension};
use super::customers::CustomerSet;
use super::interner::MemberId;
use crate::model::EventType;

/// The single dimension `all`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct All;

impl Dimension for All {
    fn render(&self) -> String {
        "all".to_owned()
    }
}

impl From<&All> for All {
    fn from(_: &All) -> Self {
        All
    }
}

/// Revenue dimension: overall or one product category.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevenueDim {
    All,
    Category(Box<str>),
}

/// Borrowed [`RevenueDim`] for allocation-free lookups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevenueDimRef<'a> {
    All,
    Category(&'a str),
}

impl Hash for RevenueDimRef<'_> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        match self {
            RevenueDimRef::All => h.write_u8(0),
            RevenueDimRef::Category(c) => {
                h.write_u8(1);
                c.hash(h);
            }
        }
    }
}

impl Hash for RevenueDim {
    fn hash<H: Hasher>(&self, h: &mut H) {
        match self {
            RevenueDim::All => RevenueDimRef::All.hash(h),
            RevenueDim::Category(c) => RevenueDimRef::Category(c).hash(h),
        }
    }
}

/// String equality that rejects most unequal category names (which often share a
/// length) on their first byte, before a byte-wise comparison call.
#[inline]
pub(super) fn same_name(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.as_bytes().first() == b.as_bytes().first() && a == b
}

impl hashbrown::Equivalent<RevenueDim> for RevenueDimRef<'_> {
    #[inline]
    fn equivalent(&self, k: &RevenueDim) -> bool {
        match (self, k) {
            (RevenueDimRef::All, RevenueDim::All) => true,
            (RevenueDimRef::Category(a), RevenueDim::Category(b)) => same_name(a, b),
            _ => false,
        }
    }
}

impl From<&RevenueDimRef<'_>> for RevenueDim {
    fn from(r: &RevenueDimRef<'_>) -> Self {
        match r {
            RevenueDimRef::All => RevenueDim::All,
            RevenueDimRef::Category(c) => RevenueDim::Category((*c).into()),
        }
    }
}

impl Dimension for RevenueDim {
    fn render(&self) -> String {
        match self {
            RevenueDim::All => "all".to_owned(),
            RevenueDim::Category(c) => format!("category={c}"),
        }
    }
}

/// Revenue partial aggregate.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RevenueAgg {
    /// Sum of completed amounts (overall) or of completed line totals (per category).
    pub revenue: Decimal,
    /// Completed orders (per category: orders with at least one item of the category).
    pub orders: u64,
    /// Units sold in completed orders.
    pub items: u64,
    pub customers: CustomerSet,
    /// Valid transactions of any status (overall only).
    pub attempts: u64,
    /// Failed payments (overall only).
    pub failed: u64,
    /// Amount of failed payments (overall only).
    pub failed_amount: Decimal,
    /// Refunded transactions and their amount (overall only).
    pub refunded: u64,
    pub refunded_amount: Decimal,
    /// Valid transactions in a currency without a conversion rate: kept out of every
    /// money value (overall only).
    pub unconverted: u64,
    /// Catalog cost of the completed units whose product is in the catalog.
    pub cost: Decimal,
    /// Net line revenue minus cost, over the completed lines of known products.
    pub gross_margin: Decimal,
    /// Completed order lines whose product was missing from the catalog.
    pub unknown_products: u64,
}

impl Aggregate for RevenueAgg {
    fn merge(&mut self, o: &Self) {
        self.revenue += o.revenue;
        self.orders += o.orders;
        self.items += o.items;
        self.customers.merge(&o.customers);
        self.attempts += o.attempts;
        self.failed += o.failed;
        self.failed_amount = self.failed_amount.saturating_add(o.failed_amount);
        self.refunded += o.refunded;
        self.refunded_amount = self.refunded_amount.saturating_add(o.refunded_amount);
        self.unconverted += o.unconverted;
        self.cost = self.cost.saturating_add(o.cost);
        self.gross_margin = self.gross_margin.saturating_add(o.gross_margin);
        self.unknown_products += o.unknown_products;
    }

    fn write_values(&self, out: &mut BTreeMap<String, Decimal>) {
        out.insert("revenue".into(), self.revenue);
        out.insert("orders".into(), self.orders.into());
        out.insert("items".into(), self.items.into());
        out.insert("unique_customers".into(), self.customers.len().into());
        out.insert("attempts".into(), self.attempts.into());
        out.insert("failed".into(), self.failed.into());
        out.insert("failed_amount".into(), self.failed_amount);
        out.insert("refunded".into(), self.refunded.into());
        out.insert("refunded_amount".into(), self.refunded_amount);
        out.insert("unconverted".into(), self.unconverted.into());
        out.insert("cost".into(), self.cost);
        out.insert("gross_margin".into(), self.gross_margin);
        out.insert("unknown_products".into(), self.unknown_products.into());
        if self.orders > 0 {
            out.insert(
                "avg_order_value".into(),
                (self.revenue / Decimal::from(self.orders)).round_dp(2),
            );
        }
    }

    fn take_new_members(&mut self, out: &mut Vec<MemberId>) {
        self.customers.take_new_members(out);
    }

    fn all_members(&self, out: &mut Vec<MemberId>) {
        self.customers.all_members(out);
    }

    fn restore_members(&mut self, members: &[MemberId]) {
        self.customers.restore_members(members);
    }

    fn from_values(v: &BTreeMap<String, Decimal>) -> Option<Self> {
        let n = |k: &str| v.get(k).and_then(|d| u64::try_from(*d).ok());
        Some(RevenueAgg {
            revenue: *v.get("revenue")?,
            orders: n("orders")?,
            items: n("items")?,
            customers: CustomerSet::Count(n("unique_customers")?),
            attempts: n("attempts")?,
            failed: n("failed")?,
            failed_amount: *v.get("failed_amount")?,
            refunded: n("refunded")?,
            refunded_amount: *v.get("refunded_amount")?,
            unconverted: n("unconverted")?,
            cost: *v.get("cost")?,
            gross_margin: *v.get("gross_margin")?,
            unknown_products: n("unknown_products")?,
        })
    }
}

/// User-activity partial aggregate: events by type and active users.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ActivityAgg {
    /// Counts indexed like [`EVENT_TYPES`].
    pub by_type: [u64; 6],
    pub users: CustomerSet,
}

/// Event types in the order of [`ActivityAgg::by_type`].
pub const EVENT_TYPES: [EventType; 6] = [
    EventType::PageView,
    EventType::Search,
    EventType::AddToCart,
    EventType::RemoveFromCart,
    EventType::CheckoutStart,
    EventType::Purchase,
];

impl ActivityAgg {
    #[inline]
    pub fn add(&mut self, t: EventType, customer: MemberId) {
        let i = EVENT_TYPES.iter().position(|e| *e == t).unwrap_or(0);
        self.by_type[i] += 1;
        self.users.insert(customer);
    }
}

impl Aggregate for ActivityAgg {
    fn merge(&mut self, o: &Self) {
        for (a, b) in self.by_type.iter_mut().zip(o.by_type) {
            *a += b;
        }
        self.users.merge(&o.users);
    }

    fn write_values(&self, out: &mut BTreeMap<String, Decimal>) {
        for (t, n) in EVENT_TYPES.iter().zip(self.by_type) {
            out.insert(t.as_str().to_owned(), n.into());
        }
        out.insert("events".into(), self.by_type.iter().sum::<u64>().into());
        out.insert("active_users".into(), self.users.len().into());
    }

    fn take_new_members(&mut self, out: &mut Vec<MemberId>) {
        self.users.take_new_members(out);
    }

    fn all_members(&self, out: &mut Vec<MemberId>) {
        self.users.all_members(out);
    }

    fn restore_members(&mut self, members: &[MemberId]) {
        self.users.restore_members(members);
    }

    fn from_values(v: &BTreeMap<String, Decimal>) -> Option<Self> {
        let n = |k: &str| v.get(k).and_then(|d| u64::try_from(*d).ok());
        let mut by_type = [0; 6];
        for (slot, t) in by_type.iter_mut().zip(EVENT_TYPES) {
            *slot = n(t.as_str())?;
        }
        Some(ActivityAgg {
            by_type,
            users: CustomerSet::Count(n("active_users")?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revenue_values_round_trip_for_stage_two() {
        let mut a = RevenueAgg {
            revenue: Decimal::new(1050, 2),
            orders: 2,
            items: 3,
            attempts: 3,
            failed: 1,
            refunded: 1,
            refunded_amount: Decimal::new(100, 2),
            cost: Decimal::new(400, 2),
            gross_margin: Decimal::new(650, 2),
            unknown_products: 2,
            ..Default::default()
        };
        a.customers.insert(1);
        let mut v = BTreeMap::new();
        a.write_values(&mut v);
        assert_eq!(v["avg_order_value"], Decimal::new(525, 2));
        let b = RevenueAgg::from_values(&v).unwrap();
        assert_eq!(b.cost, a.cost);
        let mut abc = a.clone();
        abc.merge(&b);
        abc.merge(&a);
        let mut bc = b.clone();
        bc.merge(&a);
        let mut a_bc = a.clone();
        a_bc.merge(&bc);
        assert_eq!(abc.gross_margin, a_bc.gross_margin);
        assert_eq!(abc.refunded_amount, Decimal::new(300, 2));
        assert_eq!(abc.unknown_products, 6);
        let mut m = b.clone();
        m.merge(&b);
        assert_eq!(m.revenue, Decimal::new(2100, 2));
        assert_eq!(m.customers.len(), 2);
    }

    #[test]
    fn dimension_lookup_by_reference_matches_owned_keys() {
        let s = ahash::RandomState::new();
        let owned = RevenueDim::Category("books".into());
        assert_eq!(
            s.hash_one(&owned),
            s.hash_one(RevenueDimRef::Category("books"))
        );
        assert_eq!(s.hash_one(RevenueDim::All), s.hash_one(RevenueDimRef::All));
        assert_eq!(owned.render(), "category=books");
    }
}
