//! Checks kpi_funnel and kpi_sessions in PostgreSQL against the batch recomputation of
//! `session_batch` over the events the engine accepted (the valid generated events less
//! those late_records holds), with the pipeline's session gap and revenue windows.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use shopstream::engine::{EngineConfig, WindowSpec};
use tokio_postgres::Client;

use super::oracle::{accepted_events, table_rows, InputStats};
use super::session_batch::{recompute, Rows};

/// What PostgreSQL holds and what it must hold: the rows of both families, and the
/// expected rows of the windows that must be out once event time passed `closed`.
pub struct SessionCheck {
    pub got: Rows,
    pub want: Rows,
    pub required: Vec<(String, i64, i64)>,
}

impl SessionCheck {
    /// Every row equals its recomputation, and every required window has a row.
    pub fn exact(&self) -> bool {
        self.got.iter().all(|(k, v)| self.want.get(k) == Some(v))
            && self.required.iter().all(|k| self.got.contains_key(k))
    }
}

fn specs(cfg: &EngineConfig) -> Vec<(i64, i64)> {
    cfg.windows
        .revenue
        .iter()
        .map(|s| match *s {
            WindowSpec::Tumbling { size_ms } => (size_ms, size_ms),
            WindowSpec::Hopping { size_ms, slide_ms } => (size_ms, slide_ms),
        })
        .collect()
}

/// Reads both tables and recomputes them; the windows ending at or before the watermark
/// `closed` are required.
pub async fn load(
    client: &Client,
    input: &InputStats,
    cfg: &EngineConfig,
    closed: i64,
) -> SessionCheck {
    let events = accepted_events(client, input).await;
    let gap = cfg.windows.session_gap_ms;
    let want: Rows = recompute(
        events.iter().map(|e| (e.1.as_str(), e.2.as_str(), e.3)),
        gap,
        &specs(cfg),
    )
    .into_iter()
    .map(|(k, v)| (k, v.into_iter().map(|(n, d)| (n, d.normalize())).collect()))
    .collect();
    let mut got = Rows::new();
    for family in ["funnel", "sessions"] {
        for r in table_rows(client, family).await {
            assert_eq!(r.dimension, "all", "{family} rows have one dimension");
            got.insert((family.to_owned(), r.start, r.end), r.metrics);
        }
    }
    let required = want.keys().filter(|k| k.2 <= closed).cloned().collect();
    SessionCheck {
        got,
        want,
        required,
    }
}

/// Polls until the tables are exact or `timeout` passes, then asserts it; returns the
/// number of rows per family.
pub async fn check_all_sessions(
    client: &Client,
    input: &InputStats,
    cfg: &EngineConfig,
    closed: i64,
    timeout: Duration,
) -> BTreeMap<&'static str, usize> {
    let deadline = Instant::now() + timeout;
    let mut c = load(client, input, cfg, closed).await;
    while !c.exact() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        c = load(client, input, cfg, closed).await;
    }
    for (k, v) in &c.got {
        assert_eq!(Some(v), c.want.get(k), "{k:?}: PostgreSQL vs recomputation");
    }
    let missing: Vec<_> = c
        .required
        .iter()
        .filter(|k| !c.got.contains_key(*k))
        .collect();
    assert!(
        missing.is_empty(),
        "closed windows without a row: {missing:?}"
    );
    let count = |f: &str| c.got.keys().filter(|k| k.0 == f).count();
    let sessions: Decimal = c
        .got
        .iter()
        .filter(|(k, _)| k.0 == "sessions" && k.2 - k.1 == 60_000)
        .map(|(_, v)| v["sessions"])
        .sum();
    eprintln!("sessions in closed one-minute windows: {sessions}");
    BTreeMap::from([("funnel", count("funnel")), ("sessions", count("sessions"))])
}
