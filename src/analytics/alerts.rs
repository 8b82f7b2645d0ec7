//! Business threshold alerts, raised by the stage-2 merger on settled KPI windows: revenue
//! below a fraction of its trailing average (`revenue_drop`, per revenue window size and
//! dimension), failed payments over attempts above a threshold (`failed_payment_rate`,
//! overall), and a product's stock at or below its reorder point (`low_stock`: the
//! catalog's `inventory_count` minus the units sold since the catalog entry's `updated_at`).
//! Rules look only at `final` rows, so every alert rests on numbers that no late record
//! will change: an alert is never retracted, its id is deterministic and a replay raises
//! the same alerts. The price is latency: a window's alert comes when its allowed
//! lateness expires. Windows without any order count as zero revenue once their lateness
//! has expired at the merger watermark, so an outage that stops all orders still raises
//! `revenue_drop`. The series state (`alert_state.rs`) is changelogged with the merger.
//! Partials are routed to mergers by series (`KpiRow::series_key`), so one merger sees
//! every window of a series.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::model::time::Millis;
use crate::model::{BusinessAlert, BusinessAlertKind};

/// `[engine.alerts]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AlertConfig {
    /// Raise business alerts at all.
    pub enabled: bool,
    /// `revenue_drop` when a window's revenue is below this fraction of its trailing
    /// average.
    pub revenue_drop_fraction: Decimal,
    /// Windows the trailing average runs over (the previous ones of the same series).
    pub trailing_windows: usize,
    /// Windows of history needed before `revenue_drop` can fire.
    pub min_history: usize,
    /// Trailing averages below this (reporting currency) raise no `revenue_drop`: a thin
    /// series (a small category in one-minute windows) would alert on noise.
    pub min_baseline: Decimal,
    /// `failed_payment_rate` when failed / attempts in a window exceeds this.
    pub failed_rate_threshold: Decimal,
    /// ... and the window has at least this many attempts.
    pub failed_min_attempts: u64,
    /// Raise `low_stock` (needs the catalog's `reorder_point`).
    pub low_stock: bool,
}

impl Default for AlertConfig {
    fn default() -> Self {
        AlertConfig {
            enabled: true,
            revenue_drop_fraction: Decimal::new(5, 1),
            trailing_windows: 12,
            min_history: 6,
            min_baseline: Decimal::ZERO,
            failed_rate_threshold: Decimal::new(25, 2),
            failed_min_attempts: 20,
            low_stock: true,
        }
    }
}

impl AlertConfig {
    /// Checks the knobs; the error names the offending one.
    pub fn validate(&self) -> Result<(), String> {
        let unit = |d: Decimal| d > Decimal::ZERO && d <= Decimal::ONE;
        if !unit(self.revenue_drop_fraction) {
            return Err("alerts.revenue_drop_fraction must be in (0, 1]".into());
        }
        if !unit(self.failed_rate_threshold) {
            return Err("alerts.failed_rate_threshold must be in (0, 1]".into());
        }
        if self.trailing_windows == 0 || self.trailing_windows > 10_000 {
            return Err("alerts.trailing_windows must be 1..=10000".into());
        }
        if self.min_history == 0 || self.min_history > self.trailing_windows {
            return Err("alerts.min_history must be 1..=trailing_windows".into());
        }
        if self.min_baseline < Decimal::ZERO {
            return Err("alerts.min_baseline must not be negative".into());
        }
        Ok(())
    }
}

/// A product's stock figures from the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockLevel {
    pub category: String,
    pub inventory_count: i64,
    pub reorder_point: Option<i64>,
    /// When `inventory_count` was measured (event time of the catalog entry).
    pub updated_at: Millis,
}

/// How the merger sees the product catalog (the runtime's catalog implements it).
pub trait Inventory: Send + Sync {
    fn stock_level(&self, product_id: &str) -> Option<StockLevel>;
}

/// One window's figures for the window rules: revenue (reporting currency), and for the
/// overall dimension the attempts and failed payments.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowFigures {
    pub revenue: Decimal,
    pub attempts: u64,
    pub failed: u64,
}

/// Where a window rule looks: a revenue window size and a dimension, and the window.
#[derive(Debug, Clone, Copy)]
pub struct WindowAt<'a> {
    pub size_ms: i64,
    pub dimension: &'a str,
    pub start: Millis,
    pub end: Millis,
}

impl WindowAt<'_> {
    fn alert_id(&self, kind: BusinessAlertKind) -> String {
        format!(
            "{}|{}|{}|{}",
            kind.as_str(),
            self.size_ms,
            self.dimension,
            self.start
        )
    }

    fn alert(
        &self,
        kind: BusinessAlertKind,
        value: Decimal,
        threshold: Decimal,
        baseline: Option<Decimal>,
        detail: String,
    ) -> BusinessAlert {
        BusinessAlert {
            alert_id: self.alert_id(kind),
            kind,
            dimension: self.dimension.to_owned(),
            window_start: self.start,
            window_end: self.end,
            value: value.round_dp(6),
            threshold: threshold.round_dp(6),
            baseline: baseline.map(|b| b.round_dp(6)),
            detail,
        }
    }
}

