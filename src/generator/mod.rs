//! `shopstream generate`: a synthetic shop that produces realistic, reproducible input for
//! shopstream, with ground truth. A catalog (published to the compacted products topic)
//! and a population of customers are drawn from the seed; customers arrive in sessions
//! whose funnel of user events leads to transactions, at a rate shaped by time of day,
//! weekday and the holiday season; fraud episodes and faults (duplicates, out-of-order,
//! late and invalid records) are injected at configurable rates, and every affected record
//! is described in a truth file, never in the record. The stream is a pure function of its
//! configuration (`stream::Generator`); `run` paces it and sends it to Kafka and/or files.
//!
//! Entry points: [`GenerateArgs`] (the clap flags), [`run`] (what the subcommand does),
//! [`run_with`] (any [`PayloadEncoder`], e.g. Avro), [`write_files`] (JSONL export) and
//! [`Generator`] (the records themselves, for tests and in-process use).

pub mod args;
pub mod avro;
pub mod catalog;
pub mod customers;
pub mod encode;
pub mod faults;
pub mod files;
pub mod fraud;
pub mod geo;
pub mod ids;
pub mod invalid;
pub mod kafka;
pub mod orders;
pub mod pace;
pub mod record;
pub mod run;
pub mod season;
pub mod session;
pub mod sim;
pub mod stream;

pub use args::GenerateArgs;
pub use encode::{encoder_for, Format, JsonEncoder, PayloadEncoder};
pub use faults::FaultConfig;
pub use kafka::KafkaOptions;
pub use record::{GenRecord, Label, Payload, TopicKind, TopicNames, TruthEntry};
pub use run::{run, run_encoded, run_with, write_files, GenerateSummary, Outputs};
pub use sim::ShopConfig;
pub use stream::{Emitted, Generator, GeneratorConfig};
