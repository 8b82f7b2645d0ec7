//! The pipeline process of one measured run. The harness starts itself again as
//! `load_test child …` so that the pipeline (stage 1, stage 2 and, if asked, the
//! PostgreSQL sink, exactly as `shopstream run` assembles them) has a process of its own:
//! its RSS is the pipeline's alone, not the broker's or the generator's. The child runs
//! until stage 1 has committed the expected number of input records, then stops the
//! pipeline gracefully, optionally runs the sink alone over everything stage 1 and stage 2
//! wrote (the sink's rows/s), and prints one JSON line of [`ChildReport`] on stdout. For
//! the memory run, the expected count may arrive later on stdin (the generator stops at
//! a number of orders, not of records) and the child prints its committed count as
//! `progress N` lines, which the harness uses to keep its production within what the
//! mock broker retains.
//! With `RUST_LOG` set, the pipeline's logs go to stderr.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::Args;
use shopstream::config::{Config, Guarantee, Secrets, WireFormat};
use shopstream::runtime::app::{self, PipelineOptions};
use shopstream::runtime::client;
use shopstream::sink::consumer::{self as sink, SinkControl, SinkSettings};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::probe::{Memory, Probe, RssSampler};

#[derive(Debug, Clone, Args)]
pub struct ChildArgs {
    #[arg(long)]
    pub bootstrap: String,
    #[arg(long, default_value = "")]
    pub registry: String,
    #[arg(long)]
    pub avro: bool,
    #[arg(long)]
    pub exactly_once: bool,
    #[arg(long, default_value_t = 100)]
    pub commit_ms: u64,
    /// Input records stage 1 must commit before the run ends.
    #[arg(long, default_value_t = 0)]
    pub expect: u64,
    /// The expected count arrives as a line on stdin (instead of `--expect`).
    #[arg(long)]
    pub expect_on_stdin: bool,
    /// Print `progress N` (input records committed) every 100 ms.
    #[arg(long)]
    pub progress: bool,
    /// Latency samples before this many seconds after the first commit are dropped.
    #[arg(long, default_value_t = 0.0)]
    pub warmup_s: f64,
    /// After the pipeline, run the sink alone into this PostgreSQL database.
    #[arg(long)]
    pub sink_pg: Option<String>,
    /// Extra librdkafka property KEY=VALUE for the pipeline's clients (repeatable).
    #[arg(long = "kafka-property", value_parser = crate::parse_property)]
    pub kafka_properties: Vec<(String, String)>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 600)]
    pub timeout_s: u64,
}

/// What one pipeline run measured.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct ChildReport {
    /// Input records per second from stage 1's first commit to its last commit before
    /// the one that reached the expected count (that last interval ends idle), or to that
    /// one when there is no other.
    pub events_per_s: f64,
    pub latency_samples: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    /// Transaction commit times (both stages) after the warm-up, ms.
    #[serde(default)]
    pub commit_p50_ms: f64,
    #[serde(default)]
    pub commit_p99_ms: f64,
    pub memory: Memory,
    pub sink_rows: u64,
    /// Wall-clock seconds of the sink-only run (includes joining its group).
    pub sink_wall_s: f64,
    /// Seconds spent writing batches to PostgreSQL.
    pub sink_write_s: f64,
}

fn config(a: &ChildArgs) -> Config {
    let mut c = Config::default();
    c.kafka.bootstrap_servers = a.bootstrap.clone();
    c.kafka
        .properties
        .insert("session.timeout.ms".into(), "6000".into());
    for (k, v) in &a.kafka_properties {
        c.kafka.properties.insert(k.clone(), v.clone());
    }
    c.registry.url = a.registry.clone();
    c.processing.format = if a.avro {
        WireFormat::Avro
    } else {
        WireFormat::Json
    };
    c.processing.guarantee = if a.exactly_once {
        Guarantee::ExactlyOnce
    } else {
        Guarantee::AtLeastOnce
    };
    c.processing.commit_interval_ms = a.commit_ms;
    c
}

