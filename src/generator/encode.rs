//! The encoder seam between the generator and the wire format. A `PayloadEncoder` turns a
//! typed record into the bytes of a Kafka message value; raw payloads (structural invalid
//! records) pass through every encoder unchanged. JSON is serde_json of the model types.
//! Avro (Confluent framing via the schema registry) is `generator::avro`, which needs the
//! registry and so is built by the caller and passed in through this trait.

use super::record::{GenRecord, Payload};

/// Wire formats of the generated values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Json,
    Avro,
}

/// Turns records into message values.
pub trait PayloadEncoder: Send {
    /// Appends the encoding of a typed record (never `Payload::Raw`) for `topic` to `out`.
    fn encode_value(
        &mut self,
        topic: &str,
        payload: &Payload,
        out: &mut Vec<u8>,
    ) -> anyhow::Result<()>;

    /// Whether every value this encoder writes is a JSON document.
    fn is_json(&self) -> bool {
        false
    }

    /// Replaces `out` with the message value of `record`: raw bytes as they are, typed
    /// records through `encode_value`.
    fn encode(&mut self, topic: &str, record: &GenRecord, out: &mut Vec<u8>) -> anyhow::Result<()> {
        out.clear();
        match &record.payload {
            Payload::Raw(bytes) => {
                out.extend_from_slice(bytes);
                Ok(())
            }
            typed => self.encode_value(topic, typed, out),
        }
    }
}

/// serde_json of the model types.
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonEncoder;

impl PayloadEncoder for JsonEncoder {
    fn encode_value(
        &mut self,
        _topic: &str,
        payload: &Payload,
        out: &mut Vec<u8>,
    ) -> anyhow::Result<()> {
        match payload {
            Payload::Transaction(tx) => serde_json::to_writer(&mut *out, tx)?,
            Payload::Event(e) => serde_json::to_writer(&mut *out, e)?,
            Payload::Product(p) => serde_json::to_writer(&mut *out, p)?,
            Payload::Raw(bytes) => out.extend_from_slice(bytes),
        }
        Ok(())
    }

    fn is_json(&self) -> bool {
        true
    }
}

/// The built-in encoder for `format`.
pub fn encoder_for(format: Format) -> anyhow::Result<Box<dyn PayloadEncoder>> {
    match format {
        Format::Json => Ok(Box::new(JsonEncoder)),
        Format::Avro => anyhow::bail!(
            "--format avro needs a schema registry: build the encoder with \
             generator::avro::AvroPayloadEncoder::register and call run_encoded"
        ),
    }
}
