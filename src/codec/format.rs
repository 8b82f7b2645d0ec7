//! The codec front door for the runtime: [`InputDecoder`] turns a Kafka message payload
//! into a model record in the configured [`PayloadFormat`], and [`OutputEncoder`] turns an
//! output into the payload for its topic. Both hide whether JSON or Confluent Avro (and
//! hence a schema registry) is in play.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::avro::{AvroDecoder, AvroEncoder};
use super::error::{DecodeError, EncodeError, RegistryError};
use super::json::{DecodeLimits, JsonCodec};
use super::registry_client::RegistryClient;
use super::retry::Backoff;
use super::schemas::AvroRecord;
use crate::model::{Record, Transaction, UserEvent};

/// How record values are encoded on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PayloadFormat {
    Json,
    /// Confluent wire format: `0x00`, 4-byte big-endian schema id, Avro binary datum.
    Avro,
}

/// Which input record type a topic carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    Transaction,
    Event,
}

/// Timeout of each schema registry request.
pub const REGISTRY_TIMEOUT: Duration = Duration::from_secs(5);

enum Decoder {
    Json(JsonCodec),
    Avro(AvroDecoder),
}

/// Decodes input payloads. Cheap to share behind an `Arc`; the Avro variant caches
/// schemas per id.
pub struct InputDecoder {
    decoder: Decoder,
}

impl InputDecoder {
    pub fn json(limits: DecodeLimits) -> InputDecoder {
        InputDecoder {
            decoder: Decoder::Json(JsonCodec::new(limits)),
        }
    }

    pub fn avro(registry_url: &str, limits: DecodeLimits) -> Result<InputDecoder, RegistryError> {
        let client = RegistryClient::new(registry_url, REGISTRY_TIMEOUT)?;
        Ok(InputDecoder {
            decoder: Decoder::Avro(AvroDecoder::new(client, limits.max_record_bytes)),
        })
    }

    /// Decodes one payload into `T` (also for `Product` from the catalog topic).
    pub async fn decode<T: AvroRecord>(&self, payload: &[u8]) -> Result<T, DecodeError> {
        match &self.decoder {
            Decoder::Json(json) => json.decode(payload),
            Decoder::Avro(avro) => avro.decode(payload).await,
        }
    }

    /// Like [`InputDecoder::decode`], but waits out a schema registry outage: a retriable
    /// error is logged (naming `source`, e.g. `topic/partition@offset`) and the decode
    /// retried with backoff until it succeeds, fails for good (poison data), or `stop()`
    /// turns true (then the last retriable error is returned).
    pub async fn decode_waiting<T: AvroRecord>(
        &self,
        payload: &[u8],
        source: &str,
        stop: &(dyn Fn() -> bool + Sync),
    ) -> Result<T, DecodeError> {
        let mut backoff = Backoff::default();
        loop {
            match self.decode::<T>(payload).await {
                Err(e) if e.is_retriable() && !stop() => {
                    let delay = backoff.next_delay();
                    tracing::warn!(source, error = %e, attempt = backoff.attempts(),
                        waited_ms = backoff.waited().as_millis() as u64,
                        "schema registry unavailable: waiting to decode");
                    tokio::time::sleep(delay).await;
                }
                r => return r,
            }
        }
    }

    /// Decodes the payload of a transactions or events topic into a [`Record`]. A missing
    /// payload (tombstone) is an empty record.
    pub async fn decode_record(
        &self,
        kind: RecordKind,
        payload: Option<&[u8]>,
    ) -> Result<Record, DecodeError> {
        let payload = payload.ok_or(DecodeError::Empty)?;
        Ok(match kind {
            RecordKind::Transaction => {
                Record::Transaction(self.decode::<Transaction>(payload).await?)
            }
            RecordKind::Event => Record::Event(self.decode::<UserEvent>(payload).await?),
        })
    }
}

enum Encoder {
    Json(JsonCodec),
    Avro(AvroEncoder),
}

/// Encodes outputs for their topics.
pub struct OutputEncoder {
    encoder: Encoder,
}

impl OutputEncoder {
    pub fn json() -> OutputEncoder {
        OutputEncoder {
            encoder: Encoder::Json(JsonCodec::default()),
        }
    }

    /// Avro under `<topic>-value`; see [`AvroEncoder::new`] for `auto_register`.
    pub fn avro(registry_url: &str, auto_register: bool) -> Result<OutputEncoder, RegistryError> {
        let client = RegistryClient::new(registry_url, REGISTRY_TIMEOUT)?;
        Ok(OutputEncoder {
            encoder: Encoder::Avro(AvroEncoder::new(client, auto_register)),
        })
    }

    /// Resolves `T`'s schema id for `topic` now (registering it if configured), so that
    /// encoding for that topic later needs no registry call; a no-op for JSON.
    pub async fn prepare<T: AvroRecord>(&self, topic: &str) -> Result<(), RegistryError> {
        match &self.encoder {
            Encoder::Json(_) => Ok(()),
            Encoder::Avro(avro) => avro.schema_id::<T>(topic).await.map(|_| ()),
        }
    }

    pub async fn encode<T: AvroRecord>(
        &self,
        topic: &str,
        value: &T,
    ) -> Result<Vec<u8>, EncodeError> {
        match &self.encoder {
            Encoder::Json(json) => json.encode(value),
            Encoder::Avro(avro) => avro.encode(topic, value).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shareable<T: Send + Sync>() {}
    fn spawnable<F: std::future::Future + Send>(_: F) {}

    #[test]
    fn codecs_can_be_shared_across_tokio_tasks() {
        shareable::<InputDecoder>();
        shareable::<OutputEncoder>();
        shareable::<super::super::embedded_registry::EmbeddedRegistry>();
        let decoder = InputDecoder::json(DecodeLimits::default());
        spawnable(decoder.decode::<Transaction>(b"{}"));
        spawnable(decoder.decode_record(RecordKind::Event, None));
        let encoder = OutputEncoder::json();
        spawnable(encoder.encode(
            "shop.dlq",
            &crate::model::Product {
                product_id: String::new(),
                name: String::new(),
                category: String::new(),
                brand: String::new(),
                price: Default::default(),
                cost: Default::default(),
                inventory_count: 0,
                reorder_point: None,
                updated_at: 0,
            },
        ));
    }
}
