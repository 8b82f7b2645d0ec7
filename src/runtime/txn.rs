//! Ending a Kafka transaction the way librdkafka prescribes, shared by both stages:
//! send the consumed offsets with the consumer's group metadata (KIP-447) and commit;
//! retriable ⇒ retry the commit, abortable ⇒ abort and rewind the consumer to the group's
//! committed offsets (the caller drops its uncommitted state), fatal (fenced by a newer
//! instance with the same transactional.id, or refused) ⇒ error out of the process.

use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::producer::{Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use tracing::{error, warn};

pub const TXN_TIMEOUT: Duration = Duration::from_secs(30);

/// How a commit ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Committed,
    /// Aborted and rewound: the caller must drop the state the transaction covered.
    Aborted,
}

/// Commits the open transaction with `offsets`: first waits for the transaction's records
/// with [`super::producer::flush`] (so rdkafka's `commit_transaction` finds none in flight
/// and does not wait in 100 ms steps), then sends the offsets and commits.
pub fn commit<Ctx: rdkafka::producer::ProducerContext + 'static, C: ConsumerContext>(
    producer: &ThreadedProducer<Ctx>,
    consumer: &BaseConsumer<C>,
    offsets: &TopicPartitionList,
) -> Result<Outcome> {
    let started = Instant::now();
    let cgm = consumer
        .group_metadata()
        .ok_or_else(|| anyhow!("no consumer group metadata (not subscribed?)"))?;
    let mut result = super::producer::flush(producer, TXN_TIMEOUT)
        .and_then(|_| producer.send_offsets_to_transaction(offsets, &cgm, TXN_TIMEOUT))
        .and_then(|_| producer.commit_transaction(TXN_TIMEOUT));
    for _ in 0..5 {
        match &result {
            Err(KafkaError::Transaction(e)) if e.is_retriable() && !e.txn_requires_abort() => {
                warn!(error = %e, "retriable commit error; retrying");
                result = producer.commit_transaction(TXN_TIMEOUT);
            }
            _ => break,
        }
    }
    match result {
        Ok(()) => {
            metrics::histogram!(super::telemetry::TXN_COMMIT)
                .record(started.elapsed().as_secs_f64());
            Ok(Outcome::Committed)
        }
        // A flush that timed out (ours, or inside commit_transaction) leaves records
        // undelivered: the transaction cannot commit, but aborting it is safe.
        Err(e @ KafkaError::Flush(_)) | Err(e @ KafkaError::Transaction(_)) if !matches!(&e, KafkaError::Transaction(t) if !t.txn_requires_abort()) =>
        {
            warn!(error = %e, "abortable transaction error: aborting and rewinding to the committed offsets");
            producer
                .abort_transaction(TXN_TIMEOUT)
                .context("abort_transaction")?;
            rewind(consumer)?;
            Ok(Outcome::Aborted)
        }
        Err(e) => {
            error!(error = %e, "fatal transaction error");
            Err(anyhow!(
                "fatal transaction error (fenced by another instance with the same \
                 transactional.id, or the broker refused the transaction): {e}"
            ))
        }
    }
}

/// Aborts the open transaction, if there is one.
pub fn abort<P: Producer<Ctx>, Ctx: rdkafka::producer::ProducerContext>(
    producer: &P,
    in_txn: &mut bool,
) -> Result<()> {
    if *in_txn {
        producer
            .abort_transaction(TXN_TIMEOUT)
            .context("abort_transaction")?;
        *in_txn = false;
    }
    Ok(())
}

/// Seeks every assigned partition back to the group's committed offset (the beginning
/// where nothing is committed).
pub fn rewind<C: ConsumerContext>(consumer: &BaseConsumer<C>) -> Result<()> {
    let assignment = consumer.assignment().context("assignment")?;
    if assignment.count() == 0 {
        return Ok(());
    }
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

/// The offsets to commit for positions `next` (per topic-partition), each carrying
/// `metadata` (the flush sequence of the state they cover).
pub fn offsets_with_metadata<'a>(
    next: impl IntoIterator<Item = (&'a str, i32, i64, String)>,
) -> Result<TopicPartitionList> {
    let mut tpl = TopicPartitionList::new();
    for (topic, partition, offset, meta) in next {
        let mut e = tpl.add_partition(topic, partition);
        e.set_offset(Offset::Offset(offset))
            .map_err(|e| anyhow!("{topic}/{partition}: {e}"))?;
        e.set_metadata(meta);
    }
    Ok(tpl)
}
