//! The features of one transaction, computed on arrival from the customer's profile as it
//! was before the transaction (its windows include the transaction itself): count and
//! amount in the last 1 h and 24 h, the burst count in the velocity window against what the
//! customer's own 24 h rate explains, the amount z-score (Welford), the implied travel
//! speed from the previous purchase to a place the customer has not used, new device and
//! new IP address, small or declined charges in the card-testing window, and whether the
//! country is high-risk. [`Features::snapshot`] is the named map stored with an alert.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use super::geo::haversine_km;
use super::profile::{knows, place_of, Derived, Profile, DAY_MS};
use super::rules::FraudRules;
use super::score::decimal_f64;
use crate::model::time::Millis;
use crate::model::{Transaction, TxStatus};

const HOUR_MS: i64 = 3_600_000;

/// Per-transaction fraud features.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Features {
    /// The transaction's amount.
    pub amount: Decimal,
    pub count_1h: u32,
    pub amount_1h: Decimal,
    pub count_24h: u32,
    pub amount_24h: Decimal,
    /// Transactions in the velocity window, this one included.
    pub burst_count: u32,
    /// How many of them the customer's usual rate explains (times the baseline factor).
    pub burst_expected: f64,
    /// Earlier non-declined transactions the amount statistics are based on.
    pub history: u32,
    pub amount_z: f64,
    /// Distance (km) and implied speed (km/h) from the previous purchase, when this one is
    /// at a place the customer has not used before; 0 otherwise.
    pub travel_km: f64,
    pub travel_kmh: f64,
    pub new_device: bool,
    pub new_ip: bool,
    /// Small or declined charges in the card-testing window, this one included.
    pub small_charges: u32,
    pub declined: u32,
    /// Earlier non-declined purchases in the same session within the session window (a
    /// shopper pays once per checkout; only a declined payment is retried).
    pub session_purchases: u32,
    /// Small charges in the same session within the card-testing window, this one
    /// included.
    pub session_small: u32,
    pub high_risk_country: bool,
}

/// Sums over the remembered transactions at or before `ts`, by how far back they are.
#[derive(Default)]
struct Windows {
    n1: u32,
    a1: Decimal,
    n24: u32,
    a24: Decimal,
    burst: u32,
    small: u32,
    declined: u32,
    session_ok: u32,
    session_small: u32,
    /// Transactions in the 24 h before the velocity window, and the oldest of them.
    prior: u32,
    oldest_prior: Option<Millis>,
}

impl Windows {
    fn of(p: &Profile, ts: Millis, session: u64, rules: &FraudRules) -> Windows {
        let (vw, cw) = (rules.velocity.window_ms, rules.card_testing.window_ms);
        let sw = rules.session.window_ms;
        let mut w = Windows::default();
        for r in p.recent.iter().filter(|r| r.ts <= ts) {
            let back = ts - r.ts;
            if back < HOUR_MS {
                w.n1 += 1;
                w.a1 += r.amount;
            }
            if back < DAY_MS {
                w.n24 += 1;
                w.a24 += r.amount;
                if back >= vw {
                    w.prior += 1;
                    w.oldest_prior = Some(w.oldest_prior.map_or(r.ts, |o| o.min(r.ts)));
                }
            }
            if back < vw {
                w.burst += 1;
            }
            if back < cw {
                w.small += u32::from(r.small);
                w.declined += u32::from(r.failed);
                if r.session == session {
                    w.session_small += u32::from(r.small);
                }
            }
            if back < sw && r.session == session && !r.failed {
                w.session_ok += 1;
            }
        }
        w
    }

    /// Transactions in the velocity window that the customer's rate over the 24 h before
    /// it explains (the rate over at least an hour, so a short history is not a rate).
    fn expected_in_window(&self, ts: Millis, window_ms: i64) -> f64 {
        let Some(oldest) = self.oldest_prior else {
            return 0.0;
        };
        let span = (ts - window_ms - oldest).max(HOUR_MS) as f64;
        f64::from(self.prior) * window_ms as f64 / span
    }
}

impl Features {
    /// The features of `t` given the customer's profile before it (`None`: first seen).
    pub fn compute(p: Option<&Profile>, t: &Transaction, rules: &FraudRules) -> Features {
        Features::compute_with(p, t, &Derived::of(t), rules)
    }

