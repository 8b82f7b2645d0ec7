//! Every model type round-trips through JSON, through its Avro schema (checked against
//! apache-avro as an independent implementation of the spec, byte for byte) and through the
//! full Confluent framing with the embedded registry. Decimals must come back exactly.

mod codec_fixtures;

use std::collections::BTreeMap;
use std::fmt::Debug;

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;
use codec_fixtures as fx;
use serde_json::json;
use shopstream::codec::avro::encode_datum_into;
use shopstream::codec::embedded_registry::EmbeddedRegistry;
use shopstream::codec::plan::read_fast;
use shopstream::codec::{
    schemas, AvroRecord, DecodeLimits, InputDecoder, JsonCodec, OutputEncoder,
};
use shopstream::model::*;

/// JSON and bare-datum round trips, with apache-avro reading and re-writing our bytes.
fn round_trip<T: AvroRecord + PartialEq + Debug>(value: &T) -> Value {
    let json = JsonCodec::default();
    let text = json.encode(value).expect("json encode");
    assert_eq!(&json.decode::<T>(&text).expect("json decode"), value);

    let schema = T::reader_schema();
    let mut datum = Vec::new();
    encode_datum_into(value, &mut datum).expect("avro encode");
    assert_eq!(
        &read_fast::<T>(&datum, &schema.fast).expect("avro decode"),
        value
    );

    let mut input = &datum[..];
    let generic = GenericDatumReader::builder(&schema.avro)
        .build()
        .and_then(|r| r.read_value(&mut input))
        .unwrap_or_else(|e| panic!("apache-avro cannot read {}: {e}", schema.file));
    assert!(input.is_empty(), "apache-avro left {} bytes", input.len());
    assert!(
        generic.validate(&schema.avro),
        "{} datum invalid",
        schema.file
    );
    let rewritten = GenericDatumWriter::builder(&schema.avro)
        .build()
        .and_then(|w| w.write_value_to_vec(generic.clone()))
        .expect("apache-avro write");
    assert_eq!(
        &read_fast::<T>(&rewritten, &schema.fast).expect("re-read"),
        value
    );
    if !schema.json.contains("\"map\"") {
        // apache-avro keeps maps in a HashMap, so only map-free datums compare bytewise.
        assert_eq!(
            rewritten, datum,
            "{}: apache-avro encodes differently",
            schema.file
        );
    }
    generic
}

fn field<'a>(record: &'a Value, name: &str) -> &'a Value {
    match record {
        Value::Record(fields) => &fields.iter().find(|(n, _)| n == name).expect(name).1,
        other => panic!("not a record: {other:?}"),
    }
}

/// The unscaled big-endian two's-complement bytes of an Avro decimal.
fn unscaled(v: &Value) -> Vec<u8> {
    match v {
        Value::Decimal(d) => Vec::<u8>::try_from(d).expect("decimal bytes"),
        other => panic!("not a decimal: {other:?}"),
    }
}

#[test]
fn every_model_type_round_trips_through_json_and_avro() {
    for t in fx::transactions() {
        round_trip(&t);
    }
    for e in fx::user_events() {
        round_trip(&e);
    }
    round_trip(&fx::product());
    round_trip(&fx::enriched_order());
    round_trip(&fx::fraud_alert());
    for k in fx::kpi_rows() {
        round_trip(&k);
    }
    round_trip(&fx::dlq_record());
    round_trip(&fx::late_record());
}

#[test]
fn decimals_are_exact_scaled_integers_on_the_wire() {
    let tx = round_trip(&fx::transaction());
    // 1234.50 at scale 2 = 123450 = 0x01e23a
    assert_eq!(unscaled(field(&tx, "amount")), vec![0x01, 0xe2, 0x3a]);
    let Value::Array(items) = field(&tx, "items") else {
        panic!("items")
    };
    assert_eq!(unscaled(field(&items[0], "discount")), vec![0x32]); // 0.50 = 50

    let mut t = fx::transaction();
    t.amount = fx::dec("-5.01"); // -501 = 0xfe0b
    assert_eq!(unscaled(field(&round_trip(&t), "amount")), vec![0xfe, 0x0b]);

    // Values come back numerically equal and with the schema's scale.
    let mut datum = Vec::new();
    t.amount = fx::dec("0.1");
    encode_datum_into(&t, &mut datum).unwrap();
    let back: Transaction = read_fast(&datum, &Transaction::reader_schema().fast).unwrap();
    assert_eq!(back.amount.to_string(), "0.10");
}

#[test]
fn timestamps_and_enums_use_avro_logical_types_and_symbols() {
    let tx = round_trip(&fx::transaction());
    assert_eq!(
        field(&tx, "timestamp"),
        &Value::TimestampMillis(1_717_171_717_171)
    );
    assert_eq!(field(&tx, "status"), &Value::Enum(1, "completed".into()));
    let kpi = round_trip(&fx::kpi_rows()[2]);
    assert_eq!(field(&kpi, "status"), &Value::Enum(2, "late_update".into()));
    assert_eq!(field(&kpi, "revision"), &Value::Long(u32::MAX as i64 - 2));
}

#[test]
fn byte_fields_are_raw_in_avro_and_base64_in_json() {
    let dlq = fx::dlq_record();
    let generic = round_trip(&dlq);
    assert_eq!(
        field(&generic, "original"),
        &Value::Bytes(dlq.original.clone())
    );
    assert_eq!(
        field(&generic, "original_key"),
        &Value::Union(1, Box::new(Value::Bytes(b"cust-17".to_vec())))
    );
    let text: serde_json::Value =
        serde_json::from_slice(&JsonCodec::default().encode(&dlq).unwrap()).unwrap();
    assert_eq!(text["original"], json!("AP/+e4A="));
    assert_eq!(text["original_key"], json!("Y3VzdC0xNw=="));
}

