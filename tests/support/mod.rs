//! Shared harness for integration tests: a throw-away PostgreSQL cluster, librdkafka's
//! in-process mock cluster with shopstream's topics, the fake Confluent schema registry,
//! and helpers to run the real `shopstream` binary. Nothing needs to be started by hand.
#![allow(dead_code, unused_imports)]

pub mod alert_oracle;
pub mod analytics_check;
pub mod db;
pub mod kafka;
pub mod kpi_oracle;
pub mod oracle;
pub mod pg_security;
pub mod pipeline;
pub mod proc;
pub mod raw_input;
pub mod rfm_oracle;
pub mod session_batch;
pub mod session_oracle;
pub mod topic_oracle;

pub use shopstream::codec::embedded_registry::EmbeddedRegistry;
pub use shopstream::sink::embedded_pg::EmbeddedPostgres;

use std::path::PathBuf;
use std::process::{Command, Output};

/// A fixed event-time start in the past for generated input whose length in event time
/// matters: Tuesday 2026-11-17 10:00 shop time (15:00 UTC), average traffic, no holiday.
/// The generator's traffic follows the shop's time of day, so a start at the wall clock
/// stretches the same record count 3-4x at night, past `quality.max_future_ms`.
pub const FIXED_START_MS: i64 = 1_794_927_600_000;

/// The `shopstream` binary built for this test run.
pub fn shopstream_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_shopstream"))
}

/// A command for the binary with a clean shopstream environment.
pub fn shopstream() -> Command {
    let mut c = Command::new(shopstream_bin());
    for (k, _) in std::env::vars() {
        if k.starts_with("SHOPSTREAM_") {
            c.env_remove(k);
        }
    }
    c.env("RUST_LOG", "warn");
    c
}

/// A finished command's stdout and stderr, for assertion messages.
pub fn output_text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
