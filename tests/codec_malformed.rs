//! Undecodable input: every failure is a typed error with the right reason, poison data is
//! never retriable, a registry outage always is, and no byte sequence makes a decoder
//! panic (proptest over arbitrary bytes, over byte mutations of valid messages, and over
//! structure-aware mutations: length and count varints blown up or made negative, bytes
//! cut or spliced, arbitrary schema ids in the header).

mod codec_fixtures;

use std::time::Duration;

use codec_fixtures as fx;
use proptest::prelude::*;
use shopstream::codec::embedded_registry::EmbeddedRegistry;
use shopstream::codec::{
    wire, AvroDecoder, DecodeError, DecodeLimits, InputDecoder, JsonCodec, OutputEncoder,
    RegistryClient,
};
use shopstream::model::*;

struct Setup {
    registry: EmbeddedRegistry,
    decoder: InputDecoder,
    valid: Vec<u8>,
}

async fn setup() -> Setup {
    let registry = EmbeddedRegistry::start().await.unwrap();
    let encoder = OutputEncoder::avro(registry.url(), true).unwrap();
    let valid = encoder
        .encode("shop.transactions", &fx::transaction())
        .await
        .unwrap();
    let decoder = InputDecoder::avro(registry.url(), DecodeLimits::default()).unwrap();
    Setup {
        registry,
        decoder,
        valid,
    }
}

async fn reason(d: &InputDecoder, bytes: &[u8]) -> (&'static str, bool) {
    let e = d
        .decode::<Transaction>(bytes)
        .await
        .expect_err("must not decode");
    (e.reason(), e.is_retriable())
}

#[tokio::test]
async fn framing_errors_have_their_own_reasons() {
    let s = setup().await;
    assert_eq!(reason(&s.decoder, &[]).await, ("empty_payload", false));
    assert_eq!(reason(&s.decoder, &[0, 0, 1]).await, ("too_short", false));
    // Confluent's newer 0x01 magic byte (schema id in a header) is not supported.
    let mut v1 = s.valid.clone();
    v1[0] = 0x01;
    assert_eq!(reason(&s.decoder, &v1).await, ("bad_magic_byte", false));
    // JSON sent to an Avro topic.
    let json = JsonCodec::default().encode(&fx::transaction()).unwrap();
    assert_eq!(reason(&s.decoder, &json).await, ("bad_magic_byte", false));
    assert_eq!(
        s.decoder.decode::<Transaction>(&v1).await.unwrap_err(),
        DecodeError::BadMagicByte { found: 1 }
    );
    assert!(s
        .decoder
        .decode_record(shopstream::codec::RecordKind::Transaction, None)
        .await
        .is_err());
}

#[tokio::test]
async fn every_truncation_is_rejected() {
    let s = setup().await;
    for len in 0..s.valid.len() {
        let (r, retriable) = reason(&s.decoder, &s.valid[..len]).await;
        let expected = match len {
            0 => "empty_payload",
            1..=4 => "too_short",
            _ => "malformed_avro",
        };
        assert_eq!((r, retriable), (expected, false), "prefix of {len} bytes");
    }
    let mut trailing = s.valid.clone();
    trailing.push(0);
    assert_eq!(
        reason(&s.decoder, &trailing).await,
        ("malformed_avro", false)
    );
}

#[tokio::test]
async fn unknown_schema_id_is_poison_and_not_asked_again() {
    let s = setup().await;
    let mut unknown = s.valid.clone();
    unknown[1..5].copy_from_slice(&9999u32.to_be_bytes());
    assert_eq!(
        reason(&s.decoder, &unknown).await,
        ("unknown_schema_id", false)
    );
    let before = s.registry.requests();
    assert_eq!(
        reason(&s.decoder, &unknown).await,
        ("unknown_schema_id", false)
    );
    assert_eq!(
        s.registry.requests(),
        before,
        "negative answers are cached briefly"
    );
}

#[tokio::test]
async fn registry_outage_is_retriable_and_recovers() {
    let s = setup().await;
    s.registry.set_available(false);
    let (r, retriable) = reason(&s.decoder, &s.valid).await;
    assert_eq!((r, retriable), ("registry_unavailable", true));
    s.registry.set_available(true);
    let tx: Transaction = s
        .decoder
        .decode(&s.valid)
        .await
        .expect("outages are not cached");
    assert_eq!(tx, fx::transaction());
}

#[tokio::test]
async fn unreachable_registry_is_retriable() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let client = RegistryClient::new(
        &format!("http://127.0.0.1:{port}"),
        Duration::from_millis(500),
    )
    .unwrap();
    let decoder = AvroDecoder::new(client, 1 << 20);
    let e = decoder
        .decode::<Transaction>(&wire::frame(1, &[2, 0]))
        .await
        .unwrap_err();
    assert_eq!(
        (e.reason(), e.is_retriable()),
        ("registry_unavailable", true),
        "{e}"
    );
}

#[tokio::test]
async fn oversized_records_are_rejected_before_decoding() {
    let s = setup().await;
    let limits = DecodeLimits {
        max_record_bytes: 64,
        ..DecodeLimits::default()
    };
    let small = InputDecoder::avro(s.registry.url(), limits).unwrap();
    assert!(s.valid.len() > 64);
    assert_eq!(reason(&small, &s.valid).await, ("oversized_record", false));
    let json = InputDecoder::json(limits);
    let text = JsonCodec::default().encode(&fx::transaction()).unwrap();
    assert_eq!(reason(&json, &text).await, ("oversized_record", false));
}

