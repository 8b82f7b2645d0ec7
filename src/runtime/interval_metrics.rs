//! Stage-1 metrics gathered over one commit interval and recorded when the interval
//! ends: records in and out per topic, the engine's duplicate and late counters (as
//! deltas, so a restored task does not count twice), state size, consumer lag, and the
//! end-to-end latency of every record — from its Kafka timestamp to the commit that made
//! its outputs visible. Counting in plain fields on the hot path and recording once per
//! commit keeps the per-record cost to an addition.

use std::collections::HashMap;

use crate::engine::{Counters, Task};

use super::stage1::Stage1Settings;
use super::telemetry as t;

/// Output kinds counted per interval, in the order of [`Stage1Settings`]' topics.
#[derive(Debug, Clone, Copy)]
pub enum Out {
    Orders,
    Alerts,
    Dlq,
    Late,
    Partials,
    Changelog,
}

#[derive(Debug, Default)]
pub struct IntervalMetrics {
    transactions_in: u64,
    events_in: u64,
    out: [u64; 6],
    /// Kafka timestamps (ms) of the records consumed in the open interval.
    timestamps: Vec<i64>,
    /// Engine counters already reported, per task.
    reported: HashMap<i32, Counters>,
}

impl IntervalMetrics {
    pub fn consumed(&mut self, transaction: bool, kafka_ts: Option<i64>) {
        if transaction {
            self.transactions_in += 1;
        } else {
            self.events_in += 1;
        }
        if let Some(ts) = kafka_ts {
            self.timestamps.push(ts);
        }
    }

    pub fn produced(&mut self, kind: Out, n: usize) {
        self.out[kind as usize] += n as u64;
    }

    /// Forgets the open interval (it was aborted and will be read again).
    pub fn aborted(&mut self) {
        self.transactions_in = 0;
        self.events_in = 0;
        self.out = [0; 6];
        self.timestamps.clear();
        self.reported.clear();
        metrics::counter!(t::TXN_ABORTS, "stage" => "1").increment(1);
    }

    /// Forgets a task that moved away.
    pub fn dropped(&mut self, p: i32) {
        self.reported.remove(&p);
    }

    /// Records the committed interval at wall-clock `now_ms`.
    pub fn committed<'a>(
        &mut self,
        s: &Stage1Settings,
        tasks: impl Iterator<Item = (&'a i32, &'a Task)>,
        now_ms: i64,
    ) {
        metrics::counter!(t::RECORDS_IN, "topic" => s.transactions.clone())
            .increment(std::mem::take(&mut self.transactions_in));
        metrics::counter!(t::RECORDS_IN, "topic" => s.events.clone())
            .increment(std::mem::take(&mut self.events_in));
        metrics::counter!(t::FRAUD_ALERTS).increment(self.out[Out::Alerts as usize]);
        let topics = [
            &s.orders,
            &s.fraud_alerts,
            &s.dlq,
            &s.late,
            &s.partials,
            &s.changelog,
        ];
        for (topic, n) in topics.into_iter().zip(std::mem::take(&mut self.out)) {
            metrics::counter!(t::RECORDS_OUT, "topic" => topic.clone()).increment(n);
        }
        let latency = metrics::histogram!(t::E2E_LATENCY);
        for ts in self.timestamps.drain(..) {
            latency.record(now_ms.saturating_sub(ts).max(0) as f64 / 1000.0);
        }
        let (mut duplicates, mut late, mut dedup_ids, mut windows) = (0, 0, 0, 0);
        let (mut profiles, mut rfm) = (0, 0);
        for (p, task) in tasks {
            let now = task.counters();
            let before = self.reported.insert(*p, now).unwrap_or_default();
            duplicates += now.duplicates.saturating_sub(before.duplicates);
            late += now.late.saturating_sub(before.late);
            dedup_ids += task.dedup_size().0;
            windows += task.window_results();
            profiles += task.fraud_profiles();
            rfm += task.rfm().len();
        }
        metrics::counter!(t::DUPLICATES).increment(duplicates);
        metrics::counter!(t::LATE).increment(late);
        metrics::gauge!(t::STATE_KEYS, "store" => "dedup").set(dedup_ids as f64);
        metrics::gauge!(t::STATE_KEYS, "store" => "windows").set(windows as f64);
        metrics::gauge!(t::STATE_KEYS, "store" => "fraud").set(profiles as f64);
        metrics::gauge!(t::STATE_KEYS, "store" => "rfm").set(rfm as f64);
    }
}

/// Records the consumer lag of one input partition.
pub fn consumer_lag(topic: &str, partition: i32, position: Option<i64>, high: Option<i64>) {
    if let (Some(pos), Some(high)) = (position, high) {
        metrics::gauge!(t::CONSUMER_LAG, "topic" => topic.to_string(), "partition" => partition.to_string())
            .set(high.saturating_sub(pos).max(0) as f64);
    }
}
