//! The RFM state of one stage-1 task: a purchase profile per customer of the task's input
//! partition (order count, lifetime value in the reporting currency, first and last order
//! time, the event time its scores were last measured at, and its revision), plus one
//! event-time timer per profile for the moment its recency score next drops. A completed
//! transaction updates its customer's profile and emits it, measured at
//! max(previous measure, watermark, last order) — never earlier than before, so a late
//! purchase does not make a decayed customer look fresh. When the watermark passes a
//! timer, the profile is re-emitted measured at the timer's time and the next timer is
//! set, so emissions depend on event time only and the latest emission's recency score is
//! the one at the final watermark. Profiles never expire (lifetime value and "lost"
//! customers are the point); state is one small entry per customer who ever bought.
//! Changed profiles are changelogged as `rfm/<customer_id>` → the binary profile of
//! `rfm_codec`; timers are derived from the profiles on restore. The timers are a min-heap
//! with lazy deletion: a purchase pushes the profile's new deadline and leaves the old one
//! in the heap, and a popped entry fires only if it still is its profile's deadline, which
//! fires exactly what an ordered set of current deadlines would, in the same (time,
//! customer) order; the heap is rebuilt from the profiles when stale entries outnumber them.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use hashbrown::HashMap;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::rfm::{RfmConfig, Scores, DAY_MS};
use super::rfm_codec;
use crate::engine::codec::prefixed_key;
use crate::engine::StateError;
use crate::model::time::Millis;
use crate::model::CustomerRfm;

/// Changelog key prefix of RFM profiles.
pub const RFM_PREFIX: &str = "rfm/";

/// What the task remembers per customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RfmProfile {
    pub orders: u64,
    pub value: Decimal,
    pub first: Millis,
    pub last: Millis,
    /// The event time of the latest emission's measure.
    pub as_of: Millis,
    pub revision: u64,
    #[serde(skip)]
    dirty: bool,
}

impl RfmProfile {
    pub(super) fn new(
        orders: u64,
        value: Decimal,
        first: Millis,
        last: Millis,
        as_of: Millis,
        revision: u64,
    ) -> RfmProfile {
        RfmProfile {
            orders,
            value,
            first,
            last,
            as_of,
            revision,
            dirty: false,
        }
    }

    fn due(&self, cfg: &RfmConfig) -> Option<Millis> {
        cfg.recency_changes_at(self.last, self.as_of)
    }
}

/// One emitted profile; the runtime turns it into a [`CustomerRfm`] record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RfmUpdate {
    pub customer: Arc<str>,
    pub profile: RfmProfile,
    pub scores: Scores,
}

impl RfmUpdate {
    /// The output record, with money in `currency` (the reporting currency).
    pub fn to_record(&self, currency: &str) -> CustomerRfm {
        let p = &self.profile;
        CustomerRfm {
            customer_id: self.customer.to_string(),
            revision: p.revision as i64,
            order_count: p.orders as i64,
            lifetime_value: p.value,
            currency: currency.to_owned(),
            first_order_at: p.first,
            last_order_at: p.last,
            as_of: p.as_of,
            recency_days: p.as_of.saturating_sub(p.last).max(0) / DAY_MS,
            recency: self.scores.recency.into(),
            frequency: self.scores.frequency.into(),
            monetary: self.scores.monetary.into(),
            segment: self.scores.segment.to_owned(),
        }
    }
}

/// What an emission updates besides the profile: timers and changelog bookkeeping.
struct Book {
    cfg: RfmConfig,
    /// (due event time, customer): when the customer's recency score drops next, plus
    /// stale entries whose profile has moved on (skipped when popped).
    timers: BinaryHeap<Reverse<(Millis, Arc<str>)>>,
    /// Customers changed since the last flush (each once: `dirty` is set while listed).
    pending: Vec<Arc<str>>,
    changelog: bool,
}

