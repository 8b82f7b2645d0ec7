//! `shopstream dlq redrive`: reads `shop.dlq` under a consumer group of its own
//! (`shopstream-dlq-redrive`, or `shopstream-dlq-redrive.<reason>` with `--reason`) from
//! the group's committed offsets up to the end the topic had when the redrive started,
//! and produces each selected record's original key and bytes to its source topic and
//! partition — in Kafka transactions that also commit the consumed DLQ offsets
//! (`send_offsets_to_transaction`, the stages' `txn::commit`). A redrive killed mid-way
//! resumes after its last committed transaction; one run twice re-submits nothing. The
//! transactional id is derived from the group, so two concurrent redrives of one group
//! fence each other. Only records whose source is an input topic are re-submitted;
//! records of other reasons are passed over (and their offsets committed) by a filtered
//! redrive: each filter keeps its own cursor.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tokio::runtime::Handle;
use tracing::{info, warn};

use crate::codec::subjects::{DLQ, EVENTS, TRANSACTIONS};
use crate::codec::InputDecoder;
use crate::config::{Config, Secrets};
use crate::model::DlqRecord;
use crate::runtime::{app, client, producer, topics, txn};

/// Base consumer group of redrives.
pub const GROUP: &str = "shopstream-dlq-redrive";
/// Header naming the DLQ coordinates a re-submitted record came from.
pub const HEADER: &str = "ss-redriven-from";
/// Records per transaction.
const BATCH: usize = 500;

/// What to redrive.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Only records with this DLQ reason.
    pub reason: Option<String>,
    /// Report what would be re-submitted; produce and commit nothing.
    pub dry_run: bool,
}

/// What a redrive did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// DLQ records read.
    pub read: u64,
    /// Re-submitted (or, in a dry run, to be re-submitted), per reason.
    pub submitted: BTreeMap<String, u64>,
    /// Passed over: another reason.
    pub other_reason: u64,
    /// Passed over: the source is not an input topic, or the record is unreadable.
    pub not_redrivable: u64,
}

impl Summary {
    pub fn submitted_total(&self) -> u64 {
        self.submitted.values().sum()
    }
}

/// Checks a `--reason` filter: reasons are snake_case names (they become part of the
/// group and transactional id).
pub fn validate_reason(reason: &str) -> Result<()> {
    anyhow::ensure!(
        !reason.is_empty()
            && reason.len() <= 64
            && reason
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
        "invalid --reason {reason:?}: DLQ reasons are snake_case, e.g. future_timestamp"
    );
    Ok(())
}

/// The consumer group (and cursor) of a redrive with `reason`.
pub fn group(reason: Option<&str>) -> String {
    match reason {
        None => GROUP.to_string(),
        Some(r) => format!("{GROUP}.{r}"),
    }
}

/// Runs the redrive to the end the DLQ has now.
pub async fn run(config: &Config, secrets: &Secrets, plan: &Plan) -> Result<Summary> {
    let base = client::base_config(&config.kafka, secrets);
    let decoder = app::output_decoder(config)?;
    let decoder = Arc::new(decoder);
    let txn_id = format!(
        "{}-{}",
        config.processing.transactional_id_prefix,
        group(plan.reason.as_deref())
    );
    let (plan, handle) = (plan.clone(), Handle::current());
    tokio::task::spawn_blocking(move || redrive(&base, &decoder, &plan, &txn_id, &handle)).await?
}

/// Where each DLQ partition starts (the group's committed offset) and ends (the high
/// watermark now).
fn ranges(c: &BaseConsumer) -> Result<Vec<(i32, i64, i64)>> {
    let n = topics::partition_count(c, DLQ)?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..n {
        tpl.add_partition(DLQ, p);
    }
    let committed = c
        .committed_offsets(tpl, Duration::from_secs(15))
        .context("committed offsets of the redrive group")?;
    (0..n)
        .map(|p| {
            let (low, high) = c.fetch_watermarks(DLQ, p, Duration::from_secs(15))?;
            let start = match committed.find_partition(DLQ, p).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => o.max(low),
                _ => low,
            };
            Ok((p, start, high))
        })
        .collect()
}

