//! Assembles the running pipeline from the configuration: codecs, the catalog table, the
//! transactional producer, stage 1 on its own thread, and the PostgreSQL sink as a task.
//! Used by `shopstream run` and by `shopstream demo`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Result};
use rdkafka::consumer::BaseConsumer;
use rdkafka::ClientConfig;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::backpressure::{Backpressure, SinkLag};
use super::bounds::Bounds;
use super::catalog::{Catalog, SharedCatalog};
use super::stage1::{Stage1, Stage1Progress, Stage1Settings, Stage1Totals};
use super::stage2::{Stage2, Stage2Totals};
use super::topology::Topology;
use super::{client, processor, producer, startup};
use crate::codec::subjects::{
    BUSINESS_ALERTS, CUSTOMERS_RFM, DLQ, EVENTS, FRAUD_ALERTS, LATE, ORDERS_ENRICHED, PRODUCTS,
    TRANSACTIONS,
};
use crate::codec::{DecodeLimits, InputDecoder, OutputEncoder};
use crate::config::{Config, Guarantee, Secrets, WireFormat};
use crate::engine::EngineConfig;
use crate::sink::consumer::{self as sink, SinkControl, SinkSettings, SinkTotals};

pub use super::topology::{CHANGELOG, GROUP, MERGE_CHANGELOG, MERGE_GROUP, PARTIALS};

/// A started pipeline; `stop` ends it cleanly.
pub struct Pipeline {
    stop_processor: Arc<AtomicBool>,
    stop_merge: Arc<AtomicBool>,
    merge: std::thread::JoinHandle<Result<Stage2Totals>>,
    stop_sink: watch::Sender<SinkControl>,
    processor: std::thread::JoinHandle<Result<Stage1Totals>>,
    sink: Option<JoinHandle<Result<SinkTotals>>>,
    stage1_progress: Arc<Stage1Progress>,
}

/// What to run.
pub struct PipelineOptions {
    /// PostgreSQL connection string for the sink; None runs no sink.
    pub sink_pg: Option<String>,
    pub engine: EngineConfig,
}

/// Which lineage to run, and where it ends: the live pipeline (the default) or a replay
/// run in its own namespace, bounded per input partition.
#[derive(Debug, Clone, Default)]
pub struct Lineage {
    pub topology: Topology,
    pub bounds: Option<Bounds>,
}

/// The libpq key=value connection string for the configured database.
pub fn pg_connection_string(config: &Config, secrets: &Secrets) -> String {
    crate::sink::postgres::connection_string(&config.postgres, secrets)
}

fn partitions(base: &ClientConfig, topic: &str) -> Result<i32> {
    super::topics::partition_count(&base.create::<BaseConsumer>()?, topic)
}

/// The configured wire format's decoder of records and encoder of outputs.
pub fn codecs(config: &Config) -> Result<(InputDecoder, OutputEncoder)> {
    let limits = DecodeLimits {
        max_record_bytes: config.processing.max_record_bytes,
        ..DecodeLimits::default()
    };
    let encoder = match config.processing.format {
        WireFormat::Json => OutputEncoder::json(),
        WireFormat::Avro => OutputEncoder::avro(&config.registry.url, true)?,
    };
    Ok((decoder(config, limits)?, encoder))
}

/// The decoder of shopstream's own output topics (the sink, the DLQ redrive): without the
/// input size limit, since a DLQ record carries a whole input record (Kafka's message
/// size bounds them), but with the nesting limit.
pub fn output_decoder(config: &Config) -> Result<InputDecoder> {
    let limits = DecodeLimits {
        max_record_bytes: usize::MAX,
        ..DecodeLimits::default()
    };
    decoder(config, limits)
}

fn decoder(config: &Config, limits: DecodeLimits) -> Result<InputDecoder> {
    Ok(match config.processing.format {
        WireFormat::Json => InputDecoder::json(limits),
        WireFormat::Avro => InputDecoder::avro(&config.registry.url, limits)?,
    })
}

/// Starts the live pipeline: stage 1, stage 2 (and the sink, if asked).
pub async fn start(config: &Config, secrets: &Secrets, opts: PipelineOptions) -> Result<Pipeline> {
    start_lineage(config, secrets, opts, Lineage::default()).await
}

