//! Data quality: the validation rules every decoded record must pass (schema completeness,
//! business rules, key/customer_id match, plausible event time), the [`Rejection`] that
//! sends a failing record to the DLQ with its reason, rule and source coordinates (also
//! built by the codecs for undecodable bytes), the output size bound that keeps accepted
//! records' outputs within a Kafka message, and the per-window quality score KPI.

pub mod currency;
pub mod email;
mod rejection;
mod rules;
mod score;
pub mod size;

pub use rejection::{reason, rule, Rejection};
pub use rules::{QualityConfig, Validator};
pub use score::{Outcome, QualityAgg};
