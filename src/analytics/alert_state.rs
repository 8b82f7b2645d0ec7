//! The state behind the business alerts of one stage-2 merger ([`BusinessAlerts`]): per
//! revenue series (window size × dimension) the next window to judge and the trailing
//! revenues, and per product the catalog entry its stock is counted from, the units sold
//! since and whether that entry has alerted. The merger hands it every batch of rows it
//! emitted with the merger watermark after them; from `final` rows and the watermark it
//! walks each series window by window — a settled window with no row counts as zero —
//! and applies the rules of `alerts.rs`. Changed entries go to the merger changelog under
//! `alert/series/<size>/<dimension>` and `alert/stock/<product>` at each flush, and are
//! restored from it, so a restarted merger judges each window exactly once.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::alerts::{self, AlertConfig, Inventory, WindowAt, WindowFigures};
use crate::engine::{kpi, StateError, Window, WindowSpec};
use crate::model::time::Millis;
use crate::model::{BusinessAlert, EmitStatus, KpiRow};

const SERIES_PREFIX: &str = "alert/series/";
const STOCK_PREFIX: &str = "alert/stock/";
/// Every key of this state starts with this.
pub const ALERT_PREFIX: &str = "alert/";

/// One revenue series: the start of the next window to judge and the revenues of the
/// windows before it (oldest first, at most `trailing_windows`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Series {
    next_start: Millis,
    history: VecDeque<Decimal>,
}

/// One product's stock count: from the catalog entry of `version` (its `updated_at`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Stock {
    version: Millis,
    sold: u64,
    alerted: bool,
}

type SeriesKey = (i64, String);

/// The business alert rules with their state (see the module doc).
pub struct BusinessAlerts {
    cfg: AlertConfig,
    lateness_ms: i64,
    /// Revenue window specs by size.
    specs: BTreeMap<i64, WindowSpec>,
    /// The products window size stock is counted in: the smallest tumbling revenue window
    /// (hopping windows overlap and would count a unit twice).
    stock_window: Option<i64>,
    series: BTreeMap<SeriesKey, Series>,
    stock: BTreeMap<String, Stock>,
    dirty_series: BTreeSet<SeriesKey>,
    dirty_stock: BTreeSet<String>,
}

impl BusinessAlerts {
    pub fn new(cfg: AlertConfig, revenue: &[WindowSpec], lateness_ms: i64) -> Self {
        let specs: BTreeMap<i64, WindowSpec> = revenue.iter().map(|s| (s.size_ms(), *s)).collect();
        let stock_window = specs
            .values()
            .filter(|s| s.slide_ms() == s.size_ms())
            .map(|s| s.size_ms())
            .min();
        BusinessAlerts {
            cfg,
            lateness_ms,
            specs,
            stock_window,
            series: BTreeMap::new(),
            stock: BTreeMap::new(),
            dirty_series: BTreeSet::new(),
            dirty_stock: BTreeSet::new(),
        }
    }