impl Book {
    /// Emits `p` (one revision more), sets its next timer and lists it for the changelog.
    fn emit(&mut self, key: Arc<str>, p: &mut RfmProfile, out: &mut Vec<RfmUpdate>) {
        p.revision += 1;
        if let Some(due) = p.due(&self.cfg) {
            self.timers.push(Reverse((due, key.clone())));
        }
        if self.changelog && !p.dirty {
            p.dirty = true;
            self.pending.push(key.clone());
        }
        out.push(RfmUpdate {
            customer: key,
            profile: *p,
            scores: self.cfg.score(p.orders, p.value, p.last, p.as_of),
        });
    }
}

/// Per-customer RFM profiles, their recency timers and changelog bookkeeping.
pub struct RfmState {
    profiles: HashMap<Arc<str>, RfmProfile, ahash::RandomState>,
    book: Book,
}

impl RfmState {
    pub fn new(cfg: RfmConfig) -> RfmState {
        RfmState {
            profiles: HashMap::with_hasher(ahash::RandomState::new()),
            book: Book {
                cfg,
                timers: BinaryHeap::new(),
                pending: Vec::new(),
                changelog: true,
            },
        }
    }

    /// Customers with a profile.
    pub fn len(&self) -> usize {
        self.profiles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.profiles.is_empty()
    }

    pub fn profile(&self, customer: &str) -> Option<&RfmProfile> {
        self.profiles.get(customer)
    }

    pub fn set_changelog(&mut self, on: bool) {
        self.book.changelog = on;
        if !on {
            self.book.pending.clear();
            self.profiles.values_mut().for_each(|p| p.dirty = false);
        }
    }

    /// Adds a completed purchase of `value` (reporting currency) at event time `ts`, with
    /// the task at watermark `wm`, and emits the customer's profile.
    pub fn on_purchase(
        &mut self,
        customer: &str,
        ts: Millis,
        value: Decimal,
        wm: Millis,
        out: &mut Vec<RfmUpdate>,
    ) {
        let (key, p) = match self.profiles.get_key_value_mut(customer) {
            Some((k, p)) => {
                p.orders += 1;
                p.value = p.value.saturating_add(value);
                p.first = p.first.min(ts);
                p.last = p.last.max(ts);
                (k.clone(), p)
            }
            None => {
                let k: Arc<str> = Arc::from(customer);
                let fresh = RfmProfile {
                    orders: 1,
                    value,
                    first: ts,
                    last: ts,
                    as_of: Millis::MIN,
                    revision: 0,
                    dirty: false,
                };
                let p = self.profiles.entry(k.clone()).or_insert(fresh);
                (k, p)
            }
        };
        p.as_of = p.as_of.max(wm).max(p.last);
        self.book.emit(key, p, out);
        self.compact_timers();
    }

    /// Rebuilds the timer heap from the profiles once stale entries outnumber the live
    /// ones, so that it stays proportional to the profiles.
    fn compact_timers(&mut self) {
        if self.book.timers.len() <= 2 * self.profiles.len() + 64 {
            return;
        }
        let cfg = &self.book.cfg;
        let live: Vec<_> = self
            .profiles
            .iter()
            .filter_map(|(k, p)| p.due(cfg).map(|due| Reverse((due, k.clone()))))
            .collect();
        self.book.timers = BinaryHeap::from(live);
    }

    /// The watermark reached `wm`: re-emits every profile whose recency score dropped at
    /// or before it, measured at the drop.
    pub fn advance(&mut self, wm: Millis, out: &mut Vec<RfmUpdate>) {
        while self.book.timers.peek().is_some_and(|t| t.0 .0 <= wm) {
            let Some(Reverse((due, key))) = self.book.timers.pop() else {
                break;
            };
            if let Some(p) = self.profiles.get_mut(&key) {
                if p.due(&self.book.cfg) == Some(due) {
                    p.as_of = p.as_of.max(due);
                    self.book.emit(key, p, out);
                }
            }
        }
    }