/// Starts the pipeline of `lineage`: its groups, transactional ids and output topics.
pub async fn start_lineage(
    config: &Config,
    secrets: &Secrets,
    opts: PipelineOptions,
    lineage: Lineage,
) -> Result<Pipeline> {
    let Lineage { topology, bounds } = lineage;
    let base = client::base_config(&config.kafka, secrets);
    let (decoder, encoder) = codecs(config)?;
    let decoder = Arc::new(decoder);
    let sink_decoder = Arc::new(output_decoder(config)?);
    let encoder = Arc::new(encoder);
    let b = base.clone();
    let (changelog, partials_topic) = (topology.topic(CHANGELOG), topology.topic(PARTIALS));
    let (c, pt) = (changelog.clone(), partials_topic.clone());
    let startup_timeout = Duration::from_millis(config.processing.startup_timeout_ms);
    let bootstrap = config.kafka.bootstrap_servers.clone();
    let (tasks, partials) = tokio::task::spawn_blocking(move || -> Result<_> {
        startup::wait_for_broker(&b, &bootstrap, startup_timeout)?;
        let tasks = partitions(&b, TRANSACTIONS)?;
        ensure!(
            partitions(&b, EVENTS)? == tasks,
            "{TRANSACTIONS} and {EVENTS} must have the same partition count"
        );
        ensure!(
            partitions(&b, &c)? == tasks,
            "{c} must have as many partitions as {TRANSACTIONS}"
        );
        Ok((tasks, partitions(&b, &pt)?))
    })
    .await??;
    startup::prepare_outputs(&encoder, &topology, &config.registry.url, startup_timeout).await?;
    let stop_processor = Arc::new(AtomicBool::new(false));
    let handle = tokio::runtime::Handle::current();
    let eos = config.processing.guarantee == Guarantee::ExactlyOnce;
    let (prefix, instance) = (
        &config.processing.transactional_id_prefix,
        &config.processing.instance_id,
    );
    let txn_id = topology.transactional_id(prefix, instance, "");
    let settings = Stage1Settings {
        transactions: TRANSACTIONS.into(),
        events: EVENTS.into(),
        orders: topology.topic(ORDERS_ENRICHED),
        fraud_alerts: topology.topic(FRAUD_ALERTS),
        customers_rfm: topology.topic(CUSTOMERS_RFM),
        dlq: topology.topic(DLQ),
        late: topology.topic(LATE),
        partials: partials_topic.clone(),
        changelog,
        guarantee: config.processing.guarantee,
        engine: opts.engine.clone(),
        restore_timeout: Duration::from_secs(120),
    };
    let interval = Duration::from_millis(config.processing.commit_interval_ms);
    let settings_engine = opts.engine;
    let member = config.processing.static_membership.then(|| txn_id.clone());
    let stop = stop_processor.clone();
    let sink_lag = SinkLag::default();
    let max_in_flight = config.processing.max_in_flight;
    let sink_limit = opts
        .sink_pg
        .is_some()
        .then(|| (config.processing.max_sink_lag, sink_lag.clone()));
    let (b, d, enc) = (base.clone(), decoder.clone(), encoder.clone());
    let stage1_progress = Arc::new(Stage1Progress::default());
    let progress = stage1_progress.clone();
    let group = topology.group(GROUP);
    let shared_catalog = SharedCatalog::default();
    let stage1_catalog = shared_catalog.clone();
    let processor = std::thread::Builder::new()
        .name("stage1".into())
        .spawn(move || {
            let catalog = Catalog::start(
                &b,
                PRODUCTS,
                d.clone(),
                handle.clone(),
                stop.clone(),
                Duration::from_secs(30),
            )?;
            stage1_catalog.set(catalog.clone());
            let producer = producer::create(&b, eos.then_some(txn_id.as_str()))?;
            let mut stage = Stage1::new(
                settings,
                b.clone(),
                producer,
                d,
                enc,
                catalog,
                handle,
                partials,
                tasks,
            );
            stage.progress = progress;
            stage.bounds = bounds;
            let topics = [TRANSACTIONS.to_string(), EVENTS.to_string()];
            let backpressure = Backpressure::new("1", max_in_flight, sink_limit);
            let sub = processor::Subscription {
                group: &group,
                static_member: member.as_deref(),
                topics: &topics,
            };
            processor::run(&b, sub, stage, interval, backpressure, stop).map(|s| s.totals)
        })?;
    let stop_merge = Arc::new(AtomicBool::new(false));
    let merge = {
        let (b, stop, handle) = (
            base.clone(),
            stop_merge.clone(),
            tokio::runtime::Handle::current(),
        );
        let encoder = encoder.clone();
        let engine = settings_engine.clone();
        let txn_id = topology.transactional_id(prefix, instance, "-merge");
        let (merge_group, merge_changelog, kpi_prefix, alerts_topic) = (
            topology.group(MERGE_GROUP),
            topology.topic(MERGE_CHANGELOG),
            topology.kpi_prefix(),
            topology.topic(BUSINESS_ALERTS),
        );
        let partials_topic = partials_topic.clone();
        let member = config.processing.static_membership.then(|| txn_id.clone());
        std::thread::Builder::new()
            .name("stage2".into())
            .spawn(move || {
                let producer = producer::create(&b, eos.then_some(txn_id.as_str()))?;
                let mut stage = Stage2::new(
                    b.clone(),
                    producer,
                    encoder,
                    handle,
                    engine,
                    partials_topic.clone(),
                    merge_changelog,
                    tasks as u32,
                    eos,
                );
                stage.kpi_prefix = kpi_prefix;
                stage.alerts_topic = alerts_topic;
                stage.inventory = Some(Arc::new(shared_catalog));
                let topics = [partials_topic];
                let sub = processor::Subscription {
                    group: &merge_group,
                    static_member: member.as_deref(),
                    topics: &topics,
                };
                processor::run(
                    &b,
                    sub,
                    stage,
                    interval,
                    Backpressure::new("2", max_in_flight, None),
                    stop,
                )
                .map(|s| s.totals)
            })?
    };
    let (stop_sink, rx) = watch::channel(SinkControl::Run);
    let sink = opts.sink_pg.map(|pg| {
        let mut settings = SinkSettings::lineage(pg, topology.clone());
        settings.lag = Some(sink_lag);
        settings.static_member = config
            .processing
            .static_membership
            .then(|| topology.transactional_id(prefix, instance, "-sink"));
        tokio::spawn(sink::run(base.clone(), sink_decoder.clone(), settings, rx))
    });
    Ok(Pipeline {
        stop_processor,
        stop_merge,
        merge,
        stop_sink,
        processor,
        sink,
        stage1_progress,
    })
}

