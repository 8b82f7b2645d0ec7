//! The contracts shared by every windowed KPI: [`Aggregate`] (a mergeable partial result),
//! [`Dimension`] (the key a result is grouped by) and the emission life cycle of one result,
//! [`ResultSlot`]: `early*` → `on_time` → `late_update*` → `final`, with a revision that
//! grows by one on every emission. Window and session operators both drive their results
//! through `ResultSlot`, so the status/revision rules exist in exactly one place, and the
//! stage-2 merger can reuse the operators by merging partial aggregates instead of records.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::hash::Hash;

use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::interner::MemberId;
use super::window::Window;
use crate::model::time::Millis;
use crate::model::EmitStatus;

/// A partial KPI result. `merge` must be commutative and associative so partials from
/// several tasks (or several records) combine in any order to the same result.
pub trait Aggregate: Clone + Default + Debug + PartialEq + Serialize + DeserializeOwned {
    /// Folds `other` into `self`.
    fn merge(&mut self, other: &Self);

    /// Writes the KPI values of this result (including derived values such as ratios).
    fn write_values(&self, out: &mut BTreeMap<String, Decimal>);

    /// Rebuilds a mergeable partial from emitted values, for the stage-2 merger, which
    /// receives stage-1 results as KPI rows. Derived values are ignored. `None` when a
    /// required value is missing.
    fn from_values(values: &BTreeMap<String, Decimal>) -> Option<Self>;

    /// The global (stage-2) rows of a merged result with dimension `dimension`: by default
    /// one row with [`write_values`](Self::write_values). A family whose global result is
    /// several rows (`products`: one row per product, ranked top `top_n`) overrides it.
    fn write_global_rows(
        &self,
        dimension: &str,
        _top_n: usize,
        out: &mut dyn FnMut(String, BTreeMap<String, Decimal>),
    ) {
        let mut values = BTreeMap::new();
        self.write_values(&mut values);
        out(dimension.to_owned(), values);
    }

    /// For aggregates with append-only member sets (distinct customers, as task-local
    /// interned ids), which their serde form leaves out: appends the members added since
    /// the last call. The operator writes them to the changelog (as customer-id strings) as
    /// a segment of their own, so a commit costs the new members rather than the whole set.
    fn take_new_members(&mut self, _out: &mut Vec<MemberId>) {}

    /// Appends every member (for full snapshots and for collecting unused interned ids).
    fn all_members(&self, _out: &mut Vec<MemberId>) {}

    /// Adds members restored from a changelog segment (interned by the operator).
    fn restore_members(&mut self, _members: &[MemberId]) {}
}

/// The grouping key of a windowed result, e.g. `all` or `category=books`.
pub trait Dimension: Clone + Eq + Hash + Ord + Debug + Serialize + DeserializeOwned {
    /// The `dimension` column of the KPI row.
    fn render(&self) -> String;
}

/// A free-form dimension, rendered as is (e.g. a customer id for session windows).
impl Dimension for String {
    fn render(&self) -> String {
        self.clone()
    }
}

/// One emitted revision of one result.
#[derive(Debug)]
pub struct Emission<'a, K, A> {
    pub window: Window,
    pub key: &'a K,
    pub agg: &'a A,
    pub status: EmitStatus,
    pub revision: u32,
}

/// Where operators deliver emissions. Implemented for closures.
pub trait EmitSink<K, A> {
    fn emit(&mut self, e: Emission<'_, K, A>);
}

impl<K, A, F: FnMut(Emission<'_, K, A>)> EmitSink<K, A> for F {
    fn emit(&mut self, e: Emission<'_, K, A>) {
        self(e)
    }
}

/// The state of one result (one window × one key) and its emission life cycle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultSlot<A> {
    pub agg: A,
    /// The revision of the last emission; 0 when nothing was emitted yet.
    pub revision: u32,
    /// The on-time result was emitted (the watermark passed the window end).
    pub fired: bool,
    /// Changed since the last emission (for early results).
    pub pending: bool,
    /// Flush sequence numbers of the member segments written for this result.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<u64>,
    /// Changed since the last changelog flush. Not part of the state itself.
    #[serde(skip)]
    pub unflushed: bool,
}

impl<A: Aggregate> Default for ResultSlot<A> {
    fn default() -> Self {
        ResultSlot {
            agg: A::default(),
            revision: 0,
            fired: false,
            pending: false,
            segments: Vec::new(),
            unflushed: false,
        }
    }
}

impl<A: Aggregate> ResultSlot<A> {
    /// Applies a change to the aggregate. Returns true when the change must be emitted at
    /// once as a `late_update` (the on-time result was already out).
    #[inline]
    pub fn update(&mut self, f: impl FnOnce(&mut A)) -> bool {
        f(&mut self.agg);
        self.unflushed = true;
        self.pending = true;
        self.fired
    }

