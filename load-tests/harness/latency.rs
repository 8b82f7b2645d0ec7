//! The open-loop latency runs of the harness, and its latency-only mode. A run starts a
//! fresh broker with a 2,000-record warm-up preload, starts the pipeline process (exactly
//! once, JSON, the commit interval of `--commit-ms`, 100 ms by default) and, once it
//! commits, produces at a fixed offered rate on an absolute schedule stamped with the wall
//! clock. The pipeline reports its own end-to-end histogram (Kafka timestamp → the commit
//! that made the outputs visible) and its transaction commit times. Alongside, a plain
//! consumer in the harness with the pipeline's client settings (`read_committed`, the
//! `--kafka-property` overrides, the pipeline's default fetch wait) reads the same inputs
//! and records Kafka timestamp → delivery to the application: the fetch part of the
//! latency, without processing or commit. `--latency-only --latency-rates R1,R2` runs
//! just this phase (diagnosis).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};
use hdrhistogram::Histogram as Hdr;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use shopstream::codec::subjects::{EVENTS, TRANSACTIONS};

use crate::child::ChildReport;
use crate::report::{Row, Stats};
use crate::scenario::{Broker, Load};
use crate::{child_args, row, run_child, stats_of, Plan};

/// Delivery latency seen by the side consumer (ms).
#[derive(Debug, Clone, Copy, Default)]
pub struct Delivery {
    pub samples: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// One latency run: the pipeline's report and the side consumer's delivery latency.
pub struct LatencyRun {
    pub report: ChildReport,
    pub delivery: Delivery,
}

struct SideConsumer {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Result<Delivery>>,
}

fn now_ms() -> i64 {
    shopstream::runtime::stage1::now_ms()
}

impl SideConsumer {
    /// Reads both input topics from their end; samples from `warmup_s` on.
    fn start(plan: &Plan, bootstrap: &str, warmup_s: f64) -> Result<SideConsumer> {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", bootstrap)
            .set("group.id", "load-test-delivery")
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed");
        for (k, v) in &plan.kafka_properties {
            c.set(k, v);
        }
        shopstream::runtime::client::default_fetch_wait(&mut c);
        let consumer: BaseConsumer = c.create().context("side consumer")?;
        let mut tpl = TopicPartitionList::new();
        for topic in [TRANSACTIONS, EVENTS] {
            for p in 0..plan.partitions {
                tpl.add_partition_offset(topic, p, Offset::End)?;
            }
        }
        consumer.assign(&tpl)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let from_ms = now_ms() + (warmup_s * 1000.0) as i64;
        let thread = std::thread::spawn(move || -> Result<Delivery> {
            let mut h = Hdr::<u64>::new_with_bounds(1, 3_600_000_000, 3)?;
            while !flag.load(Ordering::Relaxed) {
                let Some(m) = consumer.poll(Duration::from_millis(50)) else {
                    continue;
                };
                let m = m?;
                let now = now_ms();
                if let Some(ts) = m.timestamp().to_millis() {
                    if ts >= from_ms {
                        h.saturating_record(((now - ts).max(0) as u64) * 1000 + 1);
                    }
                }
            }
            let q = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
            Ok(Delivery {
                samples: h.len(),
                p50_ms: q(0.5),
                p99_ms: q(0.99),
                max_ms: h.max() as f64 / 1000.0,
            })
        });
        Ok(SideConsumer { stop, thread })
    }

    fn finish(self) -> Result<Delivery> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .join()
            .map_err(|_| anyhow::anyhow!("side consumer panicked"))?
    }
}