impl Pipeline {
    /// Stage 1's live counters: a progress signal for tests and embedders.
    pub fn stage1_progress(&self) -> &Stage1Progress {
        &self.stage1_progress
    }

    pub fn processor_finished(&self) -> bool {
        self.processor.is_finished() || self.merge.is_finished()
    }

    /// A graceful shutdown: stops stage 1 (committing its open interval), gives stage 2
    /// the time to merge the last partials and stops it, then lets the sink write the
    /// batch in hand and stop. What is left on the topics is for the group's other
    /// members or the next start; nothing waits on other instances.
    pub async fn stop(self) -> Result<(Stage1Totals, Option<SinkTotals>)> {
        self.stop_with(SinkControl::Stop).await
    }

    /// Like [`Pipeline::stop`], but the sink first drains everything on its partitions:
    /// for the last instance, once its producers have stopped (the demo's export).
    pub async fn drain(self) -> Result<(Stage1Totals, Option<SinkTotals>)> {
        self.stop_with(SinkControl::Drain).await
    }

    async fn stop_with(
        self,
        sink_control: SinkControl,
    ) -> Result<(Stage1Totals, Option<SinkTotals>)> {
        self.stop_processor.store(true, Ordering::Relaxed);
        let p = self.processor;
        let totals = tokio::task::spawn_blocking(move || p.join())
            .await?
            .map_err(|_| anyhow::anyhow!("stage-1 thread panicked"))??;
        tokio::time::sleep(Duration::from_secs(3)).await;
        self.stop_merge.store(true, Ordering::Relaxed);
        let m = self.merge;
        let merged = tokio::task::spawn_blocking(move || m.join())
            .await?
            .map_err(|_| anyhow::anyhow!("stage-2 thread panicked"))??;
        tracing::info!(
            consumed = merged.consumed,
            kpi_rows = merged.kpi_rows,
            commits = merged.commits,
            "stage 2 stopped"
        );
        let _ = self.stop_sink.send(sink_control);
        let sink = match self.sink {
            Some(h) => Some(h.await??),
            None => None,
        };
        Ok((totals, sink))
    }
}