    /// Appends `rfm/<customer>` entries for the profiles changed since the last flush.
    pub fn flush(
        &mut self,
        out: &mut impl FnMut(Vec<u8>, Option<Vec<u8>>),
    ) -> Result<(), StateError> {
        let mut pending = std::mem::take(&mut self.book.pending);
        for customer in pending.drain(..) {
            if let Some(p) = self.profiles.get_mut(&customer) {
                p.dirty = false;
                out(entry_key(&customer), Some(entry_value(p)));
            }
        }
        self.book.pending = pending;
        Ok(())
    }

    /// Every profile as a changelog entry, in customer order.
    pub fn snapshot(
        &self,
        out: &mut impl FnMut(Vec<u8>, Option<Vec<u8>>),
    ) -> Result<(), StateError> {
        let mut all: Vec<(&Arc<str>, &RfmProfile)> = self.profiles.iter().collect();
        all.sort_by(|a, b| a.0.cmp(b.0));
        for (customer, p) in all {
            out(entry_key(customer), Some(entry_value(p)));
        }
        Ok(())
    }

    /// Restores one `rfm/<customer>` entry (a later entry of the same customer replaces
    /// an earlier one, with its timer).
    pub fn restore(&mut self, key: &[u8], value: &[u8]) -> Result<(), StateError> {
        let customer = StateError::name_after(key, RFM_PREFIX)?;
        let p = rfm_codec::decode(value).map_err(|e| StateError::bad_value(key, e))?;
        let k: Arc<str> = Arc::from(customer);
        // A replaced profile's timer stays in the heap, stale.
        self.profiles.insert(k.clone(), p);
        if let Some(due) = p.due(&self.book.cfg) {
            self.book.timers.push(Reverse((due, k)));
        }
        self.compact_timers();
        Ok(())
    }
}

fn entry_key(customer: &str) -> Vec<u8> {
    prefixed_key(RFM_PREFIX.as_bytes(), customer.as_bytes())
}

