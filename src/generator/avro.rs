//! Confluent-framed Avro for the generator: registers the input schemas (Transaction,
//! UserEvent, Product) under the TopicNameStrategy subjects of the generator's topics
//! once, before the run, then frames every value with its subject's schema id through the
//! codec's encoder. Structural faults (`Payload::Raw`) pass through unframed, so they are
//! undecodable for consumers exactly as a broken producer's bytes would be.

use std::collections::HashMap;

use anyhow::{Context, Result};

use super::encode::PayloadEncoder;
use super::record::Payload;
use crate::codec::avro::encode_framed;
use crate::codec::subjects::value_subject;
use crate::codec::{AvroRecord, RegistryClient};
use crate::model::{Product, Transaction, UserEvent};

/// Frames values with the schema ids registered for each topic.
pub struct AvroPayloadEncoder {
    ids: HashMap<String, u32>,
}

impl AvroPayloadEncoder {
    /// Registers (or looks up) the input schemas under `<topic>-value` for the given
    /// (transactions, events, products) topic names.
    pub async fn register(registry_url: &str, topics: [&str; 3]) -> Result<AvroPayloadEncoder> {
        let client = RegistryClient::new(registry_url, crate::codec::format::REGISTRY_TIMEOUT)?;
        let schemas = [
            Transaction::reader_schema().json,
            UserEvent::reader_schema().json,
            Product::reader_schema().json,
        ];
        let mut ids = HashMap::new();
        for (topic, schema) in topics.iter().zip(schemas) {
            let subject = value_subject(topic);
            let id = client
                .register(&subject, schema)
                .await
                .with_context(|| format!("registering {subject} at {registry_url}"))?;
            ids.insert(topic.to_string(), id);
        }
        Ok(AvroPayloadEncoder { ids })
    }

    fn id(&self, topic: &str) -> Result<u32> {
        self.ids
            .get(topic)
            .copied()
            .with_context(|| format!("no schema registered for topic {topic}"))
    }
}

impl PayloadEncoder for AvroPayloadEncoder {
    fn encode_value(&mut self, topic: &str, payload: &Payload, out: &mut Vec<u8>) -> Result<()> {
        let id = self.id(topic)?;
        match payload {
            Payload::Transaction(t) => encode_framed(id, t, out)?,
            Payload::Event(e) => encode_framed(id, e, out)?,
            Payload::Product(p) => encode_framed(id, p, out)?,
            Payload::Raw(bytes) => out.extend_from_slice(bytes),
        }
        Ok(())
    }
}