    fn bump(&mut self) -> u32 {
        // u32::MAX emissions of one result cannot happen in practice; saturating keeps
        // the engine panic-free regardless.
        self.revision = self.revision.saturating_add(1);
        self.pending = false;
        self.unflushed = true;
        self.revision
    }

    /// Emits the next revision with `status`.
    pub fn emit<K>(
        &mut self,
        window: Window,
        key: &K,
        status: EmitStatus,
        sink: &mut impl EmitSink<K, A>,
    ) {
        if status == EmitStatus::OnTime {
            self.fired = true;
        }
        let revision = self.bump();
        sink.emit(Emission {
            window,
            key,
            agg: &self.agg,
            status,
            revision,
        });
    }

    /// Emits an `early` revision if the result changed since its last emission and is not
    /// on time yet.
    pub fn emit_early<K>(&mut self, window: Window, key: &K, sink: &mut impl EmitSink<K, A>) {
        if self.pending && !self.fired {
            self.emit(window, key, EmitStatus::Early, sink);
        }
    }

    /// Emits what the watermark calls for: `on_time` once it passes the window end, and
    /// `final` once it passes the end plus the allowed lateness (a result that reaches both
    /// at once gets only `final`, which carries the same values). Returns true when final.
    pub fn on_watermark<K>(
        &mut self,
        window: Window,
        key: &K,
        watermark: i64,
        lateness_ms: i64,
        sink: &mut impl EmitSink<K, A>,
    ) -> bool {
        if watermark >= window.expiry(lateness_ms) {
            self.emit(window, key, EmitStatus::Final, sink);
            true
        } else {
            if watermark >= window.end && !self.fired {
                self.emit(window, key, EmitStatus::OnTime, sink);
            }
            false
        }
    }
}

/// The processing-time timer of early results, shared by the stage-1 task and the stage-2
/// merger: whether early results are due at `now`. The first call only arms the timer;
/// every due call re-arms it `interval_ms` later. Never due without an interval.
pub(crate) fn early_due(
    next_at: &mut Option<Millis>,
    now: Millis,
    interval_ms: Option<i64>,
) -> bool {
    let Some(interval) = interval_ms else {
        return false;
    };
    let due = match *next_at {
        Some(at) if now < at => return false,
        Some(_) => true,
        None => false,
    };
    *next_at = Some(now.saturating_add(interval));
    due
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    struct Count(u64);

    impl Aggregate for Count {
        fn merge(&mut self, other: &Self) {
            self.0 += other.0;
        }
        fn write_values(&self, out: &mut BTreeMap<String, Decimal>) {
            out.insert("n".into(), Decimal::from(self.0));
        }
        fn from_values(v: &BTreeMap<String, Decimal>) -> Option<Self> {
            v.get("n").and_then(|d| u64::try_from(*d).ok()).map(Count)
        }
    }

    #[test]
    fn life_cycle_revisions_only_grow() {
        let w = Window::new(0, 10);
        let mut slot = ResultSlot::<Count>::default();
        let mut seen = Vec::new();
        let mut sink = |e: Emission<'_, (), Count>| seen.push((e.status, e.revision, e.agg.0));
        assert!(!slot.update(|a| a.0 += 1));
        slot.emit_early(w, &(), &mut sink);
        slot.emit_early(w, &(), &mut sink); // nothing changed: no second early
        assert!(!slot.on_watermark(w, &(), 9, 5, &mut sink));
        assert!(!slot.on_watermark(w, &(), 10, 5, &mut sink));
        assert!(slot.update(|a| a.0 += 1)); // late: must be emitted now
        slot.emit(w, &(), EmitStatus::LateUpdate, &mut sink);
        assert!(slot.on_watermark(w, &(), 15, 5, &mut sink));
        assert_eq!(
            seen,
            vec![
                (EmitStatus::Early, 1, 1),
                (EmitStatus::OnTime, 2, 1),
                (EmitStatus::LateUpdate, 3, 2),
                (EmitStatus::Final, 4, 2)
            ]
        );
    }

    #[test]
    fn zero_lateness_goes_straight_to_final() {
        let w = Window::new(0, 10);
        let mut slot = ResultSlot::<Count>::default();
        slot.update(|a| a.0 += 3);
        let mut seen = Vec::new();
        let done = slot.on_watermark(w, &(), 10, 0, &mut |e: Emission<'_, (), Count>| {
            seen.push((e.status, e.revision))
        });
        assert!(done);
        assert_eq!(seen, vec![(EmitStatus::Final, 1)]);
    }
}
