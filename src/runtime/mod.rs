//! The Kafka edge: client configuration, topic administration, and (as it lands) the
//! transactional consume-transform-produce loop, rebalances, state restore and backpressure
//! around the deterministic engine.

pub mod client;
pub mod topics;
pub mod watermarks;
