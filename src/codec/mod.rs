//! Decoding and encoding of records: JSON and Confluent-framed Avro with a schema registry.
//!
//! The runtime uses [`InputDecoder`] (payload → [`crate::model::Record`] or any
//! [`AvroRecord`]) and [`OutputEncoder`] (output → payload for its topic). Avro decoding
//! fetches the writer schema by id once and resolves it to the reader schema compiled into
//! the binary (`schemas/avro/`), on serde_avro_fast whenever that is provably equivalent
//! ([`plan`]). Every failure is a typed [`DecodeError`] with a DLQ reason and a retriable
//! flag. [`embedded_registry`] is an in-process Confluent-compatible registry for `demo` and
//! tests, and [`admin`] registers the schemas under their TopicNameStrategy subjects.

pub mod admin;
pub mod avro;
pub mod embedded_registry;
pub mod error;
pub mod format;
pub mod json;
pub mod plan;
pub mod registry_client;
pub mod retry;
pub mod schemas;
pub mod subjects;
pub mod wire;

pub use avro::{AvroDecoder, AvroEncoder};
pub use error::{DecodeError, EncodeError, RegistryError};
pub use format::{InputDecoder, OutputEncoder, PayloadFormat, RecordKind};
pub use json::{DecodeLimits, JsonCodec};
pub use registry_client::{Registered, RegistryClient};
pub use schemas::{AvroRecord, ReaderSchema};
