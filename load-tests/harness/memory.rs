//! The memory run of the harness (issue 7: "peak memory (RSS) and its growth over a
//! 1,000,000-order run"): the pipeline (exactly-once, `--commit-ms`, JSON) in its own
//! process consumes, as fast as it goes, a generated stream of `--memory-orders`
//! transactions (1,000,000 by default) with the usual share of user events (about 44
//! input records per transaction), while the pipeline samples its VmRSS every 250 ms and
//! the engine's state sizes (keys per store). The stream is far larger than the mock
//! broker keeps (about 5 MB per partition), so it is not preloaded: the generator runs in
//! the harness alongside and holds its production at most [`AHEAD_PER_PARTITION`] input
//! records per partition ahead of what stage 1 has committed (the child prints its
//! committed count), so the broker never drops an unread record and the pipeline always
//! has input waiting. The generator stops after the transaction that makes the count,
//! then tells the child how many input records to expect.

use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use shopstream::generator::kafka::KafkaSink;
use shopstream::generator::{Generator, JsonEncoder, PayloadEncoder, TopicKind};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::child::ChildReport;
use crate::report::{Row, Stats};
use crate::scenario::{Broker, Load};
use crate::{child_args, row, stats_of, Plan};

/// Input records per input partition the generator may be ahead of stage 1's commits:
/// at well under 1 KB per JSON record, a few MB per partition at most, inside the mock's
/// 5 MB, and several commit intervals of work for the pipeline.
const AHEAD_PER_PARTITION: u64 = 2_000;

/// Input partitions of the memory run (the backlog is spread over them).
const PARTITIONS: i32 = 64;

/// Input records per transaction of the generator's default shop (about 44, with the
/// user events of the sessions around each order).
const RECORDS_PER_ORDER: f64 = 44.0;

/// Memory counts as bounded when the last quarter's mean RSS is at most this fraction
/// above the third quarter's: by then every store is past its horizon at the default
/// event rate, so what still grows is a leak, not state.
const BOUNDED_GROWTH: f64 = 0.10;

/// What one memory run produced and measured.
pub struct MemoryRun {
    pub report: ChildReport,
    pub orders: u64,
    pub inputs: u64,
    pub seconds: f64,
}

/// Generates `orders` transactions (and the events among them) into `bootstrap`, at most
/// `ahead` input records ahead of `committed`. Returns (orders, input records). Blocking.
fn produce(
    load: &Load,
    bootstrap: &str,
    orders: u64,
    event_rate: f64,
    ahead: u64,
    committed: &AtomicU64,
    child_gone: &AtomicBool,
) -> Result<(u64, u64)> {
    let mut args = load.args(bootstrap)?;
    args.count = None;
    // Event time advances 1 s per `event_rate` input records (times the seasonal
    // intensity): at the default 40/s the 1,000,000 orders span about 12 days of event
    // time, so every store passes its horizon (24 h fraud profiles, 7-day dedup TTL) and
    // the run shows where memory levels off, not only how it grows. Started at the wall
    // clock the stream would run that far into the future and stage 1 would reject all
    // but its first hour (`quality.max_future_ms`) to the DLQ; it starts far enough in the
    // past that it ends before now (with a margin for the seasonal intensity), as a replay
    // of the last days would.
    args.event_rate = event_rate;
    let span_ms = (orders as f64 * RECORDS_PER_ORDER * 1_000.0 / event_rate * 1.5) as i64;
    args.start = Some(chrono::Utc::now().timestamp_millis() - span_ms);
    // The generator's own check rejects a rate that is not positive (`--event-rate`).
    let cfg = args.generator_config().with_context(|| {
        format!("the memory run's generator (--memory-event-rate {event_rate})")
    })?;
    let mut sink = KafkaSink::new(
        &args.kafka_options().context("kafka options")?,
        cfg.topics.clone(),
    )?;
    let mut encoder = JsonEncoder;
    let mut value = Vec::with_capacity(4096);
    let (mut made, mut inputs) = (0u64, 0u64);
    for emitted in Generator::new(&cfg) {
        let rec = &emitted.record;
        if rec.topic.is_input() {
            while inputs >= committed.load(Ordering::Relaxed) + ahead {
                if child_gone.load(Ordering::Relaxed) {
                    bail!("the pipeline process ended during the memory run");
                }
                sink.poll(Duration::from_millis(5));
            }
            inputs += 1;
        }
        encoder.encode(cfg.topics.name(rec.topic), rec, &mut value)?;
        sink.send(rec, &value)?;
        if rec.topic == TopicKind::Transactions {
            made += 1;
            if made >= orders {
                break;
            }
        }
    }
    let report = sink.flush(Duration::from_secs(60))?;
    if report.failed > 0 {
        bail!("{} records failed delivery", report.failed);
    }
    Ok((made, inputs))
}

