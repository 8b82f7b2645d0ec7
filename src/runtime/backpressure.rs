//! Backpressure for the consume loops: bounded queues, and paused partitions instead of
//! buffers without end. A stage pauses every assigned input partition while its producer
//! queue holds too many undelivered records, or (stage 1) while the instance's PostgreSQL
//! sink is too far behind its topics, and resumes them once the load has fallen to half
//! the limit (hysteresis, so it does not flap). The consumer keeps polling while paused,
//! so heartbeats and rebalances are served; partitions assigned during a pause are paused
//! at the next check.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::TopicPartitionList;
use tracing::info;

use super::telemetry;

/// A high/low threshold with memory: on above `high`, off again at or below `high / 2`.
#[derive(Debug, Clone, Copy)]
pub struct Gate {
    high: u64,
    on: bool,
}

impl Gate {
    /// A gate at `high`; 0 never closes.
    pub fn new(high: u64) -> Gate {
        Gate { high, on: false }
    }

    /// Feeds the current load; true while the gate asks for a pause.
    pub fn update(&mut self, load: u64) -> bool {
        if self.high == 0 {
            return false;
        }
        if load > self.high {
            self.on = true;
        } else if load <= self.high / 2 {
            self.on = false;
        }
        self.on
    }
}

/// How far the instance's sink is behind its topics, in records: the sink reports its
/// lag before writing each batch, stage 1 reads the largest report since its last read
/// (a burst the sink works off between two checks still counts).
#[derive(Debug, Clone, Default)]
pub struct SinkLag(Arc<AtomicU64>);

impl SinkLag {
    pub fn set(&self, records: u64) {
        self.0.fetch_max(records, Ordering::Relaxed);
    }

    /// The largest lag reported since the last call.
    pub fn take(&self) -> u64 {
        self.0.swap(0, Ordering::Relaxed)
    }
}

/// The pause state of one consume loop.
pub struct Backpressure {
    stage: &'static str,
    producer: Gate,
    sink: Option<(Gate, SinkLag)>,
    paused: Vec<(String, i32)>,
    next_check: Instant,
    /// How many times the inputs were paused.
    pub pauses: u64,
}

const CHECK_EVERY: Duration = Duration::from_millis(50);

impl Backpressure {
    /// `max_in_flight` records in the producer queue pause the inputs; with `sink`, so
    /// does a sink lag above its limit.
    pub fn new(stage: &'static str, max_in_flight: u64, sink: Option<(u64, SinkLag)>) -> Self {
        Backpressure {
            stage,
            producer: Gate::new(max_in_flight),
            sink: sink.map(|(limit, lag)| (Gate::new(limit), lag)),
            paused: Vec::new(),
            next_check: Instant::now(),
            pauses: 0,
        }
    }

    /// Pauses or resumes the inputs for the current load (`in_flight` records in the
    /// producer queue); checks at most every 50 ms.
    pub fn apply<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        in_flight: u64,
    ) -> Result<()> {
        let now = Instant::now();
        if now < self.next_check {
            return Ok(());
        }
        self.next_check = now + CHECK_EVERY;
        let producer = self.producer.update(in_flight);
        let sink = self
            .sink
            .as_mut()
            .is_some_and(|(gate, lag)| gate.update(lag.take()));
        let want = producer || sink;
        if !want && self.paused.is_empty() {
            return Ok(());
        }
        let assignment = consumer.assignment().context("assignment")?;
        let mut current: Vec<(String, i32)> = assignment
            .elements()
            .iter()
            .map(|e| (e.topic().to_string(), e.partition()))
            .collect();
        current.sort();
        if want {
            if current != self.paused && !current.is_empty() {
                if self.paused.is_empty() {
                    self.pauses += 1;
                    info!(
                        stage = self.stage,
                        in_flight, producer, sink, "pausing inputs (backpressure)"
                    );
                }
                consumer.pause(&assignment).context("pausing the inputs")?;
                self.paused = current;
            }
        } else {
            let mut tpl = TopicPartitionList::new();
            for (t, p) in current.iter().filter(|tp| self.paused.contains(tp)) {
                tpl.add_partition(t, *p);
            }
            consumer.resume(&tpl).context("resuming the inputs")?;
            info!(stage = self.stage, "resuming inputs");
            self.paused.clear();
        }
        metrics::gauge!(telemetry::PAUSED, "stage" => self.stage).set(self.paused.len() as f64);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Gate;

    #[test]
    fn gate_closes_above_the_limit_and_opens_at_half() {
        let mut g = Gate::new(100);
        assert!(!g.update(100));
        assert!(g.update(101));
        assert!(g.update(80), "still paused above half");
        assert!(g.update(51));
        assert!(!g.update(50), "resumed at half");
        assert!(!g.update(99));
        assert!(g.update(1_000));
    }

    #[test]
    fn sink_lag_reports_the_peak_since_the_last_read() {
        let lag = super::SinkLag::default();
        lag.set(500);
        lag.set(20);
        assert_eq!(lag.take(), 500);
        assert_eq!(lag.take(), 0);
    }

    #[test]
    fn a_zero_limit_never_pauses() {
        let mut g = Gate::new(0);
        assert!(!g.update(u64::MAX));
    }
}
