//! The fraud state of one stage-1 task: a profile per customer, keyed by customer_id,
//! and the scorer over it. [`FraudState::score`] computes a transaction's features from
//! the profile as it was, scores them and then records the transaction — on arrival, from
//! the input alone (event time, never a clock). A customer idle for longer than the TTL
//! (event time) starts afresh when it next transacts; [`FraudState::sweep`] drops such
//! profiles to bound memory, only once no accepted transaction can still reach them, so
//! scores never depend on when a sweep ran. Changed profiles are changelogged as
//! `fraud/<customer_id>` → the profile in `profile_codec`'s versioned binary form (legacy
//! JSON values still restore), and dropped ones as tombstones.

use hashbrown::HashMap;

use super::features::Features;
use super::profile::{Derived, Profile};
use super::profile_codec;
use super::rules::FraudRules;
use super::score::{score_with, LargeAmountF64, Verdict};
use crate::engine::StateError;
use crate::model::time::Millis;
use crate::model::Transaction;

/// Changelog key prefix of customer profiles.
pub const FRAUD_PREFIX: &str = "fraud/";

/// Event time between two sweeps.
const SWEEP_EVERY_MS: i64 = 3_600_000;

/// Per-customer fraud state and its changelog bookkeeping.
pub struct FraudState {
    rules: FraudRules,
    /// The rules' decimal thresholds as floats, converted once.
    large_f64: LargeAmountF64,
    profiles: HashMap<Box<str>, Profile, ahash::RandomState>,
    /// Changelog keys (`fraud/<customer>`) of the customers changed since the last
    /// flush (those with a profile each once: its `dirty` flag is set while it is
    /// listed), built once so the flush hands them over as they are.
    pending: Vec<Vec<u8>>,
    changelog: bool,
    next_sweep: Millis,
}

/// The changelog key of `customer`'s profile: `fraud/<customer>`.
fn changelog_key(customer: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(FRAUD_PREFIX.len() + customer.len());
    key.extend_from_slice(FRAUD_PREFIX.as_bytes());
    key.extend_from_slice(customer.as_bytes());
    key
}

impl FraudState {
    pub fn new(rules: FraudRules) -> FraudState {
        FraudState {
            large_f64: LargeAmountF64::of(&rules),
            rules,
            profiles: HashMap::with_hasher(ahash::RandomState::new()),
            pending: Vec::new(),
            changelog: true,
            next_sweep: Millis::MIN,
        }
    }

    pub fn rules(&self) -> &FraudRules {
        &self.rules
    }

    /// Customers with a profile.
    pub fn len(&self) -> usize {
        self.profiles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.profiles.is_empty()
    }

    pub fn set_changelog(&mut self, on: bool) {
        self.changelog = on;
        if !on {
            self.pending.clear();
            self.profiles.values_mut().for_each(|p| p.dirty = false);
        }
    }

    /// Scores `t` against its customer's profile, then adds it to the profile.
    pub fn score(&mut self, t: &Transaction) -> Verdict {
        let rules = &self.rules;
        let ttl = rules.state.customer_ttl_ms;
        let profile = match self.profiles.get_mut(t.customer_id.as_str()) {
            Some(p) => {
                if p.expired(t.timestamp, ttl) {
                    *p = Profile::default();
                }
                p
            }
            None => self
                .profiles
                .entry(t.customer_id.as_str().into())
                .or_default(),
        };
        // Derived once for the features, the profile and the score alike.
        let derived = Derived::of(t);
        let features = Features::compute_with(Some(profile), t, &derived, rules);
        profile.record_with(t, &derived, rules);
        if self.changelog && !profile.dirty {
            profile.dirty = true;
            self.pending.push(changelog_key(&t.customer_id));
        }
        score_with(features, derived.amount, self.large_f64, rules)
    }

    /// Drops the profiles of customers idle for longer than the TTL before `horizon`: the
    /// oldest event time an accepted transaction can still have (the task passes its
    /// watermark minus the allowed lateness and its longest window). Runs at most once per
    /// hour of event time.
    pub fn sweep(&mut self, horizon: Millis) {
        if horizon < self.next_sweep {
            return;
        }
        self.next_sweep = horizon.saturating_add(SWEEP_EVERY_MS);
        let ttl = self.rules.state.customer_ttl_ms;
        let mut gone = Vec::new();
        self.profiles.retain(|k, p| {
            let keep = horizon.saturating_sub(p.newest) <= ttl;
            if !keep {
                gone.push(changelog_key(k));
            }
            keep
        });
        if self.changelog {
            self.pending.extend(gone);
        }
    }

    /// Appends `fraud/<customer>` entries for the profiles changed since the last flush.
    pub fn flush(
        &mut self,
        out: &mut impl FnMut(Vec<u8>, Option<Vec<u8>>),
    ) -> Result<(), StateError> {
        let mut pending = std::mem::take(&mut self.pending);
        for key in pending.drain(..) {
            let customer =
                std::str::from_utf8(&key[FRAUD_PREFIX.len()..]).expect("built from a customer id");
            let value = match self.profiles.get_mut(customer) {
                Some(p) => {
                    p.dirty = false;
                    Some(profile_codec::to_bytes(p))
                }
                None => None,
            };
            out(key, value);
        }
        self.pending = pending;
        Ok(())
    }

