//! Throughput of `generate`, measured, not asserted (timings depend on the machine).
//! Run in release: `cargo test --release --test generator_throughput -- --ignored --nocapture`.
//! SHOPSTREAM_GEN_BENCH_COUNT sets the number of input records (default 500,000).

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use rdkafka::mocking::MockCluster;
use shopstream::generator::{
    encoder_for, run_with, FaultConfig, Format, Generator, GeneratorConfig, KafkaOptions, Outputs,
    ShopConfig, TopicNames,
};

fn config(count: u64) -> GeneratorConfig {
    GeneratorConfig {
        shop: ShopConfig {
            seed: 1,
            start: 1_709_571_600_000,
            event_rate: 1000.0,
            customers: 10_000,
            products: 1_000,
            fraud_rate: 0.02,
            payment_outage: None,
        },
        faults: FaultConfig::default(),
        topics: TopicNames::default(),
        limit: Some(count),
    }
}

fn count() -> u64 {
    std::env::var("SHOPSTREAM_GEN_BENCH_COUNT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500_000)
}

#[test]
#[ignore = "benchmark: run in release with --ignored --nocapture"]
fn throughput_to_mock_cluster() {
    let n = count();
    let cfg = config(n);

    let t = Instant::now();
    let mut encoder = encoder_for(Format::Json).unwrap();
    let (mut bytes, mut buf) = (0usize, Vec::new());
    for e in Generator::new(&cfg) {
        encoder.encode("t", &e.record, &mut buf).unwrap();
        bytes += buf.len();
    }
    let gen = t.elapsed();
    println!(
        "generate + JSON encode only: {n} inputs in {gen:.2?} = {:.0} records/s ({:.0} B/record)",
        n as f64 / gen.as_secs_f64(),
        bytes as f64 / n as f64
    );

    for (partitions, compression) in [(6, "lz4"), (6, "none")] {
        let cluster = MockCluster::new(1).unwrap();
        for t in ["shop.transactions", "shop.events", "shop.products"] {
            cluster.create_topic(t, partitions, 1).unwrap();
        }
        let mut kafka = KafkaOptions::new(cluster.bootstrap_servers());
        if compression == "none" {
            kafka.compression = shopstream::generator::kafka::Compression::None;
        }
        let outputs = Outputs {
            kafka: Some(kafka),
            ..Outputs::default()
        };
        let s = run_with(
            &cfg,
            encoder_for(Format::Json).unwrap(),
            &outputs,
            &AtomicBool::new(false),
        )
        .unwrap();
        println!(
            "to MockCluster ({partitions} partitions, {compression}, acks=all, idempotent): {} inputs ({} records) in {:.2?} = {:.0} inputs/s, delivered {}",
            s.inputs,
            s.records(),
            s.elapsed,
            s.input_rate(),
            s.delivery.as_ref().unwrap().delivered
        );
    }

    // Paced at 50,000/s with event time keeping up (--rate 50000 --event-rate 50000).
    let mut paced = config(n.min(250_000));
    paced.shop.event_rate = 50_000.0;
    let t = Instant::now();
    let mut g = Generator::new(&paced);
    let setup = t.elapsed();
    g.by_ref().for_each(drop);
    println!(
        "--event-rate 50000, generate only: set-up {setup:.2?}, then {:.0} records/s",
        paced.limit.unwrap() as f64 / (t.elapsed() - setup).as_secs_f64()
    );
    let cluster = MockCluster::new(1).unwrap();
    let t = Instant::now();
    let outputs = Outputs {
        kafka: Some(KafkaOptions::new(cluster.bootstrap_servers())),
        rate: 50_000.0,
        ..Outputs::default()
    };
    let s = run_with(
        &paced,
        encoder_for(Format::Json).unwrap(),
        &outputs,
        &AtomicBool::new(false),
    )
    .unwrap();
    println!(
        "paced --rate 50000 --event-rate 50000: {} inputs sent in {:.2?} = {:.0} inputs/s (set-up incl. warm-up {:.2?})",
        s.inputs,
        s.elapsed,
        s.input_rate(),
        t.elapsed() - s.elapsed
    );
}
