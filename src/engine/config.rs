//! Engine configuration: every knob of watermarks, windows, emission, dedup, data
//! quality and fraud scoring, with serde (for the central TOML config) and production
//! defaults.

use serde::{Deserialize, Serialize};

use super::currency::KpiConfig;
use super::dedup::DedupConfig;
use super::watermark::WatermarkConfig;
use super::window::WindowSpec;
use crate::analytics::alerts::AlertConfig;
use crate::analytics::rfm::RfmConfig;
use crate::fraud::FraudRules;
use crate::quality::QualityConfig;

/// Windows and emission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WindowConfig {
    /// Windows of the revenue KPI family; sizes must differ (they share the KPI name).
    pub revenue: Vec<WindowSpec>,
    /// Window of the user-activity KPI.
    pub activity: WindowSpec,
    /// Window of the data-quality KPI.
    pub quality: WindowSpec,
    /// How long after a window's end (in event time) late records still update it.
    pub allowed_lateness_ms: i64,
    /// Emit early results of open windows this often (processing time); `None`: never.
    pub early_interval_ms: Option<i64>,
    /// Inactivity gap closing a session window.
    pub session_gap_ms: i64,
}

impl Default for WindowConfig {
    fn default() -> Self {
        WindowConfig {
            revenue: vec![
                WindowSpec::tumbling(60_000),
                WindowSpec::tumbling(3_600_000),
            ],
            activity: WindowSpec::tumbling(60_000),
            quality: WindowSpec::tumbling(60_000),
            allowed_lateness_ms: 300_000,
            early_interval_ms: None,
            session_gap_ms: 30 * 60_000,
        }
    }
}

/// Everything the deterministic engine needs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EngineConfig {
    pub watermark: WatermarkConfig,
    pub windows: WindowConfig,
    pub dedup: DedupConfig,
    pub quality: QualityConfig,
    /// Fraud rules and the bounds of the fraud state (defaults: `fraud_rules.toml`).
    pub fraud: FraudRules,
    /// Reporting currency, conversion rates and the products' top-N.
    pub kpis: KpiConfig,
    /// RFM score thresholds (see `analytics::rfm`).
    pub rfm: RfmConfig,
    /// Business threshold alerts (see `analytics::alerts`).
    pub alerts: AlertConfig,
}

impl EngineConfig {
    /// Checks the configuration; the error names the offending knob.
    pub fn validate(&self) -> Result<(), String> {
        let w = &self.windows;
        if w.revenue.is_empty() {
            return Err("windows.revenue needs at least one window".into());
        }
        for spec in w.revenue.iter().chain([&w.activity, &w.quality]) {
            spec.validate()?;
        }
        for (i, a) in w.revenue.iter().enumerate() {
            if w.revenue[..i].iter().any(|b| b.size_ms() == a.size_ms()) {
                return Err(format!(
                    "windows.revenue: two windows of size {} ms",
                    a.size_ms()
                ));
            }
        }
        let non_negative = [
            ("windows.allowed_lateness_ms", w.allowed_lateness_ms),
            ("windows.session_gap_ms", w.session_gap_ms.saturating_sub(1)),
            (
                "watermark.max_out_of_orderness_ms",
                self.watermark.max_out_of_orderness_ms,
            ),
            ("watermark.idle_timeout_ms", self.watermark.idle_timeout_ms),
            ("dedup.ttl_ms", self.dedup.ttl_ms),
            ("quality.max_future_ms", self.quality.max_future_ms),
            (
                "windows.early_interval_ms",
                w.early_interval_ms.map_or(1, |v| v - 1),
            ),
        ];
        for (name, v) in non_negative {
            if v < 0 {
                return Err(format!("{name} is out of range"));
            }
        }
        self.kpis.validate()?;
        self.rfm.validate()?;
        self.alerts.validate()?;
        self.fraud.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_deserialise_from_partial_toml() {
        EngineConfig::default().validate().unwrap();
        let cfg: EngineConfig = serde_json::from_str(
            r#"{"windows": {"allowed_lateness_ms": 0, "revenue": [{"type": "hopping", "size_ms": 600000, "slide_ms": 60000}]}}"#,
        )
        .unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.windows.allowed_lateness_ms, 0);
        assert_eq!(cfg.dedup.ttl_ms, 7 * 24 * 3_600_000);
    }

    #[test]
    fn rejects_bad_values() {
        let mut cfg = EngineConfig::default();
        cfg.windows
            .revenue
            .push(WindowSpec::hopping(60_000, 30_000));
        assert!(cfg.validate().is_err());
        let mut cfg = EngineConfig::default();
        cfg.windows.early_interval_ms = Some(0);
        assert!(cfg.validate().is_err());
        let mut cfg = EngineConfig::default();
        cfg.watermark.max_out_of_orderness_ms = -1;
        assert!(cfg.validate().is_err());
    }
}
