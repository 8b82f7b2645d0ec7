//! Error injection into the transactional state machine on the mock cluster: a fenced
//! producer is fatal (the process stops with a clear error instead of writing on), and a
//! lost or busy transaction coordinator is retried without losing or doubling output.

mod support;

use std::time::{Duration, Instant};

use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use shopstream::config::{Config, Guarantee, Secrets};
use shopstream::runtime::app::{self, Pipeline, PipelineOptions};
use support::kafka::MockKafka;

async fn start(k: &MockKafka, sink_pg: Option<String>) -> Pipeline {
    let mut config = Config::default();
    config.kafka.bootstrap_servers = k.bootstrap();
    config.processing.guarantee = Guarantee::ExactlyOnce;
    config.processing.commit_interval_ms = 200;
    app::start(
        &config,
        &Secrets::default(),
        PipelineOptions {
            sink_pg,
            engine: config.engine.clone(),
        },
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fenced_producer_stops_the_pipeline_with_a_clear_error() {
    let k = MockKafka::with_topics(1);
    let pipeline = start(&k, None).await;
    // Let both stages join their groups and commit a few intervals first.
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert!(!pipeline.processor_finished(), "healthy before the fault");
    k.cluster.request_errors(
        RDKafkaApiKey::EndTxn,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_PRODUCER_FENCED; 4],
    );
    let started = Instant::now();
    while !pipeline.processor_finished() && started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        pipeline.processor_finished(),
        "a fenced producer must stop the stage"
    );
    let err = pipeline
        .stop()
        .await
        .expect_err("fencing is fatal")
        .to_string();
    assert!(err.contains("fatal transaction error"), "{err}");
    assert!(err.to_lowercase().contains("fenced"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn coordinator_loss_on_commit_is_retried_and_the_pipeline_goes_on() {
    let k = MockKafka::with_topics(1);
    let pipeline = start(&k, None).await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    k.cluster.request_errors(
        RDKafkaApiKey::EndTxn,
        &[
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_CONCURRENT_TRANSACTIONS,
        ],
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        !pipeline.processor_finished(),
        "retriable coordinator errors must not stop it"
    );
    let (stage1, _) = pipeline
        .stop()
        .await
        .expect("clean stop after retried commits");
    assert!(stage1.commits > 10, "{} commits", stage1.commits);
    assert_eq!(stage1.aborts, 0);
}
