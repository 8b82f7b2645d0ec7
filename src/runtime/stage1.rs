//! Stage-1 state of one processor instance and its commit protocol. [`Stage1`] owns the
//! engine tasks of the assigned partitions (restored from the changelog on first use), turns
//! their outputs into Kafka records, and commits: in exactly-once mode one Kafka transaction
//! per interval holding every output, changelog entry and watermark mark together with the
//! consumed offsets (`send_offsets_to_transaction`, KIP-447 group metadata); in
//! at-least-once mode a producer flush followed by a synchronous offset commit. Commits
//! happen on the commit interval and in the revoke callback, before partitions move.
//! An abortable transaction error aborts, drops every task (they are restored again from
//! the committed changelog) and rewinds the consumer to the committed offsets.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::message::{BorrowedMessage, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, TopicPartitionList};
use tokio::runtime::Handle;
use tracing::info;

use super::bounds::{self, Bounds, Verdict};
use super::catalog::Catalog;
use super::changelog::{self, applied_header};
use super::enrich::enrich;
use super::interval_metrics::{IntervalMetrics, Out};
use super::partials::PartialMessage;
use super::producer::DeliveryContext;
use super::registry_hold::RegistryHolds;
use crate::codec::{DecodeError, InputDecoder, OutputEncoder, RecordKind};
use crate::config::Guarantee;
use crate::engine::{EngineConfig, Input, Outputs, Task, TopicPartition};
use crate::quality::Rejection;

/// Topic names and knobs of stage 1.
#[derive(Debug, Clone)]
pub struct Stage1Settings {
    pub transactions: String,
    pub events: String,
    pub orders: String,
    pub fraud_alerts: String,
    /// Customer RFM profiles (compacted, key customer_id).
    pub customers_rfm: String,
    pub dlq: String,
    pub late: String,
    pub partials: String,
    pub changelog: String,
    pub guarantee: Guarantee,
    pub engine: EngineConfig,
    pub restore_timeout: Duration,
}

/// Counters of one processor run.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stage1Totals {
    pub consumed: u64,
    pub commits: u64,
    pub aborts: u64,
    pub restores: u64,
    pub restore_ms_max: u64,
    pub unknown_products: u64,
    /// Times the inputs were paused for backpressure.
    pub pauses: u64,
    /// Commits made in the revoke callback while the interval held consumed records.
    pub revoke_commits: u64,
}

pub struct Stage1 {
    pub settings: Stage1Settings,
    base: ClientConfig,
    pub(super) producer: Arc<ThreadedProducer<DeliveryContext>>,
    decoder: Arc<InputDecoder>,
    encoder: Arc<OutputEncoder>,
    catalog: Catalog,
    handle: Handle,
    tasks: BTreeMap<i32, Task>,
    out: Outputs,
    pub(super) in_txn: bool,
    pub(super) partials_partitions: i32,
    pub(super) tasks_total: i32,
    pub totals: Stage1Totals,
    pub(super) metrics: IntervalMetrics,
    /// `totals.consumed` at the last commit or abort.
    pub(super) consumed_at_commit: u64,
    pub(super) progress: Arc<Stage1Progress>,
    /// End offsets of a bounded run (a replay with `--to`); None runs without end.
    pub(super) bounds: Option<Bounds>,
    /// Partitions paused while the schema registry is unreachable.
    pub(super) holds: RegistryHolds,
}

/// Live counters of a running stage 1, readable from other threads
/// ([`crate::runtime::app::Pipeline::stage1_progress`]).
#[derive(Debug, Default)]
pub struct Stage1Progress {
    /// Input records consumed at the last commit (records re-read after an abort count
    /// again).
    pub committed: AtomicU64,
    pub aborts: AtomicU64,
    /// Times a partition was paused because the schema registry was unreachable.
    pub registry_holds: AtomicU64,
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Stage1 {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        settings: Stage1Settings,
        base: ClientConfig,
        producer: Arc<ThreadedProducer<DeliveryContext>>,
        decoder: Arc<InputDecoder>,
        encoder: Arc<OutputEncoder>,
        catalog: Catalog,
        handle: Handle,
        partials_partitions: i32,
        tasks_total: i32,
    ) -> Stage1 {
        Stage1 {
            settings,
            base,
            producer,
            decoder,
            encoder,
            catalog,
            handle,
            tasks: BTreeMap::new(),
            out: Outputs::default(),
            in_txn: false,
            partials_partitions,
            tasks_total,
            totals: Stage1Totals::default(),
            metrics: IntervalMetrics::default(),
            consumed_at_commit: 0,
            progress: Arc::default(),
            bounds: None,
            holds: RegistryHolds::default(),
        }
    }

