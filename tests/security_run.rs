//! The real `shopstream run` as the least-privilege sink role of
//! schemas/postgres/sink_role.sql, with every secret set to a recognisable value, debug
//! logging, and the metrics endpoint on its default address: the owner migrates, the role
//! (authenticating by SCRAM password from the environment) writes the pipeline's rows, and
//! cannot drop, truncate, create or delete outside its grant. No secret shows in stdout,
//! stderr, /metrics or `--help`; the endpoint listens on loopback only; a wrong password
//! fails with PostgreSQL's clear message and without the password.

mod support;

use std::net::{IpAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use shopstream::generator;
use support::db::{generate_args, start_pg, Db};
use support::kafka::MockKafka;
use support::pg_security::{create_sink_role, require_password};
use support::proc::{log_tail, spawn_logged, write_config, Running};

const PG_PASSWORD: &str = "pg-Secret-7f3a91c2";
const SASL_PASSWORD: &str = "sasl-Secret-51be0d77";
const WRONG_PG_PASSWORD: &str = "wrong-Secret-c0ffee42";

fn assert_no_secret(what: &str, text: &str) {
    for secret in [PG_PASSWORD, SASL_PASSWORD, WRONG_PG_PASSWORD] {
        assert!(
            !text.contains(secret),
            "{what} contains a secret ({} bytes of text)",
            text.len()
        );
    }
}

fn with_secrets(mut c: std::process::Command, pg_password: &str) -> std::process::Command {
    c.env("SHOPSTREAM_POSTGRES_PASSWORD", pg_password)
        .env("SHOPSTREAM_KAFKA_SASL_PASSWORD", SASL_PASSWORD)
        .env("RUST_LOG", "debug");
    c
}

/// Stops `run` with SIGTERM and returns what it printed.
fn stop(run: Running, log: &Path) -> String {
    run.terminate();
    String::from_utf8_lossy(&std::fs::read(log).unwrap()).into_owned()
}

async fn scrape(url: &str) -> Option<String> {
    let r = reqwest::get(url).await.ok()?;
    r.text().await.ok()
}

/// An address of this host other than loopback, if it has one.
fn non_loopback_ip() -> Option<IpAddr> {
    let s = UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[tokio::test(flavor = "multi_thread")]
async fn least_privilege_run_keeps_every_secret_out_of_logs_metrics_and_help() {
    let k = MockKafka::with_topics(2);
    let pg = start_pg();
    let admin = Db::connect(&pg).await;
    let dir = tempfile::tempdir().unwrap();
    let args = generate_args(
        &k.bootstrap(),
        dir.path(),
        &[("count", "2000"), ("rate", "0"), ("seed", "11")],
    );
    tokio::task::spawn_blocking(move || generator::run(&args, &AtomicBool::new(false)).unwrap())
        .await
        .unwrap();
    let config = write_config(dir.path(), &k.bootstrap(), pg.port(), "exactly-once", 0);
    // The sink role, and the metrics endpoint at its default address.
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("user = \"shop\"", "user = \"shopstream_sink\"")
        .replace("[metrics]\nlisten = \"\"\n", "");
    std::fs::write(&config, text).unwrap();
    let cfg = config.to_str().unwrap();

    // The owner migrates; then the role is created from the shipped script.
    let out = support::shopstream()
        .args(["--config", cfg, "migrate"])
        .env("SHOPSTREAM_POSTGRES__USER", "shop")
        .output()
        .unwrap();
    let applied = |out: &std::process::Output| -> usize {
        assert!(out.status.success(), "{}", support::output_text(out));
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .strip_prefix("applied ")
            .and_then(|rest| rest.strip_suffix(" migrations"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{}", support::output_text(out)))
    };
    assert!(applied(&out) > 0);
    let again = support::shopstream()
        .args(["--config", cfg, "migrate"])
        .env("SHOPSTREAM_POSTGRES__USER", "shop")
        .output()
        .unwrap();
    assert_eq!(applied(&again), 0, "a second migrate applies nothing");
    create_sink_role(&admin.client, PG_PASSWORD).await;
    require_password(&admin.client, "shopstream_sink").await;
    // With every migration applied, the role's start-up runs no DDL.
    let as_role = with_secrets(support::shopstream(), PG_PASSWORD)
        .args(["--config", cfg, "migrate"])
        .output()
        .unwrap();
    assert_eq!(applied(&as_role), 0, "the role needs no migration");

    // --help of every command, with the secrets in the environment.
    for sub in [
        &[][..],
        &["run"],
        &["demo"],
        &["generate"],
        &["replay"],
        &["dlq", "redrive"],
        &["topics", "create"],
        &["schemas", "register"],
        &["migrate"],
    ] {
        let out = with_secrets(support::shopstream(), PG_PASSWORD)
            .args(sub)
            .arg("--help")
            .output()
            .unwrap();
        assert!(out.status.success(), "{sub:?} --help");
        assert_no_secret(&format!("{sub:?} --help"), &support::output_text(&out));
    }

    // The run, as the role.
    let mut cmd = with_secrets(support::shopstream(), PG_PASSWORD);
    cmd.args(["--config", cfg, "run"]);
    let log = dir.path().join("run.log");
    let child = spawn_logged(cmd, &log);
    let started = Instant::now();
    let mut metrics = None;
    let mut orders = 0;
    while started.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        orders = admin.count("SELECT count(*) FROM fact_orders").await;
        if orders > 0 {
            metrics = scrape("http://127.0.0.1:9464/metrics").await;
            if metrics
                .as_deref()
                .is_some_and(|m| m.contains("shopstream_sink_rows_total"))
            {
                break;
            }
        }
    }
    let other_ip = non_loopback_ip();
    let reachable_elsewhere =
        other_ip.map(|ip| TcpStream::connect_timeout(&(ip, 9464).into(), Duration::from_secs(1)));
    let output = stop(child, &log);
    assert!(
        orders > 0,
        "the sink role wrote no orders in 120 s:\n{}",
        log_tail(&log, 40)
    );
    let metrics = metrics.expect("no /metrics on 127.0.0.1:9464, the default address");
    assert!(
        output.contains("127.0.0.1:9464"),
        "the log names the metrics address"
    );
    if let Some(r) = reachable_elsewhere {
        assert!(
            r.is_err(),
            "the metrics endpoint answered on {other_ip:?}, not only on loopback"
        );
    }
    assert!(output.contains("DEBUG"), "debug logging was on");
    assert_no_secret("the run's stdout and stderr", &output);
    assert_no_secret("/metrics", &metrics);

    // What the role may not do.
    let role = Db {
        client: shopstream::sink::postgres::connect(&format!(
            "host=127.0.0.1 port={} user=shopstream_sink dbname=shop sslmode=disable password='{PG_PASSWORD}'",
            pg.port()
        ))
        .await
        .unwrap(),
    };
    role.client
        .query_one("SELECT count(*) FROM fact_orders", &[])
        .await
        .unwrap();
    for sql in [
        "DROP TABLE fact_orders",
        "TRUNCATE kpi_revenue",
        "DELETE FROM fact_orders",
        "ALTER TABLE fact_orders ADD COLUMN x int",
        "CREATE TABLE intruder (x int)",
        "INSERT INTO schema_migrations (version) VALUES (999)",
        "CREATE SCHEMA intruder",
    ] {
        let e = role.client.batch_execute(sql).await.unwrap_err();
        let msg = e
            .as_db_error()
            .map(|d| d.message().to_string())
            .unwrap_or_default();
        assert!(
            msg.contains("permission denied") || msg.contains("must be owner"),
            "{sql}: {e}"
        );
    }

    // A wrong password: PostgreSQL's clear refusal, and no password in the output.
    let mut cmd = with_secrets(support::shopstream(), WRONG_PG_PASSWORD);
    cmd.args(["--config", cfg, "run"]);
    let log = dir.path().join("wrong-password.log");
    let child = spawn_logged(cmd, &log);
    tokio::time::sleep(Duration::from_secs(8)).await;
    let output = stop(child, &log);
    assert!(
        output.contains("password authentication failed for user \"shopstream_sink\""),
        "{}",
        log_tail(&log, 40)
    );
    assert_no_secret("a failed run's output", &output);
}
