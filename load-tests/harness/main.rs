//! The load-test harness (issue 7): one command that measures, on one machine and in one
//! run, B0 (raw rdkafka consume of a preloaded topic), the engine alone, the full pipeline
//! at-least-once and exactly-once (commit intervals 100 ms and 1 s) in JSON and Avro as
//! events/s and ratios to B0, open-loop end-to-end latency at 10,000/s and at 50 % of the
//! exactly-once peak, the pipeline process's RSS (peak and growth over a 1,000,000-order
//! run, with the state sizes) and the PostgreSQL sink's rows/s. Each figure is the median of `--runs` runs with min and max; the table
//! is printed and written to load-tests/RESULTS.md with the date, machine and command.
//!
//! Run: `cargo run --release --example load_test [-- --quick]` (see load-tests/README.md).
//! The broker is librdkafka's in-process mock cluster, a fresh one for every pipeline run;
//! each pipeline runs in a child process (this binary, `load_test child …`).

mod child;
mod latency;
mod memory;
mod probe;
mod report;
mod scenario;

#[path = "../engine_workload.rs"]
mod engine_workload;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use shopstream::codec::embedded_registry::EmbeddedRegistry;
use shopstream::sink::embedded_pg::EmbeddedPostgres;
use tokio::io::{AsyncBufReadExt, BufReader};

use child::{ChildArgs, ChildReport};
use report::{Row, Stats};
use scenario::{Broker, Load};

/// The same process allocator as the `shopstream` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(about = "shopstream load test: B0, engine, pipeline, latency, memory, sink")]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    child: Option<Sub>,
    /// Small sizes and one run: validates the harness in about two minutes.
    #[arg(long)]
    quick: bool,
    /// Input records preloaded for each throughput run (default 300,000; quick 30,000).
    #[arg(long)]
    records: Option<u64>,
    /// Runs per figure (default 3; quick 1).
    #[arg(long)]
    runs: Option<u32>,
    /// Input partitions (each mock partition keeps only about 5 MB).
    #[arg(long)]
    partitions: Option<i32>,
    /// Records of each engine-alone run (default 1,000,000; quick 200,000).
    #[arg(long)]
    engine_records: Option<usize>,
    /// Seconds of offered load per latency run (default 30; quick 6).
    #[arg(long)]
    latency_seconds: Option<f64>,
    /// Transactions (orders) of the memory run (default 1,000,000; quick 20,000).
    #[arg(long)]
    memory_orders: Option<u64>,
    /// Input records per second of simulated event time in the memory run (default 40:
    /// 1,000,000 orders span about 12 days, past every state horizon — the 24 h fraud
    /// profile, the 7-day dedup TTL — so the state can be seen to level off; a shop of
    /// about 80,000 orders a day).
    #[arg(long, default_value_t = 40.0)]
    memory_event_rate: f64,
    /// Memory runs (default 1: one takes 15–60 minutes here, depending on the load).
    #[arg(long, default_value_t = 1)]
    memory_runs: u32,
    /// The memory run gives up after this many seconds (one took 3,356 s under a load
    /// average of 10 on 2 cores).
    #[arg(long, default_value_t = 7200)]
    memory_timeout_s: u64,
    /// Only B0 and the pipeline throughput runs of `--modes` and `--formats` (diagnosis,
    /// before/after comparisons; writes nothing unless `--results` is given).
    #[arg(long, conflicts_with_all = ["latency_only", "memory_only"])]
    throughput_only: bool,
    /// Pipeline modes of `--throughput-only` (comma-separated; default all):
    /// alo (at-least-once 100 ms), eos100 (exactly-once 100 ms), eos1s (exactly-once 1 s).
    #[arg(long, value_delimiter = ',')]
    modes: Vec<String>,
    /// Formats of `--throughput-only` (comma-separated; default json,avro).
    #[arg(long, value_delimiter = ',')]
    formats: Vec<String>,
    /// Only the memory run (writes nothing unless `--results` is given).
    #[arg(long, conflicts_with = "latency_only")]
    memory_only: bool,
    /// Only the latency runs, at `--latency-rates` (diagnosis; writes nothing unless
    /// `--results` is given).
    #[arg(long)]
    latency_only: bool,
    /// Offered rates of `--latency-only` (records/s, comma-separated; default 10,000).
    #[arg(long, value_delimiter = ',')]
    latency_rates: Vec<f64>,
    /// Commit interval of the latency runs in ms (default 100).
    #[arg(long, default_value_t = 100)]
    commit_ms: u64,
    /// Extra librdkafka property KEY=VALUE for the pipeline's clients and the latency
    /// runs' side consumer (repeatable), e.g. fetch.wait.max.ms=10.
    #[arg(long = "kafka-property", value_parser = parse_property)]
    kafka_properties: Vec<(String, String)>,
    /// Where the results section is written (default load-tests/RESULTS.md; quick mode
    /// writes nothing unless this is given).
    #[arg(long)]
    results: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Sub {
    /// One pipeline process (started by the harness itself).
    #[command(hide = true)]
    Child(ChildArgs),
}