/// Runs the child and prints its report.
pub async fn run(a: ChildArgs) -> Result<()> {
    // The pipeline's own logs on stderr, only when asked for (RUST_LOG).
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
    let probe = Probe::install();
    let rss = RssSampler::start(probe.states.clone());
    let expect = Arc::new(AtomicU64::new(if a.expect_on_stdin {
        u64::MAX
    } else {
        a.expect
    }));
    if a.expect_on_stdin {
        let expect = expect.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(tokio::io::stdin()).lines();
            if let Ok(Some(line)) = lines.next_line().await {
                if let Ok(n) = line.trim().parse() {
                    expect.store(n, Ordering::Relaxed);
                }
            }
        });
    }
    let config = config(&a);
    let pipeline = app::start(
        &config,
        &Secrets::default(),
        PipelineOptions {
            sink_pg: None,
            engine: config.engine.clone(),
        },
    )
    .await?;
    let deadline = Instant::now() + Duration::from_secs(a.timeout_s);
    let progress = pipeline.stage1_progress();
    let mut first: Option<(Instant, u64)> = None;
    // The last two commits seen (time first observed, count): the throughput is taken up
    // to the commit before the one that reached the count, because the interval of that
    // one ends idle once the input is exhausted (with 1 s intervals and a 3 s run that
    // idle tail was a quarter of the measured time).
    let mut commits: [Option<(Instant, u64)>; 2] = [None, None];
    let mut reported = Instant::now();
    let last = loop {
        if Instant::now() > deadline || pipeline.processor_finished() {
            bail!(
                "stage 1 stopped or timed out before committing {} records",
                expect.load(Ordering::Relaxed)
            );
        }
        let committed = progress.committed.load(Ordering::Relaxed);
        let now = Instant::now();
        if commits[1].map_or(true, |(_, c)| c != committed) {
            commits = [commits[1], Some((now, committed))];
        }
        if a.progress && now.duration_since(reported) >= Duration::from_millis(100) {
            reported = now;
            println!("progress {committed}");
        }
        match first {
            None if committed > 0 => {
                first = Some((now, committed));
                // Tells the harness the pipeline is consuming: an open-loop load starts now.
                println!("ready");
            }
            Some((t0, _))
                if !probe.latency.enabled.load(Ordering::Relaxed)
                    && now.duration_since(t0).as_secs_f64() >= a.warmup_s =>
            {
                probe.latency.enabled.store(true, Ordering::Relaxed);
                probe.commit.enabled.store(true, Ordering::Relaxed);
            }
            _ => {}
        }
        if committed >= expect.load(Ordering::Relaxed) {
            break (now, committed);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let (t0, c0) = first.unwrap_or(last);
    let end = match commits[0] {
        Some((t, c)) if c > c0 && t > t0 => (t, c),
        _ => last,
    };
    let secs = end.0.duration_since(t0).as_secs_f64();
    let mut report = ChildReport {
        events_per_s: if secs > 0.0 {
            (end.1 - c0) as f64 / secs
        } else {
            0.0
        },
        latency_samples: probe.latency.count(),
        p50_ms: probe.latency.quantile_ms(0.5),
        p99_ms: probe.latency.quantile_ms(0.99),
        p999_ms: probe.latency.quantile_ms(0.999),
        commit_p50_ms: probe.commit.quantile_ms(0.5),
        commit_p99_ms: probe.commit.quantile_ms(0.99),
        ..ChildReport::default()
    };
    pipeline.stop().await?;
    report.memory = rss.finish();
    if let Some(pg) = &a.sink_pg {
        let base = client::base_config(&config.kafka, &Secrets::default());
        let (decoder, _) = app::codecs(&config)?;
        let (_tx, rx) = tokio::sync::watch::channel(SinkControl::Drain);
        let started = Instant::now();
        let totals = sink::run(
            base,
            std::sync::Arc::new(decoder),
            SinkSettings::pipeline(pg.clone()),
            rx,
        )
        .await?;
        report.sink_wall_s = started.elapsed().as_secs_f64();
        report.sink_rows = totals.rows;
        report.sink_write_s = probe.sink_batch.sum_seconds();
    }
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
