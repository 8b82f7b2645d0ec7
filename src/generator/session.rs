//! A shopping session and its funnel. When a session starts, its whole course is planned:
//! a landing page view, a few product views (some after a search, later ones often in the
//! same category), add-to-cart on some of them, the occasional removal, then checkout and
//! payment for a share of the carts — with failed payments sometimes retried — and a
//! purchase confirmation. Gaps between steps are log-normal (seconds to minutes) and a
//! session ends after at most `MAX_SESSION_MS`. Promotion days convert better. The steps
//! are turned into `UserEvent`s and `Transaction`s only when the simulation reaches them.

use rand::seq::SliceRandom;
use rand::Rng;
use rand_distr::{Distribution, LogNormal};

use super::catalog::Catalog;
use super::customers::Customer;
use super::ids::uuid;
use super::orders::{self, Context};
use crate::model::time::Millis;
use crate::model::{EventType, Transaction, TxStatus, UserEvent};

/// A session never lasts longer than this (the analytics' session gap is 30 minutes).
pub const MAX_SESSION_MS: u32 = 20 * 60_000;

const SITE: &str = "https://shop.example.com";

/// Where visitors come from, and how often (None = typed the address).
const REFERRERS: &[(Option<&str>, u32)] = &[
    (None, 35),
    (Some("https://www.google.com/"), 30),
    (Some("https://mail.shop.example.com/newsletter"), 10),
    (Some("https://www.facebook.com/"), 8),
    (Some("https://www.instagram.com/"), 7),
    (Some("https://www.bing.com/"), 5),
    (Some("https://deals.affiliate.example.net/"), 5),
];

/// One planned step of a session.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Step {
    Landing,
    Search(u32),
    View(u32),
    Add(u32, u8),
    Remove(u32),
    Checkout,
    Pay(TxStatus),
    Purchase,
}

/// A session in progress.
#[derive(Debug, Clone)]
pub struct Session {
    pub customer: u32,
    pub device: usize,
    pub id: String,
    pub start: Millis,
    pub promo: bool,
    /// (offset from `start` in ms, step), in order.
    pub steps: Vec<(u32, Step)>,
    /// What is in the cart at checkout: (product, quantity).
    pub cart: Vec<(u32, u8)>,
    pub cursor: usize,
    referrer: Option<&'static str>,
    last_url: Option<String>,
}

/// What a step produced.
pub enum Output {
    Event(UserEvent),
    Transaction(Transaction),
}

fn gap(rng: &mut impl Rng, median_ms: f64) -> u32 {
    let d = LogNormal::new(median_ms.ln(), 0.8).expect("valid log-normal");
    d.sample(rng).clamp(1_000.0, 300_000.0) as u32
}

/// What the shop is like when a session starts: a promotion day, and a payment outage
/// (event-time range during which payments mostly fail).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Conditions {
    pub promo: bool,
    pub outage: Option<(Millis, Millis)>,
}

impl Conditions {
    fn failing(&self, at: Millis) -> bool {
        self.outage.is_some_and(|(from, to)| from <= at && at < to)
    }
}

impl Session {
    /// Plans a session of `customer` starting at `start`.
    pub fn plan(
        rng: &mut impl Rng,
        catalog: &Catalog,
        customer: &Customer,
        idx: u32,
        start: Millis,
        when: Conditions,
    ) -> Session {
        let promo = when.promo;
        let bias = customer.spending.bias();
        let mut steps = vec![(0, Step::Landing)];
        let mut cart: Vec<(u32, u8)> = Vec::new();
        let mut t = 0u32;
        let mut last = None;
        let add_p = if promo { 0.22 } else { 0.15 };
        let mut views = 1;
        while views < 12 && rng.gen_bool(0.7) {
            views += 1;
        }
        for _ in 0..views {
            t += gap(rng, 15_000.0);
            let p = catalog.sample_biased(rng, bias, last);
            if rng.gen_bool(0.2) {
                steps.push((t, Step::Search(p)));
                t += gap(rng, 6_000.0);
            }
            steps.push((t, Step::View(p)));
            last = Some(p);
            if rng.gen_bool(add_p) {
                t += gap(rng, 8_000.0);
                let max = catalog.max_qty(p);
                let qty = if max > 1 && rng.gen_bool(0.25) {
                    rng.gen_range(2..=max)
                } else {
                    1
                };
                steps.push((t, Step::Add(p, qty)));
                match cart.iter_mut().find(|(q, _)| *q == p) {
                    Some(line) => line.1 = line.1.saturating_add(qty),
                    None => cart.push((p, qty)),
                }
            }
        }
        if !cart.is_empty() && rng.gen_bool(0.12) {
            t += gap(rng, 10_000.0);
            let (p, _) = cart.remove(rng.gen_range(0..cart.len()));
            steps.push((t, Step::Remove(p)));
        }
        let checkout_p = if promo { 0.65 } else { 0.55 };
        if !cart.is_empty() && rng.gen_bool(checkout_p) {
            t += gap(rng, 12_000.0);
            steps.push((t, Step::Checkout));
            if rng.gen_bool(0.72) {
                t += rng.gen_range(20_000..180_000);
                let outage = |t: u32| when.failing(start + Millis::from(t));
                let mut status = orders::first_status(rng, outage(t));
                steps.push((t, Step::Pay(status)));
                if status == TxStatus::Failed && rng.gen_bool(0.4) {
                    t += rng.gen_range(15_000..120_000);
                    status = orders::retry_status(rng, outage(t));
                    steps.push((t, Step::Pay(status)));
                }
                if status != TxStatus::Failed {
                    steps.push((t + rng.gen_range(500..3_000), Step::Purchase));
                }
            }
        }
        steps.retain(|(off, _)| *off <= MAX_SESSION_MS);
        let referrer = weighted_referrer(rng);
        Session {
            customer: idx,
            device: rng.gen_range(0..customer.devices.len()),
            id: uuid(rng),
            start,
            promo,
            steps,
            cart,
            cursor: 0,
            referrer,
            last_url: None,
        }
    }

