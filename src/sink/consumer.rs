//! The sink's consume loop: consumer group `shopstream-sink`, isolation read_committed,
//! reading the output topics, decoding each record into its table row, and writing a batch
//! of rows plus the consumed offsets in one PostgreSQL transaction. Offsets stored in
//! PostgreSQL are the truth: a record below the stored offset of its partition is skipped,
//! so redelivery after a crash (or a Kafka commit that never happened) changes nothing.
//! Kafka commits are only a hint for where to resume. A failed PostgreSQL write is retried
//! with backoff on a fresh connection, keeping the batch, so nothing is lost. A record that
//! cannot be decoded because the schema registry is down holds just its partition
//! (`runtime::registry_hold`, as in stage 1): the other partitions' rows keep being
//! written, no offset past the held record is stored, and the partition resumes at it once
//! the registry answers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tokio::sync::watch;
use tokio_postgres::Client;
use tracing::{info, warn};

use super::offsets::{self, Offsets};
use super::rows::{Batch, SinkRecord, WriteStats};
use crate::codec::retry::Backoff;
use crate::codec::subjects::{
    BUSINESS_ALERTS, CUSTOMERS_RFM, DLQ, FRAUD_ALERTS, KPI_PREFIX, LATE, ORDERS_ENRICHED, PRODUCTS,
};
use crate::codec::{DecodeError, InputDecoder};
use crate::model::{DlqRecord, SourceCoord};
use crate::runtime::backpressure::SinkLag;
use crate::runtime::registry_hold::RegistryHolds;
use crate::runtime::topology::{Topology, SINK_GROUP};

/// Settings of one sink instance.
#[derive(Debug, Clone)]
pub struct SinkSettings {
    pub group: String,
    pub topics: Vec<String>,
    pub max_batch: usize,
    pub linger: Duration,
    /// libpq-style connection string (the password comes from the environment).
    pub pg_conn: String,
    /// `group.instance.id` for static membership (fast restarts), if any.
    pub static_member: Option<String>,
    /// Where to publish how far behind the sink is (stage 1 pauses on it).
    pub lag: Option<SinkLag>,
    /// The lineage whose outputs this sink reads (live, or a replay run's namespace).
    pub topology: Topology,
}

impl SinkSettings {
    /// The default sink of the pipeline: every output topic that has a table.
    pub fn pipeline(pg_conn: String) -> SinkSettings {
        SinkSettings::lineage(pg_conn, Topology::live())
    }

    /// The sink of `topology`'s outputs (and the shared products topic), in its own group.
    pub fn lineage(pg_conn: String, topology: Topology) -> SinkSettings {
        let mut topics: Vec<String> = [
            ORDERS_ENRICHED,
            FRAUD_ALERTS,
            BUSINESS_ALERTS,
            CUSTOMERS_RFM,
            DLQ,
            LATE,
        ]
        .iter()
        .map(|s| topology.topic(s))
        .collect();
        topics.push(PRODUCTS.to_string());
        topics.extend(
            crate::codec::subjects::KPI_FAMILIES
                .iter()
                .map(|(f, _)| topology.topic(&crate::codec::subjects::kpi_topic(f))),
        );
        SinkSettings {
            group: topology.group(SINK_GROUP),
            topology,
            topics,
            max_batch: 5_000,
            linger: Duration::from_millis(100),
            pg_conn,
            static_member: None,
            lag: None,
        }
    }
}

/// Totals of a sink run.
#[derive(Debug, Default, Clone, Copy)]
pub struct SinkTotals {
    pub records: u64,
    pub skipped_below_stored_offset: u64,
    pub batches: u64,
    pub rows: u64,
    /// Times a partition was held for a schema registry outage.
    pub registry_holds: u64,
}

/// Connects to PostgreSQL, applies migrations, and returns the client.
pub async fn connect(conn: &str) -> Result<Client> {
    let mut client = connect_plain(conn).await?;
    super::migrate::migrate(&mut client).await?;
    Ok(client)
}

/// Connects to PostgreSQL (no migrations), with TLS as the connection string's sslmode says.
pub async fn connect_plain(conn: &str) -> Result<Client> {
    super::postgres::connect(conn).await
}

