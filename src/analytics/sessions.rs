//! The `sessions` KPI family: per window, the user sessions that closed in it (see
//! `session_kpis`), the active users (distinct customers with such a session), their
//! events and the summed session duration (last minus first event time), from which the
//! average session duration and the events per session are derived on output.
//! [`SessionsAgg`] keeps sums and the customer set, so stage 2 adds partials of several
//! tasks (their customers are disjoint: inputs are keyed by customer_id), and a closed
//! session's contribution can be replaced when a late event changes it.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::journey::Summary;
use crate::engine::{Aggregate, CustomerSet, MemberId};

/// Session partial aggregate of one window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionsAgg {
    pub sessions: u64,
    pub users: CustomerSet,
    pub events: u64,
    pub duration_ms: u64,
}

impl SessionsAgg {
    pub fn add(&mut self, s: &Summary, customer: MemberId) {
        self.sessions += 1;
        self.events += s.events;
        self.duration_ms += s.duration_ms;
        self.users.insert(customer);
    }

    /// Takes back the sums of a contribution added before. The customer stays active: a
    /// retraction is always followed by the same session's new contribution.
    pub fn retract(&mut self, s: &Summary) {
        self.sessions = self.sessions.saturating_sub(1);
        self.events = self.events.saturating_sub(s.events);
        self.duration_ms = self.duration_ms.saturating_sub(s.duration_ms);
    }
}

impl Aggregate for SessionsAgg {
    fn merge(&mut self, o: &Self) {
        self.sessions += o.sessions;
        self.users.merge(&o.users);
        self.events += o.events;
        self.duration_ms += o.duration_ms;
    }

    fn write_values(&self, out: &mut BTreeMap<String, Decimal>) {
        out.insert("sessions".into(), self.sessions.into());
        out.insert("active_users".into(), self.users.len().into());
        out.insert("events".into(), self.events.into());
        out.insert("duration_ms".into(), self.duration_ms.into());
        if self.sessions > 0 {
            let n = Decimal::from(self.sessions);
            out.insert(
                "avg_duration_s".into(),
                (Decimal::from(self.duration_ms) / n / Decimal::from(1000)).round_dp(3),
            );
            out.insert(
                "events_per_session".into(),
                (Decimal::from(self.events) / n).round_dp(2),
            );
        }
    }

    crate::engine::customer_members!(users);

    fn from_values(v: &BTreeMap<String, Decimal>) -> Option<Self> {
        let n = |k: &str| v.get(k).and_then(|d| u64::try_from(*d).ok());
        Some(SessionsAgg {
            sessions: n("sessions")?,
            users: CustomerSet::Count(n("active_users")?),
            events: n("events")?,
            duration_ms: n("duration_ms")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_users_and_derived_values() {
        let s = |events, duration_ms| Summary {
            steps: 1,
            cart: false,
            purchase: false,
            events,
            duration_ms,
        };
        let mut a = SessionsAgg::default();
        a.add(&s(3, 60_000), 1);
        a.add(&s(2, 1_500), 1);
        a.add(&s(1, 0), 2);
        let mut v = BTreeMap::new();
        a.write_values(&mut v);
        assert_eq!(v["sessions"], Decimal::from(3));
        assert_eq!(v["active_users"], Decimal::from(2));
        assert_eq!(v["avg_duration_s"], Decimal::new(20500, 3));
        assert_eq!(v["events_per_session"], Decimal::from(2));
        // a late event changes the second session: its contribution is replaced
        a.retract(&s(2, 1_500));
        a.add(&s(3, 2_000), 1);
        assert_eq!((a.sessions, a.events, a.duration_ms), (3, 7, 62_000));
        assert_eq!(a.users.len(), 2);
        let b = SessionsAgg::from_values(&v).unwrap();
        assert_eq!((b.sessions, b.users.len(), b.events), (3, 2, 6));
    }
}
