//! What goes into and comes out of a task. An [`Input`] is one consumed record: its source
//! coordinates, key and value bytes and the codec's decode result. [`Outputs`] is a
//! reusable buffer the runtime drains after each call (clearing keeps the capacity, so the
//! steady state allocates nothing for the buffers themselves): accepted transactions and
//! events (the seam where enrichment and fraud scoring continue), KPI rows, DLQ and late
//! records, and changelog entries. Each record gets exactly one [`Disposition`]. Every
//! accepted transaction has its fraud [`Verdict`] at the same index of `Outputs::fraud`.

use std::sync::Arc;

use super::state::ChangelogEntry;
use crate::analytics::rfm_state::RfmUpdate;
use crate::fraud::Verdict;
use crate::model::time::Millis;
use crate::model::{
    BusinessAlert, DlqRecord, KpiRow, LateRecord, Record, SourceCoord, Transaction, UserEvent,
};
use crate::quality::Rejection;

/// One consumed input record.
#[derive(Debug)]
pub struct Input<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<&'a [u8]>,
    pub value: &'a [u8],
    /// The Kafka message timestamp (CreateTime or LogAppendTime), if the record has one:
    /// where a rejected record is counted before its partition has any event time.
    pub timestamp: Option<Millis>,
    /// The codec's result: a record, or why the bytes could not be decoded.
    pub record: Result<Record, Rejection>,
}

/// A record that passed validation, dedup and the lateness check, with its source.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted<T> {
    pub record: T,
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
}

impl<T> Accepted<T> {
    pub fn source(&self) -> SourceCoord {
        SourceCoord {
            topic: self.topic.to_string(),
            partition: self.partition,
            offset: self.offset,
        }
    }
}

/// What became of one input record. Every record gets exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Disposition {
    /// Valid, new and on time: counted in its windows and passed on.
    Counted,
    /// Its transaction_id was seen within the dedup TTL: dropped and counted.
    Duplicate,
    /// Beyond the allowed lateness of all its windows: sent to the late output.
    Late,
    /// Undecodable or invalid: sent to the DLQ.
    Dlq,
    /// Its offset was applied before (a re-read after a restart): ignored, not a duplicate.
    AlreadyApplied,
}

/// Buffers of everything a task call produced.
#[derive(Debug, Default)]
pub struct Outputs {
    pub transactions: Vec<Accepted<Transaction>>,
    /// The fraud verdict of each accepted transaction: `fraud[i]` is that of
    /// `transactions[i]`.
    pub fraud: Vec<Verdict>,
    pub events: Vec<Accepted<UserEvent>>,
    /// Customer RFM profiles emitted (purchases and recency decay), in emission order.
    pub rfm: Vec<RfmUpdate>,
    pub kpis: Vec<KpiRow>,
    /// Business alerts (stage 2 only).
    pub business_alerts: Vec<BusinessAlert>,
    pub dlq: Vec<DlqRecord>,
    pub late: Vec<LateRecord>,
    pub changelog: Vec<ChangelogEntry>,
}

impl Outputs {
    /// Empties every buffer, keeping capacity.
    pub fn clear(&mut self) {
        self.transactions.clear();
        self.fraud.clear();
        self.events.clear();
        self.rfm.clear();
        self.kpis.clear();
        self.business_alerts.clear();
        self.dlq.clear();
        self.late.clear();
        self.changelog.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.transactions.is_empty()
            && self.fraud.is_empty()
            && self.events.is_empty()
            && self.rfm.is_empty()
            && self.kpis.is_empty()
            && self.dlq.is_empty()
            && self.late.is_empty()
            && self.changelog.is_empty()
    }
}

/// Cumulative counts of a task, for metrics. Not state: they restart with the process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub records: u64,
    pub counted: u64,
    pub duplicates: u64,
    pub late: u64,
    pub dlq: u64,
    pub already_applied: u64,
    pub kpi_rows: u64,
}

impl Counters {
    pub(crate) fn count(&mut self, d: Disposition) {
        self.records += 1;
        match d {
            Disposition::Counted => self.counted += 1,
            Disposition::Duplicate => self.duplicates += 1,
            Disposition::Late => self.late += 1,
            Disposition::Dlq => self.dlq += 1,
            Disposition::AlreadyApplied => self.already_applied += 1,
        }
    }
}
