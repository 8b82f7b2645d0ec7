//! The fraud rule set: per-rule weights and parameters, the alert threshold and the bounds
//! of the per-customer state, as serde types that deserialise from the committed
//! `fraud_rules.toml` (compiled in as the default) or from the `[engine.fraud]` section of
//! the main configuration. Unknown keys are errors, and [`FraudRules::validate`] and
//! [`FraudRules::from_toml`] return one-line errors that name the offending key.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// The committed default rule file.
pub const DEFAULT_RULES_TOML: &str = include_str!("../../fraud_rules.toml");

/// Bounds of the per-customer state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateRules {
    pub customer_ttl_ms: i64,
    pub max_recent: usize,
    pub max_devices: usize,
    pub max_ips: usize,
    pub max_places: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VelocityRule {
    pub weight: f64,
    pub window_ms: i64,
    pub min_count: u32,
    pub full_count: u32,
    pub baseline_factor: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmountRule {
    pub weight: f64,
    pub min_history: u32,
    pub min_z: f64,
    pub full_z: f64,
    pub min_cv: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LargeAmountRule {
    pub weight: f64,
    pub min_amount: Decimal,
    pub full_amount: Decimal,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionRule {
    pub weight: f64,
    pub window_ms: i64,
    pub min_count: u32,
    pub full_count: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TravelRule {
    pub weight: f64,
    pub min_kmh: f64,
    pub full_kmh: f64,
    pub min_km: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewDeviceRule {
    pub weight: f64,
    pub min_history: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardTestingRule {
    pub weight: f64,
    pub window_ms: i64,
    pub small_amount: Decimal,
    pub min_count: u32,
    pub full_count: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountryRule {
    pub weight: f64,
    pub countries: Vec<String>,
}

/// The whole rule set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FraudRules {
    /// Scores at or above this raise an alert.
    pub threshold: f64,
    /// Reasons reported per transaction, strongest first.
    pub max_reasons: usize,
    pub state: StateRules,
    pub velocity: VelocityRule,
    pub session: SessionRule,
    pub amount: AmountRule,
    pub large_amount: LargeAmountRule,
    pub travel: TravelRule,
    pub new_device: NewDeviceRule,
    pub card_testing: CardTestingRule,
    pub high_risk_country: CountryRule,
}

/// The rule set with every key required (the committed file must be complete).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Complete {
    threshold: f64,
    max_reasons: usize,
    state: StateRules,
    velocity: VelocityRule,
    session: SessionRule,
    amount: AmountRule,
    large_amount: LargeAmountRule,
    travel: TravelRule,
    new_device: NewDeviceRule,
    card_testing: CardTestingRule,
    high_risk_country: CountryRule,
}

impl Default for FraudRules {
    /// The committed `fraud_rules.toml` (a unit test keeps it complete and valid).
    fn default() -> Self {
        let c: Complete = toml::from_str(DEFAULT_RULES_TOML)
            .unwrap_or_else(|e| panic!("fraud_rules.toml: {}", e.message()));
        FraudRules {
            threshold: c.threshold,
            max_reasons: c.max_reasons,
            state: c.state,
            velocity: c.velocity,
            session: c.session,
            amount: c.amount,
            large_amount: c.large_amount,
            travel: c.travel,
            new_device: c.new_device,
            card_testing: c.card_testing,
            high_risk_country: c.high_risk_country,
        }
    }
}

impl FraudRules {
    /// Parses a rule file: keys it leaves out keep their defaults, sections it names must
    /// be complete. The error is one line naming the key (or its line) and the problem.
    pub fn from_toml(text: &str) -> Result<FraudRules, String> {
        let rules: FraudRules = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
            let at = line
                .and_then(|n| text.lines().nth(n - 1).map(|l| (n, l.trim())))
                .map(|(n, l)| format!("line {n} `{l}`: "))
                .unwrap_or_default();
            format!("{at}{}", e.message().replace('\n', " "))
        })?;
        rules.validate()?;
        Ok(rules)
    }

    /// Checks ranges; the error names the key.
    pub fn validate(&self) -> Result<(), String> {
        let unit = [
            ("threshold", self.threshold),
            ("velocity.weight", self.velocity.weight),
            ("session.weight", self.session.weight),
            ("amount.weight", self.amount.weight),
            ("large_amount.weight", self.large_amount.weight),
            ("travel.weight", self.travel.weight),
            ("new_device.weight", self.new_device.weight),
            ("card_testing.weight", self.card_testing.weight),
            ("high_risk_country.weight", self.high_risk_country.weight),
        ];
        for (key, v) in unit {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("fraud.{key} must be in [0, 1], got {v}"));
            }
        }
        let positive = [
            ("state.customer_ttl_ms", self.state.customer_ttl_ms),
            ("velocity.window_ms", self.velocity.window_ms),
            ("session.window_ms", self.session.window_ms),
            ("card_testing.window_ms", self.card_testing.window_ms),
            ("state.max_recent", self.state.max_recent as i64),
            ("state.max_devices", self.state.max_devices as i64),
            ("state.max_ips", self.state.max_ips as i64),
            ("state.max_places", self.state.max_places as i64),
        ];
        for (key, v) in positive {
            if v <= 0 {
                return Err(format!("fraud.{key} must be > 0, got {v}"));
            }
        }
        let ordered = [
            (
                "velocity.full_count",
                f64::from(self.velocity.min_count),
                f64::from(self.velocity.full_count),
            ),
            (
                "session.full_count",
                f64::from(self.session.min_count),
                f64::from(self.session.full_count),
            ),
            ("amount.full_z", self.amount.min_z, self.amount.full_z),
            ("travel.full_kmh", self.travel.min_kmh, self.travel.full_kmh),
            (
                "card_testing.full_count",
                f64::from(self.card_testing.min_count),
                f64::from(self.card_testing.full_count),
            ),
        ];
        for (key, lo, hi) in ordered {
            if !(lo.is_finite() && hi.is_finite() && lo >= 0.0 && hi >= lo) {
                return Err(format!(
                    "fraud.{key} must be finite and >= its minimum ({lo}), got {hi}"
                ));
            }
        }
        let non_negative = [
            ("velocity.baseline_factor", self.velocity.baseline_factor),
            ("amount.min_cv", self.amount.min_cv),
            ("travel.min_km", self.travel.min_km),
        ];
        for (key, v) in non_negative {
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!("fraud.{key} must be finite and >= 0, got {v}"));
            }
        }
        let large = &self.large_amount;
        if large.min_amount <= Decimal::ZERO || large.full_amount < large.min_amount {
            return Err(
                "fraud.large_amount.full_amount must be >= min_amount, and both > 0".into(),
            );
        }
        if self.card_testing.small_amount <= Decimal::ZERO {
            return Err("fraud.card_testing.small_amount must be > 0".into());
        }
        if self.max_reasons == 0 {
            return Err("fraud.max_reasons must be > 0".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_file_is_complete_and_valid() {
        let rules = FraudRules::default();
        rules.validate().unwrap();
        assert_eq!(FraudRules::from_toml(DEFAULT_RULES_TOML).unwrap(), rules);
        assert!(rules.high_risk_country.countries.iter().any(|c| c == "NG"));
    }

    #[test]
    fn partial_files_keep_defaults() {
        let r = FraudRules::from_toml("threshold = 0.7\n").unwrap();
        assert_eq!(r.threshold, 0.7);
        assert_eq!(r.velocity, FraudRules::default().velocity);
    }

    #[test]
    fn errors_are_one_line_and_name_the_key() {
        let e = FraudRules::from_toml("threshold = 0.5\n[travel]\nwieght = 1.0\n").unwrap_err();
        assert!(!e.contains('\n') && e.contains("wieght"), "{e}");
        let e = FraudRules::from_toml("threshold = \"high\"\n").unwrap_err();
        assert!(!e.contains('\n') && e.contains("threshold"), "{e}");
        let e = FraudRules::from_toml("threshold = 1.5\n").unwrap_err();
        assert!(e.contains("fraud.threshold"), "{e}");
        let text = DEFAULT_RULES_TOML.replace("min_z = 4.0", "min_z = 9.0");
        let e = FraudRules::from_toml(&text).unwrap_err();
        assert!(e.contains("amount.full_z"), "{e}");
    }
}