/// What the sink is asked to do; it watches a channel of these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SinkControl {
    Run,
    /// Write the batch in hand, store its offsets and stop: a graceful shutdown. Whatever
    /// is left on the topics is picked up by the group's other members or the next start.
    Stop,
    /// Stop once every assigned partition is drained (its high watermark reached), or once
    /// nothing has arrived for [`DRAIN_QUIET`] — for a last instance whose producers have
    /// stopped (the demo and its export).
    Drain,
}

/// How long a draining sink waits for records that may still come.
pub const DRAIN_QUIET: Duration = Duration::from_secs(5);

/// Runs the sink until `control` says stop (see [`SinkControl`]).
pub async fn run(
    base: ClientConfig,
    decoder: Arc<InputDecoder>,
    settings: SinkSettings,
    mut stop: watch::Receiver<SinkControl>,
) -> Result<SinkTotals> {
    let mut client = connect(&settings.pg_conn).await?;
    let mut config = base.clone();
    if let Some(id) = &settings.static_member {
        config.set("group.instance.id", id);
    }
    crate::runtime::client::default_fetch_wait(&mut config);
    let consumer: StreamConsumer = config
        .set("group.id", &settings.group)
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest")
        .create()
        .context("creating the sink consumer")?;
    let topics: Vec<&str> = settings.topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics).context("subscribing")?;
    let mut stored = offsets::load(&client, &settings.group).await?;
    let mut totals = SinkTotals::default();
    let mut last_record = Instant::now();
    // Held partitions, with the canonical topic each held record is decoded as.
    let mut holds: RegistryHolds<String> = RegistryHolds::default();
    loop {
        if !holds.is_empty() {
            probe_holds(&mut holds, &consumer, &decoder)?;
        }
        let control = *stop.borrow();
        let stopping = control != SinkControl::Run;
        let mut batch = Batch::default();
        let mut next: Offsets = BTreeMap::new();
        let deadline = Instant::now() + settings.linger;
        while batch.len() < settings.max_batch {
            let wait = deadline.saturating_duration_since(Instant::now());
            let msg = tokio::select! {
                m = consumer.recv() => m,
                _ = tokio::time::sleep(wait) => break,
                _ = stop.changed(), if !stopping => continue,
            };
            let msg = msg.context("consuming")?;
            if holds.is_held(msg.topic(), msg.partition()) {
                // Fetched before the hold; read again from the held offset on release.
                holds.repause(&consumer, msg.topic(), msg.partition())?;
                continue;
            }
            let key = (msg.topic().to_string(), msg.partition());
            if stored.get(&key).is_some_and(|&o| msg.offset() < o) {
                totals.skipped_below_stored_offset += 1;
                continue;
            }
            let canonical = settings.topology.canonical(msg.topic()).into_owned();
            match decode(&decoder, &canonical, &msg).await {
                Decoded::Row(r) => {
                    next.insert(key, msg.offset() + 1);
                    totals.records += 1;
                    if let Some(r) = r {
                        batch.push(r);
                    }
                }
                Decoded::RegistryDown(e) => {
                    holds.hold(&consumer, &msg, canonical, &e)?;
                    totals.registry_holds += 1;
                }
            }
        }
        let done = match control {
            SinkControl::Run => false,
            SinkControl::Stop => true,
            SinkControl::Drain => {
                next.is_empty()
                    && holds.is_empty()
                    && (last_record.elapsed() >= DRAIN_QUIET || drained(&consumer, &stored))
            }
        };
        if let Some(lag) = &settings.lag {
            // Before this batch is written: what it holds is still behind.
            if let Some(records) = behind(&consumer, &stored) {
                lag.set(records);
            }
        }
        if next.is_empty() {
            if done {
                return Ok(totals);
            }
            continue;
        }
        last_record = Instant::now();
        let started = Instant::now();
        let stats = match write_with_retry(&mut client, &settings, &batch, &next).await? {
            Written::Done(stats) => stats,
            Written::Reconnected => {
                // The server may have lost commits it had acknowledged (a crash with
                // synchronous_commit=off, a failover to an asynchronous standby): the
                // offsets it holds are the truth, so drop the batch and read again from
                // them (the upserts are idempotent).
                stored = offsets::load(&client, &settings.group).await?;
                rewind_to(&consumer, &stored)?;
                // The stored offsets lie at or before every held record.
                holds.release_after_rewind(&consumer)?;
                info!(
                    partitions = stored.len(),
                    "sink rewound to the offsets stored in PostgreSQL"
                );
                continue;
            }
        };
        metrics::histogram!(crate::runtime::telemetry::SINK_BATCH)
            .record(started.elapsed().as_secs_f64());
        metrics::counter!(crate::runtime::telemetry::SINK_ROWS).increment(stats.total());
        totals.batches += 1;
        totals.rows += stats.total();
        let mut tpl = TopicPartitionList::new();
        for ((topic, partition), offset) in &next {
            tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset))?;
            stored.insert((topic.clone(), *partition), *offset);
        }
        if let Err(e) = consumer.commit(&tpl, CommitMode::Async) {
            // Only a resume hint: the offsets in PostgreSQL are authoritative.
            warn!(error = %e, "kafka offset commit failed (offsets are safe in PostgreSQL)");
        }
        if done {
            return Ok(totals);
        }
    }
}

