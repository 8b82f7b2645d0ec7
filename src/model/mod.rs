//! Domain records and outputs shared by every component.
//!
//! The types here are the contract between the codecs (which decode bytes into them), the
//! engine (which consumes input records and produces outputs), the runtime (which writes
//! outputs to Kafka) and the sink (which writes them to PostgreSQL). They mirror the Avro
//! schemas in `schemas/avro/` field for field. Money is `rust_decimal::Decimal` with two
//! decimal places, never a float; event time is milliseconds since the Unix epoch (UTC).

mod input;
mod output;
mod rfm;
pub mod time;

pub use input::{
    Device, EventType, LineItem, Location, Product, Record, SourceCoord, Transaction, TxStatus,
    UserEvent,
};
pub use output::bytes_repr::with_raw_bytes;
pub use output::{
    BusinessAlert, BusinessAlertKind, DlqRecord, EmitStatus, EnrichedItem, EnrichedOrder,
    FraudAlert, KpiRow, LateRecord,
};
pub use rfm::CustomerRfm;
