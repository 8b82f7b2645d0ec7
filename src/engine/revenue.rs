//! What one valid transaction adds to the revenue windows. [`TxSummary`] computes, once
//! for all revenue (and commerce) operators, the overall figures in the reporting currency
//! and, for completed orders, each line with its catalog cost and each distinct item
//! category with its net revenue, units, cost and margin; [`add_transaction`] applies it to
//! one operator: the overall row and one row per category, in that order, looking a
//! tumbling window up once for all of them.

use rust_decimal::Decimal;
use smallvec::SmallVec;

use super::aggregate::EmitSink;
use super::commerce::ProductCosts;
use super::currency::Rate;
use super::families::{same_name, RevenueAgg, RevenueDim, RevenueDimRef};
use super::interner::MemberId;
use super::operator::WindowOperator;
use super::window::WindowSpec;
use crate::model::time::Millis;
use crate::model::{Transaction, TxStatus};

/// Net value of a line: quantity × unit price − discount (saturating: the engine never
/// panics on data; validation already bounds realistic values).
fn line_total(q: i32, price: Decimal, discount: Decimal) -> Decimal {
    Decimal::from(q)
        .saturating_mul(price)
        .saturating_sub(discount)
}

/// One completed order line, with its catalog cost (`None`: product unknown).
pub(super) struct Line<'a> {
    pub product: &'a str,
    pub category: &'a str,
    pub units: u64,
    /// Net revenue in the reporting currency.
    pub revenue: Decimal,
    pub cost: Option<Decimal>,
}

/// Per category of a completed order: net revenue, units, cost and margin of the known
/// lines, and the number of unknown lines.
#[derive(Clone, Copy)]
struct CategorySum<'a> {
    name: &'a str,
    revenue: Decimal,
    units: u64,
    cost: Decimal,
    margin: Decimal,
    unknown: u64,
}