fn redrive(
    base: &ClientConfig,
    decoder: &InputDecoder,
    plan: &Plan,
    txn_id: &str,
    handle: &Handle,
) -> Result<Summary> {
    let group = group(plan.reason.as_deref());
    let consumer: BaseConsumer = base
        .clone()
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("isolation.level", "read_committed")
        .create()
        .context("creating the DLQ consumer")?;
    let ranges = ranges(&consumer)?;
    let producer = match plan.dry_run {
        true => None,
        false => Some(producer::create(base, Some(txn_id))?),
    };
    let mut summary = Summary::default();
    let mut tpl = TopicPartitionList::new();
    let mut open: BTreeMap<i32, i64> = BTreeMap::new();
    for &(p, start, end) in &ranges {
        if start < end {
            tpl.add_partition_offset(DLQ, p, Offset::Offset(start))?;
            open.insert(p, end);
        }
    }
    info!(%group, ?ranges, dry_run = plan.dry_run, "redriving the DLQ");
    if open.is_empty() {
        return Ok(summary);
    }
    consumer.assign(&tpl)?;
    // Consumed offsets of the open transaction, and the summary at its start.
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    let mut at_txn_start = summary.clone();
    let mut in_txn = 0usize;
    while !open.is_empty() || in_txn > 0 {
        close_reached(&consumer, &mut open);
        let batch_full = in_txn >= BATCH;
        if open.is_empty() || batch_full {
            if let Some(p) = &producer {
                match commit(p, &consumer, &next)? {
                    txn::Outcome::Committed => at_txn_start = summary.clone(),
                    txn::Outcome::Aborted => {
                        // Rewound to the committed offsets: those records come again.
                        summary = at_txn_start.clone();
                        reopen(&consumer, &ranges, &mut open)?;
                    }
                }
            }
            next.clear();
            in_txn = 0;
            continue;
        }
        let Some(m) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let m = m.context("reading the DLQ")?;
        let (p, offset) = (m.partition(), m.offset());
        if !open.get(&p).is_some_and(|&end| offset < end) {
            continue; // past the end this redrive took on
        }
        if open.get(&p).is_some_and(|&end| offset + 1 >= end) {
            open.remove(&p);
        }
        next.insert(p, offset + 1);
        in_txn += 1;
        summary.read += 1;
        if let (Some(producer), 1) = (&producer, in_txn) {
            producer.begin_transaction().context("begin_transaction")?;
        }
        let record: Option<DlqRecord> = match m.payload() {
            Some(bytes) => match handle.block_on(decoder.decode::<DlqRecord>(bytes)) {
                Ok(r) => Some(r),
                Err(e) => {
                    warn!(partition = p, offset, error = %e, "unreadable DLQ record: passed over");
                    None
                }
            },
            None => None,
        };
        let Some(record) = record else {
            summary.not_redrivable += 1;
            continue;
        };
        if plan.reason.as_ref().is_some_and(|r| *r != record.reason) {
            summary.other_reason += 1;
            continue;
        }
        if ![TRANSACTIONS, EVENTS].contains(&record.source.topic.as_str()) {
            summary.not_redrivable += 1;
            continue;
        }
        if super::bound::is_truncated(&record) {
            warn!(
                partition = p,
                offset, "DLQ record holds a truncated original: passed over"
            );
            summary.not_redrivable += 1;
            continue;
        }
        *summary.submitted.entry(record.reason.clone()).or_default() += 1;
        if let Some(producer) = &producer {
            resubmit(producer, &record, p, offset)?;
        }
    }
    Ok(summary)
}

/// Produces the original record to its source topic and partition.
fn resubmit(
    producer: &rdkafka::producer::ThreadedProducer<producer::DeliveryContext>,
    record: &DlqRecord,
    dlq_partition: i32,
    dlq_offset: i64,
) -> Result<()> {
    let from = format!("{DLQ}/{dlq_partition}/{dlq_offset}");
    let mut r: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&record.source.topic)
        .partition(record.source.partition)
        .payload(&record.original[..])
        .headers(OwnedHeaders::new().insert(Header {
            key: HEADER,
            value: Some(from.as_bytes()),
        }));
    if let Some(k) = &record.original_key {
        r = r.key(&k[..]);
    }
    producer::produce(producer, r, true)
}

/// Commits the open transaction with the DLQ offsets `next`. The same offsets are then
/// also committed directly: a no-op on Kafka, where the transaction already stored them,
/// but a broker that does not store transactional offsets (librdkafka's mock cluster)
/// would otherwise re-submit everything on the next run.
fn commit(
    producer: &rdkafka::producer::ThreadedProducer<producer::DeliveryContext>,
    consumer: &BaseConsumer,
    next: &BTreeMap<i32, i64>,
) -> Result<txn::Outcome> {
    if next.is_empty() {
        return Ok(txn::Outcome::Committed);
    }
    let offsets =
        txn::offsets_with_metadata(next.iter().map(|(p, o)| (DLQ, *p, *o, String::new())))?;
    let outcome = txn::commit(producer, consumer, &offsets)?;
    if outcome == txn::Outcome::Committed {
        consumer
            .commit(&offsets, CommitMode::Sync)
            .context("committing the DLQ offsets")?;
    }
    Ok(outcome)
}

/// Closes the partitions whose position has reached their end. By position, not only by
/// the last record seen: the end may be a transaction marker (stage 1 writes the DLQ in
/// transactions), which the consumer passes without returning a record.
fn close_reached(consumer: &BaseConsumer, open: &mut BTreeMap<i32, i64>) {
    if let Ok(positions) = consumer.position() {
        open.retain(|p, end| {
            !matches!(
                positions.find_partition(DLQ, *p).map(|e| e.offset()),
                Some(Offset::Offset(o)) if o >= *end
            )
        });
    }
}

/// After an abort: every partition not yet past its end is open again.
fn reopen(
    consumer: &BaseConsumer,
    ranges: &[(i32, i64, i64)],
    open: &mut BTreeMap<i32, i64>,
) -> Result<()> {
    let positions = consumer.position()?;
    for &(p, _, end) in ranges {
        let at = match positions.find_partition(DLQ, p).map(|e| e.offset()) {
            Some(Offset::Offset(o)) => o,
            _ => 0,
        };
        if at < end {
            open.insert(p, end);
        }
    }
    Ok(())
}