/// Open-loop latency at `rate` (exactly-once, `plan.commit_ms`), `plan.runs` times.
pub async fn latency(plan: &Plan, rate: f64) -> Result<Vec<LatencyRun>> {
    let mut out = Vec::new();
    for run in 1..=plan.runs {
        let broker = Broker::new(plan.partitions)?;
        let bootstrap = broker.bootstrap();
        let warm = Load {
            records: 2_000,
            rate: 0.0,
            seed: 1_000 + u64::from(run),
            avro_registry: None,
        };
        let warm_inputs = warm.produce(&bootstrap).await?;
        let offered = Load {
            records: (rate * plan.latency_seconds) as u64,
            rate,
            seed: 2_000 + u64::from(run),
            avro_registry: None,
        };
        // The generator counts input records; a few catalog records come on top.
        let mut args = child_args(
            plan,
            &broker,
            None,
            true,
            plan.commit_ms,
            warm_inputs + offered.records,
        );
        args.push("--warmup-s=2".into());
        let side = SideConsumer::start(plan, &bootstrap, 2.0)?;
        let b = bootstrap.clone();
        let r = run_child(args, || async move { offered.produce(&b).await }).await;
        let delivery = side.finish()?;
        let r = r?;
        eprintln!(
            "latency at {rate:.0}/s, run {run}: p50 {:.1} ms, p99 {:.1} ms, p99.9 {:.1} ms ({} samples); \
             delivery to a consumer p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} samples); \
             commit p50 {:.1} ms, p99 {:.1} ms; RSS {} → {} MB, peak {} MB",
            r.p50_ms, r.p99_ms, r.p999_ms, r.latency_samples,
            delivery.p50_ms, delivery.p99_ms, delivery.max_ms, delivery.samples,
            r.commit_p50_ms, r.commit_p99_ms,
            r.memory.first_quarter_kb / 1024, r.memory.last_quarter_kb / 1024, r.memory.peak_kb / 1024
        );
        out.push(LatencyRun {
            report: r,
            delivery,
        });
    }
    Ok(out)
}

/// The rows of the latency runs at one rate: p50, p99 (with the target where `target_ms`
/// is given), p99.9, and the delivery and commit phases.
pub fn rows(what: &str, runs: &[LatencyRun], target_ms: Option<f64>) -> Vec<Row> {
    let reports: Vec<ChildReport> = runs.iter().map(|r| r.report.clone()).collect();
    let d = |f: fn(&Delivery) -> f64| {
        Stats::of(&runs.iter().map(|r| f(&r.delivery)).collect::<Vec<_>>())
    };
    let p99 = stats_of(&reports, |r| r.p99_ms);
    let note = target_ms.map_or(String::new(), |t| {
        format!("target ≤ {t:.0} ms: {}", crate::verdict(p99.median <= t))
    });
    vec![
        row(
            format!("{what}: p50"),
            "ms",
            stats_of(&reports, |r| r.p50_ms),
            "",
        ),
        row(format!("{what}: p99"), "ms", p99, note),
        row(
            format!("{what}: p99.9"),
            "ms",
            stats_of(&reports, |r| r.p999_ms),
            "",
        ),
        row(
            format!("{what}: delivery to a plain consumer, p50"),
            "ms",
            d(|d| d.p50_ms),
            "Kafka timestamp → poll of a side consumer",
        ),
        row(
            format!("{what}: delivery to a plain consumer, p99"),
            "ms",
            d(|d| d.p99_ms),
            "",
        ),
        row(
            format!("{what}: transaction commit, p50"),
            "ms",
            stats_of(&reports, |r| r.commit_p50_ms),
            "stage 1 and stage 2 commits",
        ),
        row(
            format!("{what}: transaction commit, p99"),
            "ms",
            stats_of(&reports, |r| r.commit_p99_ms),
            "",
        ),
    ]
}

/// `--latency-only`: the latency runs at `plan.latency_rates`, printed as a table.
pub async fn latency_only(plan: &Plan) -> Result<Vec<Row>> {
    let mut rows_out = Vec::new();
    for &rate in &plan.latency_rates {
        let runs = latency(plan, rate).await?;
        let what = format!(
            "latency at {rate:.0}/s, exactly-once {} ms, JSON",
            plan.commit_ms
        );
        let target = Some(50.0 + plan.commit_ms as f64);
        rows_out.extend(rows(&what, &runs, target));
    }
    Ok(rows_out)
}
