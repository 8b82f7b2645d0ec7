//! The fixed-window operator: keyed results per tumbling or hopping window, fired by the
//! watermark. A record (or, in stage 2, a partial aggregate) updates the result of every
//! window containing its timestamp that has not expired; updates to windows whose on-time
//! result is already out are emitted at once as `late_update`; `advance` emits `on_time`
//! and `final` results as the watermark passes window ends and ends plus allowed lateness,
//! and purges final results. Emission order is deterministic (window end, start, then key
//! order), independent of how a window stores its results (`bucket.rs`), so a restored
//! operator emits exactly what the original would. State changes are tracked per result
//! and flushed to the changelog on demand.

use std::collections::BTreeMap;
use std::hash::Hash;

use hashbrown::Equivalent;

use super::aggregate::{Aggregate, Dimension, EmitSink, ResultSlot};
use super::bucket::Bucket;
use super::interner::{Interner, MemberId};
use super::state::{self, StateError};
use super::window::{Window, WindowSpec};
use crate::model::time::Millis;
use crate::model::EmitStatus;

/// Member segments per result before they are rewritten into one.
const MAX_SEGMENTS: usize = 32;

/// Keyed results over fixed (tumbling or hopping) event-time windows.
pub struct WindowOperator<K, A> {
    name: String,
    spec: WindowSpec,
    lateness_ms: i64,
    windows: BTreeMap<Window, Bucket<K, A>>,
    /// Changelog keys of purged results, awaiting the next flush.
    tombstones: Vec<Vec<u8>>,
    changelog: bool,
    scratch: Vec<Window>,
    /// Member ids handed over by one result during a flush (kept to reuse its capacity).
    members: Vec<MemberId>,
}