    pub(super) fn inputs(&self, p: i32) -> Vec<TopicPartition> {
        vec![
            TopicPartition::new(&self.settings.transactions, p),
            TopicPartition::new(&self.settings.events, p),
        ]
    }

    pub(super) fn eos(&self) -> bool {
        self.settings.guarantee == Guarantee::ExactlyOnce
    }

    pub(super) fn ensure_txn(&mut self) -> Result<()> {
        if self.eos() && !self.in_txn {
            self.producer
                .begin_transaction()
                .context("begin_transaction")?;
            self.in_txn = true;
        }
        Ok(())
    }

    pub(super) fn task_ids(&self) -> Vec<i32> {
        self.tasks.keys().copied().collect()
    }

    pub(super) fn tasks(&self) -> impl Iterator<Item = (&i32, &Task)> {
        self.tasks.iter()
    }

    pub(super) fn task_watermark(&self, p: i32) -> Option<i64> {
        self.tasks.get(&p).map(Task::watermark)
    }

    /// Records the metrics of the interval just committed.
    pub(super) fn record_commit(&mut self) {
        self.consumed_at_commit = self.totals.consumed;
        self.progress
            .committed
            .store(self.totals.consumed, Ordering::Relaxed);
        self.metrics
            .committed(&self.settings, self.tasks.iter(), now_ms());
    }

    /// Counts an aborted interval and forgets all task state: it is restored from the
    /// committed changelog on next use.
    pub(super) fn record_abort(&mut self) {
        self.totals.aborts += 1;
        self.progress
            .aborts
            .store(self.totals.aborts, Ordering::Relaxed);
        self.metrics.aborted();
        self.consumed_at_commit = self.totals.consumed;
        self.tasks.clear();
    }

    /// Drops the tasks of revoked partitions (after their work was committed).
    pub fn drop_tasks(&mut self, partitions: impl IntoIterator<Item = i32>) {
        for p in partitions {
            self.tasks.remove(&p);
            self.metrics.dropped(p);
        }
    }

    /// Runs `f` on task `p` with the output buffer, then sends what it produced.
    pub(super) fn with_task(
        &mut self,
        p: i32,
        f: impl FnOnce(&mut Task, &mut Outputs),
    ) -> Result<()> {
        self.with_task_result(p, |t, o| {
            f(t, o);
            Ok(())
        })
    }

    pub(super) fn with_task_result(
        &mut self,
        p: i32,
        f: impl FnOnce(&mut Task, &mut Outputs) -> Result<()>,
    ) -> Result<()> {
        let Some(task) = self.tasks.get_mut(&p) else {
            return Ok(());
        };
        f(task, &mut self.out)?;
        self.emit(p)
    }