fn parse_property(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))
}

struct Plan {
    records: u64,
    runs: u32,
    partitions: i32,
    engine_records: usize,
    latency_seconds: f64,
    latency_only: bool,
    latency_rates: Vec<f64>,
    memory_orders: u64,
    memory_runs: u32,
    memory_event_rate: f64,
    memory_timeout_s: u64,
    memory_only: bool,
    throughput_only: bool,
    /// Indices into [`MODES`] measured by the throughput runs.
    modes: Vec<usize>,
    formats: Vec<String>,
    commit_ms: u64,
    kafka_properties: Vec<(String, String)>,
    results: Option<PathBuf>,
}

impl Plan {
    fn of(cli: &Cli) -> Plan {
        let records = cli
            .records
            .unwrap_or(if cli.quick { 30_000 } else { 300_000 });
        Plan {
            records,
            runs: cli.runs.unwrap_or(if cli.quick { 1 } else { 3 }).max(1),
            // 6,000 records per partition: under 5 MB (the mock's limit) even at 800 bytes
            // per uncompressed JSON record; the harness stops if the mock dropped any.
            partitions: cli
                .partitions
                .unwrap_or_else(|| ((records / 6_000) as i32).clamp(6, 128)),
            engine_records: cli.engine_records.unwrap_or(if cli.quick {
                200_000
            } else {
                1_000_000
            }),
            latency_seconds: cli
                .latency_seconds
                .unwrap_or(if cli.quick { 6.0 } else { 30.0 }),
            latency_only: cli.latency_only,
            memory_orders: cli
                .memory_orders
                .unwrap_or(if cli.quick { 20_000 } else { 1_000_000 }),
            memory_runs: cli.memory_runs.max(1),
            memory_event_rate: cli.memory_event_rate,
            memory_timeout_s: cli.memory_timeout_s,
            memory_only: cli.memory_only,
            throughput_only: cli.throughput_only,
            modes: MODES
                .iter()
                .enumerate()
                .filter(|(_, m)| cli.modes.is_empty() || cli.modes.iter().any(|k| k == m.0))
                .map(|(i, _)| i)
                .collect(),
            formats: if cli.formats.is_empty() {
                vec!["json".into(), "avro".into()]
            } else {
                cli.formats.clone()
            },
            latency_rates: if cli.latency_rates.is_empty() {
                vec![10_000.0]
            } else {
                cli.latency_rates.clone()
            },
            commit_ms: cli.commit_ms,
            kafka_properties: cli.kafka_properties.clone(),
            results: cli.results.clone().or_else(|| {
                (!cli.quick && !cli.latency_only && !cli.memory_only && !cli.throughput_only).then(
                    || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("load-tests/RESULTS.md"),
                )
            }),
        }
    }
}

