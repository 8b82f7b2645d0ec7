//! The session KPIs of one stage-1 task: user sessions per customer as merging session
//! windows on event time (`engine::session`, the inactivity gap `windows.session_gap_ms`,
//! 30 minutes by default) over [`Journey`] aggregates, feeding the `funnel` and `sessions`
//! window families. The gap defines a session, as in Flink's session windows; the
//! producer's `session_id` is a client label and is not used (a customer returning within
//! the gap continues the session; the generator's sessions last at most 20 minutes, so one
//! of them never splits). Inputs are keyed by customer_id, so a customer's sessions live in
//! one task.
//!
//! A session contributes once it closes, i.e. when its on-time result is out (the
//! watermark passed its last event plus the gap): to every window of `windows.revenue`
//! (1 min and 1 h by default) that contains its last instant (end − 1 ms, Flink's
//! `maxTimestamp` of a session window). That window cannot have fired yet, since it ends at
//! or after the session, so a session closing on time lands in an on-time result. A late
//! event that updates a sealed session replaces its contribution (retract, add) in those
//! windows, which emit a `late_update` if they have fired; a brand-new session that is
//! already past its end is added the same way. Rejected events ([`SessionLate`]) go to the
//! late output with their reason. Session results themselves are not emitted as rows.

use crate::engine::session::{SessionLate, SessionOperator};
use crate::engine::{
    kpi, All, Emission, Interner, MemberId, RowSink, StateError, Window, WindowConfig,
    WindowOperator,
};
use crate::model::time::Millis;
use crate::model::{EmitStatus, KpiRow, UserEvent};

use super::funnel::FunnelAgg;
use super::journey::{Journey, Summary};
use super::sessions::SessionsAgg;

/// A closed (or changed) session: its window, customer and contribution.
struct Closed {
    window: Window,
    customer: String,
    summary: Summary,
}

/// The session operator and the funnel and sessions windows of one task.
pub struct SessionKpis {
    sessions: SessionOperator<String, Journey>,
    funnel: Vec<WindowOperator<All, FunnelAgg>>,
    stats: Vec<WindowOperator<All, SessionsAgg>>,
    /// Sessions closed by the watermark, awaiting their contribution (reused buffer).
    closed: Vec<Closed>,
}

impl SessionKpis {
    pub fn new(w: &WindowConfig) -> Self {
        let lateness = w.allowed_lateness_ms;
        let op = |family: &str, spec: &crate::engine::WindowSpec| {
            (format!("{family}:{}", spec.name()), *spec)
        };
        SessionKpis {
            sessions: SessionOperator::new("user_sessions", w.session_gap_ms, lateness),
            funnel: w
                .revenue
                .iter()
                .map(|s| op(kpi::FUNNEL, s))
                .map(|(name, spec)| WindowOperator::new(name, spec, lateness))
                .collect(),
            stats: w
                .revenue
                .iter()
                .map(|s| op(kpi::SESSIONS, s))
                .map(|(name, spec)| WindowOperator::new(name, spec, lateness))
                .collect(),
            closed: Vec::new(),
        }
    }

