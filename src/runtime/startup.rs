//! Start-up waits with a deadline: the pipeline does not begin before a Kafka broker
//! answers and before every output schema has its registry id. An unreachable broker or
//! registry is logged as a warning on every attempt, naming the bootstrap servers or the
//! registry URL, and retried with backoff until `processing.startup_timeout_ms`; then
//! start-up fails with an error that says what could not be reached, so `shopstream run`
//! never hangs silently. Resolving the output schemas up front also means that a later
//! registry outage cannot hit the encoders in the middle of a transaction.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;
use tracing::{info, warn};

use super::topology::Topology;
use crate::codec::retry::Backoff;
use crate::codec::subjects::{
    kpi_topic, BUSINESS_ALERTS, CUSTOMERS_RFM, DLQ, FRAUD_ALERTS, KPI_FAMILIES, LATE,
    ORDERS_ENRICHED,
};
use crate::codec::{AvroRecord, OutputEncoder, RegistryError};
use crate::model::{
    BusinessAlert, CustomerRfm, DlqRecord, EnrichedOrder, FraudAlert, KpiRow, LateRecord,
};

/// Waits until a broker of `bootstrap` answers a metadata request, or fails after `timeout`.
pub fn wait_for_broker(base: &ClientConfig, bootstrap: &str, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let consumer: BaseConsumer = base.create()?;
    let mut backoff = Backoff::default();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ask = left.clamp(Duration::from_millis(100), Duration::from_secs(2));
        let err = match consumer.fetch_metadata(None, ask) {
            Ok(_) => {
                if backoff.attempts() > 0 {
                    info!(bootstrap_servers = bootstrap, "Kafka broker reachable");
                }
                return Ok(());
            }
            Err(e) => e,
        };
        if Instant::now() >= deadline {
            bail!(
                "no Kafka broker reachable at {bootstrap} (kafka.bootstrap_servers) within \
                 {} s (processing.startup_timeout_ms): {err}",
                timeout.as_secs_f64()
            );
        }
        let delay = backoff.next_delay().min(left);
        warn!(bootstrap_servers = bootstrap, error = %err, attempt = backoff.attempts(),
            waited_ms = backoff.waited().as_millis() as u64,
            "Kafka broker unreachable; retrying");
        std::thread::sleep(delay);
    }
}

/// Resolves the schema id of every output topic of `topology` (a no-op for JSON),
/// retrying while the registry is unavailable until `timeout`.
pub async fn prepare_outputs(
    encoder: &OutputEncoder,
    topology: &Topology,
    registry_url: &str,
    timeout: Duration,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let mut backoff = Backoff::default();
    loop {
        match prepare_all(encoder, topology).await {
            Ok(()) => return Ok(()),
            Err(e) if e.is_retriable() && Instant::now() < deadline => {
                let delay = backoff.next_delay();
                warn!(registry = registry_url, error = %e, attempt = backoff.attempts(),
                    "schema registry unavailable at start-up; retrying");
                tokio::time::sleep(delay).await;
            }
            Err(e) => {
                bail!("output schemas could not be resolved at {registry_url} (registry.url): {e}")
            }
        }
    }
}

async fn prepare_all(encoder: &OutputEncoder, topology: &Topology) -> Result<(), RegistryError> {
    async fn one<T: AvroRecord>(
        encoder: &OutputEncoder,
        topology: &Topology,
        topic: &str,
    ) -> Result<(), RegistryError> {
        encoder.prepare::<T>(&topology.topic(topic)).await
    }
    one::<EnrichedOrder>(encoder, topology, ORDERS_ENRICHED).await?;
    one::<FraudAlert>(encoder, topology, FRAUD_ALERTS).await?;
    one::<DlqRecord>(encoder, topology, DLQ).await?;
    one::<LateRecord>(encoder, topology, LATE).await?;
    one::<CustomerRfm>(encoder, topology, CUSTOMERS_RFM).await?;
    one::<BusinessAlert>(encoder, topology, BUSINESS_ALERTS).await?;
    for (family, _) in KPI_FAMILIES {
        one::<KpiRow>(encoder, topology, &kpi_topic(family)).await?;
    }
    Ok(())
}
