//! `shopstream demo`: the whole pipeline on embedded defaults. It starts librdkafka's
//! in-process mock cluster as the broker (real TCP listeners that kcat can reach; it does
//! not hide aborted transactions or fence zombies, so it shows the data flow, not
//! transactional isolation), a throw-away PostgreSQL, the generator, stage 1 and the sink;
//! prints a refreshing table of the latest windows and counters; drains and prints a
//! summary; and with `--export DIR` writes the input (DIR/input/*.jsonl and truth.jsonl)
//! and every sink table (DIR/output/<table>.csv).

mod live;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use rdkafka::mocking::MockCluster;

use crate::config::{Config, Secrets};
use crate::generator::{self, GenerateArgs};
use crate::runtime::app::{self, PipelineOptions};
use crate::runtime::topics;
use crate::sink::embedded_pg::EmbeddedPostgres;

#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// How long to generate input, e.g. 30s, 2m.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Write the input, the ground truth and every sink table under this directory.
    #[arg(long)]
    pub export: Option<PathBuf>,
    /// Input records per second.
    #[arg(long, default_value_t = 2000.0)]
    pub rate: f64,
    /// Event time runs this many times faster than the wall clock, so a one-minute demo
    /// closes several one-minute windows.
    #[arg(long, default_value_t = 10.0)]
    pub speed: f64,
    /// Inactivity gap of user sessions in event time (the production default is 30m; a
    /// one-minute demo spans about five minutes of event time, so sessions close and reach
    /// kpi_funnel/kpi_sessions only with a short gap).
    #[arg(long, default_value = "1m", value_parser = parse_duration)]
    pub session_gap: Duration,
    /// Allowed lateness in event time (production default 5m). Business alerts are raised
    /// once a window's lateness has expired, so a one-minute demo needs it short.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub lateness: Duration,
    /// A payment outage FROM..TO after the start, in event time (80 % of payments fail):
    /// revenue_drop and failed_payment_rate alerts to watch. `none`: no outage.
    #[arg(long, default_value = "2m..4m")]
    pub payment_outage: String,
    /// Generator seed (the same seed gives the same input).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Partitions of the input topics.
    #[arg(long, default_value_t = 3)]
    pub partitions: i32,
    /// Print the live table only at the end (for logs and CI).
    #[arg(long)]
    pub quiet: bool,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    generator::args::parse_duration_ms(s).map(|ms| Duration::from_millis(ms.max(0) as u64))
}

/// Runs the demo; `config` supplies everything but the broker and the database.
pub async fn run(args: DemoArgs, mut config: Config) -> Result<()> {
    let started = Instant::now();
    let cluster = MockCluster::new(1).context("starting the embedded broker")?;
    for d in topics::parse(topics::BUILTIN, Some(args.partitions))? {
        cluster
            .create_topic(&d.name, d.partitions, 1)
            .with_context(|| format!("creating {}", d.name))?;
    }
    // The embedded broker speaks plaintext only: keep the pass-through properties, drop
    // the security settings meant for a real cluster.
    config.kafka = crate::config::KafkaConfig {
        bootstrap_servers: cluster.bootstrap_servers(),
        properties: std::mem::take(&mut config.kafka.properties),
        ..crate::config::KafkaConfig::default()
    };
    let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    config.engine.windows.session_gap_ms = ms(args.session_gap);
    config.engine.windows.allowed_lateness_ms = ms(args.lateness);
    // A few minutes of event time: judge revenue against two windows of history.
    config.engine.alerts.min_history = config.engine.alerts.min_history.min(2);
    eprintln!(
        "demo: embedded broker at {} (librdkafka mock cluster)",
        config.kafka.bootstrap_servers
    );
    let pg = tokio::task::spawn_blocking(|| -> Result<EmbeddedPostgres> {
        let pg = EmbeddedPostgres::start()?;
        pg.create_database("shopstream")?;
        Ok(pg)
    })
    .await??;
    let pg_conn = pg.connection_string("shopstream");
    eprintln!(
        "demo: throw-away PostgreSQL at 127.0.0.1:{} (database shopstream, user shop)",
        pg.port()
    );

    let secrets = Secrets::default();
    let pipeline = app::start(
        &config,
        &secrets,
        PipelineOptions {
            sink_pg: Some(pg_conn.clone()),
            engine: config.engine.clone(),
        },
    )
    .await?;

    // The generator writes to the broker and, when exporting, to DIR/input at once.
    let input_dir = args.export.as_ref().map(|d| d.join("input"));
    let mut gen_args = vec![
        "generate".to_string(),
        "--bootstrap-servers".into(),
        config.kafka.bootstrap_servers.clone(),
        "--rate".into(),
        args.rate.to_string(),
        "--event-rate".into(),
        (args.rate / args.speed.max(0.001)).to_string(),
        "--seed".into(),
        args.seed.to_string(),
        "--customers".into(),
        "2000".into(),
        "--products".into(),
        "200".into(),
    ];
    if args.payment_outage != "none" {
        gen_args.extend(["--payment-outage".into(), args.payment_outage.clone()]);
    }
    if let Some(dir) = &input_dir {
        std::fs::create_dir_all(dir)?;
        gen_args.extend([
            "--out".into(),
            dir.display().to_string(),
            "--truth".into(),
            dir.join("truth.jsonl").display().to_string(),
        ]);
    }
    let gen_args = GenerateArgs::try_parse_from(gen_args)?;
    let stop_gen = Arc::new(AtomicBool::new(false));
    let flag = stop_gen.clone();
    let generator = tokio::task::spawn_blocking(move || generator::run(&gen_args, &flag));

    let mut view = live::LiveView::connect(&pg_conn, args.quiet).await?;
    let deadline = Instant::now() + args.duration;
    while Instant::now() < deadline && !generator.is_finished() && !pipeline.processor_finished() {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = tokio::signal::ctrl_c() => break,
        }
        view.refresh(started.elapsed()).await;
    }
    stop_gen.store(true, Ordering::Relaxed);
    let summary = generator.await??;
    eprintln!("demo: generator done; draining the pipeline");
    // Let stage 1 catch up with everything produced, then stop it and drain the sink.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (stage1, sink) = pipeline.drain().await?;
    view.refresh(started.elapsed()).await;
    view.print_final().await;
    println!(
        "\ninput: {} records ({} labelled in the truth)",
        summary.inputs, summary.truth_lines
    );
    println!(
        "stage 1: {} consumed, {} commits, {} aborts, {} task restores (max {} ms), {} unknown products",
        stage1.consumed, stage1.commits, stage1.aborts, stage1.restores, stage1.restore_ms_max, stage1.unknown_products
    );
    if let Some(s) = sink {
        println!(
            "sink: {} records in {} batches, {} rows written",
            s.records, s.batches, s.rows
        );
    }
    if let Some(dir) = &args.export {
        let out = dir.join("output");
        let tables = crate::sink::export::export_all(view.client(), &out).await?;
        println!(
            "exported input to {} and {} tables to {}",
            dir.join("input").display(),
            tables.len(),
            out.display()
        );
    }
    drop(cluster);
    Ok(())
}
