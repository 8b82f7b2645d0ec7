//! The processor's producer: idempotent, and transactional with a stable per-instance
//! `transactional.id` in exactly-once mode (a restarted instance fences its zombie). A
//! delivery context counts failed deliveries so at-least-once commits never cover a record
//! that did not reach the broker.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use rdkafka::client::ClientContext;
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{Producer, ProducerContext, ThreadedProducer};
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