    pub(super) fn ensure_task<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        p: i32,
    ) -> Result<()> {
        self.task(consumer, p).map(|_| ())
    }

    /// Restores task `p` from its changelog at the group's committed offsets.
    fn task<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        p: i32,
    ) -> Result<&mut Task> {
        if !self.tasks.contains_key(&p) {
            let started = Instant::now();
            let inputs = self.inputs(p);
            let mut tpl = TopicPartitionList::new();
            for tp in &inputs {
                tpl.add_partition(&tp.topic, tp.partition);
            }
            let committed = consumer
                .committed_offsets(tpl, Duration::from_secs(10))
                .with_context(|| format!("committed offsets of task {p}"))?;
            let point = changelog::restore_point(&committed, &inputs);
            let entries = changelog::read_partition(
                &self.base,
                &self.settings.changelog,
                p,
                self.settings.restore_timeout,
            )?;
            let mut task = Task::restore(self.settings.engine.clone(), inputs, &entries, &point)
                .map_err(|e| anyhow!("restoring task {p}: {e}"))?;
            task.set_product_costs(Arc::new(self.catalog.clone()));
            let ms = started.elapsed().as_millis() as u64;
            info!(task = p, entries = entries.len(), restore_ms = ms, offsets = ?point.offsets, "task restored");
            metrics::histogram!(super::telemetry::RESTORE, "stage" => "1")
                .record(ms as f64 / 1000.0);
            self.totals.restores += 1;
            self.totals.restore_ms_max = self.totals.restore_ms_max.max(ms);
            self.tasks.insert(p, task);
        }
        Ok(self.tasks.get_mut(&p).expect("inserted above"))
    }

    /// Processes one consumed input record.
    pub fn process<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        m: &BorrowedMessage<'_>,
    ) -> Result<()> {
        let verdict = self.bounds.as_ref().map_or(Verdict::Process, |b| {
            b.check(m.topic(), m.partition(), m.offset())
        });
        if verdict == Verdict::Skip {
            return bounds::pause(consumer, m.topic(), m.partition());
        }
        if self.holds.is_held(m.topic(), m.partition()) {
            // Fetched before the hold; read again from the held offset on release.
            return self.holds.repause(consumer, m.topic(), m.partition());
        }
        self.ensure_txn()?;
        let kind = if m.topic() == self.settings.transactions {
            RecordKind::Transaction
        } else {
            RecordKind::Event
        };
        let record = match self
            .handle
            .block_on(self.decoder.decode_record(kind, m.payload()))
        {
            Ok(r) => Ok(r),
            Err(e) if e.is_retriable() => {
                self.holds.hold(consumer, m, kind, &e)?;
                self.progress.registry_holds.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            Err(e) => Err(rejection(&e)),
        };
        let now = now_ms();
        let topic = m.topic();
        let mut out = std::mem::take(&mut self.out);
        let task = self.task(consumer, m.partition())?;
        let input = Input {
            topic,
            partition: m.partition(),
            offset: m.offset(),
            key: m.key(),
            value: m.payload().unwrap_or_default(),
            timestamp: m.timestamp().to_millis(),
            record,
        };
        let r = task.process(input, now, &mut out);
        self.out = out;
        r.map_err(|e| anyhow!("{topic}/{}@{}: {e}", m.partition(), m.offset()))?;
        self.totals.consumed += 1;
        self.metrics.consumed(
            matches!(kind, RecordKind::Transaction),
            m.timestamp().to_millis(),
        );
        if verdict == Verdict::Last {
            bounds::pause(consumer, m.topic(), m.partition())?;
        }
        self.emit(m.partition())
    }

    /// Sends the buffered outputs of task `p` and clears the buffer.
    fn emit(&mut self, p: i32) -> Result<()> {
        let mut out = std::mem::take(&mut self.out);
        let r = self.emit_outputs(p, &mut out);
        out.clear();
        self.out = out;
        r
    }

    fn emit_outputs(&mut self, p: i32, out: &mut Outputs) -> Result<()> {
        let mut unknown_products = 0;
        for (kind, n) in [
            (Out::Orders, out.transactions.len()),
            (Out::Alerts, out.fraud.iter().filter(|v| v.alert).count()),
            (Out::Dlq, out.dlq.len()),
            (Out::Late, out.late.len()),
            (Out::Partials, out.kpis.len()),
            (Out::Changelog, out.changelog.len()),
        ] {
            self.metrics.produced(kind, n);
        }
        let r = self.send_outputs(p, out, &mut unknown_products);
        self.totals.unknown_products += unknown_products;
        r
    }

    fn send_outputs(&self, p: i32, out: &mut Outputs, unknown_products: &mut u64) -> Result<()> {
        let s = &self.settings;
        if out.fraud.len() != out.transactions.len() {
            bail!("task {p}: a fraud verdict per accepted transaction expected");
        }
        for (a, verdict) in out.transactions.drain(..).zip(out.fraud.drain(..)) {
            let source = a.source();
            if verdict.alert {
                let alert = verdict.alert_for(&a.record, source.clone());
                let value = self
                    .handle
                    .block_on(self.encoder.encode(&s.fraud_alerts, &alert))?;
                self.send(
                    &s.fraud_alerts,
                    alert.transaction_id.as_bytes(),
                    Some(&value),
                    None,
                    None,
                )?;
            }
            let (order, unknown) = enrich(a.record, &verdict, source, &self.catalog);
            *unknown_products += unknown as u64;
            let value = self
                .handle
                .block_on(self.encoder.encode(&s.orders, &order))?;
            self.send(
                &s.orders,
                order.order.transaction_id.as_bytes(),
                Some(&value),
                None,
                None,
            )?;
        }
        for u in out.rfm.drain(..) {
            let rfm = u.to_record(&s.engine.kpis.reporting_currency);
            let value = self
                .handle
                .block_on(self.encoder.encode(&s.customers_rfm, &rfm))?;
            let key = rfm.customer_id.as_bytes();
            self.send(&s.customers_rfm, key, Some(&value), None, None)?;
        }
        for mut d in out.dlq.drain(..) {
            metrics::counter!(super::telemetry::DLQ, "reason" => d.reason.clone()).increment(1);
            crate::dlq::bound::bound_dlq(&mut d);
            let key = format!(
                "{}/{}/{}",
                d.source.topic, d.source.partition, d.source.offset
            );
            let value = self.handle.block_on(self.encoder.encode(&s.dlq, &d))?;
            self.send(&s.dlq, key.as_bytes(), Some(&value), None, None)?;
        }
        for mut l in out.late.drain(..) {
            crate::dlq::bound::bound_late(&mut l);
            let key = format!(
                "{}/{}/{}",
                l.source.topic, l.source.partition, l.source.offset
            );
            let value = self.handle.block_on(self.encoder.encode(&s.late, &l))?;
            self.send(&s.late, key.as_bytes(), Some(&value), None, None)?;
        }
        for row in out.kpis.drain(..) {
            let key = row.series_key();
            let msg = PartialMessage::Row {
                task: p,
                tasks: self.tasks_total,
                row,
            };
            self.send(
                &s.partials,
                key.as_bytes(),
                Some(&msg.to_json()),
                None,
                None,
            )?;
        }
        out.events.clear();
        if let Some(first) = out.changelog.first() {
            // All entries of one flush share their applied offsets: one header for all.
            let headers = applied_header(&first.applied);
            for e in out.changelog.drain(..) {
                self.send(
                    &s.changelog,
                    &e.key,
                    e.value.as_deref(),
                    Some(p),
                    Some(headers.clone()),
                )?;
            }
        }
        Ok(())
    }

    /// Produces one record (a `None` value is a tombstone).
    pub(super) fn send(
        &self,
        topic: &str,
        key: &[u8],
        value: Option<&[u8]>,
        partition: Option<i32>,
        headers: Option<OwnedHeaders>,
    ) -> Result<()> {
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic).key(key);
        if let Some(v) = value {
            record = record.payload(v);
        }
        if let Some(p) = partition {
            record = record.partition(p);
        }
        if let Some(h) = headers {
            record = record.headers(h);
        }
        super::producer::produce(&self.producer, record, self.eos())
    }
}

