//! Schema evolution through the real Confluent framing and the (embedded) registry: a
//! record written with v2 (v1 plus an optional field) decodes with the v1 reader and a v1
//! record with the v2 reader; resolution also fills non-null defaults, maps unknown enum
//! symbols to the reader's default and promotes types. Writers other than shopstream's own
//! encoder are played by apache-avro, as an independent Avro implementation.

mod codec_fixtures;

use std::sync::OnceLock;
use std::time::Duration;

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::Schema;
use codec_fixtures as fx;
use serde::{Deserialize, Serialize};
use shopstream::codec::avro::encode_datum_into;
use shopstream::codec::embedded_registry::EmbeddedRegistry;
use shopstream::codec::{
    wire, AvroDecoder, AvroRecord, DecodeLimits, InputDecoder, OutputEncoder, ReaderSchema,
    RecordKind, RegistryClient, RegistryError,
};
use shopstream::model::*;

/// `base` with `field` appended to the top-level record's fields.
fn with_field(base: &str, field: serde_json::Value) -> &'static str {
    let mut schema: serde_json::Value = serde_json::from_str(base).unwrap();
    schema["fields"].as_array_mut().unwrap().push(field);
    Box::leak(schema.to_string().into_boxed_str())
}

fn user_event_v2() -> &'static str {
    static V2: OnceLock<&'static str> = OnceLock::new();
    V2.get_or_init(|| {
        with_field(
            UserEvent::reader_schema().json,
            serde_json::json!({"name": "coupon_code", "type": ["null", "string"], "default": null}),
        )
    })
}

/// The v2 reader: a consumer built against the newer schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct UserEventV2 {
    event_id: String,
    customer_id: String,
    session_id: String,
    event_type: EventType,
    product_id: Option<String>,
    #[serde(with = "shopstream::model::time::millis")]
    timestamp: i64,
    page_url: String,
    device: Device,
    referrer: Option<String>,
    coupon_code: Option<String>,
}

impl AvroRecord for UserEventV2 {
    fn reader_schema() -> &'static ReaderSchema {
        static S: OnceLock<ReaderSchema> = OnceLock::new();
        S.get_or_init(|| ReaderSchema::parse("user_event_v2.avsc", user_event_v2()))
    }
}

/// A Product reader whose newer schema added a field with a non-null default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ProductV2 {
    product_id: String,
    price: rust_decimal::Decimal,
    inventory_count: i64,
    weight_grams: i64,
}

impl AvroRecord for ProductV2 {
    fn reader_schema() -> &'static ReaderSchema {
        static S: OnceLock<ReaderSchema> = OnceLock::new();
        S.get_or_init(|| {
            let json = with_field(
                Product::reader_schema().json,
                serde_json::json!({"name": "weight_grams", "type": "long", "default": 250}),
            );
            ReaderSchema::parse("product_v2.avsc", json)
        })
    }
}

/// The generic Avro value of a model record, as an independent implementation reads it.
fn generic<T: AvroRecord>(v: &T) -> Value {
    let mut datum = Vec::new();
    encode_datum_into(v, &mut datum).unwrap();
    GenericDatumReader::builder(&T::reader_schema().avro)
        .build()
        .and_then(|r| r.read_value(&mut &datum[..]))
        .unwrap()
}

/// Writes `value` with `schema` (apache-avro) and frames it with `id`.
fn framed(id: u32, schema: &str, value: Value) -> Vec<u8> {
    let schema = Schema::parse_str(schema).unwrap();
    let datum = GenericDatumWriter::builder(&schema)
        .build()
        .and_then(|w| w.write_value_to_vec(value))
        .expect("value matches writer schema");
    wire::frame(id, &datum)
}

fn set(record: &mut Value, name: &str, v: Value) {
    let Value::Record(fields) = record else {
        panic!("record")
    };
    match fields.iter_mut().find(|(n, _)| n == name) {
        Some(f) => f.1 = v,
        None => fields.push((name.to_owned(), v)),
    }
}

struct Setup {
    registry: EmbeddedRegistry,
    client: RegistryClient,
    encoder: OutputEncoder,
    decoder: InputDecoder,
}

async fn setup() -> Setup {
    let registry = EmbeddedRegistry::start().await.unwrap();
    let client = RegistryClient::new(registry.url(), Duration::from_secs(2)).unwrap();
    let encoder = OutputEncoder::avro(registry.url(), true).unwrap();
    let decoder = InputDecoder::avro(registry.url(), DecodeLimits::default()).unwrap();
    Setup {
        registry,
        client,
        encoder,
        decoder,
    }
}

#[tokio::test]
async fn v2_written_record_decodes_with_the_v1_reader() {
    let s = setup().await;
    let event = fx::user_events().remove(2);
    // v1 first (as the producer fleet did), then v2 under BACKWARD_TRANSITIVE.
    let v1_bytes = s.encoder.encode("shop.events", &event).await.unwrap();
    let v2_id = s
        .client
        .register("shop.events-value", user_event_v2())
        .await
        .unwrap();
    assert_ne!(
        v2_id,
        u32::from_be_bytes(v1_bytes[1..5].try_into().unwrap())
    );

    let mut v2 = generic(&event);
    set(
        &mut v2,
        "coupon_code",
        Value::Union(1, Box::new(Value::String("SPRING24".into()))),
    );
    let bytes = framed(v2_id, user_event_v2(), v2);

    let decoded: UserEvent = s.decoder.decode(&bytes).await.expect("v1 reader reads v2");
    assert_eq!(decoded, event);
    let record = s
        .decoder
        .decode_record(RecordKind::Event, Some(&bytes))
        .await
        .unwrap();
    assert_eq!(record, Record::Event(event.clone()));
    // The v2 reader sees the new field.
    let v2_reader: UserEventV2 = s.decoder.decode(&bytes).await.unwrap();
    assert_eq!(v2_reader.coupon_code.as_deref(), Some("SPRING24"));
    assert_eq!(v2_reader.event_id, event.event_id);
    drop(s.registry);
}

