//! Unit tests of the merger: watermark rules, emission life cycle, redeliveries, invalid
//! input and changelog restore. The property tests against stage-1 tasks live in
//! tests/engine_merge.rs.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use super::*;
use crate::engine::{compact_committed, RestorePoint};
use crate::model::EmitStatus;

const TOPIC: &str = "shop.internal.partials";
const LATENESS: i64 = 5;

fn cfg(early: Option<i64>) -> MergeConfig {
    MergeConfig {
        allowed_lateness_ms: LATENESS,
        early_interval_ms: early,
        top_n: 10,
        alerts: Default::default(),
        revenue_windows: vec![crate::engine::WindowSpec::tumbling(10)],
    }
}

fn merger(sources: u32, early: Option<i64>) -> Merger {
    Merger::new(cfg(early), sources, vec![TopicPartition::new(TOPIC, 0)]).unwrap()
}

/// A revenue partial for window [0, 10), dimension `all`.
fn row(revenue: i64, orders: u64, customers: u64, revision: u32) -> KpiRow {
    let mut values = BTreeMap::new();
    let agg = RevenueAgg {
        revenue: Decimal::from(revenue),
        orders,
        ..Default::default()
    };
    agg.write_values(&mut values);
    values.insert("unique_customers".into(), customers.into());
    KpiRow {
        kpi: kpi::REVENUE.into(),
        window_start: 0,
        window_end: 10,
        dimension: "all".into(),
        values,
        status: EmitStatus::Early,
        revision,
    }
}

/// Feeds records at consecutive offsets.
struct Feed {
    m: Merger,
    offset: i64,
    out: Outputs,
}

impl Feed {
    fn new(m: Merger) -> Self {
        Feed {
            m,
            offset: 0,
            out: Outputs::default(),
        }
    }

    fn at(&mut self) -> Consumed<'static> {
        self.offset += 1;
        Consumed {
            topic: TOPIC,
            partition: 0,
            offset: self.offset - 1,
        }
    }

    fn partial(&mut self, source: u32, r: &KpiRow) -> MergeDisposition {
        let at = self.at();
        self.m.on_partial(at, source, r, &mut self.out).unwrap()
    }

    fn mark(&mut self, source: u32, wm: Millis) -> MergeDisposition {
        let at = self.at();
        self.m.on_watermark(at, source, wm, &mut self.out).unwrap()
    }

    /// (status, revision, revenue, unique customers) of the rows emitted so far.
    fn emitted(&mut self) -> Vec<(EmitStatus, u32, Decimal, Decimal)> {
        self.out
            .kpis
            .drain(..)
            .map(|r| {
                let v = |k: &str| r.values.get(k).copied().unwrap_or_default();
                (r.status, r.revision, v("revenue"), v("unique_customers"))
            })
            .collect()
    }
}

fn d(n: i64) -> Decimal {
    Decimal::from(n)
}

#[test]
fn on_time_waits_for_every_source_then_late_updates_then_final() {
    let mut f = Feed::new(merger(3, None));
    assert_eq!(f.partial(0, &row(10, 1, 1, 1)), MergeDisposition::Applied);
    assert_eq!(f.partial(2, &row(5, 1, 2, 1)), MergeDisposition::Applied);
    f.mark(0, 20);
    f.mark(2, 20);
    assert_eq!(f.m.watermark(), Millis::MIN, "source 1 never reported");
    assert!(f.emitted().is_empty());
    f.mark(1, 9);
    assert!(f.emitted().is_empty(), "min 9 < window end 10");
    f.mark(1, 10);
    assert_eq!(f.m.watermark(), 10);
    assert_eq!(f.emitted(), vec![(EmitStatus::OnTime, 1, d(15), d(3))]);
    // A newer partial of source 0 replaces its older one (not added to it).
    assert_eq!(f.partial(0, &row(12, 2, 1, 2)), MergeDisposition::Applied);
    assert_eq!(f.emitted(), vec![(EmitStatus::LateUpdate, 2, d(17), d(3))]);
    // A partial of a source without data so far, after on time: a late update too.
    f.partial(1, &row(1, 1, 1, 4));
    assert_eq!(f.emitted(), vec![(EmitStatus::LateUpdate, 3, d(18), d(4))]);
    for s in 0..3 {
        f.mark(s, 15);
    }
    assert_eq!(f.emitted(), vec![(EmitStatus::Final, 4, d(18), d(4))]);
    assert!(f.m.is_empty(), "final results are purged");
    assert_eq!(f.partial(0, &row(99, 9, 9, 3)), MergeDisposition::Expired);
    assert!(f.emitted().is_empty());
}

