//! The per-partition task: the pipeline of stage 1 for input partition p of both
//! `shop.transactions` and `shop.events` (co-partitioned by customer_id), as a pure state
//! machine. For each record, in order: skip offsets already applied (re-reads after a
//! restart); reject undecodable or invalid records to the DLQ; drop duplicate transaction
//! ids; send records beyond the allowed lateness of all their windows to the late output;
//! otherwise update the revenue and commerce (transactions) or activity and session
//! (events, `crate::analytics::session_kpis`) windows and pass the record on; an accepted transaction is also fraud-scored on arrival (`crate::fraud`),
//! its verdict pushed alongside it. Every record is also counted in the quality KPI. Then the task watermark
//! (minimum over the task's input partitions, see `watermark.rs`) is recomputed and the
//! windows it passes emit. The runtime drives processing time through `now` arguments:
//! `on_tick` for idleness and early results, `on_partition_status` for caught-up reports.
//!
//! Quality windows: a record that passed validation counts in the quality window of its
//! event time while that window is live; DLQ records (whose timestamps are not to be
//! trusted) and records whose quality window has expired count in the window of their
//! partition's event-time frontier (max(max event time, watermark); before the partition
//! has any, the record's Kafka timestamp, see `Task::frontier`).

use std::sync::Arc;

use super::aggregate::{early_due, Aggregate, Dimension, Emission, EmitSink};
use super::commerce::{CommerceOps, ProductCosts};
use super::config::EngineConfig;
use super::currency::Converter;
use super::dedup::{Deduplicator, ParsedId};
use super::families::{ActivityAgg, All, RevenueAgg, RevenueDim};
use super::interner::{Interner, MemberId, NameHash};
use super::io::{Accepted, Counters, Disposition, Input, Outputs};
use super::operator::WindowOperator;
use super::revenue::{add_transaction, TxSummary};
use super::state::{Incarnation, StateError, TopicPartition};
use super::watermark::Watermarks;
use crate::analytics::rfm_state::RfmState;
use crate::analytics::session_kpis::SessionKpis;
use crate::fraud::FraudState;
use crate::model::time::Millis;
use crate::model::{KpiRow, LateRecord, Record, SourceCoord, Transaction, TxStatus, UserEvent};
use crate::quality::{Outcome, QualityAgg, Rejection, Validator};

/// KPI family names.
pub mod kpi {
    pub const REVENUE: &str = "revenue";
    pub const ACTIVITY: &str = "activity";
    pub const QUALITY: &str = "quality";
    pub const PRODUCTS: &str = "products";
    pub const GEO: &str = "geo";
    pub const PAYMENTS: &str = "payments";
    pub const HOURLY: &str = "hourly";
    pub const FUNNEL: &str = "funnel";
    pub const SESSIONS: &str = "sessions";
}

/// The late-output reason of records beyond the allowed lateness.
pub const LATE_REASON: &str = "beyond_allowed_lateness";

/// Errors of a task call. None is caused by record contents.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TaskError {
    #[error("{topic}[{partition}] is not an input of this task")]
    UnknownInput { topic: String, partition: i32 },
    #[error("invalid engine config: {0}")]
    Config(String),
    #[error(transparent)]
    State(#[from] StateError),
}

/// Turns emissions of any KPI family into KPI rows.
pub struct RowSink<'a> {
    rows: &'a mut Vec<KpiRow>,
    kpi: &'static str,
}

impl<'a> RowSink<'a> {
    pub fn new(rows: &'a mut Vec<KpiRow>, kpi: &'static str) -> Self {
        RowSink { rows, kpi }
    }
}

impl<K: Dimension, A: Aggregate> EmitSink<K, A> for RowSink<'_> {
    fn emit(&mut self, e: Emission<'_, K, A>) {
        let mut values = std::collections::BTreeMap::new();
        e.agg.write_values(&mut values);
        self.rows.push(KpiRow {
            kpi: self.kpi.to_owned(),
            window_start: e.window.start,
            window_end: e.window.end,
            dimension: e.key.render(),
            values,
            status: e.status,
            revision: e.revision,
        });
    }
}

/// Where the record being processed came from.
struct Src<'a> {
    ix: usize,
    offset: i64,
    key: Option<&'a [u8]>,
    value: &'a [u8],
    /// The Kafka message timestamp.
    timestamp: Option<Millis>,
    /// Processing time of the call.
    now: Millis,
}

