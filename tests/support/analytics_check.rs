//! The checks a run of the real binary (tests/crash_kill.rs, tests/scale.rs) ends with for
//! the session and customer analytics, while its last instance still runs: kpi_funnel and
//! kpi_sessions equal the batch recomputation from the accepted events
//! (`session_oracle`), every KPI topic and shop.customers.rfm is undoubled and its latest
//! revisions equal the tables (`topic_oracle`, shop.alerts.business too), dim_customers'
//! RFM columns equal the recomputation from the orders (`rfm_oracle`), and the business
//! window alerts equal the recomputation from the final revenue rows (`alert_oracle`). The binary's engine settings are read
//! from its config file, so the recomputation uses the same session gap and windows.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use shopstream::config::Config;
use shopstream::engine::EngineConfig;
use tokio_postgres::Client;

use super::oracle::InputStats;

/// The session gap the tests give the binary: short enough that sessions close within a
/// stream of a few minutes of event time (pipeline_mock uses the same).
pub const TEST_SESSION_GAP_MS: i64 = 10_000;

/// Sets the session gap of the binary's config file `path` to `gap_ms`.
pub fn set_session_gap(path: &Path, gap_ms: i64) {
    let mut text = std::fs::read_to_string(path).unwrap();
    text.push_str(&format!("[engine.windows]\nsession_gap_ms = {gap_ms}\n"));
    std::fs::write(path, text).unwrap();
}

/// The engine settings of the binary's config file `path` (defaults, the file; the test
/// process's SHOPSTREAM_* variables are not the child's and name no config key).
pub fn engine_of(path: &Path) -> EngineConfig {
    Config::load(Some(path)).expect("the test's config").engine
}

/// What the checks compared.
#[derive(Debug)]
pub struct Checked {
    /// Rows per family equal to the recomputation (funnel, sessions).
    pub sessions: BTreeMap<&'static str, usize>,
    /// Customers whose RFM columns equal the recomputation.
    pub customers: usize,
    /// Per topic: (records read, rows equal to the latest revisions).
    pub topics: BTreeMap<String, (usize, usize)>,
    /// Business alerts per kind (window alerts equal to the recomputation).
    pub alerts: BTreeMap<String, usize>,
    /// How long the checks took, polling included.
    pub took: Duration,
}

/// Runs the checks for the binary configured by `config`, with the event time closed
/// after `closed` (windows ending by then must have rows); each check polls at most
/// `timeout` for the sink to catch up. Requires funnel, sessions and RFM rows to exist.
pub async fn check_session_and_customer_analytics(
    client: &Client,
    bootstrap: &str,
    input: &InputStats,
    config: &Path,
    closed: i64,
    timeout: Duration,
) -> Checked {
    let started = Instant::now();
    let engine = engine_of(config);
    assert_eq!(
        engine.windows.session_gap_ms, TEST_SESSION_GAP_MS,
        "the binary's session gap"
    );
    let sessions =
        super::session_oracle::check_all_sessions(client, input, &engine, closed, timeout).await;
    assert!(
        sessions.values().all(|n| *n > 0),
        "funnel and sessions rows: {sessions:?}"
    );
    let families = super::topic_oracle::KPI_FAMILIES;
    let topics =
        super::topic_oracle::check_topics_equal_tables(client, bootstrap, &families, timeout).await;
    let customers = super::rfm_oracle::check_rfm(client, &engine).await;
    assert!(customers > 0, "customers with an RFM profile");
    let alerts = super::alert_oracle::check_business_alerts(client, &engine, closed, timeout).await;
    Checked {
        sessions,
        customers,
        topics,
        alerts,
        took: started.elapsed(),
    }
}