    /// Every profile as a changelog entry.
    pub fn snapshot(
        &self,
        out: &mut impl FnMut(Vec<u8>, Option<Vec<u8>>),
    ) -> Result<(), StateError> {
        let mut keys: Vec<&Box<str>> = self.profiles.keys().collect();
        keys.sort();
        for k in keys {
            out(
                changelog_key(k),
                Some(profile_codec::to_bytes(&self.profiles[k])),
            );
        }
        Ok(())
    }

    /// Restores one `fraud/<customer>` entry.
    pub fn restore(&mut self, key: &[u8], value: &[u8]) -> Result<(), StateError> {
        let customer = StateError::name_after(key, FRAUD_PREFIX)?;
        let profile = profile_codec::decode(value).map_err(|e| StateError::bad_value(key, e))?;
        self.profiles.insert(customer.into(), profile);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::testkit;

    type Log = Vec<(Vec<u8>, Option<Vec<u8>>)>;

    fn flush(s: &mut FraudState) -> Log {
        let mut log = Vec::new();
        s.flush(&mut |k, v| log.push((k, v))).unwrap();
        log
    }

    #[test]
    fn flush_writes_each_changed_customer_once_and_restores() {
        let mut s = FraudState::new(FraudRules::default());
        for i in 0..5 {
            s.score(&testkit::transaction(i, i % 2, i as i64 * 1_000));
        }
        let log = flush(&mut s);
        assert_eq!(log.len(), 2);
        assert!(flush(&mut s).is_empty());
        let mut back = FraudState::new(FraudRules::default());
        for (k, v) in &log {
            back.restore(k, v.as_deref().unwrap()).unwrap();
        }
        let t = testkit::transaction(9, 1, 9_000);
        assert_eq!(back.score(&t), s.score(&t));
        assert!(back.restore(b"fraud/x", b"{").is_err());
        assert!(back.restore(b"fraud/x", &[9, 0]).is_err());
    }

    #[test]
    fn scores_equal_the_step_by_step_public_path() {
        // FraudState derives the amount float and hashes once and converts the rules'
        // thresholds once; the public functions derive them per call. Bit for bit alike.
        let rules = FraudRules::default();
        let mut s = FraudState::new(rules.clone());
        let mut p = Profile::default();
        for i in 0..300u64 {
            let mut t = testkit::transaction(i, 7, (i as i64 * 97_531) % 7_200_000);
            t.amount = rust_decimal::Decimal::new(((i * 7919) % 900_000) as i64 + 1, 2);
            t.session_id = format!("s-{}", i % 4);
            t.device.fingerprint = format!("d-{}", i % 5);
            t.ip_address = format!("10.0.0.{}", i % 6);
            let f = Features::compute(Some(&p), &t, &rules);
            p.record(&t, &rules);
            let want = crate::fraud::score::score(f, &rules);
            let got = s.score(&t);
            assert_eq!(got.score.to_bits(), want.score.to_bits(), "tx {i}");
            assert_eq!(got, want, "tx {i}");
        }
        assert_eq!(s.profiles["customer-7"], p);
    }

    #[test]
    fn legacy_json_profiles_restore_to_the_same_scores() {
        let mut s = FraudState::new(FraudRules::default());
        for i in 0..40 {
            s.score(&testkit::transaction(i, i % 3, i as i64 * 60_000));
        }
        let mut back = FraudState::new(FraudRules::default());
        for (k, p) in &s.profiles {
            let key = format!("{FRAUD_PREFIX}{k}");
            back.restore(key.as_bytes(), &serde_json::to_vec(p).unwrap())
                .unwrap();
        }
        for i in 40..50 {
            let t = testkit::transaction(i, i % 3, i as i64 * 60_000);
            assert_eq!(back.score(&t), s.score(&t));
        }
    }

    #[test]
    fn idle_customers_start_afresh_and_are_swept() {
        let rules = FraudRules::default();
        let ttl = rules.state.customer_ttl_ms;
        let mut s = FraudState::new(rules);
        for i in 0..3 {
            s.score(&testkit::transaction(i, 1, i as i64));
        }
        let back = s.score(&testkit::transaction(7, 1, ttl + 10));
        assert_eq!(back.features.count_24h, 1);
        assert_eq!(back.features.history, 0);
        flush(&mut s);
        s.sweep(ttl);
        assert_eq!(s.len(), 1, "still within the TTL");
        s.sweep(2 * ttl + 11);
        assert!(s.is_empty());
        let log = flush(&mut s);
        assert_eq!(log, vec![(b"fraud/customer-1".to_vec(), None)]);
    }
}
