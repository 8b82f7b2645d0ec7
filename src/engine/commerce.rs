//! The commerce KPI operators of a stage-1 task, next to revenue: `products` (per revenue
//! window, by category, per product), `geo` (per revenue window, by country and by
//! country/state), `payments` (per revenue window, by payment method) and `hourly` (orders
//! per 1 h window, overall). [`CommerceOps`] applies one transaction's [`TxSummary`] to all
//! of them and drives them together through emission, changelog flush, snapshot and
//! restore, so the task treats them as one unit. [`ProductCosts`] is how the engine sees
//! the product catalog's unit costs (the runtime's catalog implements it).

use rust_decimal::Decimal;

use super::families::{All, RevenueDim, RevenueDimRef};
use super::interner::Interner;
use super::operator::WindowOperator;
use super::products::ProductsAgg;
use super::revenue::TxSummary;
use super::sales::{GeoLabels, LabelDim, LabelRef, MethodLabels, SalesAgg};
use super::state::StateError;
use super::task::{kpi, RowSink};
use super::window::WindowSpec;
use super::WindowConfig;
use crate::model::time::Millis;
use crate::model::KpiRow;

/// Unit costs from the product catalog, in the reporting currency.
pub trait ProductCosts: Send + Sync {
    /// The unit cost of `product_id`; `None` when the product is not in the catalog.
    fn unit_cost(&self, product_id: &str) -> Option<Decimal>;
}

/// The window of the `hourly` family.
pub const HOUR_MS: i64 = 3_600_000;

/// The commerce operators of one task.
pub(super) struct CommerceOps {
    products: Vec<WindowOperator<RevenueDim, ProductsAgg>>,
    geo: Vec<WindowOperator<LabelDim<GeoLabels>, SalesAgg>>,
    payments: Vec<WindowOperator<LabelDim<MethodLabels>, SalesAgg>>,
    /// One operator; a Vec like the others so every method treats them alike.
    hourly: Vec<WindowOperator<All, SalesAgg>>,
}

/// Runs `$body` with `$op` bound to each operator and `$kpi` to its family name.
macro_rules! each_op {
    ($ops:expr, $iter:ident, |$op:ident, $kpi:ident| $body:block) => {{
        for $op in $ops.products.$iter() {
            let $kpi = kpi::PRODUCTS;
            $body
        }
        for $op in $ops.geo.$iter() {
            let $kpi = kpi::GEO;
            $body
        }
        for $op in $ops.payments.$iter() {
            let $kpi = kpi::PAYMENTS;
            $body
        }
        for $op in $ops.hourly.$iter() {
            let $kpi = kpi::HOURLY;
            $body
        }
    }};
}

fn per_window<K: super::Dimension, A: super::Aggregate>(
    family: &str,
    w: &WindowConfig,
) -> Vec<WindowOperator<K, A>> {
    w.revenue
        .iter()
        .map(|s| WindowOperator::new(format!("{family}:{}", s.name()), *s, w.allowed_lateness_ms))
        .collect()
}

impl CommerceOps {
    pub(super) fn new(w: &WindowConfig) -> Self {
        let hour = WindowSpec::tumbling(HOUR_MS);
        CommerceOps {
            products: per_window(kpi::PRODUCTS, w),
            geo: per_window(kpi::GEO, w),
            payments: per_window(kpi::PAYMENTS, w),
            hourly: vec![WindowOperator::new(
                format!("{}:{}", kpi::HOURLY, hour.name()),
                hour,
                w.allowed_lateness_ms,
            )],
        }
    }

    /// Applies one accepted transaction at watermark `wm`.
    pub(super) fn add(&mut self, t: &TxSummary<'_>, wm: Millis, out: &mut Vec<KpiRow>) {
        let completed = t.completed_amount();
        let (ts, tx) = (t.ts, t.tx);
        let mut sink = RowSink::new(out, kpi::HOURLY);
        for op in &mut self.hourly {
            op.update(&All, ts, wm, |a| a.add(completed), &mut sink);
        }
        let mut sink = RowSink::new(out, kpi::PAYMENTS);
        let method = LabelRef(&tx.payment_method, None);
        for op in &mut self.payments {
            op.update(&method, ts, wm, |a| a.add(completed), &mut sink);
        }
        let mut sink = RowSink::new(out, kpi::GEO);
        let country = LabelRef(&tx.location.country, None);
        let state = tx
            .location
            .state
            .as_deref()
            .map(|s| LabelRef(&tx.location.country, Some(s)));
        for op in &mut self.geo {
            op.update_keys(ts, wm, &mut sink, |u| {
                u.update(&country, |a| a.add(completed));
                if let Some(state) = &state {
                    u.update(state, |a| a.add(completed));
                }
            });
        }
        if t.lines.is_empty() {
            return;
        }
        let mut sink = RowSink::new(out, kpi::PRODUCTS);
        for op in &mut self.products {
            op.update_keys(ts, wm, &mut sink, |u| {
                for category in t.category_names() {
                    u.update(&RevenueDimRef::Category(category), |a| {
                        for l in t.lines.iter().filter(|l| l.category == category) {
                            a.add_line(l.product, l.units, l.revenue, l.cost);
                        }
                    });
                }
            });
        }
    }

    pub(super) fn advance(&mut self, wm: Millis, out: &mut Vec<KpiRow>) {
        each_op!(self, iter_mut, |op, family| {
            op.advance(wm, &mut RowSink::new(out, family));
        });
    }

    pub(super) fn emit_early(&mut self, out: &mut Vec<KpiRow>) {
        each_op!(self, iter_mut, |op, family| {
            op.emit_early(&mut RowSink::new(out, family));
        });
    }

    pub(super) fn set_changelog(&mut self, on: bool) {
        each_op!(self, iter_mut, |op, _family| {
            op.set_changelog(on);
        });
    }

    /// Live results.
    pub(super) fn len(&self) -> usize {
        let mut n = 0;
        each_op!(self, iter, |op, _family| {
            n += op.len();
        });
        n
    }

    pub(super) fn flush(
        &mut self,
        seq: u64,
        names: &Interner,
        out: &mut impl FnMut(Vec<u8>, Option<Vec<u8>>),
    ) -> Result<(), StateError> {
        each_op!(self, iter_mut, |op, _family| {
            op.flush(seq, names, out)?;
        });
        Ok(())
    }

    pub(super) fn snapshot(
        &self,
        names: &Interner,
        out: &mut impl FnMut(Vec<u8>, Option<Vec<u8>>),
    ) -> Result<(), StateError> {
        each_op!(self, iter, |op, _family| {
            op.snapshot(names, out)?;
        });
        Ok(())
    }

    /// Restores a window entry if one of these operators owns it; false otherwise.
    pub(super) fn restore(
        &mut self,
        key: &[u8],
        value: &[u8],
        names: &mut Interner,
    ) -> Result<bool, StateError> {
        each_op!(self, iter_mut, |op, _family| {
            if op.owns(key) {
                op.restore(key, value, names)?;
                return Ok(true);
            }
        });
        Ok(false)
    }
}