/// What became of one consumed record.
enum Decoded {
    /// Its row (None: a tombstone, or a topic without a table).
    Row(Option<SinkRecord>),
    /// The schema registry is unreachable: hold the partition at this record.
    RegistryDown(DecodeError),
}

/// Decodes one record into its row; a record that cannot be decoded becomes a dq_rejects
/// row naming the output topic coordinates, so it is visible and never silently dropped.
/// A schema registry outage is not the record's fault: the caller holds its partition.
async fn decode(decoder: &InputDecoder, topic: &str, msg: &BorrowedMessage<'_>) -> Decoded {
    let Some(payload) = msg.payload() else {
        return Decoded::Row(None); // tombstones (compacted topics) carry no row
    };
    let e = match decode_row(decoder, topic, payload).await {
        None => return Decoded::Row(None),
        Some(Ok(r)) => return Decoded::Row(Some(r)),
        Some(Err(e)) if e.is_retriable() => return Decoded::RegistryDown(e),
        Some(Err(e)) => e,
    };
    warn!(
        topic,
        partition = msg.partition(),
        offset = msg.offset(),
        reason = e.reason(),
        "sink cannot decode record"
    );
    Decoded::Row(Some(SinkRecord::Dlq(Box::new(DlqRecord {
        original: payload.to_vec(),
        original_key: msg.key().map(<[u8]>::to_vec),
        reason: e.reason().to_string(),
        rule: "sink_decode".into(),
        detail: e.detail(),
        source: SourceCoord {
            topic: msg.topic().to_string(),
            partition: msg.partition(),
            offset: msg.offset(),
        },
    }))))
}

/// Probes the held records that are due and releases the partitions whose record no
/// longer fails for the registry (see [`RegistryHolds::tick`]).
fn probe_holds(
    holds: &mut RegistryHolds<String>,
    consumer: &StreamConsumer,
    decoder: &InputDecoder,
) -> Result<()> {
    tokio::task::block_in_place(|| {
        let handle = tokio::runtime::Handle::current();
        holds.tick(consumer, |topic, payload| {
            match handle.block_on(decode_row(decoder, topic, payload)) {
                Some(Err(e)) => Err(e),
                _ => Ok(()),
            }
        })
    })
}

/// Decodes `payload` of the canonical output `topic` into its row (None: no table).
async fn decode_row(
    decoder: &InputDecoder,
    topic: &str,
    payload: &[u8],
) -> Option<Result<SinkRecord, DecodeError>> {
    Some(if topic == ORDERS_ENRICHED {
        decoder
            .decode(payload)
            .await
            .map(|v| SinkRecord::Order(Box::new(v)))
    } else if topic == FRAUD_ALERTS {
        decoder
            .decode(payload)
            .await
            .map(|v| SinkRecord::Alert(Box::new(v)))
    } else if topic.starts_with(KPI_PREFIX) {
        decoder
            .decode(payload)
            .await
            .map(|v| SinkRecord::Kpi(Box::new(v)))
    } else if topic == CUSTOMERS_RFM {
        decoder
            .decode(payload)
            .await
            .map(|v| SinkRecord::Rfm(Box::new(v)))
    } else if topic == BUSINESS_ALERTS {
        decoder
            .decode(payload)
            .await
            .map(|v| SinkRecord::BusinessAlert(Box::new(v)))
    } else if topic == DLQ {
        decoder
            .decode(payload)
            .await
            .map(|v| SinkRecord::Dlq(Box::new(v)))
    } else if topic == LATE {
        decoder
            .decode(payload)
            .await
            .map(|v| SinkRecord::Late(Box::new(v)))
    } else if topic == PRODUCTS {
        decoder
            .decode(payload)
            .await
            .map(|v| SinkRecord::Product(Box::new(v)))
    } else {
        warn!(topic, "sink subscribed to a topic it has no table for");
        return None;
    })
}

