//! Stage 2: the global merge. Consumer group `shopstream-merge` reads
//! `shop.internal.partials`; one engine [`Merger`] per assigned partials partition (restored
//! from its partition of `shopstream-merge-changelog`) merges the partial KPI rows of all
//! stage-1 tasks and emits global rows, once the minimum watermark over all tasks passes a
//! window, to `shop.kpi.<family>` as an upsert stream keyed by the row key, and business
//! alerts to `shop.alerts.business` keyed by alert id. Commits like stage 1: one
//! transaction per interval with the KPI rows, the alerts, the changelog and the offsets
//! (exactly-once), or flush and commit (at-least-once).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, TopicPartitionList};
use tokio::runtime::Handle;
use tracing::{info, warn};

use super::changelog::{self, applied_header, seq_metadata};
use super::partials::PartialMessage;
use super::processor::Stage;
use super::producer::{produce, DeliveryContext};
use super::stage1::now_ms;
use super::txn;
use crate::analytics::alerts::Inventory;
use crate::codec::subjects::{BUSINESS_ALERTS, KPI_PREFIX};
use crate::codec::OutputEncoder;
use crate::engine::{Consumed, EngineConfig, MergeConfig, Merger, Outputs, TopicPartition};

/// Counters of one stage-2 run.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stage2Totals {
    pub consumed: u64,
    pub kpi_rows: u64,
    pub commits: u64,
    pub aborts: u64,
    pub unusable: u64,
}

pub struct Stage2 {
    base: ClientConfig,
    producer: Arc<ThreadedProducer<DeliveryContext>>,
    encoder: Arc<OutputEncoder>,
    handle: Handle,
    engine: EngineConfig,
    partials: String,
    changelog: String,
    sources: u32,
    eos: bool,
    mergers: BTreeMap<i32, Merger>,
    out: Outputs,
    in_txn: bool,
    pub totals: Stage2Totals,
    /// Prefix of the KPI topics written (`shop.kpi.` live, see `topology`).
    pub kpi_prefix: String,
    /// The business alerts topic (`shop.alerts.business` live).
    pub alerts_topic: String,
    /// The product catalog for `low_stock` alerts; `None`: no stock alerts.
    pub inventory: Option<Arc<dyn Inventory>>,
}

