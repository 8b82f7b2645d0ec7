//! Session windows on event time: per key, activity separated by less than the inactivity
//! gap forms one session `[first event, last event + gap)`. A record opens the candidate
//! window `[ts, ts + gap)`, which merges with every intersecting open session of its key
//! (Flink's merging semantics; aggregates merge, the highest revision carries over).
//! Emission follows the shared life cycle (`ResultSlot`): `on_time` when the watermark
//! passes the session end, `final` after the allowed lateness, `early` on request.
//!
//! Sessions whose on-time result is out are sealed: their bounds are frozen, because the
//! bounds are part of the result's key in the sinks and moving them would orphan the rows
//! already written. A late record whose candidate window lies inside a sealed session (it
//! is not after the session's last record) updates it (`late_update`); a late record that
//! would extend or bridge a sealed session is rejected as [`SessionLate::Sealed`], and a
//! record more than the allowed lateness behind the watermark as [`SessionLate::Expired`]
//! (its session may already be purged, and a record merging with a forgotten session
//! would split what one session holds), so the caller can route both to the late output.
//! With these two rules the sessions of the accepted records are exactly the gap sessions
//! a batch pass over those records finds. Early rows of open sessions that later merge are
//! superseded by the merged session's rows.
//!
//! A key's sessions are changelogged as `ses/<name>/<key as JSON>` → the binary form of
//! `session_codec`. Session ends and expiries are timers in a min-heap; an entry pushed
//! twice fires once (equal entries pop together), as in an ordered set.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use hashbrown::HashMap;
use serde::{Deserialize, Serialize};

use super::aggregate::{Aggregate, Dimension, EmitSink, ResultSlot};
use super::codec::BinaryForm;
use super::session_codec;
use super::state::{self, StateError};
use super::window::Window;
use crate::model::time::Millis;
use crate::model::EmitStatus;

/// Why a record could not be added to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionLate {
    /// It is more than the allowed lateness behind the watermark.
    Expired,
    /// It would move the bounds of a session whose on-time result is already out.
    Sealed,
}

impl SessionLate {
    pub fn reason(self) -> &'static str {
        match self {
            SessionLate::Expired => "beyond_allowed_lateness",
            SessionLate::Sealed => "session_sealed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Session<A> {
    pub(super) window: Window,
    pub(super) slot: ResultSlot<A>,
}

#[derive(Debug, Default)]
struct KeySessions<A> {
    /// Sorted by start, pairwise disjoint.
    sessions: Vec<Session<A>>,
    unflushed: bool,
}

/// Keyed session windows over a mergeable aggregate.
pub struct SessionOperator<K, A> {
    /// `ses/<name>/`: the changelog key prefix of this operator's entries.
    prefix: Vec<u8>,
    gap_ms: i64,
    lateness_ms: i64,
    keys: HashMap<K, KeySessions<A>, ahash::RandomState>,
    /// (fire time, key): session ends and expiries. Stale entries are skipped.
    timers: BinaryHeap<Reverse<(Millis, K)>>,
    unflushed: Vec<K>,
    changelog: bool,
}

impl<K: Dimension, A: Aggregate + BinaryForm> SessionOperator<K, A> {
    pub fn new(name: impl Into<String>, gap_ms: i64, allowed_lateness_ms: i64) -> Self {
        let name: String = name.into();
        SessionOperator {
            prefix: format!("{}{name}/", state::SESSION_PREFIX).into_bytes(),
            gap_ms: gap_ms.max(1),
            lateness_ms: allowed_lateness_ms.max(0),
            keys: HashMap::with_hasher(ahash::RandomState::new()),
            timers: BinaryHeap::new(),
            unflushed: Vec::new(),
            changelog: true,
        }
    }

    /// Switches changelog tracking off (state is then not recoverable; for benchmarks and
    /// stateless replays) or on.
    pub fn set_changelog(&mut self, on: bool) {
        self.changelog = on;
        if !on {
            for k in self.unflushed.drain(..) {
                if let Some(e) = self.keys.get_mut(&k) {
                    e.unflushed = false;
                }
            }
        }
    }