/// One memory run (seed `run`).
async fn memory_run(plan: &Plan, run: u32) -> Result<MemoryRun> {
    let broker = Broker::new(PARTITIONS)?;
    let bootstrap = broker.bootstrap();
    let mut args = child_args(plan, &broker, None, true, plan.commit_ms, 0);
    args.extend([
        "--expect-on-stdin".to_string(),
        "--progress".to_string(),
        format!("--timeout-s={}", plan.memory_timeout_s),
    ]);
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .arg("child")
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting the pipeline process")?;
    let mut stdin = child.stdin.take().expect("piped");
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let committed = Arc::new(AtomicU64::new(0));
    let gone = Arc::new(AtomicBool::new(false));
    let (c, g) = (committed.clone(), gone.clone());
    let reader = tokio::spawn(async move {
        let mut report: Option<ChildReport> = None;
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(n) = line.strip_prefix("progress ") {
                c.store(n.parse().unwrap_or(0), Ordering::Relaxed);
            } else if line.starts_with('{') {
                report = serde_json::from_str(&line).ok();
            }
        }
        g.store(true, Ordering::Relaxed);
        report
    });
    let load = Load {
        records: 0,
        rate: 0.0,
        seed: u64::from(run),
        avro_registry: None,
    };
    let (orders, ahead) = (plan.memory_orders, AHEAD_PER_PARTITION * PARTITIONS as u64);
    let event_rate = plan.memory_event_rate;
    let started = Instant::now();
    let (c, g) = (committed.clone(), gone.clone());
    let (made, inputs) = tokio::task::spawn_blocking(move || {
        produce(&load, &bootstrap, orders, event_rate, ahead, &c, &g)
    })
    .await??;
    stdin.write_all(format!("{inputs}\n").as_bytes()).await?;
    stdin.flush().await?;
    let report = reader.await?;
    let status = child.wait().await?;
    let seconds = started.elapsed().as_secs_f64();
    let Some(report) = report.filter(|_| status.success()) else {
        bail!("pipeline process failed in the memory run ({status})");
    };
    drop(broker);
    Ok(MemoryRun {
        report,
        orders: made,
        inputs,
        seconds,
    })
}

/// The memory runs (`plan.memory_runs` of them).
pub async fn memory(plan: &Plan) -> Result<Vec<MemoryRun>> {
    let mut out = Vec::new();
    for run in 1..=plan.memory_runs {
        let r = memory_run(plan, run).await?;
        let m = &r.report.memory;
        eprintln!(
            "memory run {run}: {} orders, {} input records in {:.0} s ({:.0}/s); RSS first quarter {} MB, \
             third {} MB, last {} MB, peak {} MB ({} samples); state keys at 1/4 {:?}, at 3/4 {:?}, at the end {:?}",
            r.orders,
            r.inputs,
            r.seconds,
            r.report.events_per_s,
            m.first_quarter_kb / 1024,
            m.third_quarter_kb / 1024,
            m.last_quarter_kb / 1024,
            m.peak_kb / 1024,
            m.samples,
            m.states_first_quarter,
            m.states_third_quarter,
            m.states_end
        );
        out.push(r);
    }
    Ok(out)
}

/// The rows of the memory runs: RSS peak, first, third and last quarter, the growth and
/// whether it stopped (last against third quarter), and the state sizes at the end of the
/// first and third quarters and at the end.
pub fn rows(plan: &Plan, runs: &[MemoryRun]) -> Vec<Row> {
    let reports: Vec<ChildReport> = runs.iter().map(|r| r.report.clone()).collect();
    let mb = |kb: u64| kb as f64 / 1024.0;
    let what = format!(
        "memory run ({} orders, {} records/s of event time, exactly-once {} ms, JSON)",
        plan.memory_orders, plan.memory_event_rate, plan.commit_ms
    );
    let inputs = Stats::of(&runs.iter().map(|r| r.inputs as f64).collect::<Vec<_>>());
    let rss = |label: &str, f: fn(&crate::probe::Memory) -> u64, note: &str| {
        row(
            format!("{what}: RSS {label}"),
            "MB",
            stats_of(&reports, |r| mb(f(&r.memory))),
            note.to_string(),
        )
    };
    let late_growth = stats_of(&reports, |r| {
        mb(r.memory.last_quarter_kb) - mb(r.memory.third_quarter_kb)
    });
    let third = stats_of(&reports, |r| mb(r.memory.third_quarter_kb));
    let bounded = late_growth.max <= BOUNDED_GROWTH * third.min;
    let mut rows = vec![
        row(
            format!("{what}: input records"),
            "records",
            inputs,
            "transactions + events",
        ),
        row(
            format!("{what}: pipeline throughput"),
            "events/s",
            stats_of(&reports, |r| r.events_per_s),
            "generator running alongside",
        ),
        rss("peak (VmHWM)", |m| m.peak_kb, ""),
        rss("first quarter", |m| m.first_quarter_kb, "mean VmRSS"),
        rss("third quarter", |m| m.third_quarter_kb, "mean VmRSS"),
        rss("last quarter", |m| m.last_quarter_kb, "mean VmRSS"),
        row(
            format!("{what}: RSS growth"),
            "MB",
            stats_of(&reports, |r| {
                mb(r.memory.last_quarter_kb) - mb(r.memory.first_quarter_kb)
            }),
            "last − first quarter",
        ),
        row(
            format!("{what}: RSS growth after the state horizons"),
            "MB",
            late_growth,
            format!(
                "last − third quarter; target bounded (≤ {:.0} % of the third quarter): {}",
                BOUNDED_GROWTH * 100.0,
                crate::verdict(bounded)
            ),
        ),
    ];
    let stores: Vec<String> = reports
        .first()
        .map(|r| r.memory.states_end.keys().cloned().collect())
        .unwrap_or_default();
    for store in stores {
        let at = |m: &std::collections::BTreeMap<String, f64>| m.get(&store).copied();
        let median = |f: fn(&crate::probe::Memory) -> &std::collections::BTreeMap<String, f64>| {
            Stats::of(
                &reports
                    .iter()
                    .filter_map(|r| at(f(&r.memory)))
                    .collect::<Vec<_>>(),
            )
            .median
        };
        rows.push(row(
            format!("{what}: {store} keys at the end"),
            "keys",
            stats_of(&reports, |r| at(&r.memory.states_end).unwrap_or(0.0)),
            format!(
                "{:.0} at the end of the first quarter, {:.0} of the third (medians)",
                median(|m| &m.states_first_quarter),
                median(|m| &m.states_third_quarter)
            ),
        ));
    }
    rows
}
