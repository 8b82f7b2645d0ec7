//! The `funnel` KPI family: per window, the sessions that closed in it (see
//! `session_kpis`), how many reached each ordered funnel step (page view → add to cart →
//! checkout start → purchase, the rule in `journey`), the conversion rate between
//! consecutive steps and overall (purchases per session with a page view), and cart
//! abandonment: sessions with an add-to-cart and no purchase, as a count and as a share of
//! the sessions with an add-to-cart. [`FunnelAgg`] holds counts only, so partials of
//! several tasks add up in stage 2, and a closed session's contribution can be replaced
//! when a late event changes it (`retract` then `add`). Rates are derived on output.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::journey::Summary;
use crate::engine::Aggregate;

/// The names of the step counts, in funnel order.
pub const STEPS: [&str; 4] = ["viewed", "carted", "checked_out", "purchased"];

/// The names of the rates between consecutive steps.
const STEP_RATES: [&str; 3] = [
    "view_to_cart_rate",
    "cart_to_checkout_rate",
    "checkout_to_purchase_rate",
];

/// `n / d` to four decimal places; `None` when `d` is zero.
pub fn rate(n: u64, d: u64) -> Option<Decimal> {
    (d > 0).then(|| (Decimal::from(n) / Decimal::from(d)).round_dp(4))
}

/// Funnel partial aggregate of one window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FunnelAgg {
    pub sessions: u64,
    /// Sessions reaching each step, indexed like [`STEPS`].
    pub reached: [u64; 4],
    /// Sessions with an add-to-cart (in any order).
    pub cart_sessions: u64,
    /// Sessions with an add-to-cart and no purchase.
    pub abandoned: u64,
}

impl FunnelAgg {
    pub fn add(&mut self, s: &Summary) {
        self.apply(s, |a, n| *a += n);
    }

    /// Takes back a contribution added before (the counts never go below zero).
    pub fn retract(&mut self, s: &Summary) {
        self.apply(s, |a, n| *a = a.saturating_sub(n));
    }

    fn apply(&mut self, s: &Summary, f: impl Fn(&mut u64, u64)) {
        f(&mut self.sessions, 1);
        for r in self.reached.iter_mut().take(usize::from(s.steps)) {
            f(r, 1);
        }
        f(&mut self.cart_sessions, u64::from(s.cart));
        f(&mut self.abandoned, u64::from(s.abandoned()));
    }
}

impl Aggregate for FunnelAgg {
    fn merge(&mut self, o: &Self) {
        self.sessions += o.sessions;
        for (a, b) in self.reached.iter_mut().zip(o.reached) {
            *a += b;
        }
        self.cart_sessions += o.cart_sessions;
        self.abandoned += o.abandoned;
    }

    fn write_values(&self, out: &mut BTreeMap<String, Decimal>) {
        out.insert("sessions".into(), self.sessions.into());
        for (name, n) in STEPS.iter().zip(self.reached) {
            out.insert((*name).into(), n.into());
        }
        out.insert("cart_sessions".into(), self.cart_sessions.into());
        out.insert("abandoned_carts".into(), self.abandoned.into());
        let r = self.reached;
        for (k, name) in STEP_RATES.iter().enumerate() {
            if let Some(v) = rate(r[k + 1], r[k]) {
                out.insert((*name).into(), v);
            }
        }
        if let Some(v) = rate(r[3], r[0]) {
            out.insert("conversion_rate".into(), v);
        }
        if let Some(v) = rate(self.abandoned, self.cart_sessions) {
            out.insert("abandonment_rate".into(), v);
        }
    }

    fn from_values(v: &BTreeMap<String, Decimal>) -> Option<Self> {
        let n = |k: &str| v.get(k).and_then(|d| u64::try_from(*d).ok());
        let mut reached = [0; 4];
        for (slot, name) in reached.iter_mut().zip(STEPS) {
            *slot = n(name)?;
        }
        Some(FunnelAgg {
            sessions: n("sessions")?,
            reached,
            cart_sessions: n("cart_sessions")?,
            abandoned: n("abandoned_carts")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(steps: u8, cart: bool, purchase: bool) -> Summary {
        Summary {
            steps,
            cart,
            purchase,
            events: 3,
            duration_ms: 10,
        }
    }

    #[test]
    fn counts_rates_and_abandonment() {
        let mut f = FunnelAgg::default();
        f.add(&summary(4, true, true));
        f.add(&summary(2, true, false));
        f.add(&summary(1, false, false));
        f.add(&summary(0, true, false)); // a cart without a page view
        let mut v = BTreeMap::new();
        f.write_values(&mut v);
        let d = |n: i64, s: u32| Decimal::new(n, s);
        assert_eq!(v["sessions"], d(4, 0));
        assert_eq!(
            [v["viewed"], v["carted"], v["checked_out"], v["purchased"]],
            [d(3, 0), d(2, 0), d(1, 0), d(1, 0)]
        );
        assert_eq!(v["view_to_cart_rate"], d(6667, 4));
        assert_eq!(v["cart_to_checkout_rate"], d(5, 1));
        assert_eq!(v["checkout_to_purchase_rate"], d(1, 0));
        assert_eq!(v["conversion_rate"], d(3333, 4));
        assert_eq!(v["cart_sessions"], d(3, 0));
        assert_eq!(v["abandoned_carts"], d(2, 0));
        assert_eq!(v["abandonment_rate"], d(6667, 4));
        // stage 2 rebuilds the counts from the row, rates are derived again
        let mut g = FunnelAgg::from_values(&v).unwrap();
        assert_eq!(g, f);
        g.merge(&f);
        g.retract(&summary(4, true, true));
        assert_eq!(g.reached, [5, 3, 1, 1]);
        assert_eq!(g.sessions, 7);
    }

    #[test]
    fn no_rates_without_a_denominator() {
        let mut f = FunnelAgg::default();
        f.add(&summary(0, false, false));
        let mut v = BTreeMap::new();
        f.write_values(&mut v);
        assert!(!v.keys().any(|k| k.ends_with("_rate")), "{v:?}");
    }
}
