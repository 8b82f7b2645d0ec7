//! Fuzz target for the JSON decoder (proptest, so it runs on stable in CI with a bounded
//! number of cases): structure-aware mutations of valid transactions, events and products
//! — fields removed, replaced by arbitrary JSON values of any type, wrapped in deep
//! nesting, strings blown up — plus byte-level cuts and insertions of the serialized text
//! and arbitrary text. Every input must decode or give a typed, non-retriable
//! [`DecodeError`] with a DLQ reason; none may panic or overflow the stack.

use proptest::prelude::*;
use serde_json::{json, Value};
use shopstream::codec::{DecodeError, DecodeLimits, JsonCodec};
use shopstream::model::{Product, Transaction, UserEvent};

const REASONS: &[&str] = &[
    "empty_payload",
    "json_syntax",
    "json_too_deep",
    "missing_field",
    "wrong_type",
    "invalid_value",
    "oversized_record",
];

fn samples() -> Vec<Value> {
    vec![
        json!({
            "transaction_id": "tx-1", "customer_id": "c-1", "session_id": "s-1",
            "timestamp": 1_717_171_717_171i64, "status": "completed", "currency": "USD",
            "amount": "12.50", "payment_method": "card",
            "items": [{"product_id": "p-1", "category": "books", "quantity": 1,
                       "unit_price": "12.50", "discount": "0.00"}],
            "location": {"country": "US", "state": "CA", "city": null, "lat": 1.5, "lon": 2.5},
            "device": {"type": "desktop", "os": "linux", "fingerprint": "f"},
            "ip_address": "10.0.0.1", "channel": "web", "email": "a@example.com"
        }),
        json!({
            "event_id": "e-1", "customer_id": "c-1", "session_id": "s-1",
            "event_type": "add_to_cart", "product_id": "p-1", "timestamp": 1_717_171_717_171i64,
            "page_url": "/p/1", "device": {"type": "mobile", "os": "ios", "fingerprint": "f"},
            "referrer": null
        }),
        json!({
            "product_id": "p-1", "name": "Book", "category": "books", "brand": "B",
            "price": "12.50", "cost": "7.00", "inventory_count": 3, "updated_at": 1
        }),
    ]
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,24}".prop_map(Value::from),
        (0usize..50_000).prop_map(|n| Value::from("x".repeat(n))),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::from),
            prop::collection::btree_map(".{0,12}", inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// One structural change to a JSON document.
#[derive(Debug, Clone)]
enum Mutation {
    Remove(usize),
    Replace(usize, Value),
    Nest(usize, usize),
    Add(String, Value),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Remove),
        (any::<usize>(), any_json()).prop_map(|(i, v)| Mutation::Replace(i, v)),
        (any::<usize>(), 1usize..400).prop_map(|(i, d)| Mutation::Nest(i, d)),
        (".{0,12}", any_json()).prop_map(|(k, v)| Mutation::Add(k, v)),
    ]
}

fn apply(doc: &mut Value, m: &Mutation) {
    let Some(obj) = doc.as_object_mut() else {
        return;
    };
    let keys: Vec<String> = obj.keys().cloned().collect();
    let key = |i: &usize| keys[i % keys.len()].clone();
    match m {
        Mutation::Remove(i) => {
            obj.remove(&key(i));
        }
        Mutation::Replace(i, v) => {
            obj.insert(key(i), v.clone());
        }
        Mutation::Nest(i, depth) => {
            let k = key(i);
            let mut v = obj.remove(&k).unwrap_or(Value::Null);
            for _ in 0..*depth {
                v = Value::from(vec![v]);
            }
            obj.insert(k, v);
        }
        Mutation::Add(k, v) => {
            obj.insert(k.clone(), v.clone());
        }
    }
}

/// Decodes `bytes` as every input type; each result must be a value or a typed error.
fn check(codec: &JsonCodec, bytes: &[u8]) -> Result<(), TestCaseError> {
    let errors: [Option<DecodeError>; 3] = [
        codec.decode::<Transaction>(bytes).err(),
        codec.decode::<UserEvent>(bytes).err(),
        codec.decode::<Product>(bytes).err(),
    ];
    for e in errors.into_iter().flatten() {
        prop_assert!(!e.is_retriable(), "{e}");
        prop_assert!(
            REASONS.contains(&e.reason()),
            "unexpected reason {}",
            e.reason()
        );
        prop_assert!(!e.detail().is_empty());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 384, ..ProptestConfig::default() })]

    /// Valid records with one to four structural mutations.
    #[test]
    fn mutated_records_decode_or_fail_typed(
        which in 0usize..3,
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let mut doc = samples()[which].clone();
        for m in &mutations {
            apply(&mut doc, m);
        }
        let bytes = serde_json::to_vec(&doc).unwrap();
        check(&JsonCodec::default(), &bytes)?;
        // A small record limit must turn big documents into `oversized_record`.
        let small = JsonCodec::new(DecodeLimits { max_record_bytes: 4096, ..DecodeLimits::default() });
        if bytes.len() > 4096 {
            prop_assert_eq!(small.decode::<Transaction>(&bytes).unwrap_err().reason(), "oversized_record");
        }
    }

    /// The serialized text of a valid record cut short, or with bytes spliced in.
    #[test]
    fn cut_and_spliced_text_fails_typed(
        which in 0usize..3,
        at in any::<usize>(),
        splice in prop::collection::vec(any::<u8>(), 0..12),
        cut in any::<bool>(),
    ) {
        let bytes = serde_json::to_vec(&samples()[which]).unwrap();
        let i = at % (bytes.len() + 1);
        let mut edited = bytes[..i].to_vec();
        edited.extend_from_slice(&splice);
        if !cut {
            edited.extend_from_slice(&bytes[i..]);
        }
        check(&JsonCodec::default(), &edited)?;
    }

    /// Arbitrary text, and deep runs of brackets with anything around them.
    #[test]
    fn arbitrary_text_fails_typed(text in ".{0,200}", depth in 0usize..100_000, open in "[\\[{]") {
        let codec = JsonCodec::default();
        check(&codec, text.as_bytes())?;
        let deep = format!("{text}{}{text}", open.repeat(depth));
        check(&codec, deep.as_bytes())?;
    }
}
