//! One KPI family in stage 2: a [`WindowOperator`] over [`SourcePartials`] of the family's
//! aggregate, keyed by the rendered dimension. Partial rows are parsed back into the
//! family aggregate with `Aggregate::from_values`; the operator supplies the emission life
//! cycle (`on_time`, `late_update`, `final`, early results), lateness, purge and
//! changelog, exactly as for stage 1. A merged result becomes one global row, or several
//! for families that expand it (`products`: one ranked row per product). [`MergeFamily`] erases the aggregate type so the
//! merger can hold families of different aggregates side by side.

use super::super::aggregate::{Aggregate, Emission, EmitSink};
use super::super::operator::WindowOperator;
use super::super::state::StateError;
use super::super::window::{Window, WindowSpec};
use super::partials::SourcePartials;
use crate::engine::Interner;
use crate::model::time::Millis;
use crate::model::KpiRow;

/// Where a family writes changelog entries: (key, value or tombstone).
pub(super) type EntrySink<'a> = dyn FnMut(Vec<u8>, Option<Vec<u8>>) + 'a;

/// What became of one partial row offered to a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Offer {
    /// Newer than what its source had sent for the result: kept.
    Applied,
    /// Not newer than the partial held for its source (a redelivery): ignored.
    Stale,
    /// The result's allowed lateness had expired at the merger watermark: ignored.
    Expired,
    /// The values do not parse as the family's aggregate.
    BadValues,
}

/// A KPI family of the merger, independent of its aggregate type.
pub(super) trait MergeFamily: Send {
    fn kpi(&self) -> &'static str;
    /// Offers `row` as the latest partial of `source`, at merger watermark `wm`.
    fn offer(&mut self, source: u32, row: &KpiRow, wm: Millis, out: &mut Vec<KpiRow>) -> Offer;
    /// Emits what watermark `wm` calls for and purges final results.
    fn advance(&mut self, wm: Millis, out: &mut Vec<KpiRow>);
    fn emit_early(&mut self, out: &mut Vec<KpiRow>);
    fn flush(&mut self, seq: u64, out: &mut EntrySink<'_>) -> Result<(), StateError>;
    fn snapshot(&self, out: &mut EntrySink<'_>) -> Result<(), StateError>;
    fn owns(&self, key: &[u8]) -> bool;
    fn restore(&mut self, key: &[u8], value: &[u8]) -> Result<(), StateError>;
    /// Live results.
    fn len(&self) -> usize;
}

/// The family `kpi` with aggregate `A`.
pub(super) struct Family<A> {
    kpi: &'static str,
    op: WindowOperator<String, SourcePartials<A>>,
    /// Partials carry counts, not distinct members, so stage 2 interns no customer ids;
    /// the operator's changelog API takes a name table all the same.
    names: Interner,
    /// N of families that rank their global rows (`products`).
    top_n: usize,
}

/// Turns emissions of merged results into global KPI rows, one or several per result
/// ([`Aggregate::write_global_rows`]), all with the result's status and revision.
struct GlobalRows<'a> {
    rows: &'a mut Vec<KpiRow>,
    kpi: &'static str,
    top_n: usize,
}

impl<A: Aggregate> EmitSink<String, SourcePartials<A>> for GlobalRows<'_> {
    fn emit(&mut self, e: Emission<'_, String, SourcePartials<A>>) {
        let (kpi, rows) = (self.kpi, &mut *self.rows);
        e.agg
            .merged()
            .write_global_rows(e.key, self.top_n, &mut |dimension, values| {
                rows.push(KpiRow {
                    kpi: kpi.to_owned(),
                    window_start: e.window.start,
                    window_end: e.window.end,
                    dimension,
                    values,
                    status: e.status,
                    revision: e.revision,
                })
            });
    }
}

impl<A: Aggregate + Send> Family<A> {
    /// `kpi` names the family in rows and in state keys (it must not contain '/').
    pub(super) fn new(kpi: &'static str, allowed_lateness_ms: i64, top_n: usize) -> Self {
        // Windows come with the partial rows (`update_window`), so the operator's own
        // window assigner is never used; any valid spec will do.
        let spec = WindowSpec::tumbling(1);
        Family {
            kpi,
            op: WindowOperator::new(kpi, spec, allowed_lateness_ms),
            names: Interner::default(),
            top_n,
        }
    }
}

impl<A> Family<A> {
    fn sink<'a>(&self, rows: &'a mut Vec<KpiRow>) -> GlobalRows<'a> {
        GlobalRows {
            rows,
            kpi: self.kpi,
            top_n: self.top_n,
        }
    }
}

impl<A: Aggregate + Send> MergeFamily for Family<A> {
    fn kpi(&self) -> &'static str {
        self.kpi
    }

    fn offer(&mut self, source: u32, row: &KpiRow, wm: Millis, out: &mut Vec<KpiRow>) -> Offer {
        let Some(agg) = A::from_values(&row.values) else {
            return Offer::BadValues;
        };
        let w = Window::new(row.window_start, row.window_end);
        let held = self.op.get(&w, &row.dimension);
        if held.is_some_and(|slot| !slot.agg.is_newer(source, row.revision)) {
            return Offer::Stale;
        }
        let mut sink = self.sink(out);
        let revision = row.revision;
        let apply = |s: &mut SourcePartials<A>| {
            s.offer(source, revision, agg);
        };
        if self
            .op
            .update_window(&row.dimension, w, wm, apply, &mut sink)
        {
            Offer::Applied
        } else {
            Offer::Expired
        }
    }

    fn advance(&mut self, wm: Millis, out: &mut Vec<KpiRow>) {
        let mut sink = self.sink(out);
        self.op.advance(wm, &mut sink);
    }

    fn emit_early(&mut self, out: &mut Vec<KpiRow>) {
        let mut sink = self.sink(out);
        self.op.emit_early(&mut sink);
    }

    fn flush(&mut self, seq: u64, out: &mut EntrySink<'_>) -> Result<(), StateError> {
        self.op.flush(seq, &self.names, &mut |k, v| out(k, v))
    }

    fn snapshot(&self, out: &mut EntrySink<'_>) -> Result<(), StateError> {
        self.op.snapshot(&self.names, &mut |k, v| out(k, v))
    }

    fn owns(&self, key: &[u8]) -> bool {
        self.op.owns(key)
    }

    fn restore(&mut self, key: &[u8], value: &[u8]) -> Result<(), StateError> {
        self.op.restore(key, value, &mut self.names)
    }

    fn len(&self) -> usize {
        self.op.len()
    }
}
