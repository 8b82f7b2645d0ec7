//! What the scorer remembers about one customer, bounded: the most recent transactions
//! (event time, session, amount, small/declined flags) in event-time order, capped and pruned to
//! 24 h behind the newest; Welford's running count, mean and M2 of the amounts; the
//! location and time of the latest purchase; and small least-recently-used sets of device
//! fingerprint, IP address and place hashes. Hashes are FNV-1a (the same in every process)
//! and floats are stored as their bit patterns, so a profile restored from the changelog
//! (binary, see `profile_codec`) is bit-for-bit the one that was saved and scores the same.
//! [`Derived`] is what scoring and recording take from a transaction beyond its fields
//! (the amount as a float, the hashes), computed once per transaction.

use std::collections::VecDeque;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::rules::FraudRules;
use super::score::decimal_f64;
use crate::model::time::Millis;
use crate::model::{Transaction, TxStatus};

/// 24 h in ms: the longest window any feature looks back.
pub const DAY_MS: i64 = 24 * 3_600_000;

/// One remembered transaction.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Recent {
    pub ts: Millis,
    /// FNV-1a of the session_id.
    pub session: u64,
    pub amount: Decimal,
    pub small: bool,
    pub failed: bool,
}

/// Welford's online mean and variance, floats kept as bits for exact round trips.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Welford {
    pub n: u64,
    pub(super) mean_bits: u64,
    pub(super) m2_bits: u64,
}

impl Welford {
    pub fn mean(&self) -> f64 {
        f64::from_bits(self.mean_bits)
    }

    /// Sample variance (0 with fewer than two values).
    pub fn variance(&self) -> f64 {
        if self.n < 2 {
            0.0
        } else {
            f64::from_bits(self.m2_bits) / (self.n - 1) as f64
        }
    }

    pub fn add(&mut self, x: f64) {
        self.n += 1;
        let (mut mean, mut m2) = (self.mean(), f64::from_bits(self.m2_bits));
        let d = x - mean;
        mean += d / self.n as f64;
        m2 += d * (x - mean);
        self.mean_bits = mean.to_bits();
        self.m2_bits = m2.to_bits();
    }
}

/// Where and when the latest purchase (by event time) happened.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LastSeen {
    pub ts: Millis,
    pub(super) lat_bits: u64,
    pub(super) lon_bits: u64,
}

impl LastSeen {
    pub fn lat(&self) -> f64 {
        f64::from_bits(self.lat_bits)
    }
    pub fn lon(&self) -> f64 {
        f64::from_bits(self.lon_bits)
    }
}

/// The per-customer state.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Profile {
    /// In event-time order.
    pub recent: VecDeque<Recent>,
    pub amounts: Welford,
    pub last: Option<LastSeen>,
    /// Most recently used last.
    pub devices: Vec<u64>,
    pub ips: Vec<u64>,
    pub places: Vec<u64>,
    /// Transactions seen (saturating).
    pub seen: u32,
    /// Largest event time seen.
    pub newest: Millis,
    /// Changed since the last changelog flush (not state).
    #[serde(skip)]
    pub(crate) dirty: bool,
}

impl PartialEq for Profile {
    /// The state only (not the changelog bookkeeping).
    fn eq(&self, o: &Self) -> bool {
        (
            &self.recent,
            self.amounts,
            self.last,
            &self.devices,
            &self.ips,
            &self.places,
        ) == (&o.recent, o.amounts, o.last, &o.devices, &o.ips, &o.places)
            && (self.seen, self.newest) == (o.seen, o.newest)
    }
}

/// What the features, the profile and the score take from a transaction besides its
/// plain fields, derived once per transaction: the amount as a float and the FNV-1a
/// hashes of its session, device fingerprint and IP address.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Derived {
    /// `decimal_f64(amount)`.
    pub amount: f64,
    pub session: u64,
    pub device: u64,
    pub ip: u64,
}

impl Derived {
    pub fn of(t: &Transaction) -> Derived {
        Derived {
            amount: decimal_f64(t.amount),
            session: fnv1a(&t.session_id),
            device: fnv1a(&t.device.fingerprint),
            ip: fnv1a(&t.ip_address),
        }
    }
}

/// FNV-1a, 64 bit: a hash that is the same in every process.
pub fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The place of a location: a cell of about 1° (≈ 100 km) in latitude and longitude.
pub fn place_of(lat: f64, lon: f64) -> u64 {
    let cell = |v: f64| (v.clamp(-360.0, 360.0).floor() as i64 + 512) as u64;
    (cell(lat) << 16) | cell(lon)
}