#[test]
fn json_is_natural_and_accepts_common_producer_variants() {
    let text: serde_json::Value =
        serde_json::from_slice(&JsonCodec::default().encode(&fx::transaction()).unwrap()).unwrap();
    assert_eq!(text["amount"], json!("1234.50"));
    assert_eq!(text["timestamp"], json!(1_717_171_717_171i64));
    assert_eq!(text["status"], json!("completed"));
    assert_eq!(text["device"]["type"], json!("mobile"));

    // Producers send RFC 3339 times, numeric money, and leave optional fields out.
    let mut v = text.clone();
    v["timestamp"] = json!("2024-05-31T16:08:37.171Z");
    v["amount"] = json!(1234.5);
    v.as_object_mut().unwrap().remove("email");
    let back: Transaction = JsonCodec::default()
        .decode(v.to_string().as_bytes())
        .unwrap();
    let mut expected = fx::transaction();
    expected.email = None;
    assert_eq!(back, expected);
}

#[tokio::test]
async fn every_model_type_round_trips_through_confluent_framing_and_the_registry() {
    let registry = EmbeddedRegistry::start().await.unwrap();
    let encoder = OutputEncoder::avro(registry.url(), true).unwrap();
    let decoder = InputDecoder::avro(registry.url(), DecodeLimits::default()).unwrap();

    async fn via<T: AvroRecord + PartialEq + Debug>(
        e: &OutputEncoder,
        d: &InputDecoder,
        topic: &str,
        v: &T,
    ) -> Vec<u8> {
        let bytes = e.encode(topic, v).await.expect("encode");
        assert_eq!(bytes[0], 0x00, "magic byte");
        let mut datum = Vec::new();
        encode_datum_into(v, &mut datum).unwrap();
        assert_eq!(&bytes[5..], &datum[..], "payload is the bare datum");
        assert_eq!(&d.decode::<T>(&bytes).await.expect("decode"), v);
        bytes
    }

    let tx = via(&encoder, &decoder, "shop.transactions", &fx::transaction()).await;
    let tx_id = u32::from_be_bytes(tx[1..5].try_into().unwrap());
    for e in fx::user_events() {
        via(&encoder, &decoder, "shop.events", &e).await;
    }
    via(&encoder, &decoder, "shop.products", &fx::product()).await;
    via(
        &encoder,
        &decoder,
        "shop.orders.enriched",
        &fx::enriched_order(),
    )
    .await;
    via(&encoder, &decoder, "shop.fraud.alerts", &fx::fraud_alert()).await;
    let a = via(&encoder, &decoder, "shop.kpi.revenue", &fx::kpi_rows()[1]).await;
    let b = via(&encoder, &decoder, "shop.kpi.funnel", &fx::kpi_rows()[3]).await;
    assert_eq!(a[1..5], b[1..5], "one schema, one id across subjects");
    via(&encoder, &decoder, "shop.dlq", &fx::dlq_record()).await;
    via(&encoder, &decoder, "shop.late", &fx::late_record()).await;

    // The schema id in the header is the one registered under <topic>-value.
    let client =
        shopstream::codec::RegistryClient::new(registry.url(), std::time::Duration::from_secs(2))
            .unwrap();
    let (latest, _) = client
        .latest("shop.transactions-value")
        .await
        .unwrap()
        .expect("registered");
    assert_eq!(latest.id, tx_id);
    let subjects = client.subjects().await.unwrap();
    assert!(
        subjects.contains(&"shop.kpi.funnel-value".to_string()),
        "{subjects:?}"
    );

    let record = decoder
        .decode_record(shopstream::codec::RecordKind::Transaction, Some(&tx))
        .await
        .unwrap();
    assert_eq!(record, Record::Transaction(fx::transaction()));
}

/// Nested named types are defined inline in each self-contained schema file; the copies
/// must agree, or the same Rust type would mean different things on different topics.
#[test]
fn nested_type_definitions_agree_across_schema_files() {
    fn collect(
        v: &serde_json::Value,
        file: &str,
        out: &mut BTreeMap<String, Vec<(String, serde_json::Value)>>,
    ) {
        match v {
            serde_json::Value::Object(o) => {
                let named = matches!(
                    o.get("type").and_then(|t| t.as_str()),
                    Some("record" | "enum" | "fixed")
                );
                if let (true, Some(name)) = (named, o.get("name").and_then(|n| n.as_str())) {
                    let mut def = o.clone();
                    def.remove("namespace");
                    out.entry(name.to_owned())
                        .or_default()
                        .push((file.to_owned(), serde_json::Value::Object(def)));
                }
                o.values().for_each(|c| collect(c, file, out));
            }
            serde_json::Value::Array(a) => a.iter().for_each(|c| collect(c, file, out)),
            _ => {}
        }
    }
    let mut defs = BTreeMap::new();
    for s in schemas::all() {
        collect(&serde_json::from_str(s.json).unwrap(), s.file, &mut defs);
    }
    for name in [
        "Device",
        "SourceCoord",
        "Transaction",
        "TxStatus",
        "LineItem",
        "Location",
    ] {
        let copies = &defs[name];
        assert!(
            copies.len() >= 2 || name == "TxStatus",
            "{name} defined once only?"
        );
        for (file, def) in copies {
            assert_eq!(
                def, &copies[0].1,
                "{name} in {file} differs from {}",
                copies[0].0
            );
        }
    }
}
