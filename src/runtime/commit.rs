//! Ending a stage-1 commit interval: processing-time work (partition idleness, early
//! results), changelog flushes, watermark marks for stage 2, then the commit itself —
//! a Kafka transaction with the consumed offsets (exactly-once) or a producer flush and a
//! synchronous offset commit (at-least-once). Transaction errors are classified as
//! librdkafka prescribes: retriable ⇒ retry the commit, abortable ⇒ abort and rewind,
//! fatal (e.g. fenced by a newer instance) ⇒ error out of the process.

use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::producer::Producer;
use rdkafka::{Offset, TopicPartitionList};
use tracing::{error, warn};

use super::changelog::seq_metadata;
use super::partials::PartialMessage;
use super::stage1::{now_ms, Stage1};
use super::watermarks;

const TXN_TIMEOUT: Duration = Duration::from_secs(30);

impl Stage1 {
    /// Ends the current interval and commits it.
    pub fn commit<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) -> Result<()> {
        let now = now_ms();
        // Every assigned partition number has a task, so quiet partitions still send
        // watermark marks and stage 2 is never held by a task that does not exist.
        let assigned: Vec<i32> = consumer
            .assignment()
            .map(|a| a.elements().iter().map(|e| e.partition()).collect())
            .unwrap_or_default();
        for p in assigned {
            self.ensure_task(consumer, p)?;
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
        if self.eos() {
            self.commit_transaction(consumer, &offsets)
        } else {
            self.producer
                .flush(TXN_TIMEOUT)
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
        metrics::gauge!("shopstream_watermark_lag_seconds", "task" => p.to_string())
            .set(now_ms().saturating_sub(wm).max(0) as f64 / 1000.0);
        Ok(())
    }

    fn offsets_to_commit(&self) -> Result<TopicPartitionList> {
        let mut tpl = TopicPartitionList::new();
        for (p, task) in self.tasks() {
            let meta = seq_metadata(task.flush_seq());
            for (tp, next) in task.next_offsets() {
                let mut e = tpl.add_partition(&tp.topic, tp.partition);
                e.set_offset(Offset::Offset(next))
                    .map_err(|e| anyhow!("task {p}: {e}"))?;
                e.set_metadata(meta.clone());
            }
        }
        Ok(tpl)
    }

    fn commit_transaction<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        offsets: &TopicPartitionList,
    ) -> Result<()> {
        let started = std::time::Instant::now();
        let cgm = consumer
            .group_metadata()
            .ok_or_else(|| anyhow!("no consumer group metadata (not subscribed?)"))?;
        let mut result = self
            .producer
            .send_offsets_to_transaction(offsets, &cgm, TXN_TIMEOUT)
            .and_then(|_| self.producer.commit_transaction(TXN_TIMEOUT));
        for _ in 0..5 {
            match &result {
                Err(KafkaError::Transaction(e)) if e.is_retriable() && !e.txn_requires_abort() => {
                    warn!(error = %e, "retriable commit error; retrying");
                    result = self.producer.commit_transaction(TXN_TIMEOUT);
                }
                _ => break,
            }
        }
        match result {
            Ok(()) => {
                self.in_txn = false;
                self.totals.commits += 1;
                metrics::histogram!("shopstream_txn_commit_seconds")
                    .record(started.elapsed().as_secs_f64());
                Ok(())
            }
            Err(KafkaError::Transaction(e)) if e.txn_requires_abort() => {
                warn!(error = %e, "abortable transaction error: aborting and rewinding to the committed offsets");
                self.abort_and_rewind(consumer)
            }
            Err(e) => {
                error!(error = %e, "fatal transaction error");
                Err(anyhow!("fatal transaction error (fenced by another instance with the same transactional.id, or the broker refused the transaction): {e}"))
            }
        }
    }

    /// Aborts the open transaction, forgets all task state (it is restored from the
    /// committed changelog on next use) and seeks every assigned partition back to the
    /// group's committed offset.
    pub fn abort_and_rewind<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
    ) -> Result<()> {
        if self.in_txn {
            self.producer
                .abort_transaction(TXN_TIMEOUT)
                .context("abort_transaction")?;
            self.in_txn = false;
        }
        self.totals.aborts += 1;
        self.drop_all_tasks();
        let assignment = consumer.assignment().context("assignment")?;
        let committed = consumer
            .committed_offsets(assignment, Duration::from_secs(10))
            .context("committed offsets")?;
        let mut seek = TopicPartitionList::new();
        for e in committed.elements() {
            let to = match e.offset() {
                Offset::Offset(o) => Offset::Offset(o),
                _ => Offset::Beginning,
            };
            seek.add_partition_offset(e.topic(), e.partition(), to)?;
        }
        consumer
            .seek_partitions(seek, Duration::from_secs(10))
            .context("rewinding to the committed offsets")?;
        Ok(())
    }
}
