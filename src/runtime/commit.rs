//! Ending a stage-1 commit interval: processing-time work (partition idleness, early
//! results), changelog flushes, watermark marks for stage 2, then the commit itself —
//! a Kafka transaction with the consumed offsets (exactly-once, see `txn`) or a producer
//! flush and a synchronous offset commit (at-least-once).

use std::sync::atomic::Ordering;

use anyhow::{anyhow, bail, Context, Result};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::producer::Producer;
use rdkafka::{Offset, TopicPartitionList};

use super::changelog::seq_metadata;
use super::interval_metrics::{self, Out};
use super::partials::PartialMessage;
use super::stage1::{now_ms, Stage1};
use super::{telemetry, txn, watermarks};

impl Stage1 {
    /// Ends the current interval and commits it. `revoking`: called from the revoke
    /// callback, where only the existing tasks are committed (restoring a task needs the
    /// group's committed offsets, which the coordinator does not serve mid-rebalance).
    pub fn commit<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        revoking: bool,
    ) -> Result<()> {
        let started = std::time::Instant::now();
        let now = now_ms();
        // Every assigned partition number has a task, so quiet partitions still send
        // watermark marks and stage 2 is never held by a task that does not exist.
        let assigned: Vec<i32> = consumer
            .assignment()
            .map(|a| a.elements().iter().map(|e| e.partition()).collect())
            .unwrap_or_default();
        if !revoking {
            for p in assigned {
                self.ensure_task(consumer, p)?;
            }
        }
        if self.task_ids().is_empty() {
            return Ok(());
        }
        self.ensure_txn()?;
        let positions = consumer.position().unwrap_or_default();
        for p in self.task_ids() {
            for tp in self.inputs(p) {
                let pos = match positions
                    .find_partition(&tp.topic, tp.partition)
                    .map(|e| e.offset())
                {
                    Some(Offset::Offset(o)) => Some(o),
                    _ => None,
                };
                let high =
                    watermarks::cached(consumer.client(), &tp.topic, tp.partition).map(|(_, h)| h);
                interval_metrics::consumer_lag(&tp.topic, tp.partition, pos, high);
                let caught_up = match (pos, high) {
                    (Some(pos), Some(high)) => pos >= high,
                    (None, Some(high)) => high == 0,
                    _ => false,
                };
                self.with_task_result(p, |task, out| {
                    task.on_partition_status(&tp.topic, tp.partition, caught_up, now, out)
                        .map_err(|e| anyhow!("task {p}: {e}"))
                })?;
            }
            self.with_task(p, |task, out| task.on_tick(now, out))?;
            self.with_task_result(p, |task, out| {
                task.flush_changelog(out)
                    .map_err(|e| anyhow!("task {p}: {e}"))
            })?;
            self.send_watermark(p)?;
        }
        let offsets = self.offsets_to_commit()?;
        let prepared = started.elapsed();
        let records = self.totals.consumed - self.consumed_at_commit;
        let r = self.end_interval(consumer, offsets);
        tracing::debug!(
            records,
            prepare_ms = prepared.as_secs_f64() * 1e3,
            commit_ms = (started.elapsed() - prepared).as_secs_f64() * 1e3,
            "stage-1 interval ended"
        );
        r
    }

    /// Commits the prepared interval: the transaction, or a flush and the offsets.
    fn end_interval<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        offsets: TopicPartitionList,
    ) -> Result<()> {
        if self.eos() {
            self.in_txn = false;
            match txn::commit(&*self.producer, consumer, &offsets)? {
                txn::Outcome::Committed => {
                    self.totals.commits += 1;
                    self.record_commit();
                }
                txn::Outcome::Aborted => self.record_abort(),
            }
            Ok(())
        } else {
            super::producer::flush(&self.producer, txn::TXN_TIMEOUT)
                .context("flushing the producer before the offset commit")?;
            let failures = self.producer.context().failures.swap(0, Ordering::Relaxed);
            if failures > 0 {
                let last = self
                    .producer
                    .context()
                    .last_error
                    .lock()
                    .ok()
                    .and_then(|l| l.clone());
                bail!(
                    "{failures} records failed delivery (last: {}); not committing",
                    last.unwrap_or_default()
                );
            }
            consumer
                .commit(&offsets, CommitMode::Sync)
                .context("committing offsets")?;
            self.totals.commits += 1;
            self.record_commit();
            Ok(())
        }
    }

    fn send_watermark(&mut self, p: i32) -> Result<()> {
        let Some(wm) = self.task_watermark(p) else {
            return Ok(());
        };
        let msg = PartialMessage::Watermark {
            task: p,
            tasks: self.tasks_total,
            watermark: wm,
        }
        .to_json();
        let key = format!("watermark/{p}");
        let topic = self.settings.partials.clone();
        for q in 0..self.partials_partitions {
            self.send(&topic, key.as_bytes(), Some(&msg), Some(q), None)?;
        }
        self.metrics
            .produced(Out::Partials, self.partials_partitions as usize);
        metrics::gauge!(telemetry::WATERMARK_LAG, "task" => p.to_string())
            .set(now_ms().saturating_sub(wm).max(0) as f64 / 1000.0);
        Ok(())
    }

    fn offsets_to_commit(&self) -> Result<TopicPartitionList> {
        let mut next = Vec::new();
        for (_, task) in self.tasks() {
            let meta = seq_metadata(task.flush_seq());
            for (tp, offset) in task.next_offsets() {
                next.push((tp.topic, tp.partition, offset, meta.clone()));
            }
        }
        txn::offsets_with_metadata(
            next.iter()
                .map(|(t, p, o, m)| (t.as_str(), *p, *o, m.clone())),
        )
    }

    /// Aborts the open transaction, forgets all task state (restored from the committed
    /// changelog on next use) and rewinds the consumer to the committed offsets.
    pub fn abort_and_rewind<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
    ) -> Result<()> {
        txn::abort(&*self.producer, &mut self.in_txn)?;
        self.record_abort();
        txn::rewind(consumer)
    }
}