    /// [`Features::compute`] given what is derived from `t` (`Derived::of(t)`).
    pub fn compute_with(
        p: Option<&Profile>,
        t: &Transaction,
        d: &Derived,
        rules: &FraudRules,
    ) -> Features {
        let empty = Profile::default();
        let p = p.unwrap_or(&empty);
        let ts = t.timestamp;
        let this = t.amount;
        let w = Windows::of(p, ts, d.session, rules);
        let this_small = this <= rules.card_testing.small_amount;
        let v = &rules.velocity;
        let small = w.small + u32::from(this_small);
        let declined = w.declined + u32::from(t.status == TxStatus::Failed);
        let history = p.amounts.n.min(u64::from(u32::MAX)) as u32;
        let amount_z = if history >= rules.amount.min_history {
            let mean = p.amounts.mean();
            let sd = p
                .amounts
                .variance()
                .sqrt()
                .max(rules.amount.min_cv * mean.abs())
                .max(0.01);
            (d.amount - mean) / sd
        } else {
            0.0
        };
        let loc = &t.location;
        let (mut travel_km, mut travel_kmh) = (0.0, 0.0);
        if let Some(last) = p.last {
            if !knows(&p.places, place_of(loc.lat, loc.lon)) {
                let km = haversine_km(last.lat(), last.lon(), loc.lat, loc.lon);
                let hours = (ts - last.ts).abs().max(60_000) as f64 / HOUR_MS as f64;
                if km.is_finite() {
                    travel_km = km;
                    travel_kmh = km / hours;
                }
            }
        }
        let known = p.seen >= rules.new_device.min_history;
        Features {
            amount: this,
            count_1h: w.n1 + 1,
            amount_1h: w.a1 + this,
            count_24h: w.n24 + 1,
            amount_24h: w.a24 + this,
            burst_count: w.burst + 1,
            burst_expected: v.baseline_factor * w.expected_in_window(ts, v.window_ms),
            history,
            amount_z,
            travel_km,
            travel_kmh,
            new_device: known && !knows(&p.devices, d.device),
            new_ip: known && !knows(&p.ips, d.ip),
            small_charges: small,
            declined,
            session_purchases: w.session_ok,
            session_small: w.session_small + u32::from(this_small),
            high_risk_country: rules
                .high_risk_country
                .countries
                .iter()
                .any(|c| c.eq_ignore_ascii_case(&loc.country)),
        }
    }

    /// The features by name, as stored with an alert.
    pub fn snapshot(&self) -> BTreeMap<String, f64> {
        let f = decimal_f64;
        let b = |x: bool| if x { 1.0 } else { 0.0 };
        [
            ("amount", f(self.amount)),
            ("count_1h", f64::from(self.count_1h)),
            ("amount_1h", f(self.amount_1h)),
            ("count_24h", f64::from(self.count_24h)),
            ("amount_24h", f(self.amount_24h)),
            ("burst_count", f64::from(self.burst_count)),
            ("burst_expected", self.burst_expected),
            ("history", f64::from(self.history)),
            ("amount_z", self.amount_z),
            ("travel_km", self.travel_km),
            ("travel_kmh", self.travel_kmh),
            ("new_device", b(self.new_device)),
            ("new_ip", b(self.new_ip)),
            ("small_charges", f64::from(self.small_charges)),
            ("declined", f64::from(self.declined)),
            ("session_purchases", f64::from(self.session_purchases)),
            ("session_small", f64::from(self.session_small)),
            ("high_risk_country", b(self.high_risk_country)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), if v.is_finite() { v } else { 0.0 }))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::testkit;

    fn profile(txs: &[Transaction], rules: &FraudRules) -> Profile {
        let mut p = Profile::default();
        txs.iter().for_each(|t| p.record(t, rules));
        p
    }

    fn tx(n: u64, ts: Millis, amount: i64) -> Transaction {
        let mut t = testkit::transaction(n, 1, ts);
        t.amount = Decimal::new(amount, 2);
        t
    }

    #[test]
    fn windows_count_and_sum_including_this_one() {
        let r = FraudRules::default();
        let p = profile(
            &[
                tx(1, 0, 1000),
                tx(2, 2 * HOUR_MS, 2000),
                tx(3, 3 * HOUR_MS, 500),
            ],
            &r,
        );
        let f = Features::compute(Some(&p), &tx(4, 3 * HOUR_MS + 60_000, 100), &r);
        assert_eq!((f.count_1h, f.amount_1h), (2, Decimal::new(600, 2)));
        assert_eq!((f.count_24h, f.amount_24h), (4, Decimal::new(3600, 2)));
        assert_eq!(f.burst_count, 2);
        let first = Features::compute(None, &tx(5, 0, 100), &r);
        assert_eq!((first.count_1h, first.count_24h, first.history), (1, 1, 0));
    }