impl Stage2 {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        base: ClientConfig,
        producer: Arc<ThreadedProducer<DeliveryContext>>,
        encoder: Arc<OutputEncoder>,
        handle: Handle,
        engine: EngineConfig,
        partials: String,
        changelog: String,
        sources: u32,
        eos: bool,
    ) -> Stage2 {
        Stage2 {
            base,
            producer,
            encoder,
            handle,
            engine,
            partials,
            changelog,
            sources,
            eos,
            mergers: BTreeMap::new(),
            out: Outputs::default(),
            in_txn: false,
            totals: Stage2Totals::default(),
            kpi_prefix: KPI_PREFIX.to_string(),
            alerts_topic: BUSINESS_ALERTS.to_string(),
            inventory: None,
        }
    }

    fn merger<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        q: i32,
    ) -> Result<&mut Merger> {
        if !self.mergers.contains_key(&q) {
            let started = Instant::now();
            let inputs = vec![TopicPartition::new(&self.partials, q)];
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition(&self.partials, q);
            let committed = consumer
                .committed_offsets(tpl, Duration::from_secs(10))
                .with_context(|| format!("committed offsets of {}/{q}", self.partials))?;
            let point = changelog::restore_point(&committed, &inputs);
            let entries = changelog::read_partition(
                &self.base,
                &self.changelog,
                q,
                Duration::from_secs(120),
            )?;
            let mut m = Merger::new(MergeConfig::from(&self.engine), self.sources, inputs)
                .map_err(|e| anyhow!("merger {q}: {e}"))?;
            if let Some(inv) = &self.inventory {
                m = m.with_inventory(inv.clone());
            }
            let m = m
                .restored(&entries, &point)
                .map_err(|e| anyhow!("restoring merger {q}: {e}"))?;
            info!(
                merger = q,
                entries = entries.len(),
                restore_ms = started.elapsed().as_millis() as u64,
                "merger restored"
            );
            metrics::histogram!(super::telemetry::RESTORE, "stage" => "2")
                .record(started.elapsed().as_secs_f64());
            self.mergers.insert(q, m);
        }
        Ok(self.mergers.get_mut(&q).expect("inserted above"))
    }

    fn ensure_txn(&mut self) -> Result<()> {
        if self.eos && !self.in_txn {
            self.producer
                .begin_transaction()
                .context("begin_transaction")?;
            self.in_txn = true;
        }
        Ok(())
    }

    /// Sends what the mergers produced: KPI rows to their family topics and changelog
    /// entries of merger `q` to its changelog partition.
    fn emit(&mut self, q: i32) -> Result<()> {
        let mut out = std::mem::take(&mut self.out);
        let r = self.emit_outputs(q, &mut out);
        out.clear();
        self.out = out;
        r
    }

    fn emit_outputs(&mut self, q: i32, out: &mut Outputs) -> Result<()> {
        for row in out.kpis.drain(..) {
            let topic = format!("{}{}", self.kpi_prefix, row.kpi);
            let value = self.handle.block_on(self.encoder.encode(&topic, &row))?;
            let key = row.key();
            produce(
                &self.producer,
                BaseRecord::to(&topic)
                    .key(key.as_bytes())
                    .payload(&value[..]),
                self.eos,
            )?;
            self.totals.kpi_rows += 1;
            metrics::counter!(super::telemetry::WINDOW_EMITS, "kpi" => row.kpi.clone(), "status" => row.status.as_str())
                .increment(1);
        }
        for alert in out.business_alerts.drain(..) {
            let value = self
                .handle
                .block_on(self.encoder.encode(&self.alerts_topic, &alert))?;
            produce(
                &self.producer,
                BaseRecord::to(&self.alerts_topic)
                    .key(alert.alert_id.as_bytes())
                    .payload(&value[..]),
                self.eos,
            )?;
            metrics::counter!(super::telemetry::BUSINESS_ALERTS, "kind" => alert.kind.as_str())
                .increment(1);
        }
        if let Some(first) = out.changelog.first() {
            let headers = applied_header(&first.applied);
            for e in out.changelog.drain(..) {
                let mut r: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&self.changelog)
                    .key(&e.key[..])
                    .partition(q)
                    .headers(headers.clone());
                if let Some(v) = &e.value {
                    r = r.payload(&v[..]);
                }
                produce(&self.producer, r, self.eos)?;
            }
        }
        Ok(())
    }

    /// Ends the interval of the existing mergers: ticks, changelog flushes, the commit.
    fn commit_mergers<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) -> Result<()> {
        if self.mergers.is_empty() {
            return Ok(());
        }
        self.ensure_txn()?;
        let now = now_ms();
        let ids: Vec<i32> = self.mergers.keys().copied().collect();
        for q in &ids {
            let mut out = std::mem::take(&mut self.out);
            let m = self.mergers.get_mut(q).expect("listed");
            m.on_tick(now, &mut out);
            let r = m.flush_changelog(&mut out);
            self.out = out;
            r.map_err(|e| anyhow!("merger {q}: {e}"))?;
            self.emit(*q)?;
        }
        let keys: usize = self.mergers.values().map(Merger::len).sum();
        metrics::gauge!(super::telemetry::STATE_KEYS, "store" => "merge").set(keys as f64);
        let next: Vec<(String, i32, i64, String)> = self
            .mergers
            .values()
            .flat_map(|m| {
                let meta = seq_metadata(m.flush_seq());
                m.next_offsets()
                    .into_iter()
                    .map(move |(tp, o)| (tp.topic, tp.partition, o, meta.clone()))
            })
            .collect();
        let offsets = txn::offsets_with_metadata(
            next.iter()
                .map(|(t, p, o, m)| (t.as_str(), *p, *o, m.clone())),
        )?;
        if self.eos {
            self.in_txn = false;
            match txn::commit(&*self.producer, consumer, &offsets)? {
                txn::Outcome::Committed => self.totals.commits += 1,
                txn::Outcome::Aborted => {
                    self.totals.aborts += 1;
                    metrics::counter!(super::telemetry::TXN_ABORTS, "stage" => "2").increment(1);
                    self.mergers.clear();
                }
            }
        } else {
            super::producer::flush(&self.producer, txn::TXN_TIMEOUT)
                .context("flushing the producer")?;
            let failures = self
                .producer
                .context()
                .failures
                .swap(0, std::sync::atomic::Ordering::Relaxed);
            if failures > 0 {
                bail!("{failures} records failed delivery; not committing");
            }
            consumer
                .commit(&offsets, CommitMode::Sync)
                .context("committing offsets")?;
            self.totals.commits += 1;
        }
        Ok(())
    }
}

