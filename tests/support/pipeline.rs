//! Starting the in-process pipeline for integration tests: the configuration for the mock
//! cluster (short session timeout, so a stopped member's partitions move quickly) and the
//! live pipeline with its PostgreSQL sink.

use shopstream::config::{Config, Secrets};
use shopstream::runtime::app::{self, Pipeline, PipelineOptions};

/// The default configuration pointed at `bootstrap`.
pub fn mock_config(bootstrap: &str) -> Config {
    let mut config = Config::default();
    config.kafka.bootstrap_servers = bootstrap.to_string();
    config
        .kafka
        .properties
        .insert("session.timeout.ms".into(), "6000".into());
    config
}

/// Starts the live pipeline of `config` with its sink writing to `pg_conn`.
pub async fn start(config: &Config, pg_conn: &str) -> Pipeline {
    start_opt(config, Some(pg_conn)).await
}

/// Starts the live pipeline of `config`, with a sink writing to `pg_conn` if given.
pub async fn start_opt(config: &Config, pg_conn: Option<&str>) -> Pipeline {
    app::start(
        config,
        &Secrets::default(),
        PipelineOptions {
            sink_pg: pg_conn.map(str::to_string),
            engine: config.engine.clone(),
        },
    )
    .await
    .unwrap()
}
