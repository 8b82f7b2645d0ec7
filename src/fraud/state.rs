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
use super::profile::Profile;
use super::profile_codec;
use super::rules::FraudRules;
use super::score::{score, Verdict};
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
    profiles: HashMap<Box<str>, Profile, ahash::RandomState>,
    /// Customers changed since the last flush (those with a profile each once: its
    /// `dirty` flag is set while it is listed).
    pending: Vec<Box<str>>,
    changelog: bool,
    next_sweep: Millis,
}

impl FraudState {
    pub fn new(rules: FraudRules) -> FraudState {
        FraudState {
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
        let features = Features::compute(Some(profile), t, rules);
        profile.record(t, rules);
        if self.changelog && !profile.dirty {
            profile.dirty = true;
            self.pending.push(t.customer_id.as_str().into());
        }
        score(features, rules)
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
                gone.push(k.clone());
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
        for customer in std::mem::take(&mut self.pending) {
            let key = format!("{FRAUD_PREFIX}{customer}").into_bytes();
            let value = match self.profiles.get_mut(&customer) {
                Some(p) => {
                    p.dirty = false;
                    Some(profile_codec::to_bytes(p))
                }
                None => None,
            };
            out(key, value);
        }
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
            let key = format!("{FRAUD_PREFIX}{k}").into_bytes();
            out(key, Some(profile_codec::to_bytes(&self.profiles[k])));
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