    /// Series and products tracked.
    pub fn len(&self) -> usize {
        self.series.len() + self.stock.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Judges what `rows` (just emitted) and the merger watermark `wm` settle.
    pub fn on_rows(
        &mut self,
        rows: &[KpiRow],
        wm: Millis,
        inventory: Option<&dyn Inventory>,
        out: &mut Vec<BusinessAlert>,
    ) {
        if !self.cfg.enabled {
            return;
        }
        let mut fresh: BTreeMap<SeriesKey, BTreeMap<Millis, WindowFigures>> = BTreeMap::new();
        for row in rows.iter().filter(|r| r.status == EmitStatus::Final) {
            let size = row.window_end.saturating_sub(row.window_start);
            if row.kpi == kpi::REVENUE && self.specs.contains_key(&size) {
                fresh
                    .entry((size, row.dimension.clone()))
                    .or_default()
                    .insert(row.window_start, figures(row));
            } else if row.kpi == kpi::PRODUCTS
                && self.cfg.low_stock
                && self.stock_window == Some(size)
            {
                if let Some(inv) = inventory {
                    self.on_product_row(row, inv, out);
                }
            }
        }
        for (key, rows) in &fresh {
            if let Some(&first) = rows.keys().next() {
                self.series.entry(key.clone()).or_insert(Series {
                    next_start: first,
                    history: VecDeque::new(),
                });
            }
        }
        let keys: Vec<SeriesKey> = self.series.keys().cloned().collect();
        for key in keys {
            let rows = fresh.remove(&key).unwrap_or_default();
            self.walk(&key, rows, wm, out);
        }
    }

    /// Judges the settled windows of one series in order, from its next window on.
    fn walk(
        &mut self,
        key: &SeriesKey,
        mut rows: BTreeMap<Millis, WindowFigures>,
        wm: Millis,
        out: &mut Vec<BusinessAlert>,
    ) {
        let (size, dimension) = (key.0, key.1.as_str());
        let Some(spec) = self.specs.get(&size) else {
            return;
        };
        let slide = spec.slide_ms().max(1);
        let Some(series) = self.series.get_mut(key) else {
            return;
        };
        let before = series.next_start;
        let mut start = series.next_start;
        let settled = |start: Millis| {
            Window::new(start, start.saturating_add(size)).expiry(self.lateness_ms) <= wm
        };
        while settled(start) {
            let found = rows.remove(&start);
            if found.is_none() && series.history.iter().all(|h| h.is_zero()) {
                // Nothing can fire until revenue comes back: jump to the next row or past
                // the last settled window, remembering (up to the trailing length) zeros.
                let last = wm
                    .saturating_sub(self.lateness_ms)
                    .saturating_sub(size)
                    .div_euclid(slide)
                    .saturating_mul(slide);
                let target = rows
                    .range(start..)
                    .next()
                    .map_or(last.saturating_add(slide), |(s, _)| *s)
                    .max(start.saturating_add(slide));
                let skipped = ((target - start) / slide).max(1) as usize;
                for _ in 0..skipped.min(self.cfg.trailing_windows) {
                    series.history.push_back(Decimal::ZERO);
                }
                while series.history.len() > self.cfg.trailing_windows {
                    series.history.pop_front();
                }
                start = target;
                continue;
            }
            let f = found.unwrap_or_default();
            let at = WindowAt {
                size_ms: size,
                dimension,
                start,
                end: start.saturating_add(size),
            };
            series.history.make_contiguous();
            let (history, _) = series.history.as_slices();
            out.extend(alerts::revenue_drop(&self.cfg, at, f.revenue, history));
            if dimension == "all" {
                out.extend(alerts::failed_rate(&self.cfg, at, &f));
            }
            series.history.push_back(f.revenue);
            if series.history.len() > self.cfg.trailing_windows {
                series.history.pop_front();
            }
            start = start.saturating_add(slide);
        }
        series.next_start = start;
        if start != before {
            self.dirty_series.insert(key.clone());
        }
    }

    /// Counts a product's final units of a window against its catalog stock.
    fn on_product_row(&mut self, row: &KpiRow, inv: &dyn Inventory, out: &mut Vec<BusinessAlert>) {
        let Some((category, product)) = row
            .dimension
            .strip_prefix("category=")
            .and_then(|d| d.split_once("/product="))
        else {
            return;
        };
        let Some(units) = row.values.get("units").and_then(|u| u.to_u64()) else {
            return;
        };
        let Some(level) = inv.stock_level(product) else {
            return;
        };
        let Some(reorder) = level.reorder_point else {
            return;
        };
        if level.category != category {
            return;
        }
        let fresh = Stock {
            version: level.updated_at,
            sold: 0,
            alerted: false,
        };
        let st = self
            .stock
            .entry(product.to_owned())
            .or_insert(fresh.clone());
        let mut changed = false;
        if level.updated_at > st.version {
            *st = fresh;
            changed = true;
        }
        if row.window_start >= st.version && units > 0 {
            st.sold = st.sold.saturating_add(units);
            changed = true;
        }
        let stock = level
            .inventory_count
            .saturating_sub(i64::try_from(st.sold).unwrap_or(i64::MAX));
        if stock <= reorder && !st.alerted {
            st.alerted = true;
            changed = true;
            out.push(alerts::low_stock(
                product,
                &level,
                stock,
                reorder,
                row.window_start,
                row.window_end,
            ));
        }
        if changed {
            self.dirty_stock.insert(product.to_owned());
        }
    }

    /// Writes the entries changed since the last flush.
    pub fn flush(
        &mut self,
        out: &mut dyn FnMut(Vec<u8>, Option<Vec<u8>>),
    ) -> Result<(), StateError> {
        for key in std::mem::take(&mut self.dirty_series) {
            if let Some(s) = self.series.get(&key) {
                write_series(&key, s, out)?;
            }
        }
        for product in std::mem::take(&mut self.dirty_stock) {
            if let Some(s) = self.stock.get(&product) {
                write_stock(&product, s, out)?;
            }
        }
        Ok(())
    }

    /// Writes every entry.
    pub fn snapshot(
        &self,
        out: &mut dyn FnMut(Vec<u8>, Option<Vec<u8>>),
    ) -> Result<(), StateError> {
        for (key, s) in &self.series {
            write_series(key, s, out)?;
        }
        for (product, s) in &self.stock {
            write_stock(product, s, out)?;
        }
        Ok(())
    }

    /// Applies one restored entry (its key starts with [`ALERT_PREFIX`]).
    pub fn restore(&mut self, key: &[u8], value: &[u8]) -> Result<(), StateError> {
        if let Ok(rest) = StateError::name_after(key, SERIES_PREFIX) {
            let (size, dimension) = rest
                .split_once('/')
                .and_then(|(s, d)| Some((s.parse::<i64>().ok()?, d)))
                .ok_or_else(|| StateError::bad_key(key))?;
            let s: Series =
                serde_json::from_slice(value).map_err(|e| StateError::bad_value(key, e))?;
            self.series.insert((size, dimension.to_owned()), s);
        } else {
            let product = StateError::name_after(key, STOCK_PREFIX)?;
            let s: Stock =
                serde_json::from_slice(value).map_err(|e| StateError::bad_value(key, e))?;
            self.stock.insert(product.to_owned(), s);
        }
        Ok(())
    }
}

fn write_series(
    key: &SeriesKey,
    s: &Series,
    out: &mut dyn FnMut(Vec<u8>, Option<Vec<u8>>),
) -> Result<(), StateError> {
    let k = format!("{SERIES_PREFIX}{}/{}", key.0, key.1).into_bytes();
    let v = serde_json::to_vec(s).map_err(|e| StateError::bad_value(&k, e))?;
    out(k, Some(v));
    Ok(())
}

fn write_stock(
    product: &str,
    s: &Stock,
    out: &mut dyn FnMut(Vec<u8>, Option<Vec<u8>>),
) -> Result<(), StateError> {
    let k = format!("{STOCK_PREFIX}{product}").into_bytes();
    let v = serde_json::to_vec(s).map_err(|e| StateError::bad_value(&k, e))?;
    out(k, Some(v));
    Ok(())
}

/// The window figures of a revenue row (absent values count as zero).
fn figures(row: &KpiRow) -> WindowFigures {
    let count = |k: &str| row.values.get(k).and_then(|v| v.to_u64()).unwrap_or(0);
    WindowFigures {
        revenue: row.values.get("revenue").copied().unwrap_or_default(),
        attempts: count("attempts"),
        failed: count("failed"),
    }
}

#[cfg(test)]
#[path = "alert_state_tests.rs"]
mod tests;
