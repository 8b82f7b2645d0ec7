//! One user session's course through the shop: the per-session aggregate of the session
//! windows (`engine::session`), built from a customer's user events. It counts the events,
//! spans the first to the last event time and decides the ordered funnel: a session
//! reaches `page_view` with any page view; `add_to_cart` with an add-to-cart at or after
//! (event time) its first page view; `checkout_start` with a checkout start at or after
//! the first add-to-cart that counted; `purchase` with a purchase at or after the first
//! checkout start that counted. A cart is abandoned when the session has an add-to-cart and
//! no purchase at all. The decision depends on event times only, never on arrival order, and
//! a [`Journey`] merges with another (sessions merge when an out-of-order event bridges
//! them) to what one journey over both sets of events gives: it keeps the earliest page
//! view and, per later step, the event times that can still decide the step (those not
//! after the step's current earliest qualifying time; see [`Journey::prune`]).

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::engine::codec::{self, BinaryForm, Reader};
use crate::engine::Aggregate;
use crate::model::time::Millis;
use crate::model::EventType;

/// Event times kept per step at most. Beyond it (a session with more distinct add-to-cart,
/// checkout or purchase times before the previous step than this, which only a bot
/// produces) the earliest are dropped, which can only make a step count later.
pub const MAX_STEP_TIMES: usize = 256;

/// The funnel steps after the page view, in order.
const LATER_STEPS: usize = 3;

/// The per-session aggregate.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Journey {
    /// User events of the session (duplicates included: events carry no dedup key).
    pub events: u64,
    /// First and last event time.
    pub span: Option<(Millis, Millis)>,
    /// The earliest page view.
    pub view: Option<Millis>,
    /// Add-to-cart, checkout-start and purchase times, each sorted and distinct.
    pub later: [Vec<Millis>; LATER_STEPS],
}

/// What a closed session contributes to the funnel and session KPIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Ordered funnel steps reached, 0 (no page view) to 4 (purchase).
    pub steps: u8,
    /// Any add-to-cart.
    pub cart: bool,
    /// Any purchase.
    pub purchase: bool,
    pub events: u64,
    /// Last minus first event time.
    pub duration_ms: u64,
}

impl Summary {
    /// An add-to-cart and no purchase.
    pub fn abandoned(&self) -> bool {
        self.cart && !self.purchase
    }
}

fn insert_sorted(v: &mut Vec<Millis>, ts: Millis) {
    if let Err(i) = v.binary_search(&ts) {
        v.insert(i, ts);
    }
}

impl Journey {
    /// Adds one user event at event time `ts`.
    pub fn add(&mut self, t: EventType, ts: Millis) {
        self.events += 1;
        self.span = Some(self.span.map_or((ts, ts), |(a, b)| (a.min(ts), b.max(ts))));
        match t {
            EventType::PageView => self.view = Some(self.view.map_or(ts, |v| v.min(ts))),
            EventType::AddToCart => insert_sorted(&mut self.later[0], ts),
            EventType::CheckoutStart => insert_sorted(&mut self.later[1], ts),
            EventType::Purchase => insert_sorted(&mut self.later[2], ts),
            EventType::Search | EventType::RemoveFromCart => return,
        }
        self.prune();
    }

    /// The earliest time each step is reached in order (page view, add-to-cart, checkout
    /// start, purchase); `None` from the first step not reached on.
    pub fn chain(&self) -> [Option<Millis>; 4] {
        let mut out = [self.view, None, None, None];
        for k in 0..LATER_STEPS {
            out[k + 1] = out[k].and_then(|prev| {
                let v = &self.later[k];
                v.get(v.partition_point(|t| *t < prev)).copied()
            });
        }
        out
    }

    /// Drops the times that can no longer decide a step. Steps only get reached earlier as
    /// events are added (a step's qualifying set grows when the previous step's time
    /// drops), so a time after the step's current earliest qualifying time never becomes
    /// the earliest; and a time before it that is not qualifying now may become so.
    fn prune(&mut self) {
        let chain = self.chain();
        for (k, v) in self.later.iter_mut().enumerate() {
            if let Some(t) = chain[k + 1] {
                v.truncate(v.partition_point(|x| *x <= t));
            }
            if v.len() > MAX_STEP_TIMES {
                v.drain(..v.len() - MAX_STEP_TIMES);
            }
        }
    }

    /// The session's contribution; `None` without events.
    pub fn summary(&self) -> Option<Summary> {
        let (first, last) = self.span?;
        let steps = self.chain().iter().take_while(|t| t.is_some()).count() as u8;
        Some(Summary {
            steps,
            cart: !self.later[0].is_empty(),
            purchase: !self.later[2].is_empty(),
            events: self.events,
            duration_ms: last.abs_diff(first),
        })
    }
}

impl Aggregate for Journey {
    fn merge(&mut self, o: &Self) {
        self.events += o.events;
        self.span = match (self.span, o.span) {
            (Some((a, b)), Some((c, d))) => Some((a.min(c), b.max(d))),
            (s, None) | (None, s) => s,
        };
        self.view = match (self.view, o.view) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (v, None) | (None, v) => v,
        };
        for (v, w) in self.later.iter_mut().zip(&o.later) {
            for t in w {
                insert_sorted(v, *t);
            }
        }
        self.prune();
    }

    fn write_values(&self, out: &mut BTreeMap<String, Decimal>) {
        if let Some(s) = self.summary() {
            out.insert("events".into(), s.events.into());
            out.insert("steps".into(), s.steps.into());
            out.insert("duration_ms".into(), s.duration_ms.into());
        }
    }

    /// Sessions are per customer and stay in their stage-1 task: they never reach the
    /// stage-2 merger as rows, so there is nothing to rebuild them from.
    fn from_values(_: &BTreeMap<String, Decimal>) -> Option<Self> {
        None
    }
}

