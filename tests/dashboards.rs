//! The Grafana dashboards in deploy/grafana/dashboards against a PostgreSQL filled by a real
//! pipeline run (the in-process pipeline on the mock cluster, generated input with
//! invalid, duplicate and late records and fraud alerts): every SQL query of every panel
//! must run and return rows, with Grafana's `$__timeFilter(column)` macro taken as "any
//! time". Every metric a PromQL expression names must be one the pipeline exports
//! (tests/metrics_endpoint.rs checks the exported ones are served and moving).

mod support;

use std::collections::BTreeSet;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use shopstream::generator;
use support::db::{generate_args, start_pg, Db};
use support::kafka::MockKafka;
use support::oracle::expected_all;
use support::pipeline::{mock_config, start};

/// Every panel target of every dashboard: (dashboard file, panel title, target).
fn targets() -> Vec<(String, String, serde_json::Value)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/grafana/dashboards");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let d: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        for panel in d["panels"].as_array().unwrap() {
            let title = panel["title"].as_str().unwrap().to_string();
            for t in panel["targets"].as_array().unwrap() {
                out.push((file.clone(), title.clone(), t.clone()));
            }
        }
    }
    assert!(out.len() >= 25, "{} panel targets", out.len());
    out
}

/// `$__timeFilter(col)` as "any time", the only Grafana macro the dashboards use.
fn expand_macros(sql: &str) -> String {
    let mut out = String::new();
    let mut rest = sql;
    while let Some(i) = rest.find("$__timeFilter(") {
        out.push_str(&rest[..i]);
        let after = &rest[i + "$__timeFilter(".len()..];
        let close = after.find(')').expect("closed macro");
        out.push_str(&format!("({} IS NOT NULL)", &after[..close]));
        rest = &after[close + 1..];
    }
    assert!(!rest.contains("$__"), "an unsupported macro in {sql}");
    out + rest
}

#[test]
fn promql_names_only_exported_metrics() {
    let exported: BTreeSet<&str> = shopstream::runtime::telemetry::ALL
        .iter()
        .copied()
        .collect();
    let mut named = 0;
    for (file, title, t) in targets() {
        let Some(expr) = t["expr"].as_str() else {
            continue;
        };
        for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if !word.starts_with("shopstream_") {
                continue;
            }
            let name = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| word.strip_suffix(s))
                .filter(|base| exported.contains(base))
                .unwrap_or(word);
            assert!(
                exported.contains(name),
                "{file} / {title}: {name} is not exported"
            );
            named += 1;
        }
    }
    assert!(named >= 15, "{named} metric names");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_sql_panel_returns_rows_after_a_pipeline_run() {
    let k = MockKafka::with_topics(2);
    let pg = start_pg();
    let conn = pg.connection_string("shop");
    let dir = tempfile::tempdir().unwrap();
    let args = generate_args(
        &k.bootstrap(),
        dir.path(),
        &[
            ("count", "8000"),
            ("rate", "0"),
            ("event-rate", "50"),
            ("seed", "41"),
            // Pinned: the stream's density follows the time of day and the calendar.
            ("start", "2026-03-10T15:00:00Z"),
            ("customers", "400"),
            ("products", "60"),
            ("fraud-rate", "0.1"),
            ("late-rate", "0.01"),
            ("invalid-rate", "0.03"),
            ("duplicate-rate", "0.05"),
            // Failed payments spike: the business alerts panel gets rows.
            ("payment-outage", "40s..90s"),
        ],
    );
    tokio::task::spawn_blocking(move || generator::run(&args, &AtomicBool::new(false)).unwrap())
        .await
        .unwrap();
    let expect = expected_all(dir.path());
    // Event time ends 20 minutes after the input so that user sessions (gap 5 min) close
    // and the funnel and sessions panels have rows.
    let mut input = support::oracle::input_stats(dir.path());
    input.close_event_time(&k.bootstrap(), 2);
    let mut config = mock_config(&k.bootstrap());
    config.engine.windows.session_gap_ms = 5 * 60_000;
    // A short stream gives customers little history: a low threshold so that some alert.
    config.engine.fraud.threshold = 0.1;
    let pipeline = start(&config, &conn).await;
    let db = Db::connect(&pg).await;
    db.wait_for(
        expect.orders.len(),
        expect.invalid,
        Some("SELECT count(*) FROM kpi_quality"),
        Duration::from_secs(120),
    )
    .await;
    // Funnel, sessions and business alerts come only once event time has closed their
    // windows (alerts once the allowed lateness has expired too): wait for each.
    for table in ["kpi_funnel", "kpi_sessions", "business_alerts"] {
        let sql = format!("SELECT count(*) FROM {table}");
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while db.count(&sql).await == 0 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    pipeline.drain().await.unwrap();
    let mut checked = 0;
    let mut empty = Vec::new();
    for (file, title, t) in targets() {
        let Some(sql) = t["rawSql"].as_str() else {
            continue;
        };
        let sql = expand_macros(sql);
        let rows = db
            .client
            .query(sql.as_str(), &[])
            .await
            .unwrap_or_else(|e| panic!("{file} / {title}: {e}\n{sql}"));
        if rows.is_empty() {
            empty.push(format!("{file} / {title}"));
        }
        checked += 1;
    }
    eprintln!("{checked} SQL panel queries run, {} empty", empty.len());
    assert!(empty.is_empty(), "panels without rows: {empty:#?}");
    assert!(checked >= 15);
}