/// What one valid transaction adds to the revenue (and commerce) windows, computed once.
pub(super) struct TxSummary<'a> {
    pub tx: &'a Transaction,
    pub ts: Millis,
    /// Completed and convertible to the reporting currency.
    completed: bool,
    rate: Option<Rate>,
    /// The amount in the reporting currency (zero without a rate).
    pub amount: Decimal,
    units: u64,
    /// The interned customer of a completed transaction.
    customer: MemberId,
    /// Distinct categories in order of first appearance.
    categories: SmallVec<[CategorySum<'a>; 4]>,
    /// The lines of a completed order.
    pub lines: SmallVec<[Line<'a>; 4]>,
}

impl<'a> TxSummary<'a> {
    /// `rate` converts `t`'s currency (`None`: no rate, kept out of money values); `costs`
    /// gives catalog unit costs (`None`: no catalog, every product unknown).
    pub(super) fn new(
        t: &'a Transaction,
        customer: MemberId,
        rate: Option<Rate>,
        costs: Option<&dyn ProductCosts>,
    ) -> Self {
        let completed = t.status == TxStatus::Completed && rate.is_some();
        let conv = rate.unwrap_or(Rate::Same);
        let mut categories: SmallVec<[CategorySum<'a>; 4]> = SmallVec::new();
        let mut lines: SmallVec<[Line<'a>; 4]> = SmallVec::new();
        let mut units = 0u64;
        for item in &t.items {
            let q = u64::from(item.quantity.unsigned_abs());
            units += q;
            if !completed {
                continue;
            }
            let line = conv.apply(line_total(item.quantity, item.unit_price, item.discount));
            let cost = costs
                .and_then(|c| c.unit_cost(&item.product_id))
                .map(|c| c.saturating_mul(Decimal::from(q)));
            let category = item.category.as_str();
            let i = match categories.iter().position(|c| same_name(c.name, category)) {
                Some(i) => i,
                None => {
                    categories.push(CategorySum {
                        name: category,
                        revenue: Decimal::ZERO,
                        units: 0,
                        cost: Decimal::ZERO,
                        margin: Decimal::ZERO,
                        unknown: 0,
                    });
                    categories.len() - 1
                }
            };
            let c = &mut categories[i];
            c.revenue = c.revenue.saturating_add(line);
            c.units += q;
            match cost {
                Some(cost) => {
                    c.cost = c.cost.saturating_add(cost);
                    c.margin = c.margin.saturating_add(line.saturating_sub(cost));
                }
                None => c.unknown += 1,
            }
            lines.push(Line {
                product: &item.product_id,
                category,
                units: q,
                revenue: line,
                cost,
            });
        }
        TxSummary {
            tx: t,
            ts: t.timestamp,
            completed,
            rate,
            amount: rate.map_or(Decimal::ZERO, |r| r.apply(t.amount)),
            units,
            customer,
            categories,
            lines,
        }
    }

    /// The converted amount of a completed order, `None` otherwise.
    #[inline]
    pub fn completed_amount(&self) -> Option<Decimal> {
        self.completed.then_some(self.amount)
    }

    /// The distinct categories of a completed order.
    pub fn category_names(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.categories.iter().map(|c| c.name)
    }

    /// The change to the overall row.
    #[inline(always)]
    fn add_overall(&self, a: &mut RevenueAgg) {
        a.attempts += 1;
        match (self.rate, self.tx.status) {
            (None, _) => a.unconverted += 1,
            (Some(_), TxStatus::Failed) => {
                a.failed += 1;
                a.failed_amount = a.failed_amount.saturating_add(self.amount);
            }
            (Some(_), TxStatus::Refunded) => {
                a.refunded += 1;
                a.refunded_amount = a.refunded_amount.saturating_add(self.amount);
            }
            _ => {}
        }
        if self.completed {
            a.revenue = a.revenue.saturating_add(self.amount);
            a.orders += 1;
            a.items += self.units;
            a.customers.insert(self.customer);
            for c in &self.categories {
                add_margin(a, c);
            }
        }
    }

    /// The change to the row of category `c` of this order.
    #[inline(always)]
    fn add_category(&self, a: &mut RevenueAgg, c: &CategorySum<'_>) {
        a.revenue = a.revenue.saturating_add(c.revenue);
        a.orders += 1;
        a.items += c.units;
        a.customers.insert(self.customer);
        add_margin(a, c);
    }
}

/// Adds the cost, margin and unknown lines of category `c` of an order (skipping the
/// Decimal additions when there is nothing to add: no product of `c` was known).
#[inline(always)]
fn add_margin(a: &mut RevenueAgg, c: &CategorySum<'_>) {
    if !(c.cost.is_zero() && c.margin.is_zero()) {
        a.cost = a.cost.saturating_add(c.cost);
        a.gross_margin = a.gross_margin.saturating_add(c.margin);
    }
    a.unknown_products += c.unknown;
}

/// Adds one valid transaction to a revenue operator: the overall row, and for completed
/// orders one row per distinct item category.
pub(super) fn add_transaction(
    op: &mut WindowOperator<RevenueDim, RevenueAgg>,
    t: &TxSummary<'_>,
    wm: Millis,
    sink: &mut impl EmitSink<RevenueDim, RevenueAgg>,
) {
    if matches!(op.spec(), WindowSpec::Tumbling { .. }) {
        // One window per timestamp: look it up once for the overall and category rows
        // (same updates and emission order as the per-key path below).
        op.update_keys(t.ts, wm, sink, |u| {
            u.update(&RevenueDimRef::All, |a| t.add_overall(a));
            for c in &t.categories {
                u.update(&RevenueDimRef::Category(c.name), |a| t.add_category(a, c));
            }
        });
        return;
    }
    op.update(&RevenueDimRef::All, t.ts, wm, |a| t.add_overall(a), sink);
    for c in &t.categories {
        let key = RevenueDimRef::Category(c.name);
        op.update(&key, t.ts, wm, |a| t.add_category(a, c), sink);
    }
}