    /// Marks `key` as changed since the last flush.
    fn touch(&mut self, key: &K) {
        if !self.changelog {
            return;
        }
        if let Some(e) = self.keys.get_mut(key) {
            if !std::mem::replace(&mut e.unflushed, true) {
                self.unflushed.push(key.clone());
            }
        }
    }

    /// Number of live sessions.
    pub fn len(&self) -> usize {
        self.keys.values().map(|k| k.sessions.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The live sessions of `key`, in order.
    pub fn sessions(&self, key: &K) -> Vec<(Window, &A)> {
        self.keys
            .get(key)
            .map(|k| k.sessions.iter().map(|s| (s.window, &s.slot.agg)).collect())
            .unwrap_or_default()
    }

    fn arm(&mut self, key: &K, w: Window) {
        self.timers.push(Reverse((w.end, key.clone())));
        self.timers
            .push(Reverse((w.expiry(self.lateness_ms), key.clone())));
    }

    /// Adds a record of `key` at event time `ts` (watermark `wm`), applying `f` to the
    /// aggregate of its session.
    pub fn update(
        &mut self,
        key: &K,
        ts: Millis,
        wm: Millis,
        f: impl FnOnce(&mut A),
        sink: &mut impl EmitSink<K, A>,
    ) -> Result<Window, SessionLate> {
        if ts.saturating_add(self.lateness_ms) < wm {
            return Err(SessionLate::Expired);
        }
        let cand = Window::new(ts, ts.saturating_add(self.gap_ms));
        if !self.keys.contains_key(key) {
            self.keys.insert(key.clone(), KeySessions::default());
        }
        let Some(entry) = self.keys.get_mut(key) else {
            return Err(SessionLate::Expired);
        };
        let overlaps = |s: &Session<A>| s.window.start < cand.end && cand.start < s.window.end;
        if let Some(i) = entry
            .sessions
            .iter()
            .position(|s| s.slot.fired && overlaps(s))
        {
            let s = &mut entry.sessions[i];
            // Inside: not before the first record and not after the last one.
            if ts < s.window.start || cand.end > s.window.end {
                return Err(SessionLate::Sealed);
            }
            s.slot.update(f);
            s.slot.emit(s.window, key, EmitStatus::LateUpdate, sink);
            let w = s.window;
            self.touch(key);
            return Ok(w);
        }
        let mut merged = cand;
        for s in entry.sessions.iter().filter(|s| overlaps(s)) {
            merged = Window::new(
                merged.start.min(s.window.start),
                merged.end.max(s.window.end),
            );
        }
        let mut slot = ResultSlot::<A>::default();
        entry.sessions.retain(|s| {
            if overlaps(s) {
                slot.agg.merge(&s.slot.agg);
                slot.revision = slot.revision.max(s.slot.revision);
                false
            } else {
                true
            }
        });
        // A brand-new session already past its end: its first emission is a late update.
        slot.fired = merged.end <= wm;
        let late = slot.update(f);
        if late {
            slot.emit(merged, key, EmitStatus::LateUpdate, sink);
        }
        let at = entry
            .sessions
            .partition_point(|s| s.window.start < merged.start);
        entry.sessions.insert(
            at,
            Session {
                window: merged,
                slot,
            },
        );
        self.touch(key);
        self.arm(key, merged);
        Ok(merged)
    }

    /// Emits `on_time` and `final` results due at watermark `wm`; purges final sessions.
    pub fn advance(&mut self, wm: Millis, sink: &mut impl EmitSink<K, A>) {
        while self.timers.peek().is_some_and(|t| t.0 .0 <= wm) {
            let Some(Reverse(timer)) = self.timers.pop() else {
                break;
            };
            while self.timers.peek().is_some_and(|t| t.0 == timer) {
                self.timers.pop();
            }
            let key = timer.1;
            let Some(entry) = self.keys.get_mut(&key) else {
                continue;
            };
            let before = entry.sessions.len();
            let lateness = self.lateness_ms;
            let mut changed = false;
            entry.sessions.retain_mut(|s| {
                if s.window.end > wm {
                    return true;
                }
                let was = s.slot.revision;
                let done = s.slot.on_watermark(s.window, &key, wm, lateness, sink);
                changed |= s.slot.revision != was;
                !done
            });
            if entry.sessions.is_empty() && !self.changelog {
                self.keys.remove(&key);
            } else if changed || entry.sessions.len() != before {
                self.touch(&key);
            }
        }
    }

    /// Emits an `early` revision of every open session that changed since its last one.
    pub fn emit_early(&mut self, sink: &mut impl EmitSink<K, A>) {
        let mut keys: Vec<&K> = self
            .keys
            .iter()
            .filter(|(_, v)| v.sessions.iter().any(|s| s.slot.pending && !s.slot.fired))
            .map(|(k, _)| k)
            .collect();
        keys.sort_unstable();
        let keys: Vec<K> = keys.into_iter().cloned().collect();
        for key in keys {
            if let Some(entry) = self.keys.get_mut(&key) {
                for s in &mut entry.sessions {
                    s.slot.emit_early(s.window, &key, sink);
                }
                self.touch(&key);
            }
        }
    }

    fn key_for(&self, k: &K) -> Vec<u8> {
        let mut key = Vec::with_capacity(self.prefix.len() + 24);
        key.extend_from_slice(&self.prefix);
        if serde_json::to_writer(&mut key, k).is_err() {
            key.extend_from_slice(b"null");
        }
        key
    }

    /// Writes the sessions of every key changed since the last flush (a tombstone when a
    /// key has none left).
    pub fn flush(
        &mut self,
        out: &mut impl FnMut(Vec<u8>, Option<Vec<u8>>),
    ) -> Result<(), StateError> {
        let mut keys = std::mem::take(&mut self.unflushed);
        keys.sort_unstable();
        for k in keys {
            let key = self.key_for(&k);
            match self.keys.get_mut(&k) {
                Some(e) if !e.sessions.is_empty() => {
                    e.unflushed = false;
                    out(key, Some(value(&e.sessions)));
                }
                _ => {
                    self.keys.remove(&k);
                    out(key, None);
                }
            }
        }
        Ok(())
    }

    /// Writes the sessions of every key (what a compacted changelog holds).
    pub fn snapshot(
        &self,
        out: &mut impl FnMut(Vec<u8>, Option<Vec<u8>>),
    ) -> Result<(), StateError> {
        let mut keys: Vec<&K> = self
            .keys
            .iter()
            .filter(|(_, e)| !e.sessions.is_empty())
            .map(|(k, _)| k)
            .collect();
        keys.sort_unstable();
        for k in keys {
            let key = self.key_for(k);
            out(key, Some(value(&self.keys[k].sessions)));
        }
        Ok(())
    }

    /// Whether `key` is a state entry of this operator.
    pub fn owns(&self, key: &[u8]) -> bool {
        key.starts_with(&self.prefix)
    }

    /// Applies one restored `ses/<name>/<key>` entry.
    pub fn restore(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), StateError> {
        let rest = key
            .strip_prefix(self.prefix.as_slice())
            .ok_or_else(|| StateError::bad_key(key))?;
        let k: K = state::from_json(key, rest)?;
        match value {
            Some(v) => {
                let sessions: Vec<Session<A>> =
                    session_codec::decode(v).map_err(|e| StateError::bad_value(key, e))?;
                for s in &sessions {
                    self.arm(&k, s.window);
                }
                self.keys.insert(
                    k,
                    KeySessions {
                        sessions,
                        unflushed: false,
                    },
                );
            }
            None => {
                self.keys.remove(&k);
            }
        }
        Ok(())
    }
}

/// The changelog value of a key's sessions.
fn value<A: BinaryForm>(sessions: &[Session<A>]) -> Vec<u8> {
    let mut v = Vec::with_capacity(64 * sessions.len());
    session_codec::encode(sessions, &mut v);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::journey::Journey;
    use crate::engine::aggregate::Emission;
    use crate::model::EventType;

    type Op = SessionOperator<String, Journey>;
    type Log = Vec<(Window, EmitStatus, u32, u64)>;

    fn sink(log: &mut Log) -> impl FnMut(Emission<'_, String, Journey>) + '_ {
        move |e: Emission<'_, String, Journey>| {
            log.push((e.window, e.status, e.revision, e.agg.events))
        }
    }

    fn add(
        op: &mut Op,
        k: &str,
        ts: Millis,
        wm: Millis,
        log: &mut Log,
    ) -> Result<Window, SessionLate> {
        op.update(
            &k.to_owned(),
            ts,
            wm,
            |a| a.add(EventType::PageView, ts),
            &mut sink(log),
        )
    }

    #[test]
    fn events_within_the_gap_merge_and_fire_once() {
        let mut op = Op::new("s", 10, 15);
        let mut log = Log::new();
        assert_eq!(
            add(&mut op, "a", 0, i64::MIN, &mut log),
            Ok(Window::new(0, 10))
        );
        assert_eq!(
            add(&mut op, "a", 20, i64::MIN, &mut log),
            Ok(Window::new(20, 30))
        );
        // 12 bridges [0,10) and [20,30)? [12,22) overlaps only the second
        assert_eq!(
            add(&mut op, "a", 12, i64::MIN, &mut log),
            Ok(Window::new(12, 30))
        );
        // 5 bridges [0,10) and [12,30)
        assert_eq!(
            add(&mut op, "a", 5, i64::MIN, &mut log),
            Ok(Window::new(0, 30))
        );
        assert_eq!(op.len(), 1);
        op.advance(29, &mut sink(&mut log));
        assert!(log.is_empty());
        op.advance(30, &mut sink(&mut log));
        assert_eq!(log, vec![(Window::new(0, 30), EmitStatus::OnTime, 1, 4)]);
        // late, not after the last record (20): a late update of the sealed session
        assert_eq!(add(&mut op, "a", 18, 31, &mut log), Ok(Window::new(0, 30)));
        assert_eq!(add(&mut op, "a", 20, 31, &mut log), Ok(Window::new(0, 30)));
        // late, after the last record: it would extend the sealed session's end
        assert_eq!(
            add(&mut op, "a", 25, 31, &mut log),
            Err(SessionLate::Sealed)
        );
        // late, would bridge into the sealed session from before it (a low watermark
        // argument, so that the lateness rule does not decide first)
        assert_eq!(add(&mut op, "a", -5, 9, &mut log), Err(SessionLate::Sealed));
        // exactly the allowed lateness behind the watermark, then one more
        assert_eq!(add(&mut op, "a", 16, 31, &mut log), Ok(Window::new(0, 30)));
        assert_eq!(
            add(&mut op, "a", 15, 31, &mut log),
            Err(SessionLate::Expired)
        );
        op.advance(45, &mut sink(&mut log));
        assert_eq!(op.len(), 0);
        assert_eq!(
            log[1..],
            [
                (Window::new(0, 30), EmitStatus::LateUpdate, 2, 5),
                (Window::new(0, 30), EmitStatus::LateUpdate, 3, 6),
                (Window::new(0, 30), EmitStatus::LateUpdate, 4, 7),
                (Window::new(0, 30), EmitStatus::Final, 5, 7)
            ]
        );
        // after the purge, a record that would merge with the forgotten session is late
        assert_eq!(
            add(&mut op, "a", 29, 46, &mut log),
            Err(SessionLate::Expired)
        );
        assert_eq!(add(&mut op, "a", 40, 46, &mut log), Ok(Window::new(40, 50)));
    }

    #[test]
    fn keys_are_independent_and_state_restores() {
        let mut op = Op::new("s", 10, 0);
        let mut log = Log::new();
        add(&mut op, "a", 0, i64::MIN, &mut log).unwrap();
        add(&mut op, "b", 3, i64::MIN, &mut log).unwrap();
        add(&mut op, "b", 40, i64::MIN, &mut log).unwrap();
        let mut entries = Vec::new();
        op.flush(&mut |k, v| entries.push((k, v))).unwrap();
        let mut r = Op::new("s", 10, 0);
        for (k, v) in &entries {
            r.restore(k, v.as_deref()).unwrap();
        }
        let (mut l1, mut l2) = (Log::new(), Log::new());
        op.advance(100, &mut sink(&mut l1));
        r.advance(100, &mut sink(&mut l2));
        assert_eq!(l1, l2);
        assert_eq!(l1.len(), 3);
        assert!(l1.iter().all(|e| e.1 == EmitStatus::Final));
        let mut after = Vec::new();
        op.flush(&mut |k, v| after.push((k, v))).unwrap();
        assert!(
            after.iter().all(|(_, v)| v.is_none()),
            "purged keys become tombstones"
        );
    }

    type Entries = std::collections::BTreeMap<Vec<u8>, Option<Vec<u8>>>;

    fn restored(log: &Entries) -> Op {
        let mut r = Op::new("s", 10, 15);
        for (k, v) in log {
            assert!(r.owns(k));
            r.restore(k, v.as_deref()).unwrap();
        }
        r
    }

    proptest::proptest! {
        /// Records and watermark advances in any order, flushed several times (the log
        /// compacted by key): the restored operator holds the same sessions and emits the
        /// same results from there on.
        #[test]
        fn the_changelog_restores_the_same_sessions(
            steps in proptest::collection::vec((0u8..5, 0u8..4, 0i64..40), 1..80)
        ) {
            let mut op = Op::new("s", 10, 15);
            let (mut log, mut wm, mut emitted) = (Entries::new(), 0, Log::new());
            for (what, key, dt) in steps {
                match what {
                    0 | 1 => {
                        let _ = add(&mut op, &format!("k{key}"), wm + dt - 20, wm, &mut emitted);
                    }
                    2 => {
                        wm += dt / 4;
                        op.advance(wm, &mut sink(&mut emitted));
                    }
                    3 => op.emit_early(&mut sink(&mut emitted)),
                    _ => op.flush(&mut |k, v| {
                        log.insert(k, v);
                    }).unwrap(),
                }
            }
            op.flush(&mut |k, v| {
                log.insert(k, v);
            }).unwrap();
            let mut r = restored(&log);
            for key in 0..4 {
                let k = format!("k{key}");
                proptest::prop_assert_eq!(r.sessions(&k), op.sessions(&k));
            }
            let (mut l1, mut l2) = (Log::new(), Log::new());
            op.advance(wm + 1_000, &mut sink(&mut l1));
            r.advance(wm + 1_000, &mut sink(&mut l2));
            // The same results; across keys the order may differ, because the original
            // still holds stale timers (of sessions since merged) that a restore drops.
            l1.sort_unstable();
            l2.sort_unstable();
            proptest::prop_assert_eq!(l1, l2);
        }
    }

    #[test]
    fn damaged_values_are_errors_and_the_legacy_json_restores() {
        let mut op = Op::new("s", 10, 15);
        let mut log = Log::new();
        add(&mut op, "a", 0, i64::MIN, &mut log).unwrap();
        add(&mut op, "a", 30, i64::MIN, &mut log).unwrap();
        add(&mut op, "a", 35, i64::MIN, &mut log).unwrap();
        let mut entries = Entries::new();
        op.flush(&mut |k, v| {
            entries.insert(k, v);
        })
        .unwrap();
        let (key, value) = entries.iter().next().unwrap();
        let value = value.as_deref().unwrap();
        assert_eq!(key.as_slice(), br#"ses/s/"a""#);
        let mut r = Op::new("s", 10, 15);
        for n in 0..value.len() {
            assert!(r.restore(key, Some(&value[..n])).is_err(), "cut at {n}");
        }
        let mut long = value.to_vec();
        long.push(0);
        assert!(r.restore(key, Some(&long)).is_err());
        assert!(r.restore(key, Some(&[7])).is_err());
        let legacy = serde_json::to_vec(&op.keys[&"a".to_owned()].sessions).unwrap();
        r.restore(key, Some(&legacy)).unwrap();
        let a = "a".to_owned();
        assert_eq!(r.sessions(&a), op.sessions(&a));
        r.restore(key, Some(value)).unwrap();
        assert_eq!(r.sessions(&a), op.sessions(&a));
    }
}