#[test]
fn redeliveries_and_re_reads_change_nothing() {
    let mut f = Feed::new(merger(2, None));
    f.partial(0, &row(10, 1, 1, 3));
    assert_eq!(f.partial(0, &row(7, 1, 1, 3)), MergeDisposition::Stale);
    assert_eq!(f.partial(0, &row(7, 1, 1, 2)), MergeDisposition::Stale);
    f.mark(0, 10);
    f.mark(1, 10);
    assert_eq!(f.mark(1, 8), MergeDisposition::Stale, "marks are monotone");
    assert_eq!(f.m.source_watermarks(), &[10, 10]);
    assert_eq!(f.emitted(), vec![(EmitStatus::OnTime, 1, d(10), d(1))]);
    assert_eq!(f.partial(0, &row(10, 1, 1, 3)), MergeDisposition::Stale);
    assert!(
        f.emitted().is_empty(),
        "a redelivery after on time emits nothing"
    );
    let at = Consumed {
        topic: TOPIC,
        partition: 0,
        offset: 1,
    };
    let again =
        f.m.on_partial(at, 0, &row(50, 5, 5, 9), &mut f.out)
            .unwrap();
    assert_eq!(again, MergeDisposition::AlreadyApplied);
    let c = f.m.counters();
    assert_eq!((c.stale, c.already_applied), (4, 1));
}

#[test]
fn invalid_input_is_counted_not_fatal() {
    let mut f = Feed::new(merger(2, None));
    let inv = MergeDisposition::Invalid;
    assert_eq!(f.partial(2, &row(1, 1, 1, 1)), inv(Invalid::UnknownSource));
    let mut r = row(1, 1, 1, 1);
    r.kpi = "nope".into();
    assert_eq!(f.partial(0, &r), inv(Invalid::UnknownKpi));
    let mut r = row(1, 1, 1, 1);
    r.window_end = r.window_start;
    assert_eq!(f.partial(0, &r), inv(Invalid::BadWindow));
    let mut r = row(1, 1, 1, 1);
    r.values.remove("orders");
    assert_eq!(f.partial(0, &r), inv(Invalid::BadValues));
    assert_eq!(f.mark(7, 10), inv(Invalid::UnknownSource));
    assert_eq!(f.m.counters().invalid, 5);
    assert!(f.m.is_empty());
    let at = Consumed {
        topic: "other",
        partition: 0,
        offset: 0,
    };
    assert!(f.m.on_watermark(at, 0, 1, &mut f.out).is_err());
    assert!(Merger::new(cfg(None), 0, vec![]).is_err());
}

#[test]
fn early_results_on_processing_time_ticks() {
    let mut f = Feed::new(merger(1, Some(100)));
    f.partial(0, &row(3, 1, 1, 1));
    f.m.on_tick(1_000, &mut f.out); // arms the timer
    assert!(f.emitted().is_empty());
    f.m.on_tick(1_100, &mut f.out);
    assert_eq!(f.emitted(), vec![(EmitStatus::Early, 1, d(3), d(1))]);
    f.m.on_tick(1_200, &mut f.out);
    assert!(f.emitted().is_empty(), "unchanged: no second early row");
    f.mark(0, 10);
    assert_eq!(f.emitted(), vec![(EmitStatus::OnTime, 2, d(3), d(1))]);
}

