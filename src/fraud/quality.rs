//! Fraud quality against the generator's ground truth, in process (no Kafka): a generated
//! stream is fed, in order, into one stage-1 task holding every customer (processing time
//! = event time), and the alerts of the scored transactions are compared with the truth
//! labels (`fraud:<pattern>`). A labelled transaction that was never scored counts as
//! missed. Used by the fraud quality test and the `fraud_quality` load-test report.

use std::collections::{BTreeMap, HashMap};

use super::score::Verdict;
use crate::engine::{Disposition, EngineConfig, Input, Outputs, Task, TaskError, TopicPartition};
use crate::generator::{Generator, GeneratorConfig, Payload, TopicKind};
use crate::model::time::Millis;
use crate::model::{Record, Transaction};
use crate::quality::{reason, rule, Rejection};

/// Counts and ratios of one evaluation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QualityReport {
    /// Transactions scored.
    pub scored: u64,
    /// Transactions labelled fraudulent.
    pub fraud: u64,
    pub alerts: u64,
    pub true_positives: u64,
    pub false_positives: u64,
    pub false_negatives: u64,
    /// Per fraud pattern: (caught, labelled).
    pub by_pattern: BTreeMap<String, (u64, u64)>,
    /// False positives per top reason.
    pub false_by_reason: BTreeMap<String, u64>,
}

impl QualityReport {
    pub fn precision(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_positives,
        )
    }

    pub fn recall(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_negatives,
        )
    }

    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// One generated input record, owned (the generated stream is consumed lazily).
#[derive(Debug, Clone)]
pub struct GeneratedInput {
    /// 0: transactions, 1: events.
    pub input: usize,
    pub topic: String,
    pub offset: i64,
    pub key: String,
    /// Event time, used as processing time too.
    pub now: Millis,
    pub record: Result<Record, Rejection>,
}

impl GeneratedInput {
    /// Feeds the record to `task` (on partition 0 of its topic).
    pub fn process(self, task: &mut Task, out: &mut Outputs) -> Result<Disposition, TaskError> {
        let input = Input {
            topic: &self.topic,
            partition: 0,
            offset: self.offset,
            key: Some(self.key.as_bytes()),
            value: &[],
            // The generator's default message timestamp is the event time.
            timestamp: Some(self.now),
            record: self.record,
        };
        task.process(input, self.now, out)
    }
}

/// The generated stream as task inputs (products skipped, undecodable payloads as codec
/// rejections), collecting the fraud labels (`fraud:<pattern>`) by transaction_id.
pub struct GeneratedInputs {
    generator: Generator,
    topics: [String; 2],
    offsets: [i64; 2],
    pub labels: HashMap<String, String>,
}

impl GeneratedInputs {
    pub fn new(gen: &GeneratorConfig) -> Self {
        GeneratedInputs {
            generator: Generator::new(gen),
            topics: [gen.topics.transactions.clone(), gen.topics.events.clone()],
            offsets: [0; 2],
            labels: HashMap::new(),
        }
    }

    /// Partition 0 of both input topics, as a task's inputs.
    pub fn task_inputs(&self) -> Vec<TopicPartition> {
        self.topics
            .iter()
            .map(|t| TopicPartition::new(t, 0))
            .collect()
    }
}

impl Iterator for GeneratedInputs {
    type Item = GeneratedInput;

    fn next(&mut self) -> Option<GeneratedInput> {
        loop {
            let e = self.generator.next()?;
            if let Some(t) = &e.truth {
                if let (Some(id), Some(l)) = (
                    &t.transaction_id,
                    t.labels.iter().find(|l| l.starts_with("fraud:")),
                ) {
                    self.labels.insert(id.clone(), l.clone());
                }
            }
            let r = e.record;
            let input = match r.topic {
                TopicKind::Transactions => 0,
                TopicKind::Events => 1,
                TopicKind::Products => continue,
            };
            let record = match r.payload {
                Payload::Transaction(t) => Ok(Record::Transaction(t)),
                Payload::Event(ev) => Ok(Record::Event(ev)),
                Payload::Product(_) => continue,
                Payload::Raw(_) => Err(Rejection::new(
                    reason::UNDECODABLE,
                    rule::DECODE,
                    "raw payload",
                )),
            };
            let offset = self.offsets[input];
            self.offsets[input] += 1;
            return Some(GeneratedInput {
                input,
                topic: self.topics[input].clone(),
                offset,
                key: r.key,
                now: r.event_time,
                record,
            });
        }
    }
}

/// Runs the stream of `gen` through a task with `engine`, calling `each` for every scored
/// transaction with its verdict and fraud label (`fraud:<pattern>`), if any.
pub fn evaluate(
    gen: &GeneratorConfig,
    engine: EngineConfig,
    mut each: impl FnMut(&Transaction, &Verdict, Option<&str>),
) -> Result<QualityReport, TaskError> {
    let mut inputs = GeneratedInputs::new(gen);
    let mut task = Task::new(engine, inputs.task_inputs())?;
    task.set_changelog(false);
    let mut scored: Vec<(Transaction, Verdict)> = Vec::new();
    let mut out = Outputs::default();
    for input in inputs.by_ref() {
        input.process(&mut task, &mut out)?;
        for (a, v) in out.transactions.drain(..).zip(out.fraud.drain(..)) {
            scored.push((a.record, v));
        }
        out.clear();
    }
    let mut labels = std::mem::take(&mut inputs.labels);
    let mut rep = QualityReport {
        fraud: labels.len() as u64,
        ..QualityReport::default()
    };
    for l in labels.values() {
        rep.by_pattern.entry(pattern(l)).or_default().1 += 1;
    }
    for (t, v) in &scored {
        let label = labels.remove(&t.transaction_id);
        each(t, v, label.as_deref());
        rep.scored += 1;
        rep.alerts += u64::from(v.alert);
        match (&label, v.alert) {
            (Some(l), true) => {
                rep.true_positives += 1;
                rep.by_pattern.entry(pattern(l)).or_default().0 += 1;
            }
            (Some(_), false) => rep.false_negatives += 1,
            (None, true) => {
                rep.false_positives += 1;
                let top = v.reasons.first().copied().unwrap_or("none");
                *rep.false_by_reason.entry(top.to_owned()).or_default() += 1;
            }
            (None, false) => {}
        }
    }
    // Labelled transactions that were never scored are missed too.
    rep.false_negatives += labels.len() as u64;
    Ok(rep)
}

fn pattern(label: &str) -> String {
    label.trim_start_matches("fraud:").to_owned()
}
