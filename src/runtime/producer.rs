//! The processor's producer: idempotent, and transactional with a stable per-instance
//! `transactional.id` in exactly-once mode (a restarted instance fences its zombie). A
//! delivery context counts failed deliveries so at-least-once commits never cover a record
//! that did not reach the broker. [`produce`] enqueues one record: it waits while the
//! queue is full, and reports a transaction that can take no more records (librdkafka's
//! abortable-error state, or a record the broker refused) as [`MustAbort`], which the
//! consume loop answers with an abort and a rewind rather than an exit. [`flush`] waits
//! for deliveries in millisecond steps (rdkafka's own flush waits in 100 ms steps).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rdkafka::client::ClientContext;
use rdkafka::error::KafkaError;
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;

/// Counts delivery failures and remembers the last one.
#[derive(Default)]
pub struct DeliveryContext {
    pub failures: AtomicU64,
    pub last_error: Mutex<Option<String>>,
}

impl ClientContext for DeliveryContext {}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, m)) = result {
            use rdkafka::message::Message;
            self.failures.fetch_add(1, Ordering::Relaxed);
            let msg = format!("{}/{}: {e}", m.topic(), m.partition());
            if let Ok(mut last) = self.last_error.lock() {
                *last = Some(msg);
            }
        }
    }
}

/// Creates the producer; `transactional_id` switches on transactions (and initialises
/// them, which fences any earlier producer with the same id and aborts its open one).
pub fn create(
    base: &ClientConfig,
    transactional_id: Option<&str>,
) -> Result<Arc<ThreadedProducer<DeliveryContext>>> {
    let mut c = base.clone();
    c.set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("compression.type", "lz4")
        .set("queue.buffering.max.messages", "200000")
        .set("message.timeout.ms", "30000");
    if let Some(id) = transactional_id {
        c.set("transactional.id", id)
            .set("transaction.timeout.ms", "60000");
    }
    let p: ThreadedProducer<DeliveryContext> = c
        .create_with_context(DeliveryContext::default())
        .context("creating the producer")?;
    if transactional_id.is_some() {
        p.init_transactions(Duration::from_secs(30))
            .context("init_transactions (is the broker reachable and transactions enabled?)")?;
    }
    Ok(Arc::new(p))
}

/// The open transaction can take no more records and must be aborted: a record in it
/// failed permanently, so librdkafka holds the transaction in its abortable-error state.
#[derive(Debug, thiserror::Error)]
#[error("the open transaction must be aborted: {0}")]
pub struct MustAbort(pub String);

/// Enqueues `record`, waiting while the producer queue is full (the stages also pause
/// their inputs before it fills, see `backpressure`).
pub fn produce<C: ProducerContext + 'static>(
    producer: &ThreadedProducer<C>,
    mut record: BaseRecord<'_, [u8], [u8], C::DeliveryOpaque>,
    transactional: bool,
) -> Result<()> {
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                record = r;
                std::thread::sleep(Duration::from_millis(5));
            }
            // In a transaction, a record that cannot be enqueued (the transaction is in its
            // abortable state, or the broker refused an earlier record of it) means the
            // transaction cannot commit: abort it and retry from the committed offsets. The
            // consume loop gives up after repeated aborts, so a lasting refusal is fatal.
            Err((e, r)) if transactional => {
                return Err(MustAbort(format!("producing to {}: {e}", r.topic)).into())
            }
            Err((e, r)) => anyhow::bail!("producing to {}: {e}", r.topic),
        }
    }
}

/// Waits until every enqueued record is delivered (or failed), checking every
/// millisecond; rdkafka's `Flush` timeout error after `timeout`. rdkafka's own `flush` —
/// also the first step of its `commit_transaction` — sleeps in steps of 100 ms while
/// records are in flight (its `poll` runs to the end of the step even after the last
/// delivery report), so every commit with outputs took at least 100 ms: at a 100 ms
/// commit interval, about half of the measured end-to-end latency (load-tests/RESULTS.md).
/// Between checks the thread sleeps: the [`ThreadedProducer`]'s own thread serves the
/// delivery reports. (rdkafka's `poll(1 ms)` spins instead: it rounds the time left down
/// to whole milliseconds, so every queue poll under a millisecond returns at once — the
/// stages burnt 15 % of the pipeline's CPU that way while flushing, on the cores the
/// broker threads and the other stage needed.)
pub fn flush<C: ProducerContext + 'static>(
    producer: &ThreadedProducer<C>,
    timeout: Duration,
) -> Result<(), KafkaError> {
    let deadline = Instant::now() + timeout;
    loop {
        // With a zero timeout: sends what lingers, then reports whether anything is left.
        match producer.flush(Duration::ZERO) {
            Err(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut))
                if Instant::now() < deadline =>
            {
                std::thread::sleep(FLUSH_CHECK);
            }
            r => return r,
        }
    }
}

/// How often [`flush`] checks for records still in flight.
const FLUSH_CHECK: Duration = Duration::from_millis(1);