impl<K: Dimension, A: Aggregate> WindowOperator<K, A> {
    /// `name` identifies the operator in state keys; it must be unique within a task and
    /// contain no '/'.
    pub fn new(name: impl Into<String>, spec: WindowSpec, allowed_lateness_ms: i64) -> Self {
        WindowOperator {
            name: name.into(),
            spec,
            lateness_ms: allowed_lateness_ms.max(0),
            windows: BTreeMap::new(),
            tombstones: Vec::new(),
            changelog: true,
            scratch: Vec::new(),
            members: Vec::new(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn spec(&self) -> WindowSpec {
        self.spec
    }

    /// Switches changelog tracking off (state is then not recoverable; for benchmarks and
    /// stateless replays) or on.
    pub fn set_changelog(&mut self, on: bool) {
        self.changelog = on;
        if !on {
            self.tombstones.clear();
        }
    }

    /// Whether a record at `ts` still belongs to at least one live window at watermark
    /// `wm`; false means the record is late beyond the allowed lateness.
    pub fn accepts(&self, ts: Millis, wm: Millis) -> bool {
        let mut any = false;
        self.spec
            .for_each_window(ts, |w| any |= w.expiry(self.lateness_ms) > wm);
        any
    }

    /// Applies `f` to the result of `key` in every live window containing `ts`. Returns the
    /// number of windows updated (0: the record is late beyond the allowed lateness).
    #[inline]
    pub fn update<Q>(
        &mut self,
        key: &Q,
        ts: Millis,
        wm: Millis,
        mut f: impl FnMut(&mut A),
        sink: &mut impl EmitSink<K, A>,
    ) -> usize
    where
        Q: ?Sized + Hash + Equivalent<K>,
        K: for<'q> From<&'q Q>,
    {
        let mut n = 0;
        let spec = self.spec;
        spec.for_each_window(ts, |w| {
            if self.update_window(key, w, wm, &mut f, sink) {
                n += 1;
            }
        });
        n
    }

    /// Applies `f` to the result of `key` in window `w` unless the window has expired at
    /// watermark `wm`. Stage 2 calls this with partial aggregates (`|a| a.merge(p)`).
    #[inline]
    pub fn update_window<Q>(
        &mut self,
        key: &Q,
        w: Window,
        wm: Millis,
        f: impl FnOnce(&mut A),
        sink: &mut impl EmitSink<K, A>,
    ) -> bool
    where
        Q: ?Sized + Hash + Equivalent<K>,
        K: for<'q> From<&'q Q>,
    {
        if w.expiry(self.lateness_ms) <= wm {
            return false;
        }
        let bucket = self.windows.entry(w).or_insert_with(Bucket::new);
        let slot = bucket.slot_mut(key);
        if w.end <= wm {
            // The window is past its on-time point; a result that did not exist then is
            // already "fired" in the sense that its next emission is a late update.
            slot.fired = true;
        }
        if slot.update(f) {
            // A late update (rare): look the result up again for its owned key.
            if let Some((k, slot)) = bucket.get_key_value_mut(key) {
                slot.emit(w, k, EmitStatus::LateUpdate, sink);
            }
        }
        true
    }

    /// Calls `each` once per live window containing `ts` (in `update`'s window order) with
    /// a handle updating results of that window, so several keys of one record cost one
    /// window lookup. Equivalent to one `update` per key when the spec is tumbling (one
    /// window per timestamp); with hopping windows late updates come out window by window.
    /// Returns the number of windows visited.
    #[inline]
    pub fn update_keys<S: EmitSink<K, A>>(
        &mut self,
        ts: Millis,
        wm: Millis,
        sink: &mut S,
        mut each: impl FnMut(&mut WindowUpdate<'_, K, A, S>),
    ) -> usize {
        let mut n = 0;
        let spec = self.spec;
        let lateness = self.lateness_ms;
        let windows = &mut self.windows;
        spec.for_each_window(ts, |w| {
            if w.expiry(lateness) <= wm {
                return;
            }
            let bucket = windows.entry(w).or_insert_with(Bucket::new);
            each(&mut WindowUpdate {
                bucket,
                w,
                wm,
                sink: &mut *sink,
            });
            n += 1;
        });
        n
    }

    /// Emits `on_time` and `final` results due at watermark `wm` and purges final ones.
    pub fn advance(&mut self, wm: Millis, sink: &mut impl EmitSink<K, A>) {
        self.scratch.clear();
        for (w, _) in self.windows.iter() {
            if w.end > wm {
                break;
            }
            self.scratch.push(*w);
        }
        for i in 0..self.scratch.len() {
            let w = self.scratch[i];
            let expired = w.expiry(self.lateness_ms) <= wm;
            let Some(bucket) = self.windows.get_mut(&w) else {
                continue;
            };
            let mut slots: Vec<(&K, &mut ResultSlot<A>)> = bucket.iter_mut().collect();
            if !expired && slots.iter().all(|(_, s)| s.fired) {
                continue;
            }
            slots.sort_unstable_by(|a, b| a.0.cmp(b.0));
            for (k, slot) in slots {
                slot.on_watermark(w, k, wm, self.lateness_ms, sink);
            }
            if expired {
                if let Some(bucket) = self.windows.remove(&w) {
                    if self.changelog {
                        for (k, slot) in bucket.iter() {
                            self.tombstones.push(Self::key_for(&self.name, w, k));
                            for seq in &slot.segments {
                                self.tombstones
                                    .push(Self::segment_key(&self.name, w, *seq, k));
                            }
                        }
                    }
                }
            }
        }
    }

    /// Emits an `early` revision of every result that changed since its last emission and
    /// is not on time yet.
    pub fn emit_early(&mut self, sink: &mut impl EmitSink<K, A>) {
        for (w, bucket) in self.windows.iter_mut() {
            let mut slots: Vec<(&K, &mut ResultSlot<A>)> = bucket
                .iter_mut()
                .filter(|(_, s)| s.pending && !s.fired)
                .collect();
            slots.sort_unstable_by(|a, b| a.0.cmp(b.0));
            for (k, slot) in slots {
                slot.emit_early(*w, k, sink);
            }
        }
    }

    /// Number of live results (window × key).
    pub fn len(&self) -> usize {
        self.windows.values().map(|b| b.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }

    /// The live result of `key` in `w`, if any.
    pub fn get(&self, w: &Window, key: &K) -> Option<&ResultSlot<A>> {
        self.windows.get(w).and_then(|b| b.get(key))
    }

    /// Writes every change since the last flush: results as values, their new distinct
    /// members (resolved to customer ids through `names`) as a segment keyed by the flush
    /// sequence number `seq`, purged results as tombstones. A result with many segments
    /// has them rewritten into one.
    pub fn flush(
        &mut self,
        seq: u64,
        names: &Interner,
        out: &mut impl FnMut(Vec<u8>, Option<Vec<u8>>),
    ) -> Result<(), StateError> {
        for key in self.tombstones.drain(..) {
            out(key, None);
        }
        if !self.changelog {
            return Ok(());
        }
        let mut dirty: Vec<(Window, &K, &mut ResultSlot<A>)> = Vec::new();
        // Every emission and update marks its slot; live slots are few (windows within
        // the lateness horizon × dimensions), so scanning them per flush is cheap.
        for (w, bucket) in self.windows.iter_mut() {
            for (k, slot) in bucket.iter_mut() {
                if std::mem::take(&mut slot.unflushed) {
                    dirty.push((*w, k, slot));
                }
            }
        }
        dirty.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        let members = &mut self.members;
        for (w, k, slot) in dirty {
            members.clear();
            slot.agg.take_new_members(members);
            if !members.is_empty() {
                if slot.segments.len() >= MAX_SEGMENTS {
                    for old in slot.segments.drain(..) {
                        out(Self::segment_key(&self.name, w, old, k), None);
                    }
                    members.clear();
                    slot.agg.all_members(members);
                }
                let key = Self::segment_key(&self.name, w, seq, k);
                let mut value = Vec::with_capacity(members.len() * 16);
                state::encode_names(members.iter().map(|&id| names.name(id)), &mut value);
                out(key, Some(value));
                slot.segments.push(seq);
            }
            let key = Self::key_for(&self.name, w, k);
            let value = state::to_json(&key, &*slot)?;
            out(key, Some(value));
        }
        Ok(())
    }

    /// Calls `f` with every member of every live result (to find interned ids in use).
    pub fn for_each_member(&self, mut f: impl FnMut(MemberId)) {
        let mut members = Vec::new();
        for bucket in self.windows.values() {
            for slot in bucket.values() {
                members.clear();
                slot.agg.all_members(&mut members);
                members.iter().for_each(|&m| f(m));
            }
        }
    }

    fn key_for(name: &str, w: Window, k: &K) -> Vec<u8> {
        let key = format!("{}{}/{}/{}/", state::WINDOW_PREFIX, name, w.start, w.end);
        Self::with_dim(key, k)
    }

    fn segment_key(name: &str, w: Window, seq: u64, k: &K) -> Vec<u8> {
        let key = format!(
            "{}{}/{}/{}/{}/",
            state::SEGMENT_PREFIX,
            name,
            w.start,
            w.end,
            seq
        );
        Self::with_dim(key, k)
    }

    fn with_dim(prefix: String, k: &K) -> Vec<u8> {
        let mut key = prefix.into_bytes();
        // A dimension is a plain enum/string; serialising it cannot fail.
        if serde_json::to_writer(&mut key, k).is_err() {
            key.extend_from_slice(b"null");
        }
        key
    }

    /// Writes the whole state (each result's members as one segment, number 0, sorted by
    /// customer id so equal states give equal snapshots whatever their history).
    pub fn snapshot(
        &self,
        names: &Interner,
        out: &mut impl FnMut(Vec<u8>, Option<Vec<u8>>),
    ) -> Result<(), StateError> {
        let mut members = Vec::new();
        let mut sorted: Vec<&str> = Vec::new();
        for (w, bucket) in &self.windows {
            let mut slots: Vec<_> = bucket.iter().collect();
            slots.sort_unstable_by(|a, b| a.0.cmp(b.0));
            for (k, slot) in slots {
                members.clear();
                slot.agg.all_members(&mut members);
                let mut slot = slot.clone();
                slot.segments.clear();
                if !members.is_empty() {
                    sorted.clear();
                    sorted.extend(members.iter().map(|&id| names.name(id)));
                    sorted.sort_unstable();
                    let key = Self::segment_key(&self.name, *w, 0, k);
                    let mut value = Vec::new();
                    state::encode_names(sorted.iter().copied(), &mut value);
                    out(key, Some(value));
                    slot.segments.push(0);
                }
                let key = Self::key_for(&self.name, *w, k);
                let value = state::to_json(&key, &slot)?;
                out(key, Some(value));
            }
        }
        Ok(())
    }

    /// Whether a changelog key (a result or a member segment) belongs to this operator.
    pub fn owns(&self, key: &[u8]) -> bool {
        state::strip(key, state::WINDOW_PREFIX)
            .or_else(|| state::strip(key, state::SEGMENT_PREFIX))
            .and_then(|rest| rest.strip_prefix(self.name.as_bytes()))
            .is_some_and(|rest| rest.first() == Some(&b'/'))
    }

    /// Applies one restored changelog entry owned by this operator, interning restored
    /// members in `names`. Results must be restored before their member segments.
    pub fn restore(
        &mut self,
        key: &[u8],
        value: &[u8],
        names: &mut Interner,
    ) -> Result<(), StateError> {
        let parse = |s: &str| s.parse::<i64>().map_err(|_| StateError::bad_key(key));
        if let Some(rest) = state::strip(key, state::SEGMENT_PREFIX) {
            let (segs, dim) =
                state::split_segments(rest, 4).ok_or_else(|| StateError::bad_key(key))?;
            let w = Window::new(parse(segs[1])?, parse(segs[2])?);
            let k: K = state::from_json(key, dim)?;
            let mut members = Vec::new();
            state::decode_names(key, value, |name| members.push(names.intern(name)))?;
            // A segment whose result is gone was written by an incarnation that never
            // committed that flush and whose result was purged since (its tombstones
            // named only the segments the live state knew): nothing refers to it.
            let Some(slot) = self.windows.get_mut(&w).and_then(|b| b.get_mut(&k)) else {
                tracing::debug!(key = %String::from_utf8_lossy(key), "ignoring a member segment of a purged result");
                return Ok(());
            };
            slot.agg.restore_members(&members);
            return Ok(());
        }
        let rest =
            state::strip(key, state::WINDOW_PREFIX).ok_or_else(|| StateError::bad_key(key))?;
        let (segs, dim) = state::split_segments(rest, 3).ok_or_else(|| StateError::bad_key(key))?;
        let w = Window::new(parse(segs[1])?, parse(segs[2])?);
        let k: K = state::from_json(key, dim)?;
        let slot: ResultSlot<A> = state::from_json(key, value)?;
        self.windows
            .entry(w)
            .or_insert_with(Bucket::new)
            .insert(k, slot);
        Ok(())
    }
}

/// Updates results of one live window (see [`WindowOperator::update_keys`]).
pub struct WindowUpdate<'a, K, A, S> {
    bucket: &'a mut Bucket<K, A>,
    w: Window,
    wm: Millis,
    sink: &'a mut S,
}

impl<K: Dimension, A: Aggregate, S: EmitSink<K, A>> WindowUpdate<'_, K, A, S> {
    /// Applies `f` to the result of `key` in this window, exactly as
    /// [`WindowOperator::update_window`] does for a live window.
    #[inline]
    pub fn update<Q>(&mut self, key: &Q, f: impl FnOnce(&mut A))
    where
        Q: ?Sized + Hash + Equivalent<K>,
        K: for<'q> From<&'q Q>,
    {
        let slot = self.bucket.slot_mut(key);
        if self.w.end <= self.wm {
            slot.fired = true;
        }
        if slot.update(f) {
            if let Some((k, slot)) = self.bucket.get_key_value_mut(key) {
                slot.emit(self.w, k, EmitStatus::LateUpdate, &mut *self.sink);
            }
        }
    }
}
