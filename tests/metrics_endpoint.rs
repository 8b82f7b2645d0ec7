//! The Prometheus endpoint of `shopstream run`: the real binary against the mock cluster
//! and a throw-away PostgreSQL, scraped over HTTP once it has processed input. Every
//! metric of DESIGN.md's list that this input exercises must be there with its help text
//! and a value that shows the work was counted.

mod support;

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use shopstream::generator;
use support::db::{generate_args, start_pg};
use support::kafka::MockKafka;
use support::proc::{log_report, spawn_run, write_config};

/// The value of the first sample line starting with `series` (name plus labels).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread")]
async fn run_serves_prometheus_metrics() {
    let k = MockKafka::with_topics(2);
    let pg = start_pg();
    let dir = tempfile::tempdir().unwrap();
    let args = generate_args(
        &k.bootstrap(),
        dir.path(),
        &[
            ("count", "3000"),
            ("rate", "0"),
            ("seed", "5"),
            ("invalid-rate", "0.02"),
            ("duplicate-rate", "0.05"),
        ],
    );
    tokio::task::spawn_blocking(move || generator::run(&args, &AtomicBool::new(false)).unwrap())
        .await
        .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = write_config(dir.path(), &k.bootstrap(), pg.port(), "exactly-once", 0);
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("listen = \"\"", &format!("listen = \"127.0.0.1:{port}\""));
    std::fs::write(&config, text).unwrap();
    let log = dir.path().join("run.log");
    let child = spawn_run(&config, &log);

    let url = format!("http://127.0.0.1:{port}/metrics");
    let started = Instant::now();
    let mut body = String::new();
    while started.elapsed() < Duration::from_secs(90) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let Ok(r) = reqwest::get(&url).await else {
            continue;
        };
        body = r.text().await.unwrap_or_default();
        let consumed = sample(
            &body,
            "shopstream_records_in_total{topic=\"shop.transactions\"}",
        )
        .unwrap_or(0.0)
            + sample(&body, "shopstream_records_in_total{topic=\"shop.events\"}").unwrap_or(0.0);
        if consumed >= 3_000.0
            && sample(&body, "shopstream_sink_rows_total").unwrap_or(0.0) > 1_000.0
        {
            break;
        }
    }
    eprintln!(
        "after {:?}: sink rows {:?}, records in {:?}",
        started.elapsed(),
        sample(&body, "shopstream_sink_rows_total"),
        sample(
            &body,
            "shopstream_records_in_total{topic=\"shop.transactions\"}"
        )
    );
    assert!(
        child.terminate(),
        "run must stop cleanly; {}",
        log_report(&log, 20)
    );
    let positive = [
        "shopstream_records_in_total{topic=\"shop.transactions\"}",
        "shopstream_records_in_total{topic=\"shop.events\"}",
        "shopstream_records_out_total{topic=\"shop.orders.enriched\"}",
        "shopstream_records_out_total{topic=\"shop.internal.partials\"}",
        "shopstream_records_out_total{topic=\"shopstream-state-changelog\"}",
        "shopstream_dlq_total{",
        "shopstream_duplicates_total",
        "shopstream_txn_commit_seconds_count",
        "shopstream_end_to_end_latency_seconds_count",
        "shopstream_restore_seconds_count{stage=\"1\"}",
        "shopstream_restore_seconds_count{stage=\"2\"}",
        "shopstream_sink_rows_total",
        "shopstream_sink_batch_seconds_count",
        "shopstream_state_keys{store=\"dedup\"}",
    ];
    for series in positive {
        let v = sample(&body, series);
        assert!(v.is_some_and(|v| v > 0.0), "{series} = {v:?} in\n{body}");
    }
    for present in [
        "shopstream_consumer_lag_records{",
        "shopstream_watermark_lag_seconds{",
        "# HELP shopstream_end_to_end_latency_seconds",
        "# HELP shopstream_restore_seconds",
    ] {
        assert!(body.contains(present), "{present} missing in\n{body}");
    }
}