/// The stage-1 state machine of one partition number.
pub struct Task {
    pub(crate) cfg: EngineConfig,
    pub(crate) inputs: Vec<TopicPartition>,
    topics: Vec<Arc<str>>,
    /// Per input, the next offset to apply.
    pub(crate) applied: Vec<i64>,
    pub(crate) clock: Watermarks,
    pub(crate) next_early_at: Option<Millis>,
    validator: Validator,
    pub(crate) dedup: Deduplicator,
    pub(crate) revenue: Vec<WindowOperator<RevenueDim, RevenueAgg>>,
    pub(crate) activity: WindowOperator<All, ActivityAgg>,
    pub(crate) quality: WindowOperator<All, QualityAgg>,
    /// Products, geo, payments and hourly.
    pub(super) commerce: CommerceOps,
    /// User sessions and the funnel and sessions families.
    pub(super) sessions: SessionKpis,
    converter: Converter,
    /// The catalog's unit costs; `None`: every product counts as unknown.
    costs: Option<Arc<dyn ProductCosts>>,
    /// Customer ids of the distinct-customer sets, as task-local numbers.
    pub(crate) customers: Interner,
    pub(crate) flush_seq: u64,
    /// This life of the task (see [`Incarnation`]); set by `Task::restore`.
    pub(crate) incarnation: Incarnation,
    /// Per-customer fraud profiles.
    pub(crate) fraud: FraudState,
    /// Per-customer RFM profiles.
    pub(crate) rfm: RfmState,
    /// How far behind the watermark an accepted transaction can be (allowed lateness plus
    /// the longest revenue window): fraud profiles older than that are never looked up.
    fraud_reach_ms: i64,
    counters: Counters,
}

impl Task {
    /// A task reading `inputs` (typically `shop.transactions[p]` and `shop.events[p]`).
    pub fn new(cfg: EngineConfig, inputs: Vec<TopicPartition>) -> Result<Task, TaskError> {
        cfg.validate().map_err(TaskError::Config)?;
        let w = &cfg.windows;
        let lateness = w.allowed_lateness_ms;
        let revenue = w
            .revenue
            .iter()
            .map(|s| WindowOperator::new(format!("{}:{}", kpi::REVENUE, s.name()), *s, lateness))
            .collect();
        Ok(Task {
            topics: inputs
                .iter()
                .map(|tp| Arc::from(tp.topic.as_str()))
                .collect(),
            applied: vec![0; inputs.len()],
            clock: Watermarks::new(cfg.watermark, inputs.len()),
            next_early_at: None,
            validator: Validator::new(cfg.quality),
            dedup: Deduplicator::new(cfg.dedup),
            revenue,
            activity: WindowOperator::new(kpi::ACTIVITY, w.activity, lateness),
            quality: WindowOperator::new(kpi::QUALITY, w.quality, lateness),
            commerce: CommerceOps::new(w),
            sessions: SessionKpis::new(w),
            converter: Converter::new(&cfg.kpis),
            costs: None,
            customers: Interner::default(),
            flush_seq: 0,
            incarnation: Incarnation::default(),
            fraud: FraudState::new(cfg.fraud.clone()),
            rfm: RfmState::new(cfg.rfm.clone()),
            fraud_reach_ms: lateness
                .saturating_add(w.revenue.iter().map(|s| s.size_ms()).max().unwrap_or(0)),
            counters: Counters::default(),
            inputs,
            cfg,
        })
    }

    /// Attaches the product catalog's unit costs (for gross margin and unknown products).
    pub fn set_product_costs(&mut self, costs: Arc<dyn ProductCosts>) {
        self.costs = Some(costs);
    }

    pub fn inputs(&self) -> &[TopicPartition] {
        &self.inputs
    }

    /// The task watermark.
    pub fn watermark(&self) -> Millis {
        self.clock.current()
    }

