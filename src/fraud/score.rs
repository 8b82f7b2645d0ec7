//! Weighted rules over [`Features`]: each rule maps its feature to a strength in [0, 1]
//! (a linear ramp between the rule's minimum and full values), and the score is the
//! noisy-OR `1 - prod(1 - weight * strength)`, which stays in [0, 1], grows with every
//! rule that fires and lets one strong rule suffice. The reasons are the rules that fired,
//! by contribution (ties by name), at most `max_reasons`.

use super::features::Features;
use super::rules::FraudRules;

/// Rule names, as they appear in reasons.
pub mod reason {
    pub const VELOCITY: &str = "velocity";
    pub const SESSION_VELOCITY: &str = "session_velocity";
    pub const LARGE_AMOUNT: &str = "large_amount";
    pub const AMOUNT_OUTLIER: &str = "amount_outlier";
    pub const IMPOSSIBLE_TRAVEL: &str = "impossible_travel";
    pub const NEW_DEVICE: &str = "new_device";
    pub const CARD_TESTING: &str = "card_testing";
    pub const HIGH_RISK_COUNTRY: &str = "high_risk_country";
}

/// The score of one transaction and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub score: f64,
    /// Rules that fired, strongest first.
    pub reasons: Vec<&'static str>,
    pub alert: bool,
    pub features: Features,
}

impl Verdict {
    pub fn reason_strings(&self) -> Vec<String> {
        self.reasons.iter().map(|r| (*r).to_owned()).collect()
    }
}

/// A decimal as the float the features and rules use (0 when out of range).
pub fn decimal_f64(d: rust_decimal::Decimal) -> f64 {
    rust_decimal::prelude::ToPrimitive::to_f64(&d).unwrap_or(0.0)
}

/// The large-amount rule's decimal thresholds as floats: the same values [`score`]
/// converts on every call, converted once per rule set by [`FraudState`](super::FraudState).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LargeAmountF64 {
    min: f64,
    full: f64,
}

impl LargeAmountF64 {
    pub fn of(rules: &FraudRules) -> LargeAmountF64 {
        LargeAmountF64 {
            min: decimal_f64(rules.large_amount.min_amount),
            full: decimal_f64(rules.large_amount.full_amount),
        }
    }
}

/// 0 at or below `lo`, 1 at or above `hi`, linear in between (a step when `lo == hi`).
fn ramp(x: f64, lo: f64, hi: f64) -> f64 {
    if x.is_nan() || x <= lo {
        0.0
    } else if x >= hi {
        1.0
    } else {
        (x - lo) / (hi - lo)
    }
}

