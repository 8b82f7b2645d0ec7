//! What one valid transaction adds to the revenue windows. [`TxSummary`] computes, once
//! for all revenue operators, the overall figures and, for completed orders, each distinct
//! item category with its net revenue and units; [`add_transaction`] applies it to one operator: the overall row and one row
//! per category, in that order, looking a tumbling window up once for all of them.

use rust_decimal::Decimal;
use smallvec::SmallVec;

use super::aggregate::EmitSink;
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

/// What one valid transaction adds to the revenue windows.
pub(super) struct TxSummary<'a> {
    ts: Millis,
    completed: bool,
    failed: bool,
    amount: Decimal,
    units: u64,
    /// The interned customer of a completed transaction.
    customer: MemberId,
    /// Distinct categories in order of first appearance, with net revenue and units.
    categories: SmallVec<[(&'a str, Decimal, u64); 4]>,
}

impl<'a> TxSummary<'a> {
    pub(super) fn new(t: &'a Transaction, customer: MemberId) -> Self {
        let completed = t.status == TxStatus::Completed;
        let mut categories: SmallVec<[(&'a str, Decimal, u64); 4]> = SmallVec::new();
        let mut units = 0u64;
        for item in &t.items {
            let q = u64::from(item.quantity.unsigned_abs());
            units += q;
            if !completed {
                continue;
            }
            let line = line_total(item.quantity, item.unit_price, item.discount);
            let category = item.category.as_str();
            match categories
                .iter_mut()
                .find(|(c, _, _)| same_name(c, category))
            {
                Some((_, revenue, u)) => {
                    *revenue = revenue.saturating_add(line);
                    *u += q;
                }
                None => categories.push((category, Decimal::ZERO.saturating_add(line), q)),
            }
        }
        TxSummary {
            ts: t.timestamp,
            completed,
            failed: t.status == TxStatus::Failed,
            amount: t.amount,
            units,
            customer,
            categories,
        }
    }

    /// The change to the overall row.
    #[inline(always)]
    fn add_overall(&self, a: &mut RevenueAgg) {
        a.attempts += 1;
        a.failed += u64::from(self.failed);
        if self.completed {
            a.revenue = a.revenue.saturating_add(self.amount);
            a.orders += 1;
            a.items += self.units;
            a.customers.insert(self.customer);
        }
    }

    /// The change to the row of a category with `revenue` and `units` in this order.
    #[inline(always)]
    fn add_category(&self, a: &mut RevenueAgg, revenue: Decimal, units: u64) {
        a.revenue = a.revenue.saturating_add(revenue);
        a.orders += 1;
        a.items += units;
        a.customers.insert(self.customer);
    }
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
            for &(category, revenue, units) in &t.categories {
                u.update(&RevenueDimRef::Category(category), |a| {
                    t.add_category(a, revenue, units)
                });
            }
        });
        return;
    }
    op.update(&RevenueDimRef::All, t.ts, wm, |a| t.add_overall(a), sink);
    for &(category, revenue, units) in &t.categories {
        let key = RevenueDimRef::Category(category);
        op.update(&key, t.ts, wm, |a| t.add_category(a, revenue, units), sink);
    }
}