#[tokio::test]
async fn v1_written_record_decodes_with_the_v2_reader() {
    let s = setup().await;
    let event = fx::user_events().remove(0);
    let v1_bytes = s.encoder.encode("shop.events", &event).await.unwrap();
    s.client
        .register("shop.events-value", user_event_v2())
        .await
        .unwrap();

    let v2: UserEventV2 = s
        .decoder
        .decode(&v1_bytes)
        .await
        .expect("v2 reader reads v1");
    assert_eq!(v2.coupon_code, None, "the added field takes its default");
    assert_eq!(
        (
            v2.event_id,
            v2.event_type,
            v2.product_id,
            v2.timestamp,
            v2.device,
            v2.referrer
        ),
        (
            event.event_id,
            event.event_type,
            event.product_id,
            event.timestamp,
            event.device,
            event.referrer
        )
    );
}

#[tokio::test]
async fn resolution_fills_non_null_defaults() {
    let s = setup().await;
    let product = fx::product();
    let bytes = s.encoder.encode("shop.products", &product).await.unwrap();
    let v2: ProductV2 = s.decoder.decode(&bytes).await.expect("resolved");
    assert_eq!(
        v2,
        ProductV2 {
            product_id: product.product_id,
            price: product.price,
            inventory_count: product.inventory_count,
            weight_grams: 250,
        }
    );
}

#[tokio::test]
async fn unknown_enum_symbol_reads_as_the_reader_default() {
    let s = setup().await;
    let mut schema: serde_json::Value =
        serde_json::from_str(Transaction::reader_schema().json).unwrap();
    let status = &mut schema["fields"][4]["type"];
    assert_eq!(status["name"], "TxStatus");
    status["symbols"]
        .as_array_mut()
        .unwrap()
        .push("chargeback".into());
    let writer = schema.to_string();
    s.encoder
        .encode("shop.transactions", &fx::transaction())
        .await
        .unwrap();
    let id = s
        .client
        .register("shop.transactions-value", &writer)
        .await
        .expect("compatible");

    let mut value = generic(&fx::transaction());
    set(&mut value, "status", Value::Enum(4, "chargeback".into()));
    let tx: Transaction = s.decoder.decode(&framed(id, &writer, value)).await.unwrap();
    assert_eq!(tx.status, TxStatus::Pending);
    assert_eq!(tx.amount, fx::transaction().amount);
}

#[tokio::test]
async fn int_written_field_is_promoted_to_the_readers_long() {
    let s = setup().await;
    let writer = Product::reader_schema().json.replace(
        r#"{"name": "inventory_count", "type": "long"}"#,
        r#"{"name": "inventory_count", "type": "int"}"#,
    );
    assert_ne!(writer, Product::reader_schema().json);
    let id = s
        .client
        .register("legacy.products-value", &writer)
        .await
        .unwrap();
    let mut product = fx::product();
    product.inventory_count = 42;
    let mut value = generic(&product);
    set(&mut value, "inventory_count", Value::Int(42));
    let decoded: Product = s.decoder.decode(&framed(id, &writer, value)).await.unwrap();
    assert_eq!(decoded, product);
}

#[tokio::test]
async fn unreadable_writer_schema_is_poison_not_retriable() {
    let s = setup().await;
    let writer = r#"{"type":"record","name":"Transaction","namespace":"com.shopstream",
        "fields":[{"name":"transaction_id","type":"long"}]}"#;
    let id = s.client.register("other-value", writer).await.unwrap();
    let bytes = framed(
        id,
        writer,
        Value::Record(vec![("transaction_id".into(), Value::Long(7))]),
    );
    let err = s.decoder.decode::<Transaction>(&bytes).await.unwrap_err();
    assert_eq!(err.reason(), "incompatible_schema", "{err}");
    assert!(!err.is_retriable());
}

#[tokio::test]
async fn registry_rejects_a_required_field_without_default() {
    let s = setup().await;
    s.encoder
        .encode("shop.events", &fx::user_events()[0])
        .await
        .unwrap();
    s.client
        .register("shop.events-value", user_event_v2())
        .await
        .unwrap();
    let v3 = with_field(
        user_event_v2(),
        serde_json::json!({"name": "tenant", "type": "string"}),
    );
    assert!(!s
        .client
        .is_compatible("shop.events-value", v3)
        .await
        .unwrap());
    let err = s
        .client
        .register("shop.events-value", v3)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RegistryError::Incompatible { subject, .. } if subject == "shop.events-value"),
        "{err}"
    );
    // With a default it is fine.
    let v3 = with_field(
        user_event_v2(),
        serde_json::json!({"name": "tenant", "type": "string", "default": "main"}),
    );
    assert!(s
        .client
        .is_compatible("shop.events-value", v3)
        .await
        .unwrap());
}

#[tokio::test]
async fn writer_schemas_are_fetched_once_per_id() {
    let s = setup().await;
    let decoder = AvroDecoder::new(s.client.clone(), 1 << 20);
    let bytes = s
        .encoder
        .encode("shop.events", &fx::user_events()[1])
        .await
        .unwrap();
    let before = s.registry.requests();
    for _ in 0..50 {
        let _: UserEvent = decoder.decode(&bytes).await.unwrap();
        let _: UserEventV2 = decoder.decode(&bytes).await.unwrap();
    }
    assert_eq!(
        s.registry.requests() - before,
        1,
        "one GET /schemas/ids/{{id}}"
    );
}
