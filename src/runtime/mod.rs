//! The Kafka edge: consumers, transactional producers, rebalances, state restore and
//! backpressure around the deterministic engine.
