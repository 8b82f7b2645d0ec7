//! The Kafka edge: client configuration, topic administration, and (as it lands) the
//! transactional consume-transform-produce loop, rebalances, state restore and backpressure
//! around the deterministic engine.

pub mod app;
pub mod catalog;
pub mod changelog;
pub mod client;
pub mod commit;
pub mod enrich;
pub mod partials;
pub mod processor;
pub mod producer;
pub mod stage1;
pub mod stage2;
pub mod topics;
pub mod txn;
pub mod watermarks;