#[test]
fn restore_ignores_uncommitted_entries_and_continues_identically() {
    let prefix = |f: &mut Feed| {
        f.partial(0, &row(10, 1, 1, 1));
        f.m.on_tick(0, &mut f.out);
        f.mark(0, 12);
    };
    let rest = |f: &mut Feed| {
        f.partial(1, &row(20, 1, 1, 1));
        f.m.on_tick(100, &mut f.out);
        f.mark(1, 11);
    };
    let mut reference = Feed::new(merger(2, Some(100)));
    prefix(&mut reference);
    let mut f = Feed::new(merger(2, Some(100)));
    prefix(&mut f);
    f.m.flush_changelog(&mut f.out).unwrap();
    let committed = RestorePoint {
        offsets: f.m.next_offsets(),
        flush_seq: Some(f.m.flush_seq()),
    };
    let snapshot = f.m.snapshot().unwrap();
    // An uncommitted transaction.
    rest(&mut f);
    f.m.flush_changelog(&mut f.out).unwrap();
    let log = std::mem::take(&mut f.out.changelog);
    assert_eq!(
        compact_committed(&log, &committed).unwrap().state,
        compact_committed(&snapshot, &committed).unwrap().state,
        "the committed changelog compacts to the snapshot"
    );

    let inputs = vec![TopicPartition::new(TOPIC, 0)];
    let restored = Merger::restore(cfg(Some(100)), 2, inputs.clone(), &log, &committed).unwrap();
    assert_eq!(restored.next_offsets(), committed.offsets);
    assert_eq!(restored.watermark(), Millis::MIN);
    assert_eq!(restored.source_watermarks(), &[12, Millis::MIN]);
    assert_eq!(restored.len(), 1);
    assert!(Merger::restore(cfg(None), 3, inputs, &log, &committed).is_err());

    // Re-reading from the start: applied offsets are skipped, the rest continues exactly
    // like the merger that never crashed.
    let mut r = Feed::new(restored);
    prefix(&mut r);
    assert!(r.emitted().is_empty());
    assert_eq!(r.m.counters().already_applied, 2);
    reference.out.kpis.clear();
    rest(&mut reference);
    rest(&mut r);
    assert_eq!(reference.out.kpis, r.out.kpis);
    assert_eq!(
        r.emitted(),
        vec![
            (EmitStatus::Early, 1, d(30), d(2)),
            (EmitStatus::OnTime, 2, d(30), d(2))
        ]
    );
}

/// A final-bound revenue partial of source 0 for window [start, start + 10).
fn revenue_at(start: Millis, revenue: i64) -> KpiRow {
    KpiRow {
        window_start: start,
        window_end: start + 10,
        ..row(revenue, 1, 1, 1)
    }
}

#[test]
fn business_alerts_come_from_final_rows_and_survive_a_restore() {
    let mut c = cfg(None);
    c.alerts.min_history = 2;
    c.alerts.trailing_windows = 3;
    let prefix = |f: &mut Feed| {
        f.partial(0, &revenue_at(0, 100));
        f.partial(0, &revenue_at(10, 100));
        f.mark(0, 15);
    };
    let rest = |f: &mut Feed| {
        f.partial(0, &revenue_at(20, 10));
        f.mark(0, 45);
    };
    let new = |c: &MergeConfig| Merger::new(c.clone(), 1, vec![TopicPartition::new(TOPIC, 0)]);
    let mut reference = Feed::new(new(&c).unwrap());
    prefix(&mut reference);
    rest(&mut reference);
    let ids: Vec<&str> = reference
        .out
        .business_alerts
        .iter()
        .map(|a| a.alert_id.as_str())
        .collect();
    // [20, 30) sold 10 against 100: a drop; [30, 40) sold nothing: a drop too. [40, 50)
    // has not settled at 45 (its lateness runs to 55).
    assert_eq!(ids, ["revenue_drop|10|all|20", "revenue_drop|10|all|30"]);

    let mut f = Feed::new(new(&c).unwrap());
    prefix(&mut f);
    assert!(f.out.business_alerts.is_empty());
    f.m.flush_changelog(&mut f.out).unwrap();
    let committed = RestorePoint {
        offsets: f.m.next_offsets(),
        flush_seq: Some(f.m.flush_seq()),
    };
    assert!(
        f.out
            .changelog
            .iter()
            .any(|e| e.key.starts_with(b"alert/series/")),
        "the alert state is changelogged"
    );
    // An uncommitted transaction judging window [20, 30) is lost with the crash.
    rest(&mut f);
    f.m.flush_changelog(&mut f.out).unwrap();
    let log = std::mem::take(&mut f.out.changelog);
    let inputs = vec![TopicPartition::new(TOPIC, 0)];
    let mut r = Feed::new(Merger::restore(c, 1, inputs, &log, &committed).unwrap());
    prefix(&mut r);
    rest(&mut r);
    assert_eq!(r.out.business_alerts, reference.out.business_alerts);
}
