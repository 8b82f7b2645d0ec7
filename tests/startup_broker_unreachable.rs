//! The broker unreachable at start-up: the real `shopstream run` binary pointed at a
//! closed port retries with backoff, logging a warning that names the bootstrap servers
//! on each attempt, and after `processing.startup_timeout_ms` exits non-zero with an error
//! naming them and the setting — it never hangs silently. A SIGTERM while it waits stops
//! it at once with exit status 0 (nothing was processed, nothing is left open).

mod support;

use std::time::{Duration, Instant};

use support::proc::{spawn_run, write_config, Running};

fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn spawn(
    dir: &std::path::Path,
    bootstrap: &str,
    timeout_ms: u64,
    log: &std::path::Path,
) -> Running {
    let config = write_config(dir, bootstrap, closed_port(), "exactly-once", 0);
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace(
            "[processing]\n",
            &format!("[processing]\nstartup_timeout_ms = {timeout_ms}\n"),
        ),
    )
    .unwrap();
    spawn_run(&config, log)
}

#[test]
fn unreachable_broker_at_start_up_retries_then_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let bootstrap = format!("127.0.0.1:{}", closed_port());
    let log = dir.path().join("run.log");
    let started = Instant::now();
    let mut child = spawn(dir.path(), &bootstrap, 6_000, &log);
    let code = child.wait_exit(Duration::from_secs(90));
    let took = started.elapsed();
    let text = std::fs::read_to_string(&log).unwrap();
    let code = code.unwrap_or_else(|| panic!("run hung for 90 s; log:\n{text}"));
    eprintln!("exited with {code} after {took:?}");
    assert_eq!(code, 1, "exits with an error; log:\n{text}");
    assert!(
        took >= Duration::from_secs(6),
        "it waited for the broker for the configured time; log:\n{text}"
    );
    let retries = text
        .lines()
        .filter(|l| l.contains("Kafka broker unreachable; retrying") && l.contains(&bootstrap))
        .count();
    assert!(
        retries >= 2,
        "each retry is logged with the bootstrap servers; log:\n{text}"
    );
    let last = text
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_default();
    assert!(
        last.starts_with("error: no Kafka broker reachable at")
            && last.contains(&bootstrap)
            && last.contains("kafka.bootstrap_servers")
            && last.contains("processing.startup_timeout_ms"),
        "the final error names the servers and the settings: {last}"
    );
}

#[test]
fn sigterm_while_waiting_for_the_broker_stops_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let bootstrap = format!("127.0.0.1:{}", closed_port());
    let log = dir.path().join("run.log");
    let mut child = spawn(dir.path(), &bootstrap, 600_000, &log);
    let started = Instant::now();
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("Kafka broker unreachable; retrying")
        && started.elapsed() < Duration::from_secs(60)
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, took) = child.signal_and_wait(libc::SIGTERM, Duration::from_secs(30));
    let text = std::fs::read_to_string(&log).unwrap();
    eprintln!("stopped with {code:?} {took:?} after SIGTERM");
    assert_eq!(code, Some(0), "log:\n{text}");
    assert!(took < Duration::from_secs(10), "stops promptly");
    assert!(text.contains("stop requested during start-up"), "{text}");
}