/// The `revenue_drop` rule for one window, given the previous windows' revenues (oldest
/// first, at most `trailing_windows`).
pub fn revenue_drop(
    cfg: &AlertConfig,
    at: WindowAt<'_>,
    revenue: Decimal,
    history: &[Decimal],
) -> Option<BusinessAlert> {
    if history.len() < cfg.min_history {
        return None;
    }
    let baseline = history.iter().sum::<Decimal>() / Decimal::from(history.len());
    if baseline <= Decimal::ZERO || baseline < cfg.min_baseline {
        return None;
    }
    let threshold = cfg.revenue_drop_fraction * baseline;
    (revenue < threshold).then(|| {
        let detail = format!(
            "revenue {} in {} is below {} % of its trailing average {} over {} windows",
            revenue.round_dp(2),
            at.dimension,
            (cfg.revenue_drop_fraction * Decimal::ONE_HUNDRED).normalize(),
            baseline.round_dp(2),
            history.len()
        );
        at.alert(
            BusinessAlertKind::RevenueDrop,
            revenue,
            threshold,
            Some(baseline),
            detail,
        )
    })
}

/// The `failed_payment_rate` rule for one window's overall figures.
pub fn failed_rate(
    cfg: &AlertConfig,
    at: WindowAt<'_>,
    figures: &WindowFigures,
) -> Option<BusinessAlert> {
    if figures.attempts == 0 || figures.attempts < cfg.failed_min_attempts {
        return None;
    }
    let rate = Decimal::from(figures.failed) / Decimal::from(figures.attempts);
    (rate > cfg.failed_rate_threshold).then(|| {
        let detail = format!(
            "{} of {} payments failed ({} %), above the {} % threshold",
            figures.failed,
            figures.attempts,
            (rate * Decimal::ONE_HUNDRED).round_dp(1),
            (cfg.failed_rate_threshold * Decimal::ONE_HUNDRED).normalize()
        );
        at.alert(
            BusinessAlertKind::FailedPaymentRate,
            rate,
            cfg.failed_rate_threshold,
            None,
            detail,
        )
    })
}

/// The `low_stock` alert of a product whose stock reached its reorder point in window
/// `[start, end)`; one per catalog entry (`updated_at`).
pub fn low_stock(
    product_id: &str,
    level: &StockLevel,
    stock: i64,
    reorder_point: i64,
    start: Millis,
    end: Millis,
) -> BusinessAlert {
    let kind = BusinessAlertKind::LowStock;
    BusinessAlert {
        alert_id: format!("{}|{product_id}|{}", kind.as_str(), level.updated_at),
        kind,
        dimension: format!("category={}/product={product_id}", level.category),
        window_start: start,
        window_end: end,
        value: Decimal::from(stock),
        threshold: Decimal::from(reorder_point),
        baseline: None,
        detail: format!(
            "{product_id} has {stock} units left (catalog {} minus units sold since), at or below its reorder point {reorder_point}",
            level.inventory_count
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> WindowAt<'static> {
        WindowAt {
            size_ms: 60_000,
            dimension: "all",
            start: 0,
            end: 60_000,
        }
    }

    fn d(x: i64) -> Decimal {
        Decimal::from(x)
    }

    #[test]
    fn revenue_drop_needs_history_and_fires_strictly_below_the_fraction() {
        let cfg = AlertConfig {
            min_history: 3,
            ..AlertConfig::default()
        };
        let hist = [d(100), d(100), d(100)];
        assert!(revenue_drop(&cfg, at(), d(10), &hist[..2]).is_none());
        assert!(
            revenue_drop(&cfg, at(), d(50), &hist).is_none(),
            "not below 50 %"
        );
        let a = revenue_drop(&cfg, at(), d(49), &hist).expect("below 50 %");
        assert_eq!(a.kind, BusinessAlertKind::RevenueDrop);
        assert_eq!(
            (a.value, a.threshold, a.baseline),
            (d(49), d(50), Some(d(100)))
        );
        assert_eq!(a.alert_id, "revenue_drop|60000|all|0");
        assert!(a.detail.contains("below 50 %"), "{}", a.detail);
        // A zero baseline (nothing sold for a while) raises nothing.
        assert!(revenue_drop(&cfg, at(), d(0), &[d(0); 3]).is_none());
        let thin = AlertConfig {
            min_baseline: d(101),
            ..cfg
        };
        assert!(revenue_drop(&thin, at(), d(0), &hist).is_none());
    }

    #[test]
    fn failed_rate_needs_attempts_and_fires_strictly_above() {
        let cfg = AlertConfig::default();
        let f = |attempts, failed| WindowFigures {
            revenue: Decimal::ZERO,
            attempts,
            failed,
        };
        assert!(
            failed_rate(&cfg, at(), &f(19, 19)).is_none(),
            "too few attempts"
        );
        assert!(failed_rate(&cfg, at(), &f(20, 5)).is_none(), "exactly 25 %");
        let a = failed_rate(&cfg, at(), &f(20, 6)).expect("30 %");
        assert_eq!(a.value, Decimal::new(3, 1));
        assert_eq!(a.threshold, Decimal::new(25, 2));
        assert!(
            a.detail.starts_with("6 of 20 payments failed"),
            "{}",
            a.detail
        );
    }

    #[test]
    fn config_is_validated() {
        assert!(AlertConfig::default().validate().is_ok());
        for bad in [
            AlertConfig {
                revenue_drop_fraction: d(2),
                ..AlertConfig::default()
            },
            AlertConfig {
                min_history: 13,
                ..AlertConfig::default()
            },
            AlertConfig {
                failed_rate_threshold: Decimal::ZERO,
                ..AlertConfig::default()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
