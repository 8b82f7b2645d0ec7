//! The bound against real encodings: hostile transactions (quotes, backslashes, control
//! characters, multi-byte text, the widest numbers, many items, catalog text at its cap)
//! encoded as enriched orders and fraud alerts in JSON and Confluent Avro must never
//! exceed [`output_bound`].

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use super::*;
use crate::codec::avro::encode_framed;
use crate::codec::JsonCodec;
use crate::engine::testkit;
use crate::model::{EnrichedItem, EnrichedOrder, FraudAlert, LineItem, SourceCoord};

/// The widest decimal (31 characters) that the Avro schemas' scale of 2 can hold.
const WIDEST: Decimal = Decimal::from_parts(u32::MAX, u32::MAX, u32::MAX, true, 2);

fn source() -> SourceCoord {
    SourceCoord {
        topic: "t".repeat(249),
        partition: i32::MIN,
        offset: i64::MIN,
    }
}

fn catalog_text(seed: &str) -> String {
    let mut s = seed.repeat(1000);
    bound_catalog_text(&mut s);
    s
}

fn outputs(t: &Transaction) -> (EnrichedOrder, FraudAlert) {
    let items = t
        .items
        .iter()
        .map(|i| EnrichedItem {
            product_id: i.product_id.clone(),
            product_name: Some(catalog_text("\u{1}\"")),
            brand: Some(catalog_text("é\\")),
            unit_cost: Some(WIDEST),
            known: true,
        })
        .collect();
    let order = EnrichedOrder {
        order: t.clone(),
        items,
        fraud_score: -1.234_567_890_123_456_7e-300,
        fraud_reasons: (0..12)
            .map(|i| format!("reason_number_{i}_of_many"))
            .collect(),
        source: source(),
    };
    let features: BTreeMap<String, f64> = (0..18)
        .map(|i| (format!("feature_name_{i}"), -1.797_693_134_862_315_7e308))
        .collect();
    let alert = FraudAlert {
        transaction_id: t.transaction_id.clone(),
        customer_id: t.customer_id.clone(),
        timestamp: i64::MIN,
        amount: t.amount,
        currency: t.currency.clone(),
        score: -1.234_567_890_123_456_7e-300,
        reasons: order.fraud_reasons.clone(),
        features,
        source: source(),
    };
    (order, alert)
}

/// The largest encoding, key included, of `t`'s outputs.
fn largest(t: &Transaction) -> usize {
    let (order, alert) = outputs(t);
    let json = JsonCodec::default();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    encode_framed(u32::MAX, &order, &mut a).unwrap();
    encode_framed(u32::MAX, &alert, &mut b).unwrap();
    let values = [
        json.encode(&order).unwrap().len(),
        json.encode(&alert).unwrap().len(),
        a.len(),
        b.len(),
    ];
    t.transaction_id.len() + values.into_iter().max().unwrap()
}

fn hostile(text: &str, items: usize) -> Transaction {
    let mut t = testkit::transaction(1, 1, 0);
    for s in [
        &mut t.transaction_id,
        &mut t.customer_id,
        &mut t.session_id,
        &mut t.currency,
        &mut t.payment_method,
        &mut t.location.country,
        &mut t.device.device_type,
        &mut t.device.os,
        &mut t.device.fingerprint,
        &mut t.ip_address,
        &mut t.channel,
    ] {
        *s = text.to_owned();
    }
    t.location.state = Some(text.to_owned());
    t.location.city = Some(text.to_owned());
    t.email = Some(text.to_owned());
    t.location.lat = -1.797_693_134_862_315_7e308;
    t.location.lon = f64::MIN_POSITIVE;
    t.timestamp = i64::MIN;
    t.amount = WIDEST;
    t.items = (0..items)
        .map(|_| LineItem {
            product_id: text.to_owned(),
            category: text.to_owned(),
            quantity: i32::MIN,
            unit_price: WIDEST,
            discount: WIDEST,
        })
        .collect();
    t
}

#[test]
fn the_bound_holds_for_hostile_records_in_both_formats() {
    let texts = [
        String::new(),
        "x".into(),
        "\"\\\u{0}\u{1f}\n".repeat(50),
        "é€😀".repeat(40),
        "plain-id-".repeat(500),
    ];
    for text in &texts {
        for items in [0, 1, 7, 200] {
            let t = hostile(text, items);
            let (bound, actual) = (output_bound(&t), largest(&t));
            assert!(
                actual <= bound,
                "{items} items of {text:?}: {actual} bytes > bound {bound}"
            );
        }
    }
}

