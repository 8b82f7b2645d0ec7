//! Money in one reporting currency. Transactions arrive in several ISO 4217 currencies;
//! KPIs never add different currencies: every amount is converted to the reporting
//! currency with a configured rate table ([`KpiConfig`], `[engine.kpis]`), exactly
//! (Decimal multiplication, no rounding; only derived averages are rounded). A
//! transaction in a currency without a rate is kept out of every money KPI and counted as
//! `unconverted` in the overall revenue row. The same section holds N of the per-category
//! top-N product ranking.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::families::same_name;

/// `[engine.kpis]`: the reporting currency, the rates to it, and top-N.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KpiConfig {
    /// The ISO 4217 currency every money KPI is expressed in (and the catalog's cost).
    pub reporting_currency: String,
    /// Units of the reporting currency per unit of each currency (the reporting
    /// currency's own rate must be 1).
    pub rates: BTreeMap<String, Decimal>,
    /// Products ranked per category and window in the `products` family.
    pub top_n: usize,
}

impl Default for KpiConfig {
    fn default() -> Self {
        KpiConfig {
            reporting_currency: "USD".into(),
            rates: [
                ("USD", Decimal::ONE),
                ("EUR", Decimal::new(108, 2)),
                ("GBP", Decimal::new(127, 2)),
            ]
            .into_iter()
            .map(|(c, r)| (c.to_owned(), r))
            .collect(),
            top_n: 10,
        }
    }
}

impl KpiConfig {
    /// Checks the section; the error is one line naming the offending key or currency.
    pub fn validate(&self) -> Result<(), String> {
        let iso = crate::quality::currency::is_iso4217;
        if !iso(&self.reporting_currency) {
            return Err(format!(
                "kpis.reporting_currency {:?} is not an ISO 4217 code",
                self.reporting_currency
            ));
        }
        match self.rates.get(&self.reporting_currency) {
            None => {
                return Err(format!(
                    "kpis.rates has no rate for {} (the reporting currency; its rate is 1)",
                    self.reporting_currency
                ))
            }
            Some(r) if *r != Decimal::ONE => {
                return Err(format!(
                    "kpis.rates.{} must be 1 (the reporting currency)",
                    self.reporting_currency
                ))
            }
            Some(_) => {}
        }
        for (c, r) in &self.rates {
            if !iso(c) {
                return Err(format!("kpis.rates: {c:?} is not an ISO 4217 code"));
            }
            if *r <= Decimal::ZERO {
                return Err(format!("kpis.rates.{c} must be positive"));
            }
        }
        if self.top_n == 0 {
            return Err("kpis.top_n must be at least 1".into());
        }
        Ok(())
    }
}

/// The rate table, looked up per transaction without allocating.
#[derive(Debug, Clone)]
pub struct Converter {
    rates: Vec<(Box<str>, Decimal)>,
}

/// How to turn one transaction's amounts into the reporting currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rate {
    /// Already in the reporting currency.
    Same,
    Times(Decimal),
}

impl Rate {
    #[inline]
    pub fn apply(self, amount: Decimal) -> Decimal {
        match self {
            Rate::Same => amount,
            Rate::Times(r) => amount.saturating_mul(r),
        }
    }
}

impl Converter {
    pub fn new(cfg: &KpiConfig) -> Self {
        Converter {
            rates: cfg
                .rates
                .iter()
                .map(|(c, r)| (c.as_str().into(), *r))
                .collect(),
        }
    }

    /// The rate of `currency`, `None` when the table has none.
    #[inline]
    pub fn rate(&self, currency: &str) -> Option<Rate> {
        self.rates
            .iter()
            .find(|(c, _)| same_name(c, currency))
            .map(|(_, r)| {
                if *r == Decimal::ONE {
                    Rate::Same
                } else {
                    Rate::Times(*r)
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_exactly_and_knows_missing_currencies() {
        let c = Converter::new(&KpiConfig::default());
        assert_eq!(c.rate("USD"), Some(Rate::Same));
        let eur = c.rate("EUR").unwrap();
        assert_eq!(eur.apply(Decimal::new(1999, 2)), Decimal::new(215892, 4));
        assert_eq!(c.rate("JPY"), None);
    }

    #[test]
    fn parses_from_toml() {
        let cfg: KpiConfig = toml::from_str(
            "reporting_currency = \"EUR\"\nrates = { EUR = \"1\", USD = \"0.92\" }\ntop_n = 3",
        )
        .unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.rates["USD"], Decimal::new(92, 2));
        assert_eq!(cfg.top_n, 3);
    }

    #[test]
    fn validation_names_the_missing_currency() {
        let mut cfg = KpiConfig {
            reporting_currency: "EUR".into(),
            ..KpiConfig::default()
        };
        assert!(cfg.validate().unwrap_err().contains("kpis.rates.EUR"));
        cfg.rates.remove("EUR");
        let e = cfg.validate().unwrap_err();
        assert!(e.contains("no rate for EUR"), "{e}");
        let cfg = KpiConfig {
            top_n: 0,
            ..KpiConfig::default()
        };
        assert!(cfg.validate().is_err());
        KpiConfig::default().validate().unwrap();
    }
}