    /// Event time of the next step, if any.
    pub fn next_at(&self) -> Option<Millis> {
        self.steps
            .get(self.cursor)
            .map(|(off, _)| self.start + Millis::from(*off))
    }

    /// Skips the steps before `t` (for sessions already under way when the stream starts).
    pub fn skip_before(&mut self, t: Millis) {
        while self.next_at().is_some_and(|at| at < t) {
            self.cursor += 1;
        }
    }

    /// Produces the next step's record and advances.
    pub fn advance(
        &mut self,
        rng: &mut impl Rng,
        catalog: &Catalog,
        customer: &Customer,
    ) -> Option<(Millis, Output)> {
        let at = self.next_at()?;
        let step = self.steps[self.cursor].1;
        self.cursor += 1;
        if let Step::Pay(status) = step {
            let items = self
                .cart
                .iter()
                .map(|&(p, q)| orders::discounted_line(rng, catalog, p, q, self.promo))
                .collect();
            let ctx = Context::usual(rng, customer, self.device);
            let tx = orders::transaction(rng, customer, &self.id, at, status, items, ctx);
            return Some((at, Output::Transaction(tx)));
        }
        let (event_type, product, url) = match step {
            Step::Landing => (EventType::PageView, None, format!("{SITE}/")),
            Step::Search(p) => (
                EventType::Search,
                None,
                format!(
                    "{SITE}/search?q={}",
                    catalog.search_term(p).replace(' ', "+")
                ),
            ),
            Step::View(p) => (EventType::PageView, Some(p), product_url(catalog, p)),
            Step::Add(p, _) => (EventType::AddToCart, Some(p), product_url(catalog, p)),
            Step::Remove(p) => (EventType::RemoveFromCart, Some(p), format!("{SITE}/cart")),
            Step::Checkout => (EventType::CheckoutStart, None, format!("{SITE}/checkout")),
            Step::Purchase => (
                EventType::Purchase,
                None,
                format!("{SITE}/checkout/confirmation"),
            ),
            Step::Pay(_) => unreachable!("handled above"),
        };
        let referrer = match self.last_url.take() {
            Some(prev) => Some(prev),
            None => self.referrer.map(str::to_string),
        };
        self.last_url = Some(url.clone());
        let event = UserEvent {
            event_id: uuid(rng),
            customer_id: customer.id.clone(),
            session_id: self.id.clone(),
            event_type,
            product_id: product.map(|p| catalog.items[p as usize].product.product_id.clone()),
            timestamp: at,
            page_url: url,
            device: customer.devices[self.device].clone(),
            referrer,
        };
        Some((at, Output::Event(event)))
    }
}

fn product_url(catalog: &Catalog, p: u32) -> String {
    format!("{SITE}/p/{}", catalog.items[p as usize].product.product_id)
}

fn weighted_referrer(rng: &mut impl Rng) -> Option<&'static str> {
    REFERRERS.choose_weighted(rng, |r| r.1).expect("weights").0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::customers::Population;
    use crate::generator::ids::{rng_for, Stream};

    #[test]
    fn funnel_is_ordered() {
        let mut rng = rng_for(5, Stream::Sim);
        let catalog = Catalog::generate(&mut rng, 100, 0);
        let people = Population::generate(&mut rng, 100);
        let mut purchases = 0;
        for i in 0..2000 {
            let c = people.sample(&mut rng);
            let s = Session::plan(
                &mut rng,
                &catalog,
                people.get(c),
                c,
                i * 1000,
                Conditions::default(),
            );
            assert_eq!(s.steps[0].1, Step::Landing);
            assert!(
                s.steps.windows(2).all(|w| w[0].0 <= w[1].0),
                "{:?}",
                s.steps
            );
            let pos = |f: &dyn Fn(&Step) -> bool| s.steps.iter().position(|(_, st)| f(st));
            if let Some(buy) = pos(&|st| *st == Step::Purchase) {
                purchases += 1;
                let pay = pos(&|st| matches!(st, Step::Pay(_))).expect("paid");
                let checkout = pos(&|st| *st == Step::Checkout).expect("checked out");
                let add = pos(&|st| matches!(st, Step::Add(..))).expect("added");
                assert!(add < checkout && checkout < pay && pay < buy);
                assert!(!s.cart.is_empty());
            }
        }
        assert!(
            (100..600).contains(&purchases),
            "conversion {purchases}/2000"
        );
    }
}