    #[test]
    fn amount_z_needs_history_and_flags_outliers() {
        let r = FraudRules::default();
        let hist: Vec<_> = (0..6)
            .map(|i| tx(i, i as i64 * HOUR_MS, 4000 + i as i64 * 100))
            .collect();
        let p = profile(&hist, &r);
        let f = Features::compute(Some(&p), &tx(9, 7 * HOUR_MS, 90_000), &r);
        assert!(f.amount_z > 6.0, "{f:?}");
        let usual = Features::compute(Some(&p), &tx(9, 7 * HOUR_MS, 4200), &r);
        assert!(usual.amount_z.abs() < 1.0, "{usual:?}");
        let short = profile(&hist[..2], &r);
        assert_eq!(
            Features::compute(Some(&short), &tx(9, 7 * HOUR_MS, 90_000), &r).amount_z,
            0.0
        );
    }

    #[test]
    fn travel_speed_to_an_unknown_place() {
        let r = FraudRules::default();
        let p = profile(&[tx(1, 0, 1000)], &r); // Berlin
        let mut far = tx(2, 30 * 60_000, 1000);
        far.location.lat = 40.7128; // New York, 6,385 km away, 30 min later
        far.location.lon = -74.0060;
        let f = Features::compute(Some(&p), &far, &r);
        assert!((6_300.0..6_450.0).contains(&f.travel_km), "{f:?}");
        assert!(f.travel_kmh > 12_000.0, "{f:?}");
        let home = Features::compute(Some(&p), &tx(3, 60_000, 1000), &r);
        assert_eq!(home.travel_kmh, 0.0);
    }

    #[test]
    fn new_device_and_ip_after_some_history() {
        let r = FraudRules::default();
        let mut other = tx(9, 10_000, 1000);
        other.device.fingerprint = "fp-new".into();
        other.ip_address = "203.0.113.9".into();
        let n = u64::from(r.new_device.min_history);
        let hist: Vec<_> = (0..n).map(|i| tx(i, i as i64, 1000)).collect();
        let short = profile(&hist[1..], &r);
        let f = Features::compute(Some(&short), &other, &r);
        assert!(!f.new_device && !f.new_ip, "too little history");
        let known = profile(&hist, &r);
        let f = Features::compute(Some(&known), &other, &r);
        assert!(f.new_device && f.new_ip);
        assert!(!Features::compute(Some(&known), &tx(3, 5, 1000), &r).new_device);
    }

    #[test]
    fn small_and_declined_charges_in_the_window() {
        let r = FraudRules::default();
        let mut hist = Vec::new();
        for i in 0..4 {
            let mut t = tx(i, i as i64 * 10_000, 200);
            t.status = TxStatus::Failed;
            hist.push(t);
        }
        let p = profile(&hist, &r);
        let f = Features::compute(Some(&p), &tx(9, 50_000, 500), &r);
        assert_eq!((f.small_charges, f.declined), (5, 4));
        let later = Features::compute(Some(&p), &tx(9, 50_000 + 3_600_000, 500), &r);
        assert_eq!(later.small_charges, 1);
    }

    #[test]
    fn burst_against_the_customers_own_rate() {
        let r = FraudRules::default();
        // One purchase an hour: a 15-minute window expects about a quarter of one.
        let hist: Vec<_> = (0..23).map(|i| tx(i, i as i64 * HOUR_MS, 1000)).collect();
        let p = profile(&hist, &r);
        let f = Features::compute(Some(&p), &tx(99, 23 * HOUR_MS, 1000), &r);
        let window_h = r.velocity.window_ms as f64 / HOUR_MS as f64;
        let expected = r.velocity.baseline_factor * 23.0 * window_h / (23.0 - window_h);
        assert!((f.burst_expected - expected).abs() < 0.01, "{f:?}");
    }

    #[test]
    fn high_risk_country_and_snapshot() {
        let r = FraudRules::default();
        let mut t = tx(1, 0, 1000);
        t.location.country = "ng".into();
        let f = Features::compute(None, &t, &r);
        assert!(f.high_risk_country);
        let snap = f.snapshot();
        assert_eq!(snap["high_risk_country"], 1.0);
        assert_eq!(snap.len(), 18);
    }
}