/// Changelog form: the event count, the span (a 0/1 byte, then first and last time), the
/// earliest page view (a 0/1 byte, then the time) and per later step a count and the
/// times; a step's times that are not strictly increasing are rejected as damage.
impl BinaryForm for Journey {
    fn encode(&self, out: &mut Vec<u8>) {
        codec::put_u64(out, self.events);
        match self.span {
            None => out.push(0),
            Some((a, b)) => {
                out.push(1);
                codec::put_i64(out, a);
                codec::put_i64(out, b);
            }
        }
        codec::put_opt_i64(out, self.view);
        for v in &self.later {
            codec::put_u32(out, v.len() as u32);
            v.iter().for_each(|t| codec::put_i64(out, *t));
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, String> {
        let events = r.u64()?;
        let span = if r.bool()? {
            Some((r.i64()?, r.i64()?))
        } else {
            None
        };
        let view = r.opt_i64()?;
        let mut later: [Vec<Millis>; LATER_STEPS] = Default::default();
        for v in &mut later {
            let n = r.count(8)?;
            v.reserve_exact(n);
            for _ in 0..n {
                let t = r.i64()?;
                if v.last().is_some_and(|p| *p >= t) {
                    return Err("step times out of order".into());
                }
                v.push(t);
            }
        }
        Ok(Journey {
            events,
            span,
            view,
            later,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use EventType::*;

    fn journey(events: &[(EventType, Millis)]) -> Journey {
        let mut j = Journey::default();
        for (t, ts) in events {
            j.add(*t, *ts);
        }
        j
    }

    #[test]
    fn a_step_counts_only_at_or_after_the_previous_one() {
        // cart before any page view, checkout after the view but before the cart
        let j = journey(&[(AddToCart, 5), (CheckoutStart, 12), (PageView, 10)]);
        assert_eq!(j.summary().unwrap().steps, 1);
        // a later cart then qualifies, but the checkout before it does not
        let mut k = j.clone();
        k.add(AddToCart, 15);
        assert_eq!(k.summary().unwrap().steps, 2);
        k.add(Purchase, 30);
        assert_eq!(k.summary().unwrap().steps, 2, "purchase without checkout");
        k.add(CheckoutStart, 20);
        assert_eq!(k.summary().unwrap().steps, 4);
        // the same millisecond is in order
        let same = journey(&[
            (Purchase, 7),
            (CheckoutStart, 7),
            (AddToCart, 7),
            (PageView, 7),
        ]);
        assert_eq!(same.summary().unwrap().steps, 4);
        // no page view: nothing reached, whatever else happened
        let none = journey(&[(AddToCart, 1), (CheckoutStart, 2), (Purchase, 3)]);
        assert_eq!(none.summary().unwrap().steps, 0);
    }

    #[test]
    fn abandonment_is_a_cart_without_any_purchase() {
        let s = journey(&[(PageView, 1), (AddToCart, 2), (CheckoutStart, 3)]).summary();
        assert!(s.unwrap().abandoned());
        let s = journey(&[(PageView, 1), (AddToCart, 2), (Purchase, 4)]).summary();
        assert!(!s.unwrap().abandoned(), "a purchase, even out of order");
        let s = journey(&[(PageView, 1), (Search, 2)]).summary().unwrap();
        assert!(!s.abandoned() && !s.cart);
        assert_eq!((s.events, s.duration_ms), (2, 1));
    }

    #[test]
    fn merging_equals_one_journey_over_all_events_in_any_split() {
        let events = [
            (AddToCart, 40),
            (PageView, 50),
            (CheckoutStart, 45),
            (AddToCart, 60),
            (Purchase, 47),
            (PageView, 30),
            (CheckoutStart, 70),
            (Purchase, 80),
            (RemoveFromCart, 55),
        ];
        let whole = journey(&events);
        assert_eq!(whole.summary().unwrap().steps, 4);
        assert_eq!(whole.chain(), [Some(30), Some(40), Some(45), Some(47)]);
        for cut in 0..=events.len() {
            for rev in [false, true] {
                let (mut a, b) = (journey(&events[..cut]), journey(&events[cut..]));
                let mut b2 = b.clone();
                if rev {
                    b2.merge(&a);
                    a = b2;
                } else {
                    a.merge(&b);
                }
                assert_eq!(a.summary(), whole.summary(), "cut {cut} rev {rev}");
                assert_eq!(a.chain(), whole.chain());
            }
        }
    }

    #[test]
    fn step_times_stay_bounded() {
        let mut j = journey(&[(PageView, 1_000_000)]);
        for ts in 0..10_000 {
            j.add(AddToCart, ts);
        }
        assert!(j.later[0].len() <= MAX_STEP_TIMES);
        j.add(AddToCart, 2_000_000);
        assert_eq!(j.later[0].last(), Some(&2_000_000));
        assert_eq!(j.summary().unwrap().steps, 2);
        j.add(AddToCart, 1_500_000);
        assert_eq!(j.later[0].last(), Some(&1_500_000), "pruned after the step");
    }
}