#[test]
fn the_fixed_parts_have_margin() {
    // Empty strings and no items: what remains is the fixed part (the larger of the
    // order and the alert, so `per_item` may understate an item's share of the order).
    let empty = hostile("", 0);
    let fixed = largest(&empty);
    assert!(fixed * 4 < ORDER_FIXED_BYTES, "fixed part {fixed}");
    let per_item = largest(&hostile("", 1)) - fixed;
    let catalog = 2 * MAX_CATALOG_TEXT_BYTES;
    eprintln!("fixed part {fixed} bytes, per item {per_item} bytes with catalog text");
    assert!(
        per_item <= catalog + ITEM_FIXED_BYTES,
        "per item {per_item}"
    );
    // A plain record is far below its bound, not hopelessly pessimistic.
    let t = testkit::transaction(2, 2, 0);
    assert!(output_bound(&t) < 16 * 1024, "{}", output_bound(&t));
}

#[test]
fn json_str_len_is_serde_jsons_length_or_more() {
    for s in [
        "",
        "abc",
        "\"\\",
        "\u{0}\u{8}\t\n\u{c}\r\u{1f}",
        "é😀",
        "\u{7f}",
    ] {
        let real = serde_json::to_string(s).unwrap().len();
        assert!(json_str_len(s) >= real, "{s:?}");
    }
    assert_eq!(json_str_len("abc"), 5);
    assert_eq!(json_str_len("a\"b"), 6);
}

#[test]
fn catalog_text_is_cut_at_a_character_boundary() {
    let mut short = "Blue Mug".to_owned();
    assert!(!bound_catalog_text(&mut short));
    assert_eq!(short, "Blue Mug");
    for seed in ["a", "é", "😀", "\"", "\u{1}"] {
        let mut s = seed.repeat(2_000);
        assert!(bound_catalog_text(&mut s));
        assert!(json_str_len(&s) <= MAX_CATALOG_TEXT_BYTES, "{seed:?}");
        assert!(
            json_str_len(&s) + 6 > MAX_CATALOG_TEXT_BYTES,
            "{seed:?}: cut too much"
        );
        assert!(s.chars().all(|c| c.to_string() == seed));
    }
}

#[test]
fn least_bound_is_the_bound_of_empty_records() {
    for n in [0, 1, 500] {
        let mut t = hostile("", n);
        t.location.state = None;
        t.location.city = None;
        t.email = None;
        assert_eq!(least_bound(n), output_bound(&t), "{n} items");
    }
}

#[test]
fn quick_bound_is_the_exact_bound_of_the_worst_escaping() {
    // Every byte a control character: the cap is reached, so the two bounds meet.
    let worst = hostile(&"\u{1}".repeat(30), 3);
    assert_eq!(quick_bound(&worst), output_bound(&worst));
    let plain = testkit::transaction(2, 2, 0);
    assert!(quick_bound(&plain) > output_bound(&plain));
}

proptest::proptest! {
    /// `exceeds` decides exactly as the exact bound does, at every limit near it, and the
    /// quick bound never undercuts the exact one.
    #[test]
    fn exceeds_decides_as_the_exact_bound(
        text in "[a-z\"\\\\\u{0}-\u{1f}é😀]{0,40}",
        other in "[ -~]{0,12}",
        items in 0usize..5,
        email in proptest::option::of("[a-z@.\"]{0,20}"),
        delta in -3000i64..3000,
    ) {
        let mut t = hostile(&text, items);
        t.customer_id = other.clone();
        t.email = email;
        if let Some(i) = t.items.first_mut() {
            i.category = other;
        }
        let exact = output_bound(&t);
        proptest::prop_assert!(quick_bound(&t) >= exact);

        let quick = quick_bound(&t);
        let near = exact.saturating_add_signed(delta as isize);
        for limit in [near, exact, exact - 1, exact + 1, quick, quick - 1] {
            let want = (exact > limit).then_some(exact);
            proptest::prop_assert_eq!(exceeds(&t, limit), want, "limit {}", limit);
        }
    }
}