    /// The watermark state of each input partition, for lag metrics.
    pub fn partition_clocks(&self) -> &[super::watermark::PartitionClock] {
        self.clock.partitions()
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Remembered transaction ids and heap bytes of the dedup state.
    pub fn dedup_size(&self) -> (usize, usize) {
        (self.dedup.len(), self.dedup.allocated_bytes())
    }

    /// Customers with a fraud profile.
    pub fn fraud_profiles(&self) -> usize {
        self.fraud.len()
    }

    /// The per-customer RFM profiles.
    pub fn rfm(&self) -> &RfmState {
        &self.rfm
    }

    /// Live window results across operators.
    pub fn window_results(&self) -> usize {
        self.revenue.iter().map(|o| o.len()).sum::<usize>()
            + self.activity.len()
            + self.quality.len()
            + self.commerce.len()
            + self.sessions.len()
    }

    /// Per input, the next offset to apply (where to resume consuming).
    pub fn next_offsets(&self) -> Vec<(TopicPartition, i64)> {
        self.inputs
            .iter()
            .cloned()
            .zip(self.applied.iter().copied())
            .collect()
    }

    fn input_index(&self, topic: &str, partition: i32) -> Result<usize, TaskError> {
        self.inputs
            .iter()
            .position(|tp| tp.partition == partition && tp.topic == topic)
            .ok_or_else(|| TaskError::UnknownInput {
                topic: topic.to_owned(),
                partition,
            })
    }

    fn source(&self, ix: usize, offset: i64) -> SourceCoord {
        SourceCoord {
            topic: self.topics[ix].to_string(),
            partition: self.inputs[ix].partition,
            offset,
        }
    }

    /// Processes one consumed record at processing time `now`.
    pub fn process(
        &mut self,
        input: Input<'_>,
        now: Millis,
        out: &mut Outputs,
    ) -> Result<Disposition, TaskError> {
        // Not destructured: the record stays where it is until it is moved to an output.
        let (offset, key, value) = (input.offset, input.key, input.value);
        let ix = self.input_index(input.topic, input.partition)?;
        if offset < self.applied[ix] {
            self.counters.count(Disposition::AlreadyApplied);
            return Ok(Disposition::AlreadyApplied);
        }
        self.applied[ix] = offset.saturating_add(1);
        self.clock.on_record(ix, now);
        let wm = self.clock.current();
        let src = Src {
            ix,
            offset,
            key,
            value,
            timestamp: input.timestamp,
            now,
        };
        // Dedup and the customer interner are looked up after validation; start loading
        // their slots now (and parse the transaction id once for dedup).
        let (parsed_id, customer_hash) = match &input.record {
            Ok(Record::Transaction(t)) => (
                Some(self.dedup.prefetch(&t.transaction_id)),
                Some(self.customers.prefetch(&t.customer_id)),
            ),
            Ok(Record::Event(e)) => (None, Some(self.customers.prefetch(&e.customer_id))),
            Err(_) => (None, None),
        };
        // Validated and applied in place: a counted record is moved once, into its
        // output buffer.
        let rejected = match &input.record {
            Ok(r) => self.validator.validate(r, key, now).err(),
            Err(_) => None,
        };
        let disposition = match (&input.record, rejected) {
            (_, Some(rejection)) => {
                self.reject(rejection, &src, out);
                Disposition::Dlq
            }
            // Rejected by the codec: handled below, where the rejection is moved out.
            (Err(_), None) => Disposition::Dlq,
            (Ok(Record::Transaction(t)), None) => {
                let id = parsed_id.unwrap_or_else(|| self.dedup.prefetch(&t.transaction_id));
                let customer =
                    customer_hash.unwrap_or_else(|| self.customers.prefetch(&t.customer_id));
                let d = self.on_transaction(t, id, customer, &src, wm, out);
                self.clock.on_event_time(ix, t.timestamp);
                d
            }
            (Ok(Record::Event(e)), None) => {
                let customer =
                    customer_hash.unwrap_or_else(|| self.customers.prefetch(&e.customer_id));
                let d = self.on_event(e, customer, &src, wm, out);
                self.clock.on_event_time(ix, e.timestamp);
                d
            }
        };
        let (topic, partition) = (&self.topics[ix], self.inputs[ix].partition);
        match input.record {
            Err(rejection) => self.reject(rejection, &src, out),
            Ok(Record::Transaction(record)) if disposition == Disposition::Counted => {
                out.transactions.push(Accepted {
                    record,
                    topic: topic.clone(),
                    partition,
                    offset,
                })
            }
            Ok(Record::Event(record)) if disposition == Disposition::Counted => {
                out.events.push(Accepted {
                    record,
                    topic: topic.clone(),
                    partition,
                    offset,
                })
            }
            Ok(_) => {}
        }
        self.counters.count(disposition);
        self.on_progress(now, out);
        let wm = self.clock.current();
        self.dedup.sweep(wm);
        self.fraud.sweep(wm.saturating_sub(self.fraud_reach_ms));
        Ok(disposition)
    }

    /// The runtime reports whether an input partition is caught up (position = high
    /// watermark). May advance the watermark and emit.
    pub fn on_partition_status(
        &mut self,
        topic: &str,
        partition: i32,
        caught_up: bool,
        now: Millis,
        out: &mut Outputs,
    ) -> Result<(), TaskError> {
        let ix = self.input_index(topic, partition)?;
        self.clock.on_status(ix, caught_up, now);
        self.on_progress(now, out);
        Ok(())
    }

    /// Processing time passed: idle partitions may release the watermark, and early
    /// results are emitted when their interval is due.
    pub fn on_tick(&mut self, now: Millis, out: &mut Outputs) {
        self.on_progress(now, out);
        if early_due(
            &mut self.next_early_at,
            now,
            self.cfg.windows.early_interval_ms,
        ) {
            self.emit_early(out);
        }
    }

    fn emit_early(&mut self, out: &mut Outputs) {
        let before = out.kpis.len();
        for op in &mut self.revenue {
            op.emit_early(&mut RowSink::new(&mut out.kpis, kpi::REVENUE));
        }
        self.activity
            .emit_early(&mut RowSink::new(&mut out.kpis, kpi::ACTIVITY));
        self.quality
            .emit_early(&mut RowSink::new(&mut out.kpis, kpi::QUALITY));
        self.commerce.emit_early(&mut out.kpis);
        self.sessions.emit_early(&mut out.kpis);
        self.counters.kpi_rows += (out.kpis.len() - before) as u64;
    }

    fn on_progress(&mut self, now: Millis, out: &mut Outputs) {
        let Some(wm) = self.clock.advance(now) else {
            return;
        };
        let before = out.kpis.len();
        for op in &mut self.revenue {
            op.advance(wm, &mut RowSink::new(&mut out.kpis, kpi::REVENUE));
        }
        self.activity
            .advance(wm, &mut RowSink::new(&mut out.kpis, kpi::ACTIVITY));
        self.quality
            .advance(wm, &mut RowSink::new(&mut out.kpis, kpi::QUALITY));
        self.commerce.advance(wm, &mut out.kpis);
        self.sessions
            .advance(wm, &mut self.customers, &mut out.kpis);
        self.counters.kpi_rows += (out.kpis.len() - before) as u64;
        self.rfm.advance(wm, &mut out.rfm);
        self.collect_customers();
    }

    /// Frees the interned customer ids that no live window holds any more (after purges),
    /// once the interner has grown enough since the last collection.
    fn collect_customers(&mut self) {
        if !self.customers.gc_due() {
            return;
        }
        let mut live = vec![0u64; self.customers.id_bound().div_ceil(64)];
        let mut mark = |id: MemberId| {
            if let Some(w) = live.get_mut(id as usize / 64) {
                *w |= 1 << (id % 64);
            }
        };
        for op in &self.revenue {
            op.for_each_member(&mut mark);
        }
        self.activity.for_each_member(&mut mark);
        self.sessions.for_each_member(&mut mark);
        self.customers.sweep(&live);
    }

    /// The event time at which a record without a usable window of its own (rejected, or
    /// too late for its window) is counted: the largest event time of its own input
    /// partition so far. That depends only on the partition's records up to this one, not
    /// on how the task's partitions interleave, so a replay or the retry of an aborted
    /// transaction counts the record in the same window. Before the partition has a valid
    /// record: the record's Kafka timestamp (its own, so as deterministic; for a backfill
    /// of old data it is old too, where processing time would put the record in a window
    /// the replayed data never closes; not after processing time, so a producer's clock
    /// far ahead cannot open a window nothing closes), else the task's largest event
    /// time, else its watermark, else processing time. Never before the watermark.
    fn frontier(&self, ix: usize, kafka_ts: Option<Millis>, now: Millis) -> Millis {
        let wm = self.clock.current();
        let own = self
            .clock
            .partitions()
            .get(ix)
            .and_then(|p| p.max_event_time);
        let kafka_ts = kafka_ts.map(|t| t.min(now));
        match own.or(kafka_ts).or(self.clock.max_event_time()) {
            Some(m) => m.max(wm),
            None if wm > Millis::MIN => wm,
            None => now,
        }
    }

    fn count_quality(
        &mut self,
        src: &Src<'_>,
        ts: Option<Millis>,
        outcome: Outcome,
        wm: Millis,
        out: &mut Outputs,
    ) {
        let before = out.kpis.len();
        let mut sink = RowSink::new(&mut out.kpis, kpi::QUALITY);
        let counted = ts.is_some_and(|ts| {
            self.quality
                .update(&All, ts, wm, |a| a.record(outcome), &mut sink)
                > 0
        });
        if !counted {
            let f = self.frontier(src.ix, src.timestamp, src.now);
            self.quality
                .update(&All, f, wm, |a| a.record(outcome), &mut sink);
        }
        self.counters.kpi_rows += (out.kpis.len() - before) as u64;
    }

    fn reject(&mut self, rejection: Rejection, src: &Src<'_>, out: &mut Outputs) {
        let source = self.source(src.ix, src.offset);
        out.dlq.push(rejection.into_dlq(src.value, src.key, source));
        self.count_quality(src, None, Outcome::Invalid, self.clock.current(), out);
    }

    #[allow(clippy::too_many_arguments)]
    fn late(
        &mut self,
        id: &str,
        customer: &str,
        ts: Millis,
        reason: &str,
        src: &Src<'_>,
        wm: Millis,
        out: &mut Outputs,
    ) {
        out.late.push(LateRecord {
            record_id: id.to_owned(),
            customer_id: customer.to_owned(),
            event_time: ts,
            watermark: wm,
            lateness_ms: wm.saturating_sub(ts),
            reason: reason.to_owned(),
            original: src.value.to_vec(),
            source: self.source(src.ix, src.offset),
        });
        self.count_quality(src, Some(ts), Outcome::Late, wm, out);
    }

    fn on_transaction(
        &mut self,
        t: &Transaction,
        id: ParsedId,
        customer_hash: NameHash,
        src: &Src<'_>,
        wm: Millis,
        out: &mut Outputs,
    ) -> Disposition {
        let ts = t.timestamp;
        if self.dedup.check_parsed(&t.transaction_id, id, ts, wm) {
            self.count_quality(src, Some(ts), Outcome::Duplicate, wm, out);
            return Disposition::Duplicate;
        }
        if !self.revenue.iter().any(|op| op.accepts(ts, wm)) {
            let (id, customer) = (&t.transaction_id, &t.customer_id);
            self.late(id, customer, ts, LATE_REASON, src, wm, out);
            return Disposition::Late;
        }
        let customer = if t.status == TxStatus::Completed {
            self.customers.intern_hashed(&t.customer_id, customer_hash)
        } else {
            MemberId::MAX // not added to any set
        };
        let rate = self.converter.rate(&t.currency);
        let summary = TxSummary::new(t, customer, rate, self.costs.as_deref());
        let before = out.kpis.len();
        let mut sink = RowSink::new(&mut out.kpis, kpi::REVENUE);
        for op in &mut self.revenue {
            add_transaction(op, &summary, wm, &mut sink);
        }
        self.commerce.add(&summary, wm, &mut out.kpis);
        if t.status == TxStatus::Completed {
            self.rfm
                .on_purchase(&t.customer_id, ts, summary.amount, wm, &mut out.rfm);
        }
        drop(summary);
        self.counters.kpi_rows += (out.kpis.len() - before) as u64;
        self.count_quality(src, Some(ts), Outcome::Counted, wm, out);
        out.fraud.push(self.fraud.score(t));
        Disposition::Counted
    }

    fn on_event(
        &mut self,
        e: &UserEvent,
        customer_hash: NameHash,
        src: &Src<'_>,
        wm: Millis,
        out: &mut Outputs,
    ) -> Disposition {
        let ts = e.timestamp;
        // Late for the activity window, or for the event's session: one decision for both.
        let before = out.kpis.len();
        let session = if self.activity.accepts(ts, wm) {
            self.sessions
                .add_event(e, wm, &mut self.customers, &mut out.kpis)
                .map_err(|why| why.reason())
        } else {
            Err(LATE_REASON)
        };
        if let Err(reason) = session {
            self.late(&e.event_id, &e.customer_id, ts, reason, src, wm, out);
            return Disposition::Late;
        }
        let mut sink = RowSink::new(&mut out.kpis, kpi::ACTIVITY);
        let customer = self.customers.intern_hashed(&e.customer_id, customer_hash);
        self.activity
            .update(&All, ts, wm, |a| a.add(e.event_type, customer), &mut sink);
        self.counters.kpi_rows += (out.kpis.len() - before) as u64;
        self.count_quality(src, Some(ts), Outcome::Counted, wm, out);
        Disposition::Counted
    }
}
