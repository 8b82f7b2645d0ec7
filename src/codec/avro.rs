//! Confluent-framed Avro: [`AvroDecoder`] turns `0x00 | id | datum` into a model type,
//! fetching the writer schema by id from the registry once (cached per id) and choosing a
//! writer→reader [`Plan`] once per (id, reader type); [`AvroEncoder`] registers or looks up
//! the type's schema under the TopicNameStrategy subject `<topic>-value` once per topic and
//! frames serde_avro_fast output with its id. After the first record of a schema neither
//! touches the network, so the steady state is a map lookup plus serde_avro_fast.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;

use super::error::{DecodeError, EncodeError, RegistryError};
use super::plan::{Plan, WriterSchema};
use super::registry_client::RegistryClient;
use super::schemas::AvroRecord;
use super::subjects::value_subject;
use super::wire;
use crate::model::with_raw_bytes;

/// How long an unknown or unusable schema id is remembered before asking again (the
/// schema may be registered later; poison records must not hammer the registry).
const NEGATIVE_TTL: Duration = Duration::from_secs(30);

enum CachedWriter {
    Known(Arc<WriterSchema>),
    Failed(DecodeError, Instant),
}

/// A writer schema with the plan that reads it as one reader type.
type PlanEntry = Arc<(Arc<WriterSchema>, Plan)>;

/// Decodes Confluent-framed Avro into model types.
pub struct AvroDecoder {
    client: RegistryClient,
    max_record_bytes: usize,
    writers: DashMap<u32, CachedWriter>,
    plans: DashMap<(u32, &'static str), Result<PlanEntry, DecodeError>>,
}

impl AvroDecoder {
    pub fn new(client: RegistryClient, max_record_bytes: usize) -> AvroDecoder {
        AvroDecoder {
            client,
            max_record_bytes,
            writers: DashMap::new(),
            plans: DashMap::new(),
        }
    }

    /// Decodes one framed message into `T`, resolving its writer schema to `T`'s schema.
    pub async fn decode<T: AvroRecord>(&self, bytes: &[u8]) -> Result<T, DecodeError> {
        if bytes.len() > self.max_record_bytes {
            return Err(DecodeError::Oversized {
                len: bytes.len(),
                limit: self.max_record_bytes,
            });
        }
        let (id, datum) = wire::parse(bytes)?;
        let reader = T::reader_schema();
        let plan = match self.plans.get(&(id, reader.file)) {
            Some(cached) => cached.clone()?,
            None => self.plan_for(id, reader).await?,
        };
        let (writer, plan) = &*plan;
        plan.decode(writer, reader, datum)
    }

    async fn plan_for(
        &self,
        id: u32,
        reader: &'static super::schemas::ReaderSchema,
    ) -> Result<PlanEntry, DecodeError> {
        let writer = self.writer_schema(id).await?;
        let plan = Plan::choose(&writer, reader).map(|p| Arc::new((writer, p)));
        self.plans.insert((id, reader.file), plan.clone());
        plan
    }

    /// The writer schema for `id`, from the cache or the registry. Registry outages are
    /// never cached; unknown ids are remembered for a short while.
    pub async fn writer_schema(&self, id: u32) -> Result<Arc<WriterSchema>, DecodeError> {
        if let Some(entry) = self.writers.get(&id) {
            match &*entry {
                CachedWriter::Known(w) => return Ok(w.clone()),
                CachedWriter::Failed(e, at) if at.elapsed() < NEGATIVE_TTL => return Err(e.clone()),
                CachedWriter::Failed(..) => {}
            }
        }
        let fetched = self
            .client
            .schema_by_id(id)
            .await
            .and_then(|json| WriterSchema::parse(id, &json));
        match fetched {
            Ok(w) => {
                let w = Arc::new(w);
                self.writers.insert(id, CachedWriter::Known(w.clone()));
                Ok(w)
            }
            Err(e) if e.is_retriable() => Err(e),
            Err(e) => {
                self.writers
                    .insert(id, CachedWriter::Failed(e.clone(), Instant::now()));
                Err(e)
            }
        }
    }
}

/// Encodes model types as Confluent-framed Avro under TopicNameStrategy subjects.
pub struct AvroEncoder {
    client: RegistryClient,
    auto_register: bool,
    ids: DashMap<(String, &'static str), u32>,
}

impl AvroEncoder {
    /// With `auto_register` the schema is registered on first use (Confluent's
    /// `auto.register.schemas=true`, the default); without it, it must already be
    /// registered (`shopstream schemas register`) and is only looked up.
    pub fn new(client: RegistryClient, auto_register: bool) -> AvroEncoder {
        AvroEncoder {
            client,
            auto_register,
            ids: DashMap::new(),
        }
    }

    /// The schema id of `T` under `<topic>-value`, cached after the first call.
    pub async fn schema_id<T: AvroRecord>(&self, topic: &str) -> Result<u32, RegistryError> {
        let reader = T::reader_schema();
        let key = (topic.to_owned(), reader.file);
        if let Some(id) = self.ids.get(&key) {
            return Ok(*id);
        }
        let subject = value_subject(topic);
        let id = if self.auto_register {
            self.client.register(&subject, reader.json).await?
        } else {
            self.client.lookup(&subject, reader.json).await?.id
        };
        self.ids.insert(key, id);
        Ok(id)
    }

    /// Encodes `value` for `topic`: header with the schema id, then the datum.
    pub async fn encode<T: AvroRecord>(
        &self,
        topic: &str,
        value: &T,
    ) -> Result<Vec<u8>, EncodeError> {
        let id = self.schema_id::<T>(topic).await?;
        let mut out = Vec::with_capacity(256);
        encode_framed(id, value, &mut out)?;
        Ok(out)
    }
}

/// Appends `value` framed with `schema_id` to `out` (no registry call).
pub fn encode_framed<T: AvroRecord>(
    schema_id: u32,
    value: &T,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    wire::write_header(schema_id, out);
    encode_datum_into(value, out)
}

/// Appends the bare Avro datum of `value`, written with `T`'s schema, to `out`.
pub fn encode_datum_into<T: AvroRecord>(value: &T, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let schema = T::reader_schema();
    let mut config = serde_avro_fast::ser::SerializerConfig::new(&schema.fast);
    with_raw_bytes(|| serde_avro_fast::to_datum(value, &mut *out, &mut config))
        .map(|_| ())
        .map_err(|e| EncodeError::Serialize {
            record: schema.file,
            detail: e.to_string(),
        })
}
