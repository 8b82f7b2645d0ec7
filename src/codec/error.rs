//! Typed codec errors. [`DecodeError`] classifies every way input bytes can fail to become
//! a model record, with a short machine `reason()` (the DLQ reason), a human `detail()` and
//! `is_retriable()`, which is true only when the failure is the schema registry's and not
//! the data's: the runtime pauses and retries on those instead of dead-lettering the
//! record. [`RegistryError`] covers registry calls made for encoding and administration,
//! and [`EncodeError`] the encoding of outputs.

use thiserror::Error;

/// Why input bytes could not be decoded into a model record.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("empty payload")]
    Empty,
    #[error("payload of {len} bytes is shorter than the 5-byte Confluent header")]
    TooShort { len: usize },
    #[error("magic byte 0x{found:02x}, expected 0x00 (Confluent wire format)")]
    BadMagicByte { found: u8 },
    #[error("schema id {id} is not known to the schema registry")]
    UnknownSchemaId { id: u32 },
    #[error("schema id {id} is not a usable Avro schema: {detail}")]
    UnsupportedSchema { id: u32, detail: String },
    #[error("writer schema id {id} cannot be read as {reader}: {detail}")]
    IncompatibleSchema {
        id: u32,
        reader: String,
        detail: String,
    },
    #[error("schema registry unavailable: {detail}")]
    RegistryUnavailable { detail: String },
    #[error("malformed Avro datum: {detail}")]
    MalformedAvro { detail: String },
    #[error("JSON syntax error: {detail}")]
    JsonSyntax { detail: String },
    #[error("JSON nesting deeper than {limit} levels")]
    TooDeep { limit: usize },
    #[error("{detail}")]
    MissingField { detail: String },
    #[error("{detail}")]
    WrongType { detail: String },
    #[error("{detail}")]
    InvalidValue { detail: String },
    #[error("record of {len} bytes exceeds the limit of {limit} bytes")]
    Oversized { len: usize, limit: usize },
}

impl DecodeError {
    /// Short, stable, machine-readable reason, used as the DLQ reason and metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::Empty => "empty_payload",
            DecodeError::TooShort { .. } => "too_short",
            DecodeError::BadMagicByte { .. } => "bad_magic_byte",
            DecodeError::UnknownSchemaId { .. } => "unknown_schema_id",
            DecodeError::UnsupportedSchema { .. } => "unsupported_schema",
            DecodeError::IncompatibleSchema { .. } => "incompatible_schema",
            DecodeError::RegistryUnavailable { .. } => "registry_unavailable",
            DecodeError::MalformedAvro { .. } => "malformed_avro",
            DecodeError::JsonSyntax { .. } => "json_syntax",
            DecodeError::TooDeep { .. } => "json_too_deep",
            DecodeError::MissingField { .. } => "missing_field",
            DecodeError::WrongType { .. } => "wrong_type",
            DecodeError::InvalidValue { .. } => "invalid_value",
            DecodeError::Oversized { .. } => "oversized_record",
        }
    }

    /// Human-readable explanation.
    pub fn detail(&self) -> String {
        self.to_string()
    }

    /// True when the record itself may be fine and the same bytes should be retried later
    /// (the registry could not be reached); false for poison data that belongs in the DLQ.
    pub fn is_retriable(&self) -> bool {
        matches!(self, DecodeError::RegistryUnavailable { .. })
    }

    /// Classifies a serde data error (from serde_json or serde_avro_fast) by its message:
    /// serde's derive produces `missing field ..`, `invalid type: ..` and `unknown variant ..`.
    pub(crate) fn from_data_error(message: String) -> DecodeError {
        if message.starts_with("missing field") {
            DecodeError::MissingField { detail: message }
        } else if message.starts_with("invalid type") || message.starts_with("invalid length") {
            DecodeError::WrongType { detail: message }
        } else {
            DecodeError::InvalidValue { detail: message }
        }
    }
}

/// A failed schema registry call.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RegistryError {
    /// The registry could not be reached or answered 5xx: retry later.
    #[error("schema registry at {url} unavailable: {detail}")]
    Unavailable { url: String, detail: String },
    /// The schema is not compatible with the versions registered under the subject.
    #[error("schema for subject {subject} is incompatible with its registered versions: {detail}")]
    Incompatible { subject: String, detail: String },
    /// The schema is not registered under the subject (lookup without auto-register).
    #[error("schema is not registered under subject {subject}")]
    NotRegistered { subject: String },
    /// A schema file or schema text that is not valid Avro.
    #[error("invalid schema {source_name}: {detail}")]
    InvalidSchema { source_name: String, detail: String },
    /// Any other answer the registry gave (4xx).
    #[error("schema registry rejected the request for {subject}: {detail}")]
    Rejected { subject: String, detail: String },
}

impl RegistryError {
    pub fn is_retriable(&self) -> bool {
        matches!(self, RegistryError::Unavailable { .. })
    }
}

/// Why an output record could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EncodeError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("cannot serialize {record}: {detail}")]
    Serialize {
        record: &'static str,
        detail: String,
    },
}

impl EncodeError {
    pub fn is_retriable(&self) -> bool {
        matches!(self, EncodeError::Registry(e) if e.is_retriable())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_registry_outages_are_retriable() {
        assert!(DecodeError::RegistryUnavailable { detail: "x".into() }.is_retriable());
        assert!(!DecodeError::UnknownSchemaId { id: 3 }.is_retriable());
        assert!(!DecodeError::BadMagicByte { found: 1 }.is_retriable());
    }

    #[test]
    fn data_errors_are_classified_by_serde_message() {
        let e = DecodeError::from_data_error("missing field `amount` at line 1".into());
        assert_eq!(e.reason(), "missing_field");
        let e = DecodeError::from_data_error("invalid type: string \"x\", expected i32".into());
        assert_eq!(e.reason(), "wrong_type");
        let e = DecodeError::from_data_error("unknown variant `lost`".into());
        assert_eq!(e.reason(), "invalid_value");
    }
}
