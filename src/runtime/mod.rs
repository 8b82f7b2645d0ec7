//! The Kafka edge: client configuration, topic administration, the transactional
//! consume-transform-produce loop, rebalances, state restore, backpressure and metrics
//! around the deterministic engine.

pub mod app;
pub mod backpressure;
pub mod bounds;
pub mod catalog;
pub mod changelog;
pub mod client;
pub mod commit;
pub mod enrich;
pub mod interval_metrics;
pub mod partials;
pub mod processor;
pub mod producer;
pub mod registry_hold;
pub mod stage1;
pub mod stage2;
pub mod startup;
pub mod telemetry;
pub mod topics;
pub mod topology;
pub mod txn;
pub mod watermarks;
