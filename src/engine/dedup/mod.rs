//! Exact deduplication of transactions by `transaction_id` with an event-time TTL. An id is
//! remembered until the task watermark passes its event time plus the TTL (rounded up to
//! the next second); a record whose id is remembered is a duplicate. Canonical lowercase
//! UUID ids live in a 20-byte-per-slot open-addressing table ([`table::IdTable`]); any
//! other id is kept verbatim in an exact overflow map, so no collision can ever make two
//! distinct ids equal. Expiry is checked on lookup (so results never depend on how far the
//! incremental sweep has got) and swept incrementally to reclaim memory. Every insert and
//! expiry is recorded for the changelog as `dedup/<id>` → u32 LE expiry, or a tombstone.

pub mod id;
pub mod table;

use hashbrown::HashMap;
use serde::{Deserialize, Serialize};

use self::id::{parse_uuid, write_uuid, CompactId};
use self::table::{Hashed, IdTable};
use super::state::{self, StateError};
use crate::model::time::Millis;

/// Dedup knobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DedupConfig {
    /// How long (in event time) an id is remembered.
    pub ttl_ms: i64,
    /// Table slots examined by the incremental sweep per processed record.
    pub sweep_per_record: usize,
}

impl Default for DedupConfig {
    fn default() -> Self {
        DedupConfig {
            ttl_ms: 7 * 24 * 3_600_000,
            sweep_per_record: 4,
        }
    }
}

/// Event time in whole seconds, clamped to the u32 range.
fn secs_floor(ms: Millis) -> u32 {
    ms.div_euclid(1_000).clamp(0, i64::from(u32::MAX)) as u32
}

fn secs_ceil(ms: Millis) -> u32 {
    let s = ms.div_euclid(1_000) + i64::from(ms.rem_euclid(1_000) != 0);
    s.clamp(1, i64::from(u32::MAX)) as u32
}

/// A transaction id prepared for [`Deduplicator::check_parsed`] by
/// [`Deduplicator::prefetch`]: parsed once, hashed once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedId(Option<Hashed>);

/// Remembers transaction ids for an event-time TTL.
pub struct Deduplicator {
    cfg: DedupConfig,
    table: IdTable,
    overflow: HashMap<Box<str>, u32, ahash::RandomState>,
    overflow_swept_at: u32,
    /// Changelog records since the last flush: UUID ids with their expiry (0: forgotten)
    /// and, apart (the key spaces are disjoint, so per-key order is kept), other ids.
    pending: Vec<(u128, u32)>,
    pending_other: Vec<(Box<str>, Option<u32>)>,
    changelog: bool,
}

impl Deduplicator {
    pub fn new(cfg: DedupConfig) -> Self {
        Deduplicator {
            cfg,
            table: IdTable::default(),
            overflow: HashMap::with_hasher(ahash::RandomState::new()),
            overflow_swept_at: 0,
            pending: Vec::new(),
            pending_other: Vec::new(),
            changelog: true,
        }
    }

    /// Switches changelog recording off or on.
    pub fn set_changelog(&mut self, on: bool) {
        self.changelog = on;
        if !on {
            self.pending.clear();
            self.pending_other.clear();
        }
    }