/// Maps a codec error to the engine's DLQ rejection.
pub fn rejection(e: &DecodeError) -> Rejection {
    match e.reason() {
        "missing_field" => Rejection::new(
            crate::quality::reason::MISSING_FIELD,
            crate::quality::rule::REQUIRED_FIELDS,
            e.detail(),
        ),
        reason => Rejection::new(reason, "decode", e.detail()),
    }
}

impl super::processor::Stage for Stage1 {
    fn process<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        m: &BorrowedMessage<'_>,
    ) -> Result<()> {
        Stage1::process(self, consumer, m)
    }

    fn commit<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) -> Result<()> {
        Stage1::commit(self, consumer, false)
    }

    fn commit_on_revoke<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) -> Result<()> {
        if self.totals.consumed > self.consumed_at_commit {
            self.totals.revoke_commits += 1;
        }
        Stage1::commit(self, consumer, true)
    }

    fn abort_and_rewind<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) -> Result<()> {
        Stage1::abort_and_rewind(self, consumer)?;
        self.holds.release_after_rewind(consumer)
    }

    fn tick<C: ConsumerContext>(&mut self, consumer: &BaseConsumer<C>) -> Result<()> {
        let (decoder, handle) = (&self.decoder, &self.handle);
        self.holds.tick(consumer, |kind, payload| {
            handle
                .block_on(decoder.decode_record(*kind, Some(payload)))
                .map(|_| ())
        })
    }

    fn drop_partitions(&mut self, partitions: Vec<i32>) {
        self.drop_tasks(partitions)
    }

    fn in_flight(&self) -> u64 {
        self.producer.in_flight_count().max(0) as u64
    }

    fn paused(&mut self) {
        self.totals.pauses += 1;
    }

    fn finished<C: ConsumerContext>(&self, consumer: &BaseConsumer<C>) -> bool {
        self.bounds.as_ref().is_some_and(|b| {
            consumer
                .position()
                .is_ok_and(|positions| b.finished(&positions))
        })
    }
}