/// Starts one pipeline process and waits for its report; `on_ready` runs (concurrently
/// with the pipeline) once the child says it is consuming.
async fn run_child<F, Fut>(args: Vec<String>, on_ready: F) -> Result<ChildReport>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<u64>>,
{
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .arg("child")
        .args(&args)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting the pipeline process")?;
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let mut on_ready = Some(on_ready);
    let mut report = None;
    while let Some(line) = lines.next_line().await? {
        if line == "ready" {
            if let Some(f) = on_ready.take() {
                f().await?;
            }
        } else if line.starts_with('{') {
            report = Some(serde_json::from_str(&line)?);
        }
    }
    let status = child.wait().await?;
    match report {
        Some(r) if status.success() => Ok(r),
        _ => bail!("pipeline process failed ({status})"),
    }
}

fn child_args(
    plan: &Plan,
    broker: &Broker,
    registry: Option<&str>,
    eos: bool,
    commit_ms: u64,
    expect: u64,
) -> Vec<String> {
    let mut a = vec![
        format!("--bootstrap={}", broker.bootstrap()),
        format!("--commit-ms={commit_ms}"),
        format!("--expect={expect}"),
    ];
    if let Some(url) = registry {
        a.push("--avro".into());
        a.push(format!("--registry={url}"));
    }
    if eos {
        a.push("--exactly-once".into());
    }
    for (k, v) in &plan.kafka_properties {
        a.push(format!("--kafka-property={k}={v}"));
    }
    a
}

async fn ready_now() -> Result<u64> {
    Ok(0)
}

/// The pipeline modes measured for throughput: (key of `--modes`, label, exactly-once,
/// commit interval ms).
const MODES: [(&str, &str, bool, u64); 3] = [
    ("alo", "at-least-once, 100 ms", false, 100),
    ("eos100", "exactly-once, 100 ms", true, 100),
    ("eos1s", "exactly-once, 1 s", true, 1000),
];

#[derive(Default)]
struct Samples {
    b0: Vec<f64>,
    modes: [Vec<f64>; 3],
    rss_peak_mb: Vec<f64>,
}

async fn throughput(
    plan: &Plan,
    registry: Option<&str>,
    pg: Option<&EmbeddedPostgres>,
    sink: &mut Vec<(f64, f64)>,
) -> Result<Samples> {
    let mut s = Samples::default();
    let fmt = if registry.is_some() { "Avro" } else { "JSON" };
    for run in 1..=plan.runs {
        for (m, (_, label, eos, commit_ms)) in MODES.iter().enumerate() {
            if !plan.modes.contains(&m) {
                continue;
            }
            let broker = Broker::new(plan.partitions)?;
            let load = Load {
                records: plan.records,
                rate: 0.0,
                seed: u64::from(run),
                avro_registry: registry.map(str::to_string),
            };
            let inputs = load.produce(&broker.bootstrap()).await?;
            scenario::check_nothing_dropped(&broker.bootstrap(), broker.partitions)?;
            let b0 = scenario::raw_consume(&broker.bootstrap(), broker.partitions, inputs, run)?;
            s.b0.push(b0);
            let mut args = child_args(plan, &broker, registry, *eos, *commit_ms, inputs);
            // The sink's rows/s: once per run, after the JSON at-least-once pipeline.
            let pg = pg.filter(|_| registry.is_none() && m == 0);
            let with_sink = pg.is_some();
            if let Some(pg) = pg {
                let db = format!("load_test_{run}");
                pg.create_database(&db)?;
                args.push(format!("--sink-pg={}", pg.connection_string(&db)));
            }
            let r = run_child(args, ready_now).await?;
            eprintln!(
                "{fmt} run {run}, {label}: {inputs} inputs, B0 {b0:.0}/s, pipeline {:.0}/s, RSS peak {} MB",
                r.events_per_s,
                r.memory.peak_kb / 1024
            );
            if with_sink {
                eprintln!(
                    "  sink: {} rows, {:.2} s writing, {:.2} s wall",
                    r.sink_rows, r.sink_write_s, r.sink_wall_s
                );
                sink.push((
                    r.sink_rows as f64 / r.sink_write_s.max(1e-9),
                    r.sink_rows as f64 / r.sink_wall_s.max(1e-9),
                ));
            }
            s.modes[m].push(r.events_per_s);
            s.rss_peak_mb.push(r.memory.peak_kb as f64 / 1024.0);
        }
    }
    Ok(s)
}

