//! Running the generator: draws records from the deterministic `Generator`, paces the
//! input records to the wall-clock rate, encodes each once and hands the bytes to Kafka
//! and/or the JSONL files, writes truth lines, and stops at the record limit or when the
//! caller raises the stop flag. It is blocking; async callers run it on a blocking thread.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::args::GenerateArgs;
use super::encode::{encoder_for, PayloadEncoder};
use super::files::{FileSink, TruthWriter};
use super::kafka::{DeliveryReport, KafkaOptions, KafkaSink};
use super::pace::Pacer;
use super::record::TruthEntry;
use super::stream::{Generator, GeneratorConfig};
use crate::model::time::{to_rfc3339, Millis};

/// Where the records go and how fast.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outputs {
    pub kafka: Option<KafkaOptions>,
    /// Directory for `<topic>.jsonl` files.
    pub out_dir: Option<PathBuf>,
    pub truth: Option<PathBuf>,
    /// Input records per wall-clock second; 0 = as fast as possible.
    pub rate: f64,
}

/// What a run produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GenerateSummary {
    /// Records per topic name (the catalog included).
    pub per_topic: BTreeMap<String, u64>,
    /// Input records (transactions + events).
    pub inputs: u64,
    /// Records per truth label.
    pub labels: BTreeMap<String, u64>,
    pub truth_lines: u64,
    /// Smallest and largest event time on the input topics.
    pub event_time_range: Option<(Millis, Millis)>,
    /// Wall-clock time from the first record to the last delivery report.
    pub elapsed: Duration,
    pub delivery: Option<DeliveryReport>,
}

impl GenerateSummary {
    /// All records, catalog included.
    pub fn records(&self) -> u64 {
        self.per_topic.values().sum()
    }

    /// Input records per wall-clock second.
    pub fn input_rate(&self) -> f64 {
        self.inputs as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn count(&mut self, topic: &str, input: bool, at: Millis) {
        *self.per_topic.entry(topic.to_string()).or_default() += 1;
        if input {
            self.inputs += 1;
            let (lo, hi) = self.event_time_range.unwrap_or((at, at));
            self.event_time_range = Some((lo.min(at), hi.max(at)));
        }
    }

    fn label(&mut self, t: &TruthEntry) {
        self.truth_lines += 1;
        for l in &t.labels {
            *self.labels.entry(l.clone()).or_default() += 1;
        }
    }
}

impl fmt::Display for GenerateSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "generated {} input records in {:.2?} ({:.0}/s)",
            self.inputs,
            self.elapsed,
            self.input_rate()
        )?;
        for (topic, n) in &self.per_topic {
            writeln!(f, "  {topic}: {n}")?;
        }
        if let Some((lo, hi)) = self.event_time_range {
            writeln!(f, "  event time {} .. {}", to_rfc3339(lo), to_rfc3339(hi))?;
        }
        for (label, n) in &self.labels {
            writeln!(f, "  {label}: {n}")?;
        }
        if let Some(d) = &self.delivery {
            writeln!(f, "  delivered {} failed {}", d.delivered, d.failed)?;
        }
        Ok(())
    }
}

/// Runs `generate` as its flags say, with the built-in encoder for `--format` (JSON; Avro
/// needs a registry, see [`run_encoded`] and `generator::avro`).
pub fn run(args: &GenerateArgs, stop: &AtomicBool) -> anyhow::Result<GenerateSummary> {
    run_encoded(args, encoder_for(args.format)?, stop)
}

/// Runs `generate` as its flags say, writing values with `encoder`.
pub fn run_encoded(
    args: &GenerateArgs,
    encoder: Box<dyn PayloadEncoder>,
    stop: &AtomicBool,
) -> anyhow::Result<GenerateSummary> {
    let cfg = args.generator_config()?;
    let outputs = Outputs {
        kafka: args.kafka_options(),
        out_dir: args.out.clone(),
        truth: args.truth.clone(),
        rate: args.rate,
    };
    run_with(&cfg, encoder, &outputs, stop)
}

/// Writes the stream of `cfg` as JSON to `dir/<topic>.jsonl` and its truth to `truth`,
/// as fast as possible (for exports and tests).
pub fn write_files(
    cfg: &GeneratorConfig,
    dir: PathBuf,
    truth: Option<PathBuf>,
) -> anyhow::Result<GenerateSummary> {
    let outputs = Outputs {
        out_dir: Some(dir),
        truth,
        ..Outputs::default()
    };
    run_with(
        cfg,
        encoder_for(super::encode::Format::Json)?,
        &outputs,
        &AtomicBool::new(false),
    )
}

/// Runs the generator of `cfg` with `encoder` into `outputs` until the record limit or
/// until `stop` is raised. Fails if any record fails delivery to Kafka.
pub fn run_with(
    cfg: &GeneratorConfig,
    mut encoder: Box<dyn PayloadEncoder>,
    outputs: &Outputs,
    stop: &AtomicBool,
) -> anyhow::Result<GenerateSummary> {
    let mut kafka = match &outputs.kafka {
        Some(o) => Some(KafkaSink::new(o, cfg.topics.clone())?),
        None => None,
    };
    let mut files = match &outputs.out_dir {
        Some(d) => Some(FileSink::create(d, &cfg.topics, encoder.is_json())?),
        None => None,
    };
    let mut truth = match &outputs.truth {
        Some(p) => Some(TruthWriter::create(p)?),
        None => None,
    };
    let mut summary = GenerateSummary::default();
    let mut value = Vec::with_capacity(4096);
    // Building the shop (and warming up its sessions) is not part of the paced run.
    let mut generator = Generator::new(cfg);
    let mut pacer = Pacer::new(outputs.rate);
    let started = Instant::now();
    // by_ref: the generator (which may hold many sessions) is freed after the timing.
    for emitted in generator.by_ref() {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let rec = &emitted.record;
        if rec.topic.is_input() {
            pacer.wait_turn(|d| match &kafka {
                Some(k) => k.poll(d),
                None => std::thread::sleep(d),
            });
        }
        let topic = cfg.topics.name(rec.topic);
        encoder.encode(topic, rec, &mut value)?;
        if let Some(k) = kafka.as_mut() {
            k.send(rec, &value)?;
        }
        if let Some(f) = files.as_mut() {
            f.write(rec, &value)?;
        }
        if let Some(t) = &emitted.truth {
            summary.label(t);
            if let Some(w) = truth.as_mut() {
                w.write(t)?;
            }
        }
        summary.count(topic, rec.topic.is_input(), rec.event_time);
    }
    if let Some(f) = files.as_mut() {
        f.finish()?;
    }
    if let Some(w) = truth.as_mut() {
        w.finish()?;
    }
    if let Some(k) = kafka.as_mut() {
        let report = k.flush(Duration::from_secs(60))?;
        if report.failed > 0 {
            anyhow::bail!(
                "{} of {} records failed delivery to Kafka, first error: {}",
                report.failed,
                summary.records(),
                report.first_error.unwrap_or_default()
            );
        }
        summary.delivery = Some(report);
    }
    summary.elapsed = started.elapsed();
    Ok(summary)
}