impl Stage for Stage2 {
    fn process<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        m: &BorrowedMessage<'_>,
    ) -> Result<()> {
        self.ensure_txn()?;
        let q = m.partition();
        let at = Consumed {
            topic: m.topic(),
            partition: q,
            offset: m.offset(),
        };
        let msg = match m.payload().map(PartialMessage::from_json) {
            Some(Ok(msg)) => msg,
            other => {
                // Internal topic: a record we cannot read is a bug or foreign data; count
                // it and say where it is, but do not stop the merge.
                warn!(topic = m.topic(), partition = q, offset = m.offset(), error = ?other.map(|r| r.err()), "unreadable partials record");
                self.totals.unusable += 1;
                return Ok(());
            }
        };
        let mut out = std::mem::take(&mut self.out);
        let merger = self.merger(consumer, q)?;
        let r = match &msg {
            PartialMessage::Row { task, row, .. } => {
                merger.on_partial(at, *task as u32, row, &mut out)
            }
            PartialMessage::Watermark {
                task, watermark, ..
            } => merger.on_watermark(at, *task as u32, *watermark, &mut out),
        };
        self.out = out;
        let disposition = r.map_err(|e| anyhow!("{}/{q}@{}: {e}", m.topic(), m.offset()))?;
        if matches!(disposition, crate::engine::MergeDisposition::Invalid(_)) {
            warn!(
                topic = m.topic(),
                partition = q,
                offset = m.offset(),
                ?disposition,
                "unusable partial"
            );
            self.totals.unusable += 1;
        }
        self.totals.consumed += 1;
        self.emit(q)
    }

    fn commit<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) -> Result<()> {
        // Every assigned partition gets its merger (restored from the changelog) first.
        let assigned: Vec<i32> = consumer
            .assignment()
            .map(|a| a.elements().iter().map(|e| e.partition()).collect())
            .unwrap_or_default();
        for q in assigned {
            self.merger(consumer, q)?;
        }
        self.commit_mergers(consumer)
    }

    fn commit_on_revoke<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) -> Result<()> {
        // Mid-rebalance the coordinator serves no committed offsets: commit what exists.
        self.commit_mergers(consumer)
    }

    fn abort_and_rewind<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) -> Result<()> {
        txn::abort(&*self.producer, &mut self.in_txn)?;
        self.totals.aborts += 1;
        metrics::counter!(super::telemetry::TXN_ABORTS, "stage" => "2").increment(1);
        self.mergers.clear();
        txn::rewind(consumer)
    }

    fn drop_partitions(&mut self, partitions: Vec<i32>) {
        for q in partitions {
            self.mergers.remove(&q);
        }
    }

    fn in_flight(&self) -> u64 {
        self.producer.in_flight_count().max(0) as u64
    }
}