fn stats_of(v: &[ChildReport], f: impl Fn(&ChildReport) -> f64) -> Stats {
    Stats::of(&v.iter().map(f).collect::<Vec<_>>())
}

fn row(
    figure: impl Into<String>,
    unit: &'static str,
    stats: Stats,
    note: impl Into<String>,
) -> Row {
    Row {
        figure: figure.into(),
        unit,
        stats,
        note: note.into(),
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "NOT met"
    }
}

/// The rows of one format's throughput runs: B0 and each pipeline mode that ran, with its
/// ratios and targets.
fn throughput_rows(fmt: &str, s: &Samples) -> Vec<Row> {
    let target = if fmt == "JSON" { 0.5 } else { 0.6 };
    let mut rows = Vec::new();
    let b0 = Stats::of(&s.b0);
    rows.push(row(
        format!("B0 raw consume, {fmt}"),
        "events/s",
        b0,
        "the physical limit",
    ));
    let alo = Stats::of(&s.modes[0]);
    for (m, (_, label, _, _)) in MODES.iter().enumerate() {
        let st = Stats::of(&s.modes[m]);
        if st.n == 0 {
            continue;
        }
        let ratio = st.median / b0.median.max(1e-9);
        let note = match m {
            0 => format!(
                "{ratio:.2} × B0; target ≥ {target} × B0: {}",
                verdict(ratio >= target)
            ),
            1 => {
                let r = st.median / alo.median.max(1e-9);
                format!(
                    "{ratio:.2} × B0, {r:.2} × at-least-once; target ≥ 0.8: {}",
                    verdict(r >= 0.8)
                )
            }
            _ => format!(
                "{ratio:.2} × B0, {:.2} × at-least-once",
                st.median / alo.median.max(1e-9)
            ),
        };
        rows.push(row(
            format!("pipeline {fmt}, {label}"),
            "events/s",
            st,
            note,
        ));
    }
    rows
}

/// `--throughput-only`: B0 and the pipeline runs of `plan.modes` in `plan.formats`.
async fn throughput_only(plan: &Plan) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    let mut sink = Vec::new();
    if plan.formats.iter().any(|f| f == "json") {
        let s = throughput(plan, None, None, &mut sink).await?;
        rows.extend(throughput_rows("JSON", &s));
    }
    if plan.formats.iter().any(|f| f == "avro") {
        let registry = EmbeddedRegistry::start().await?;
        let s = throughput(plan, Some(registry.url()), None, &mut sink).await?;
        rows.extend(throughput_rows("Avro", &s));
    }
    Ok(rows)
}