    /// Adds one accepted user event at watermark `wm`; an error means the event is late
    /// for its session and changed nothing.
    pub fn add_event(
        &mut self,
        e: &UserEvent,
        wm: Millis,
        names: &mut Interner,
        out: &mut Vec<KpiRow>,
    ) -> Result<(), SessionLate> {
        let mut before = None;
        let mut changed = None;
        let mut sink = |em: Emission<'_, String, Journey>| {
            if em.status == EmitStatus::LateUpdate {
                changed = em.agg.summary().map(|s| (em.window, s));
            }
        };
        let (t, ts) = (e.event_type, e.timestamp);
        self.sessions.update(
            &e.customer_id,
            ts,
            wm,
            |j| {
                before = j.summary();
                j.add(t, ts);
            },
            &mut sink,
        )?;
        // Only a session whose on-time result was out (or a new one past its end) changes
        // its contribution here; `before` is what it had contributed (none for a new one).
        if let Some((window, after)) = changed {
            let customer = names.intern(&e.customer_id);
            self.contribute(window, customer, before.as_ref(), &after, wm, out);
        }
        Ok(())
    }

    /// Replaces a session's contribution `old` by `new` in the windows containing its last
    /// instant, at watermark `wm`.
    fn contribute(
        &mut self,
        session: Window,
        customer: MemberId,
        old: Option<&Summary>,
        new: &Summary,
        wm: Millis,
        out: &mut Vec<KpiRow>,
    ) {
        let at = session.end.saturating_sub(1);
        let mut sink = RowSink::new(out, kpi::FUNNEL);
        for op in &mut self.funnel {
            let f = |a: &mut FunnelAgg| {
                if let Some(old) = old {
                    a.retract(old);
                }
                a.add(new);
            };
            op.update(&All, at, wm, f, &mut sink);
        }
        let mut sink = RowSink::new(out, kpi::SESSIONS);
        for op in &mut self.stats {
            let f = |a: &mut SessionsAgg| {
                if let Some(old) = old {
                    a.retract(old);
                }
                a.add(new, customer);
            };
            op.update(&All, at, wm, f, &mut sink);
        }
    }

    /// Closes the sessions the watermark `wm` passed, adds them to their windows, then
    /// emits what the windows are due.
    pub fn advance(&mut self, wm: Millis, names: &mut Interner, out: &mut Vec<KpiRow>) {
        let mut closed = std::mem::take(&mut self.closed);
        // A session closes with its on-time result, or with its final one when the
        // watermark passes its end and its lateness at once (then `final` is its first
        // emission: sessions emit no early results, see `emit_early`).
        let mut sink = |em: Emission<'_, String, Journey>| {
            let first_final = em.status == EmitStatus::Final && em.revision == 1;
            if em.status == EmitStatus::OnTime || first_final {
                if let Some(summary) = em.agg.summary() {
                    closed.push(Closed {
                        window: em.window,
                        customer: em.key.clone(),
                        summary,
                    });
                }
            }
        };
        self.sessions.advance(wm, &mut sink);
        for c in closed.drain(..) {
            let customer = names.intern(&c.customer);
            // The windows were last advanced to a watermark below the session's end, and
            // they end at or after it: none has fired or expired, which the minimal
            // watermark states without the task's previous one.
            self.contribute(c.window, customer, None, &c.summary, Millis::MIN, out);
        }
        self.closed = closed;
        for op in &mut self.funnel {
            op.advance(wm, &mut RowSink::new(out, kpi::FUNNEL));
        }
        for op in &mut self.stats {
            op.advance(wm, &mut RowSink::new(out, kpi::SESSIONS));
        }
    }

    /// Early results of the funnel and sessions windows. Sessions themselves emit none, so
    /// a session's first emission is always its closing one.
    pub fn emit_early(&mut self, out: &mut Vec<KpiRow>) {
        for op in &mut self.funnel {
            op.emit_early(&mut RowSink::new(out, kpi::FUNNEL));
        }
        for op in &mut self.stats {
            op.emit_early(&mut RowSink::new(out, kpi::SESSIONS));
        }
    }

    pub fn set_changelog(&mut self, on: bool) {
        self.sessions.set_changelog(on);
        self.funnel.iter_mut().for_each(|op| op.set_changelog(on));
        self.stats.iter_mut().for_each(|op| op.set_changelog(on));
    }

    /// Live sessions and window results.
    pub fn len(&self) -> usize {
        self.sessions.len()
            + self.funnel.iter().map(|op| op.len()).sum::<usize>()
            + self.stats.iter().map(|op| op.len()).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every customer id the windows hold (for collecting unused interned ids).
    pub fn for_each_member(&self, mut f: impl FnMut(MemberId)) {
        for op in &self.stats {
            op.for_each_member(&mut f);
        }
    }

    pub fn flush(
        &mut self,
        seq: u64,
        names: &Interner,
        out: &mut impl FnMut(Vec<u8>, Option<Vec<u8>>),
    ) -> Result<(), StateError> {
        self.sessions.flush(out)?;
        for op in &mut self.funnel {
            op.flush(seq, names, out)?;
        }
        for op in &mut self.stats {
            op.flush(seq, names, out)?;
        }
        Ok(())
    }

    pub fn snapshot(
        &self,
        names: &Interner,
        out: &mut impl FnMut(Vec<u8>, Option<Vec<u8>>),
    ) -> Result<(), StateError> {
        self.sessions.snapshot(out)?;
        for op in &self.funnel {
            op.snapshot(names, out)?;
        }
        for op in &self.stats {
            op.snapshot(names, out)?;
        }
        Ok(())
    }

    /// Restores a session or window entry if these operators own it; false otherwise.
    pub fn restore(
        &mut self,
        key: &[u8],
        value: &[u8],
        names: &mut Interner,
    ) -> Result<bool, StateError> {
        if self.sessions.owns(key) {
            self.sessions.restore(key, Some(value))?;
            return Ok(true);
        }
        if let Some(op) = self.funnel.iter_mut().find(|op| op.owns(key)) {
            op.restore(key, value, names)?;
            return Ok(true);
        }
        if let Some(op) = self.stats.iter_mut().find(|op| op.owns(key)) {
            op.restore(key, value, names)?;
            return Ok(true);
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{testkit, WindowSpec};
    use crate::model::EventType::{self, *};

    const GAP: i64 = 10_000;

    struct Fixture {
        k: SessionKpis,
        names: Interner,
        rows: Vec<KpiRow>,
        n: u64,
    }

    impl Fixture {
        fn new(lateness: i64) -> Self {
            let w = WindowConfig {
                revenue: vec![WindowSpec::tumbling(60_000)],
                allowed_lateness_ms: lateness,
                session_gap_ms: GAP,
                ..WindowConfig::default()
            };
            Fixture {
                k: SessionKpis::new(&w),
                names: Interner::default(),
                rows: Vec::new(),
                n: 0,
            }
        }

        fn add(&mut self, t: EventType, ts: Millis, wm: Millis) -> Result<(), SessionLate> {
            self.n += 1;
            let e = testkit::event(self.n, 1, ts, t);
            self.k.add_event(&e, wm, &mut self.names, &mut self.rows)
        }

        fn advance(&mut self, wm: Millis) {
            self.k.advance(wm, &mut self.names, &mut self.rows);
        }

        /// The last row of `family`: status, revision and a value by name.
        fn last(&self, family: &str) -> (EmitStatus, u32, impl Fn(&str) -> i64) {
            let r = self.rows.iter().rev().find(|r| r.kpi == family).unwrap();
            let values = r.values.clone();
            (r.status, r.revision, move |k: &str| {
                i64::try_from(values[k]).unwrap()
            })
        }
    }

    #[test]
    fn a_gap_of_exactly_the_inactivity_gap_starts_a_new_session() {
        let mut f = Fixture::new(0);
        f.add(PageView, 0, Millis::MIN).unwrap();
        f.add(AddToCart, GAP - 1, Millis::MIN).unwrap();
        f.add(PageView, 2 * GAP - 1, Millis::MIN).unwrap();
        f.advance(60_000);
        let (status, _, v) = f.last(kpi::FUNNEL);
        assert_eq!(status, EmitStatus::Final);
        assert_eq!(v("sessions"), 2);
        assert_eq!((v("viewed"), v("carted"), v("abandoned_carts")), (2, 1, 1));
        let (_, _, s) = f.last(kpi::SESSIONS);
        assert_eq!((s("sessions"), s("active_users"), s("events")), (2, 1, 3));
        assert_eq!(s("duration_ms"), GAP - 1);
        assert!(f.k.is_empty(), "everything final and purged");
    }

    #[test]
    fn an_out_of_order_event_merges_two_sessions_into_one() {
        let mut f = Fixture::new(5_000);
        f.add(PageView, 0, Millis::MIN).unwrap();
        f.add(Purchase, 15_000, Millis::MIN).unwrap();
        f.advance(9_000);
        f.add(AddToCart, 7_000, 9_000).unwrap();
        f.add(CheckoutStart, 8_000, 9_000).unwrap();
        f.advance(24_999);
        assert!(f.rows.is_empty());
        f.advance(25_000);
        f.advance(65_000);
        let (status, revision, v) = f.last(kpi::FUNNEL);
        assert_eq!((status, revision), (EmitStatus::Final, 1));
        assert_eq!(v("sessions"), 1);
        let steps = ["viewed", "carted", "checked_out", "purchased"].map(&v);
        assert_eq!(steps, [1, 1, 1, 1]);
        assert_eq!((v("abandoned_carts"), v("conversion_rate")), (0, 1));
        let (_, _, s) = f.last(kpi::SESSIONS);
        assert_eq!(
            (s("sessions"), s("events"), s("duration_ms")),
            (1, 4, 15_000)
        );
    }

    #[test]
    fn late_events_replace_a_closed_sessions_contribution() {
        let mut f = Fixture::new(30_000);
        f.add(PageView, 40_000, Millis::MIN).unwrap();
        f.add(AddToCart, 45_000, Millis::MIN).unwrap();
        f.advance(55_000);
        assert!(f.rows.is_empty(), "the session closed, its window is open");
        f.advance(60_000);
        let (status, _, v) = f.last(kpi::FUNNEL);
        assert_eq!(status, EmitStatus::OnTime);
        assert_eq!(
            (v("sessions"), v("carted"), v("abandoned_carts")),
            (1, 1, 1)
        );
        // a checkout before the cart: not an ordered step
        f.add(CheckoutStart, 44_000, 60_000).unwrap();
        let (status, _, v) = f.last(kpi::FUNNEL);
        assert_eq!(status, EmitStatus::LateUpdate);
        assert_eq!(
            (v("sessions"), v("checked_out"), v("abandoned_carts")),
            (1, 0, 1)
        );
        // a purchase: no longer abandoned, but not reached in order either
        f.add(Purchase, 45_000, 60_000).unwrap();
        let (_, _, v) = f.last(kpi::FUNNEL);
        assert_eq!((v("purchased"), v("abandoned_carts")), (0, 0));
        f.add(CheckoutStart, 45_000, 60_000).unwrap();
        let (_, revision, v) = f.last(kpi::FUNNEL);
        assert_eq!((revision, v("checked_out"), v("purchased")), (4, 1, 1));
        // after the last event: it would extend the sealed session
        assert_eq!(f.add(Search, 50_000, 60_000), Err(SessionLate::Sealed));
        f.advance(90_000);
        let (status, revision, v) = f.last(kpi::FUNNEL);
        assert_eq!((status, revision, v("sessions")), (EmitStatus::Final, 5, 1));
        let (_, _, s) = f.last(kpi::SESSIONS);
        assert_eq!((s("sessions"), s("active_users"), s("events")), (1, 1, 5));
        assert_eq!(s("duration_ms"), 5_000);
    }
}
