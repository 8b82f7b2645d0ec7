//! Prometheus metrics: installs the `metrics` recorder with an HTTP `/metrics` listener on
//! the configured address and describes every metric the pipeline records (name, unit,
//! help), so a scrape shows what each series means. Recording happens where the work is
//! done (stage 1, stage 2, the sink, transactions); this module only owns the exporter,
//! the names and the histogram buckets.

use std::net::SocketAddr;

use anyhow::{Context, Result};
use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

pub const RECORDS_IN: &str = "shopstream_records_in_total";
pub const RECORDS_OUT: &str = "shopstream_records_out_total";
pub const DLQ: &str = "shopstream_dlq_total";
pub const DUPLICATES: &str = "shopstream_duplicates_total";
pub const LATE: &str = "shopstream_late_records_total";
pub const WATERMARK_LAG: &str = "shopstream_watermark_lag_seconds";
pub const CONSUMER_LAG: &str = "shopstream_consumer_lag_records";
pub const E2E_LATENCY: &str = "shopstream_end_to_end_latency_seconds";
pub const TXN_COMMIT: &str = "shopstream_txn_commit_seconds";
pub const TXN_ABORTS: &str = "shopstream_txn_aborts_total";
pub const WINDOW_EMITS: &str = "shopstream_window_emits_total";
pub const FRAUD_ALERTS: &str = "shopstream_fraud_alerts_total";
pub const BUSINESS_ALERTS: &str = "shopstream_business_alerts_total";
pub const STATE_KEYS: &str = "shopstream_state_keys";
pub const RESTORE: &str = "shopstream_restore_seconds";
pub const PAUSED: &str = "shopstream_paused_partitions";
pub const SINK_ROWS: &str = "shopstream_sink_rows_total";
pub const SINK_BATCH: &str = "shopstream_sink_batch_seconds";

/// Every metric shopstream exports (the dashboards may name only these).
pub const ALL: [&str; 18] = [
    RECORDS_IN,
    RECORDS_OUT,
    DLQ,
    DUPLICATES,
    LATE,
    WATERMARK_LAG,
    CONSUMER_LAG,
    E2E_LATENCY,
    TXN_COMMIT,
    TXN_ABORTS,
    WINDOW_EMITS,
    FRAUD_ALERTS,
    BUSINESS_ALERTS,
    STATE_KEYS,
    RESTORE,
    PAUSED,
    SINK_ROWS,
    SINK_BATCH,
];

/// Starts the `/metrics` listener on `listen` (empty: metrics are recorded nowhere).
/// Must run inside the tokio runtime.
pub fn install(listen: &str) -> Result<Option<SocketAddr>> {
    if listen.is_empty() {
        return Ok(None);
    }
    let addr: SocketAddr = listen
        .parse()
        .with_context(|| format!("metrics.listen: not a socket address: {listen:?}"))?;
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets_for_metric(
            Matcher::Suffix("_seconds".into()),
            &[
                0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0,
            ],
        )
        .context("metrics buckets")?
        .install()
        .with_context(|| format!("starting the metrics endpoint on {addr}"))?;
    describe();
    Ok(Some(addr))
}

fn describe() {
    describe_counter!(RECORDS_IN, "Records consumed, by input topic");
    describe_counter!(RECORDS_OUT, "Records produced, by output topic");
    describe_counter!(DLQ, "Records sent to the dead-letter queue, by reason");
    describe_counter!(DUPLICATES, "Transactions dropped as duplicates");
    describe_counter!(
        LATE,
        "Records later than the allowed lateness (to shop.late)"
    );
    describe_gauge!(
        WATERMARK_LAG,
        Unit::Seconds,
        "Wall clock minus the task's event-time watermark, by task"
    );
    describe_gauge!(
        CONSUMER_LAG,
        "High watermark minus position, by topic and partition"
    );
    describe_histogram!(
        E2E_LATENCY,
        Unit::Seconds,
        "From a record's Kafka timestamp to the commit that made its outputs visible"
    );
    describe_histogram!(
        TXN_COMMIT,
        Unit::Seconds,
        "Time to send offsets and commit a transaction"
    );
    describe_counter!(TXN_ABORTS, "Transactions aborted and rewound, by stage");
    describe_counter!(WINDOW_EMITS, "Global KPI rows emitted, by KPI and status");
    describe_counter!(FRAUD_ALERTS, "Fraud alerts raised");
    describe_counter!(
        BUSINESS_ALERTS,
        "Business alerts raised (revenue drop, failed-payment rate, low stock), by kind"
    );
    describe_gauge!(STATE_KEYS, "Keys held in state, by store");
    describe_histogram!(
        RESTORE,
        Unit::Seconds,
        "Time to restore a task's state from its changelog"
    );
    describe_gauge!(PAUSED, "Input partitions paused for backpressure, by stage");
    describe_counter!(SINK_ROWS, "Rows upserted into PostgreSQL");
    describe_histogram!(
        SINK_BATCH,
        Unit::Seconds,
        "Time to write one sink batch and its offsets to PostgreSQL"
    );
}