/// Whether `set` holds `h`.
pub fn knows(set: &[u64], h: u64) -> bool {
    set.contains(&h)
}

/// Marks `h` as most recently used, dropping the least recently used beyond `cap`.
fn touch(set: &mut Vec<u64>, h: u64, cap: usize) {
    if let Some(i) = set.iter().position(|&x| x == h) {
        set.remove(i);
    }
    set.push(h);
    if set.len() > cap {
        set.remove(0);
    }
}

impl Profile {
    /// Whether the customer was idle longer than the TTL before `ts` (then it starts afresh).
    pub fn expired(&self, ts: Millis, ttl_ms: i64) -> bool {
        self.seen > 0 && ts.saturating_sub(self.newest) > ttl_ms
    }

    /// Adds `t` (after it was scored).
    pub fn record(&mut self, t: &Transaction, rules: &FraudRules) {
        self.record_with(t, &Derived::of(t), rules);
    }

    /// [`Profile::record`] given what is derived from `t` (`Derived::of(t)`).
    pub fn record_with(&mut self, t: &Transaction, d: &Derived, rules: &FraudRules) {
        let caps = &rules.state;
        let ts = t.timestamp;
        let failed = t.status == TxStatus::Failed;
        let r = Recent {
            ts,
            session: d.session,
            amount: t.amount,
            small: t.amount <= rules.card_testing.small_amount,
            failed,
        };
        let at = self.recent.partition_point(|x| x.ts <= ts);
        self.recent.insert(at, r);
        self.newest = self.newest.max(ts);
        if self.seen == 0 {
            self.newest = ts;
        }
        let horizon = self.newest.saturating_sub(DAY_MS);
        while self.recent.front().is_some_and(|x| x.ts <= horizon)
            || self.recent.len() > caps.max_recent
        {
            self.recent.pop_front();
        }
        if !failed {
            self.amounts.add(d.amount);
        }
        let loc = &t.location;
        if self.last.map_or(true, |l| ts >= l.ts) {
            self.last = Some(LastSeen {
                ts,
                lat_bits: loc.lat.to_bits(),
                lon_bits: loc.lon.to_bits(),
            });
        }
        touch(&mut self.devices, d.device, caps.max_devices);
        touch(&mut self.ips, d.ip, caps.max_ips);
        touch(
            &mut self.places,
            place_of(loc.lat, loc.lon),
            caps.max_places,
        );
        self.seen = self.seen.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::testkit;

    #[test]
    fn welford_matches_two_pass() {
        let xs = [12.5, 3.0, 99.99, 42.0, 7.25, 7.25];
        let mut w = Welford::default();
        xs.iter().for_each(|&x| w.add(x));
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (xs.len() - 1) as f64;
        assert!((w.mean() - mean).abs() < 1e-9 && (w.variance() - var).abs() < 1e-9);
    }

    #[test]
    fn recent_is_ordered_pruned_and_capped() {
        let rules = FraudRules::default();
        let mut p = Profile::default();
        for (i, ts) in [5_000, 1_000, 3_000].into_iter().enumerate() {
            p.record(&testkit::transaction(i as u64, 1, ts), &rules);
        }
        let times: Vec<_> = p.recent.iter().map(|r| r.ts).collect();
        assert_eq!(times, vec![1_000, 3_000, 5_000]);
        p.record(&testkit::transaction(9, 1, DAY_MS + 2_000), &rules);
        assert_eq!(p.recent.front().map(|r| r.ts), Some(3_000));
        for i in 0..500 {
            p.record(
                &testkit::transaction(10 + i, 1, DAY_MS + 3_000 + i as i64),
                &rules,
            );
        }
        assert_eq!(p.recent.len(), rules.state.max_recent);
        assert_eq!(p.devices.len(), 1);
    }

    #[test]
    fn lru_sets_are_capped() {
        let mut set = Vec::new();
        for h in 0..10 {
            touch(&mut set, h, 3);
        }
        touch(&mut set, 8, 3);
        assert_eq!(set, vec![7, 9, 8]);
    }

    #[test]
    fn round_trips_exactly() {
        let rules = FraudRules::default();
        let mut p = Profile::default();
        for i in 0..20 {
            p.record(&testkit::transaction(i, 1, i as i64 * 7_777), &rules);
        }
        let json = serde_json::to_vec(&p).unwrap();
        let back: Profile = serde_json::from_slice(&json).unwrap();
        assert_eq!(back, p);
    }
}