fn entry_value(p: &RfmProfile) -> Vec<u8> {
    let mut v = Vec::with_capacity(rfm_codec::SIZE);
    rfm_codec::encode(p, &mut v);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> RfmConfig {
        RfmConfig {
            recency_ms: [10, 20, 30, 40],
            ..RfmConfig::default()
        }
    }

    #[test]
    fn purchases_emit_and_recency_decays_on_event_time_timers() {
        let mut s = RfmState::new(cfg());
        let mut out = Vec::new();
        s.on_purchase("a", 100, Decimal::from(60), 90, &mut out);
        s.on_purchase("a", 95, Decimal::from(150), 90, &mut out);
        assert_eq!(out.len(), 2);
        let p = out[1].profile;
        assert_eq!(
            (p.orders, p.value, p.first, p.last),
            (2, Decimal::from(210), 95, 100)
        );
        assert_eq!(out[1].scores.recency, 5);
        assert_eq!(out[1].scores.monetary, 3);
        out.clear();
        s.advance(110, &mut out);
        assert!(out.is_empty(), "recency 5 lasts 10 ms after the last order");
        s.advance(125, &mut out);
        let seen: Vec<(u8, Millis, u64)> = out
            .iter()
            .map(|u| (u.scores.recency, u.profile.as_of, u.profile.revision))
            .collect();
        assert_eq!(seen, vec![(4, 111, 3), (3, 121, 4)]);
        out.clear();
        s.advance(10_000, &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].scores.recency, 1);
        assert_eq!(out[1].scores.segment, "lost");
        out.clear();
        s.advance(20_000, &mut out);
        assert!(out.is_empty(), "no timer after the lowest score");
    }

    #[test]
    fn a_late_purchase_does_not_undo_decay_and_state_restores() {
        let mut s = RfmState::new(cfg());
        let mut out = Vec::new();
        s.on_purchase("a", 100, Decimal::ONE, 100, &mut out);
        s.advance(125, &mut out);
        out.clear();
        s.on_purchase("a", 90, Decimal::ONE, 125, &mut out);
        assert_eq!(out[0].profile.as_of, 125);
        assert_eq!(out[0].scores.recency, 3);
        let mut log = Vec::new();
        s.flush(&mut |k, v| log.push((k, v))).unwrap();
        assert_eq!(log.len(), 1);
        let mut back = RfmState::new(cfg());
        for (k, v) in &log {
            back.restore(k, v.as_deref().unwrap()).unwrap();
        }
        assert_eq!(back.profile("a"), s.profile("a"));
        let (mut a, mut b) = (Vec::new(), Vec::new());
        s.advance(1_000, &mut a);
        back.advance(1_000, &mut b);
        assert_eq!(a, b, "timers are rebuilt from the restored profile");
        assert!(back.restore(b"rfm/x", b"{").is_err());
        assert!(back.restore(b"rfm/x", &[1, 0, 0]).is_err());
        assert!(back.restore(b"nope", b"{}").is_err());
    }

    /// The reference the timers must match: at each step, the profile with the smallest
    /// (due, customer) not after `wm` fires, until none is due.
    fn reference_advance(s: &mut RfmState, wm: Millis, out: &mut Vec<RfmUpdate>) {
        loop {
            let cfg = &s.book.cfg;
            let next = s
                .profiles
                .iter()
                .filter_map(|(k, p)| p.due(cfg).map(|d| (d, k.clone())))
                .filter(|(d, _)| *d <= wm)
                .min();
            let Some((due, key)) = next else { break };
            let p = s.profiles.get_mut(&key).unwrap();
            p.as_of = p.as_of.max(due);
            s.book.emit(key, p, out);
        }
    }

    proptest::proptest! {
        /// Purchases and watermark advances in any order: the lazy timer heap fires what
        /// the ordered set of current deadlines fires, in the same order; the changelog
        /// (flushed several times, compacted by key) restores the same profiles, timers
        /// included.
        #[test]
        fn timers_fire_in_order_and_the_changelog_restores_the_state(
            steps in proptest::collection::vec((0u8..4, 0u8..6, 0i64..200, 1i64..500), 1..120)
        ) {
            let mut s = RfmState::new(cfg());
            let mut model = RfmState::new(cfg());
            let mut log = std::collections::BTreeMap::new();
            let (mut wm, mut a, mut b) = (0, Vec::new(), Vec::new());
            for (op, c, dt, cents) in steps {
                let customer = format!("c{c}");
                match op {
                    0 | 1 => {
                        let v = Decimal::new(cents, 2);
                        s.on_purchase(&customer, wm + dt - 50, v, wm, &mut a);
                        model.on_purchase(&customer, wm + dt - 50, v, wm, &mut b);
                    }
                    2 => {
                        wm += dt / 4;
                        s.advance(wm, &mut a);
                        reference_advance(&mut model, wm, &mut b);
                    }
                    _ => {
                        s.flush(&mut |k, v| {
                            log.insert(k, v);
                        }).unwrap();
                        model.flush(&mut |_, _| {}).unwrap();
                    }
                }
                proptest::prop_assert_eq!(&a, &b);
            }
            s.flush(&mut |k, v| {
                log.insert(k, v);
            }).unwrap();
            let mut back = RfmState::new(cfg());
            for (k, v) in &log {
                back.restore(k, v.as_deref().unwrap()).unwrap();
            }
            proptest::prop_assert_eq!(back.len(), s.len());
            for (k, p) in &s.profiles {
                proptest::prop_assert_eq!(back.profile(k), Some(p));
            }
            let (mut x, mut y) = (Vec::new(), Vec::new());
            s.advance(wm + 1_000, &mut x);
            back.advance(wm + 1_000, &mut y);
            proptest::prop_assert_eq!(x, y);
        }
    }

    #[test]
    fn stale_timers_are_compacted() {
        let mut s = RfmState::new(cfg());
        let mut out = Vec::new();
        for ts in 0..1_000 {
            s.on_purchase("a", ts, Decimal::ONE, 0, &mut out);
        }
        assert!(s.book.timers.len() <= 2 * s.len() + 64);
        out.clear();
        s.advance(2_000, &mut out);
        let seen: Vec<u8> = out.iter().map(|u| u.scores.recency).collect();
        assert_eq!(seen, vec![4, 3, 2, 1]);
    }
}
