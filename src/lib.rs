//! shopstream: a Kafka-native stream processor that turns an e-commerce company's
//! transaction and user-event topics into exactly-once, event-time analytics.
//!
//! The deterministic core (`engine`, `quality`, `analytics`, `fraud`) does no I/O; the
//! edges (`codec`, `runtime`, `sink`) talk to Kafka, the schema registry and PostgreSQL.
//! See DESIGN.md in the project's shared notes for the architecture and semantics.

pub mod analytics;
pub mod codec;
pub mod config;
pub mod demo;
pub mod dlq;
pub mod engine;
pub mod fraud;
pub mod generator;
pub mod limits;
pub mod model;
pub mod quality;
pub mod replay;
pub mod runtime;
pub mod security;
pub mod sink;
