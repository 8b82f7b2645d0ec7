//! Batch recomputation of the `funnel` and `sessions` KPI families from a list of accepted
//! user events, with plain sorting and loops (no engine code): each customer's events are
//! cut into sessions wherever two consecutive event times are at least the gap apart; a
//! session belongs to every window that contains its last instant (last event + gap − 1);
//! a funnel step counts when its earliest event at or after the previous step's exists;
//! an abandoned cart is a session with an add-to-cart and no purchase. Used by the engine
//! property test and by the pipeline checks against PostgreSQL.

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;

/// (kpi, window start, window end) → values of the `all` row.
pub type Rows = BTreeMap<(String, i64, i64), BTreeMap<String, Decimal>>;

const ORDER: [&str; 4] = ["page_view", "add_to_cart", "checkout_start", "purchase"];

fn steps_reached(events: &[(i64, &str)]) -> usize {
    let mut prev = i64::MIN;
    for (k, step) in ORDER.iter().enumerate() {
        let next = events
            .iter()
            .filter(|(ts, t)| t == step && *ts >= prev)
            .map(|(ts, _)| *ts)
            .min();
        match next {
            Some(ts) => prev = ts,
            None => return k,
        }
    }
    ORDER.len()
}

fn rate(n: u64, d: u64) -> Option<Decimal> {
    (d > 0).then(|| (Decimal::from(n) / Decimal::from(d)).round_dp(4))
}

#[derive(Default)]
struct Acc {
    sessions: u64,
    reached: [u64; 4],
    carts: u64,
    abandoned: u64,
    users: BTreeSet<String>,
    events: u64,
    duration: u64,
}

/// Windows `[s, s + size)`, `s` a multiple of `slide`, containing `ts`.
pub fn windows(ts: i64, size: i64, slide: i64) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let mut s = (ts - size + 1).div_euclid(slide) * slide;
    while s <= ts {
        if s + size > ts {
            out.push((s, s + size));
        }
        s += slide;
    }
    out
}

/// The rows for accepted events `(customer_id, event_type, event time)`, with session gap
/// `gap` and window specs `(size, slide)`.
pub fn recompute<'a>(
    events: impl IntoIterator<Item = (&'a str, &'a str, i64)>,
    gap: i64,
    specs: &[(i64, i64)],
) -> Rows {
    let mut by_customer: BTreeMap<&str, Vec<(i64, &str)>> = BTreeMap::new();
    for (customer, t, ts) in events {
        by_customer.entry(customer).or_default().push((ts, t));
    }
    let mut acc: BTreeMap<(i64, i64), Acc> = BTreeMap::new();
    for (customer, mut evs) in by_customer {
        evs.sort_by_key(|e| e.0);
        let mut sessions: Vec<Vec<(i64, &str)>> = Vec::new();
        for e in evs {
            match sessions.last_mut() {
                Some(s) if e.0 - s[s.len() - 1].0 < gap => s.push(e),
                _ => sessions.push(vec![e]),
            }
        }
        for s in sessions {
            let (first, last) = (s[0].0, s[s.len() - 1].0);
            let has = |t: &str| s.iter().any(|e| e.1 == t);
            let cart = has("add_to_cart");
            for &(size, slide) in specs {
                for w in windows(last + gap - 1, size, slide) {
                    let a = acc.entry(w).or_default();
                    a.sessions += 1;
                    for r in a.reached.iter_mut().take(steps_reached(&s)) {
                        *r += 1;
                    }
                    a.carts += u64::from(cart);
                    a.abandoned += u64::from(cart && !has("purchase"));
                    a.users.insert(customer.to_owned());
                    a.events += s.len() as u64;
                    a.duration += (last - first) as u64;
                }
            }
        }
    }
    let mut out = Rows::new();
    for ((s, e), a) in acc {
        let mut f = BTreeMap::new();
        f.insert("sessions".to_owned(), a.sessions.into());
        for (name, n) in ["viewed", "carted", "checked_out", "purchased"]
            .iter()
            .zip(a.reached)
        {
            f.insert(name.to_string(), n.into());
        }
        f.insert("cart_sessions".into(), a.carts.into());
        f.insert("abandoned_carts".into(), a.abandoned.into());
        let r = a.reached;
        let rates = [
            ("view_to_cart_rate", rate(r[1], r[0])),
            ("cart_to_checkout_rate", rate(r[2], r[1])),
            ("checkout_to_purchase_rate", rate(r[3], r[2])),
            ("conversion_rate", rate(r[3], r[0])),
            ("abandonment_rate", rate(a.abandoned, a.carts)),
        ];
        for (name, v) in rates {
            if let Some(v) = v {
                f.insert(name.into(), v);
            }
        }
        out.insert(("funnel".into(), s, e), f);
        let n = Decimal::from(a.sessions);
        let v = BTreeMap::from([
            ("sessions".to_owned(), n),
            ("active_users".into(), (a.users.len() as u64).into()),
            ("events".into(), a.events.into()),
            ("duration_ms".into(), a.duration.into()),
            (
                "avg_duration_s".into(),
                (Decimal::from(a.duration) / n / Decimal::from(1000)).round_dp(3),
            ),
            (
                "events_per_session".into(),
                (Decimal::from(a.events) / n).round_dp(2),
            ),
        ]);
        out.insert(("sessions".into(), s, e), v);
    }
    out
}