    /// Number of remembered ids (including expired ones not swept yet).
    pub fn len(&self) -> usize {
        self.table.len() + self.overflow.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes held by the UUID table, plus an estimate for the overflow map (slot,
    /// control byte and the boxed string).
    pub fn allocated_bytes(&self) -> usize {
        let per_overflow = std::mem::size_of::<(Box<str>, u32)>() + 1;
        self.table.allocated_bytes()
            + self.overflow.capacity() * per_overflow
            + self.overflow.keys().map(|k| k.len()).sum::<usize>()
    }

    /// Parses and hashes `id` for [`Self::check_parsed`] and hints the CPU to fetch the
    /// table entries it will be looked up in; no effect on the state.
    #[inline]
    pub fn prefetch(&self, id: &str) -> ParsedId {
        let parsed = ParsedId(parse_uuid(id).map(|u| self.table.hashed(u)));
        if let ParsedId(Some(h)) = parsed {
            self.table.prefetch(h);
        }
        parsed
    }

    /// Checks `id` (event time `ts`) against the remembered ids at watermark `wm`. Returns
    /// true for a duplicate; otherwise remembers the id and returns false.
    #[inline]
    pub fn check_and_insert(&mut self, id: &str, ts: Millis, wm: Millis) -> bool {
        let parsed = self.prefetch(id);
        self.check_parsed(id, parsed, ts, wm)
    }

    /// [`Self::check_and_insert`] with `parsed` = `self.prefetch(id)`, computed earlier
    /// (the table may have changed since, not the id).
    #[inline]
    pub fn check_parsed(&mut self, id: &str, parsed: ParsedId, ts: Millis, wm: Millis) -> bool {
        let now = secs_floor(wm);
        let expiry = secs_ceil(ts.saturating_add(self.cfg.ttl_ms));
        if let ParsedId(Some(h)) = parsed {
            debug_assert_eq!(parse_uuid(id), Some(h.key()));
            if self.table.check_insert(h, now, expiry) {
                return true;
            }
            if self.changelog {
                self.pending.push((h.key(), expiry));
            }
        } else {
            if self.overflow.get(id).is_some_and(|e| *e > now) {
                return true;
            }
            self.overflow.insert(id.into(), expiry);
            if self.changelog {
                self.pending_other.push((id.into(), Some(expiry)));
            }
        }
        false
    }

    /// Incrementally forgets ids expired at watermark `wm`.
    pub fn sweep(&mut self, wm: Millis) {
        let now = secs_floor(wm);
        let (pending, log) = (&mut self.pending, self.changelog);
        let pending_other = &mut self.pending_other;
        self.table.sweep(now, self.cfg.sweep_per_record, |k| {
            if log {
                pending.push((k, 0));
            }
        });
        // The overflow map holds only non-UUID ids (rare); sweep it whole once a minute
        // of event time.
        if !self.overflow.is_empty() && now >= self.overflow_swept_at.saturating_add(60) {
            self.overflow_swept_at = now;
            self.overflow.retain(|k, e| {
                let keep = *e > now;
                if !keep && log {
                    pending_other.push((k.clone(), None));
                }
                keep
            });
        }
    }

    fn entry_key(id: &CompactId) -> Vec<u8> {
        let p = state::DEDUP_PREFIX.as_bytes();
        let mut key = Vec::with_capacity(p.len() + 36);
        key.extend_from_slice(p);
        match id {
            CompactId::Uuid(u) => {
                let mut buf = [0u8; 36];
                write_uuid(*u, &mut buf);
                key.extend_from_slice(&buf);
            }
            CompactId::Other(s) => key.extend_from_slice(s.as_bytes()),
        }
        key
    }

    /// Writes the inserts and expiries since the last flush.
    pub fn flush(&mut self, out: &mut impl FnMut(Vec<u8>, Option<Vec<u8>>)) {
        for (id, expiry) in self.pending.drain(..) {
            out(
                Self::entry_key(&CompactId::Uuid(id)),
                (expiry != 0).then(|| expiry.to_le_bytes().to_vec()),
            );
        }
        for (id, expiry) in self.pending_other.drain(..) {
            out(
                Self::entry_key(&CompactId::Other(id)),
                expiry.map(|e| e.to_le_bytes().to_vec()),
            );
        }
    }

    /// Writes every remembered id.
    pub fn snapshot(&self, out: &mut impl FnMut(Vec<u8>, Option<Vec<u8>>)) {
        for (u, e) in self.table.iter() {
            out(
                Self::entry_key(&CompactId::Uuid(u)),
                Some(e.to_le_bytes().to_vec()),
            );
        }
        for (k, e) in self.overflow.iter() {
            out(
                Self::entry_key(&CompactId::Other(k.clone())),
                Some(e.to_le_bytes().to_vec()),
            );
        }
    }

    /// Applies one restored `dedup/<id>` entry.
    pub fn restore(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), StateError> {
        let id = state::strip(key, state::DEDUP_PREFIX)
            .and_then(|b| std::str::from_utf8(b).ok())
            .ok_or_else(|| StateError::bad_key(key))?;
        match value {
            Some(v) => {
                let bytes: [u8; 4] = v
                    .try_into()
                    .map_err(|_| StateError::bad_value(key, "expected a 4-byte expiry"))?;
                let expiry = u32::from_le_bytes(bytes).max(1);
                match parse_uuid(id) {
                    Some(u) => self.table.insert(u, expiry),
                    None => {
                        self.overflow.insert(id.into(), expiry);
                    }
                }
            }
            None => match parse_uuid(id) {
                Some(u) => {
                    self.table.remove(u);
                }
                None => {
                    self.overflow.remove(id);
                }
            },
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::id::format_uuid;
    use super::*;

    const DAY: i64 = 24 * 3_600_000;

    #[test]
    fn duplicates_within_ttl_new_after() {
        let mut d = Deduplicator::new(DedupConfig {
            ttl_ms: DAY,
            sweep_per_record: 4,
        });
        let id = "0f8fad5b-d9cb-469f-a165-70867728950e";
        assert!(!d.check_and_insert(id, 1_000, i64::MIN));
        assert!(d.check_and_insert(id, 5_000, 10));
        assert!(d.check_and_insert(id, 5_000, DAY + 999));
        assert!(
            !d.check_and_insert(id, 5_000, DAY + 1_000),
            "expired: new again"
        );
        assert!(!d.check_and_insert("order-17", 0, 0));
        assert!(d.check_and_insert("order-17", 0, 0));
        assert!(
            !d.check_and_insert("ORDER-17", 0, 0),
            "distinct string, distinct id"
        );
    }

    #[test]
    fn upper_and_lower_case_uuids_are_distinct() {
        let mut d = Deduplicator::new(DedupConfig::default());
        assert!(!d.check_and_insert("0f8fad5b-d9cb-469f-a165-70867728950e", 0, 0));
        assert!(!d.check_and_insert("0F8FAD5B-D9CB-469F-A165-70867728950E", 0, 0));
        assert_eq!(d.len(), 2);
    }

    #[test]
    fn sweep_and_flush_produce_tombstones_that_restore_exactly() {
        let mut d = Deduplicator::new(DedupConfig {
            ttl_ms: 10_000,
            sweep_per_record: 1_000,
        });
        for i in 0..100u128 {
            d.check_and_insert(&format_uuid(i * 7919), (i as i64) * 1_000, 0);
        }
        d.check_and_insert("plain", 0, 0);
        let mut log = Vec::new();
        d.flush(&mut |k, v| log.push((k, v)));
        d.sweep(60_000); // expires ids with ts + 10 s <= 60 s, i.e. i <= 50, and "plain"
        d.flush(&mut |k, v| log.push((k, v)));
        assert_eq!(d.len(), 49);
        let mut r = Deduplicator::new(DedupConfig::default());
        for (k, v) in &log {
            r.restore(k, v.as_deref()).unwrap();
        }
        assert_eq!(r.len(), 49);
        let mut a = Vec::new();
        d.snapshot(&mut |k, v| a.push((k, v)));
        let mut b = Vec::new();
        r.snapshot(&mut |k, v| b.push((k, v)));
        a.sort();
        b.sort();
        assert_eq!(a, b);
    }
}