/// How a batch write ended.
enum Written {
    Done(WriteStats),
    /// The connection was lost and a new one made: the batch was not written.
    Reconnected,
}

/// Writes the batch, retrying with backoff while PostgreSQL fails; once a lost connection
/// has been replaced, returns [`Written::Reconnected`] instead of writing.
async fn write_with_retry(
    client: &mut Client,
    settings: &SinkSettings,
    batch: &Batch,
    next: &Offsets,
) -> Result<Written> {
    let mut backoff = Backoff::default();
    loop {
        match write_once(client, &settings.group, batch, next).await {
            Ok(s) => return Ok(Written::Done(s)),
            Err(e) if backoff.attempts() < 30 => {
                let delay = backoff.next_delay();
                warn!(error = %format!("{e:#}"), attempt = backoff.attempts(),
                    waited_ms = backoff.waited().as_millis() as u64,
                    "PostgreSQL write failed; retrying the batch");
                tokio::time::sleep(delay).await;
                if client.is_closed() {
                    match connect(&settings.pg_conn).await {
                        Ok(c) => {
                            info!("reconnected to PostgreSQL");
                            *client = c;
                            return Ok(Written::Reconnected);
                        }
                        Err(e) => warn!(error = %format!("{e:#}"), "reconnect failed"),
                    }
                }
            }
            Err(e) => return Err(e.context("PostgreSQL write failed 30 times")),
        }
    }
}

/// Seeks every assigned partition to its offset in `stored` (the beginning if none).
fn rewind_to(consumer: &StreamConsumer, stored: &Offsets) -> Result<()> {
    let assignment = consumer.assignment().context("sink assignment")?;
    let mut tpl = TopicPartitionList::new();
    for e in assignment.elements() {
        let at = stored
            .get(&(e.topic().to_string(), e.partition()))
            .map_or(Offset::Beginning, |o| Offset::Offset(*o));
        tpl.add_partition_offset(e.topic(), e.partition(), at)?;
    }
    if tpl.count() > 0 {
        tokio::task::block_in_place(|| consumer.seek_partitions(tpl, Duration::from_secs(10)))
            .context("rewinding the sink to its stored offsets")?;
    }
    Ok(())
}

async fn write_once(
    client: &mut Client,
    group: &str,
    batch: &Batch,
    next: &Offsets,
) -> Result<WriteStats> {
    let tx = client.transaction().await?;
    let stats = batch.write(&tx).await?;
    offsets::store(&tx, group, next).await?;
    tx.commit().await?;
    Ok(stats)
}

/// Records between the stored offsets and the high watermarks the client has cached for
/// the assigned partitions (None before any is known).
fn behind(consumer: &StreamConsumer, stored: &Offsets) -> Option<u64> {
    let assignment = consumer.assignment().ok()?;
    let mut total = None;
    for e in assignment.elements() {
        let Some((_, high)) =
            crate::runtime::watermarks::cached(consumer.client(), e.topic(), e.partition())
        else {
            continue;
        };
        let at = stored
            .get(&(e.topic().to_string(), e.partition()))
            .copied()
            .unwrap_or(0);
        *total.get_or_insert(0) += high.saturating_sub(at).max(0) as u64;
    }
    total
}

/// True when the consumer has an assignment and every assigned partition's stored offset
/// has reached its high watermark.
fn drained(consumer: &StreamConsumer, stored: &Offsets) -> bool {
    let Ok(assignment) = consumer.assignment() else {
        return false;
    };
    if assignment.count() == 0 {
        return false;
    }
    tokio::task::block_in_place(|| {
        assignment.elements().iter().all(|e| {
            // The client caches high watermarks from fetch responses; ask the broker only
            // for partitions not fetched yet.
            let cached =
                crate::runtime::watermarks::cached(consumer.client(), e.topic(), e.partition());
            let fetched =
                || consumer.fetch_watermarks(e.topic(), e.partition(), Duration::from_secs(5));
            match cached.map_or_else(fetched, Ok) {
                Ok((_, high)) => {
                    let at = stored.get(&(e.topic().to_string(), e.partition())).copied();
                    high == 0 || at.is_some_and(|o| o >= high)
                }
                Err(_) => false,
            }
        })
    })
}