/// Every figure of the full run: engine, B0, pipelines, sink, memory and latency.
async fn full(plan: &Plan) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    let engine: Vec<f64> = (0..plan.runs)
        .map(|_| {
            let (elapsed, _) = engine_workload::run(plan.engine_records);
            let done =
                plan.engine_records.div_ceil(engine_workload::BATCH) * engine_workload::BATCH;
            done as f64 / elapsed.as_secs_f64()
        })
        .collect();
    let engine = Stats::of(&engine);
    eprintln!("engine alone: median {:.0} events/s", engine.median);

    let pg = tokio::task::spawn_blocking(EmbeddedPostgres::start).await??;
    let registry = EmbeddedRegistry::start().await?;
    let mut sink = Vec::new();
    let json = throughput(plan, None, Some(&pg), &mut sink).await?;
    let avro = throughput(plan, Some(registry.url()), Some(&pg), &mut sink).await?;

    rows.push(row(
        "engine alone, one task, one core",
        "events/s",
        engine,
        format!("≥ 1,000,000: {}", verdict(engine.median >= 1e6)),
    ));
    let mut rss = json.rss_peak_mb.clone();
    rss.extend(&avro.rss_peak_mb);
    for (fmt, s) in [("JSON", &json), ("Avro", &avro)] {
        rows.extend(throughput_rows(fmt, s));
    }
    let sink_write = Stats::of(&sink.iter().map(|s| s.0).collect::<Vec<_>>());
    let sink_wall = Stats::of(&sink.iter().map(|s| s.1).collect::<Vec<_>>());
    rows.push(row(
        "PostgreSQL sink, time writing batches",
        "rows/s",
        sink_write,
        "rows ÷ time in PostgreSQL transactions",
    ));
    rows.push(row(
        "PostgreSQL sink, wall clock incl. group join",
        "rows/s",
        sink_wall,
        "",
    ));
    rows.push(row(
        "pipeline RSS peak (VmHWM), throughput runs",
        "MB",
        Stats::of(&rss),
        format!("{} input records per run", plan.records),
    ));

    let peak = Stats::of(&json.modes[1]).median;
    for (label, rate) in [
        ("10,000/s", 10_000.0),
        ("50 % of peak", (peak * 0.5).round()),
    ] {
        let runs = latency::latency(plan, rate).await?;
        let what = format!(
            "latency at {label} ({rate:.0}/s), exactly-once {} ms, JSON",
            plan.commit_ms
        );
        let target = label
            .starts_with("50")
            .then_some(50.0 + plan.commit_ms as f64);
        rows.extend(latency::rows(&what, &runs, target));
        if label.starts_with("50") {
            let runs: Vec<ChildReport> = runs.into_iter().map(|r| r.report).collect();
            let mb = |kb: u64| kb as f64 / 1024.0;
            rows.push(row(
                "latency run at 50 % of peak: RSS peak",
                "MB",
                stats_of(&runs, |r| mb(r.memory.peak_kb)),
                "",
            ));
            rows.push(row(
                "latency run at 50 % of peak: RSS first quarter",
                "MB",
                stats_of(&runs, |r| mb(r.memory.first_quarter_kb)),
                "",
            ));
            rows.push(row(
                "latency run at 50 % of peak: RSS last quarter",
                "MB",
                stats_of(&runs, |r| mb(r.memory.last_quarter_kb)),
                "growth = last − first quarter",
            ));
        }
    }
    let runs = memory::memory(plan).await?;
    rows.extend(memory::rows(plan, &runs));
    Ok(rows)
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    if let Some(Sub::Child(a)) = cli.child {
        return child::run(a).await;
    }
    let plan = Plan::of(&cli);
    let started = Instant::now();
    let load_before = report::load_average();

    let rows = if plan.latency_only {
        latency::latency_only(&plan).await?
    } else if plan.throughput_only {
        throughput_only(&plan).await?
    } else if plan.memory_only {
        memory::rows(&plan, &memory::memory(&plan).await?)
    } else {
        full(&plan).await?
    };
    let table = report::table(&rows);
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = if args.is_empty() {
        "cargo run --release --example load_test".to_string()
    } else {
        format!(
            "cargo run --release --example load_test -- {}",
            args.join(" ")
        )
    };
    let scope = if plan.memory_only {
        format!(
            "{} orders in the memory run, {} run(s)",
            plan.memory_orders, plan.memory_runs
        )
    } else {
        format!(
            "{} input records per throughput run, {} partitions, {} runs per figure",
            plan.records, plan.partitions, plan.runs
        )
    };
    let section = format!(
        "## Load test (harness)\n\nDate: {} UTC. Machine: {}; load average {} at the start, {} at the end. \
         Took {:.0} s. Command: `{}`. \
         {scope}, librdkafka mock cluster in the harness's process, the pipeline in a child process.\n\n{table}\n",
        chrono::Utc::now().format("%Y-%m-%d %H:%M"),
        report::machine(),
        load_before,
        report::load_average(),
        started.elapsed().as_secs_f64(),
        command,
    );
    println!("\n{section}");
    if let Some(path) = &plan.results {
        report::write_section(path, &section)?;
        eprintln!("written to {}", path.display());
    }
    Ok(())
}