#[tokio::test]
async fn json_errors_are_classified() {
    let d = InputDecoder::json(DecodeLimits {
        max_json_depth: 8,
        ..DecodeLimits::default()
    });
    let good: serde_json::Value =
        serde_json::from_slice(&JsonCodec::default().encode(&fx::transaction()).unwrap()).unwrap();
    let with = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut v = good.clone();
        f(&mut v);
        v.to_string().into_bytes()
    };
    assert_eq!(
        reason(&d, b"{\"transaction_id\": ").await,
        ("json_syntax", false)
    );
    assert_eq!(reason(&d, b"not json").await, ("json_syntax", false));
    assert_eq!(
        reason(
            &d,
            &with(&|v| {
                v.as_object_mut().unwrap().remove("amount");
            })
        )
        .await,
        ("missing_field", false)
    );
    assert_eq!(
        reason(&d, &with(&|v| v["items"][0]["quantity"] = "three".into())).await,
        ("wrong_type", false)
    );
    assert_eq!(
        reason(&d, &with(&|v| v["status"] = "lost".into())).await,
        ("invalid_value", false)
    );
    assert_eq!(
        reason(&d, &with(&|v| v["timestamp"] = "yesterday".into())).await,
        ("invalid_value", false)
    );
    assert_eq!(
        reason(&d, &with(&|v| v["amount"] = "12,50".into())).await,
        ("invalid_value", false)
    );
    assert_eq!(
        reason(
            &d,
            &with(&|v| v["email"] = serde_json::json!([[[[[[[[[1]]]]]]]]]))
        )
        .await,
        ("json_too_deep", false)
    );
    // Unknown fields are tolerated (forward compatibility for JSON producers).
    let extra = with(&|v| v["coupon_code"] = "SPRING24".into());
    assert_eq!(
        d.decode::<Transaction>(&extra).await.unwrap(),
        fx::transaction()
    );
}

/// One runtime and registry shared by all proptest cases.
fn shared() -> &'static (tokio::runtime::Runtime, Setup) {
    static SHARED: std::sync::OnceLock<(tokio::runtime::Runtime, Setup)> =
        std::sync::OnceLock::new();
    SHARED.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let s = rt.block_on(setup());
        (rt, s)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    /// Arbitrary bytes after a valid header (the datum decoder is what is exposed), and
    /// arbitrary bytes as a whole, never panic and are never reported as retriable.
    #[test]
    fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..300)) {
        let (rt, s) = shared();
        rt.block_on(async {
            let id = u32::from_be_bytes(s.valid[1..5].try_into().unwrap());
            for bytes in [wire::frame(id, &body), body.clone()] {
                if let Err(e) = s.decoder.decode::<Transaction>(&bytes).await {
                    prop_assert!(!e.is_retriable(), "{e}");
                }
                let _ = s.decoder.decode::<EnrichedOrder>(&bytes).await;
                let _ = JsonCodec::default().decode::<Transaction>(&bytes);
            }
            Ok(())
        })?;
    }

    /// Valid messages with a few bytes changed exercise deeper decoder states.
    #[test]
    fn mutated_messages_never_panic(edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6)) {
        let (rt, s) = shared();
        rt.block_on(async {
            let mut bytes = s.valid.clone();
            for (at, b) in edits {
                let i = 5 + at % (bytes.len() - 5);
                bytes[i] = b;
            }
            match s.decoder.decode::<Transaction>(&bytes).await {
                Ok(_) => {}
                Err(e) => prop_assert!(!e.is_retriable(), "{e}"),
            }
            Ok(())
        })?;
    }

    /// Structure-aware: a varint (a length, count, union branch or zigzag number in Avro)
    /// inserted or put in place of a byte, the datum cut and garbage appended, or another
    /// schema id in the header (unknown ids are answered 404, known ones name a different
    /// writer schema).
    #[test]
    fn structured_avro_mutations_never_panic(
        at in any::<usize>(),
        op in 0u8..4,
        varint in prop::sample::select(vec![
            vec![0x01],
            vec![0x7f],
            vec![0xff, 0xff, 0xff, 0xff, 0x0f],
            vec![0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            vec![0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01],
        ]),
        garbage in proptest::collection::vec(any::<u8>(), 0..16),
        other_id in prop_oneof![1u32..20, any::<u32>()],
    ) {
        let (rt, s) = shared();
        rt.block_on(async {
            let id = u32::from_be_bytes(s.valid[1..5].try_into().unwrap());
            let body = &s.valid[5..];
            let i = at % (body.len() + 1);
            let rest = (i + 1).min(body.len());
            let (id, datum) = match op {
                0 => (id, [&body[..i], &varint[..], &body[i..]].concat()),
                1 => (id, [&body[..i], &varint[..], &body[rest..]].concat()),
                2 => (id, [&body[..i], &garbage[..]].concat()),
                _ => (other_id, body.to_vec()),
            };
            let bytes = wire::frame(id, &datum);
            for r in [
                s.decoder.decode::<Transaction>(&bytes).await.map(|_| ()),
                s.decoder.decode::<UserEvent>(&bytes).await.map(|_| ()),
                s.decoder.decode::<EnrichedOrder>(&bytes).await.map(|_| ()),
            ] {
                if let Err(e) = r {
                    prop_assert!(!e.is_retriable(), "{e}");
                }
            }
            Ok(())
        })?;
    }
}