/// Each rule's strength for `f`.
fn strengths(
    f: &Features,
    amount_f64: f64,
    large_f64: LargeAmountF64,
    r: &FraudRules,
) -> [(&'static str, f64, f64); 8] {
    let v = &r.velocity;
    let excess = f64::from(f.burst_count) - f.burst_expected;
    let velocity = ramp(
        excess,
        f64::from(v.min_count) - 1.0,
        f64::from(v.full_count),
    );
    let s = &r.session;
    let session = ramp(
        f64::from(f.session_purchases),
        f64::from(s.min_count) - 1.0,
        f64::from(s.full_count),
    );
    let amount = ramp(f.amount_z, r.amount.min_z, r.amount.full_z);
    let large = &r.large_amount;
    let large_amount = ramp(amount_f64, large_f64.min, large_f64.full);
    let travel = if f.travel_km >= r.travel.min_km {
        ramp(f.travel_kmh, r.travel.min_kmh, r.travel.full_kmh)
    } else {
        0.0
    };
    let device = 0.5 * f64::from(u8::from(f.new_device)) + 0.5 * f64::from(u8::from(f.new_ip));
    let c = &r.card_testing;
    let card = ramp(
        f64::from(f.session_small),
        f64::from(c.min_count) - 1.0,
        f64::from(c.full_count),
    );
    let country = f64::from(u8::from(f.high_risk_country));
    [
        (reason::VELOCITY, v.weight, velocity),
        (reason::SESSION_VELOCITY, s.weight, session),
        (reason::AMOUNT_OUTLIER, r.amount.weight, amount),
        (reason::LARGE_AMOUNT, large.weight, large_amount),
        (reason::IMPOSSIBLE_TRAVEL, r.travel.weight, travel),
        (reason::NEW_DEVICE, r.new_device.weight, device),
        (reason::CARD_TESTING, c.weight, card),
        (
            reason::HIGH_RISK_COUNTRY,
            r.high_risk_country.weight,
            country,
        ),
    ]
}

/// Scores `f` under `rules`.
pub fn score(f: Features, rules: &FraudRules) -> Verdict {
    score_with(f, decimal_f64(f.amount), LargeAmountF64::of(rules), rules)
}

/// [`score`] given `f.amount` as a float (`decimal_f64(f.amount)`) and the rules'
/// thresholds already converted: the same verdict without converting them again.
pub fn score_with(f: Features, amount: f64, large: LargeAmountF64, rules: &FraudRules) -> Verdict {
    debug_assert_eq!(amount.to_bits(), decimal_f64(f.amount).to_bits());
    debug_assert_eq!(large, LargeAmountF64::of(rules));
    let mut fired: Vec<(&'static str, f64)> = Vec::new();
    let mut keep = 1.0;
    for (name, weight, strength) in strengths(&f, amount, large, rules) {
        let c = (weight * strength).clamp(0.0, 1.0);
        if c > 0.0 {
            keep *= 1.0 - c;
            fired.push((name, c));
        }
    }
    fired.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
    fired.truncate(rules.max_reasons);
    let score = (1.0 - keep).clamp(0.0, 1.0);
    Verdict {
        score,
        reasons: fired.into_iter().map(|(n, _)| n).collect(),
        alert: score >= rules.threshold,
        features: f,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn quiet_transactions_score_zero() {
        let v = score(Features::default(), &FraudRules::default());
        assert_eq!(v.score, 0.0);
        assert!(v.reasons.is_empty() && !v.alert);
    }

    #[test]
    fn one_strong_rule_alerts_and_reasons_are_ordered() {
        let r = FraudRules::default();
        let f = Features {
            high_risk_country: true,
            new_device: true,
            ..Features::default()
        };
        let v = score(f, &r);
        assert!(v.alert, "{v:?}");
        assert_eq!(
            v.reasons,
            vec![reason::HIGH_RISK_COUNTRY, reason::NEW_DEVICE]
        );
        let expected = 1.0 - (1.0 - r.high_risk_country.weight) * (1.0 - 0.5 * r.new_device.weight);
        assert!((v.score - expected).abs() < 1e-12);
    }

    #[test]
    fn card_testing_needs_several_small_charges() {
        let r = FraudRules::default();
        let one = Features {
            small_charges: 1,
            ..Features::default()
        };
        assert_eq!(score(one, &r).score, 0.0);
        let many = Features {
            session_small: r.card_testing.full_count,
            ..Features::default()
        };
        assert_eq!(score(many, &r).reasons, vec![reason::CARD_TESTING]);
        assert!(score(many, &r).alert);
    }

    #[test]
    fn the_large_amount_rule_ramps_on_the_amount() {
        let r = FraudRules::default();
        let at = |amount| Features {
            amount,
            ..Features::default()
        };
        let full = score(at(r.large_amount.full_amount), &r);
        assert_eq!(full.reasons, vec![reason::LARGE_AMOUNT]);
        assert_eq!(full.score, r.large_amount.weight.clamp(0.0, 1.0));
        assert_eq!(score(at(r.large_amount.min_amount), &r).score, 0.0);
    }

    #[test]
    fn ramp_is_monotone_and_bounded() {
        assert_eq!(ramp(1.0, 1.0, 2.0), 0.0);
        assert_eq!(ramp(1.5, 1.0, 2.0), 0.5);
        assert_eq!(ramp(3.0, 2.0, 2.0), 1.0);
        assert_eq!(ramp(f64::NAN, 0.0, 1.0), 0.0);
    }

    proptest! {
        #[test]
        fn score_is_a_probability_and_monotone(
            burst in 0u32..30, expected in 0.0f64..10.0, z in -10.0f64..50.0,
            km in 0.0f64..20_000.0, kmh in 0.0f64..1e6, dev: bool, ip: bool,
            small in 0u32..30, declined in 0u32..30, hr: bool,
        ) {
            let r = FraudRules::default();
            let f = Features {
                burst_count: burst, burst_expected: expected, amount_z: z, travel_km: km,
                travel_kmh: kmh, new_device: dev, new_ip: ip, small_charges: small,
                declined, high_risk_country: hr, ..Features::default()
            };
            let v = score(f, &r);
            prop_assert!((0.0..=1.0).contains(&v.score));
            prop_assert!(v.reasons.len() <= r.max_reasons);
            prop_assert_eq!(v.alert, v.score >= r.threshold);
            let more = Features { small_charges: small + 1, high_risk_country: true, ..f };
            prop_assert!(score(more, &r).score >= v.score);
        }
    }
}
