//! Sample values of every model type for the codec tests, chosen to exercise the edges:
//! negative and large decimals, empty and non-ASCII strings, present and absent optional
//! fields, every enum, empty collections, and raw non-UTF-8 bytes.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::str::FromStr;

use rust_decimal::Decimal;
use shopstream::model::*;

pub fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).expect("decimal literal")
}

pub fn device() -> Device {
    Device {
        device_type: "mobile".into(),
        os: "iOS 17".into(),
        fingerprint: "fp-8c1e".into(),
    }
}

pub fn source() -> SourceCoord {
    SourceCoord {
        topic: "shop.transactions".into(),
        partition: 7,
        offset: 1_234_567_890_123,
    }
}

pub fn transaction() -> Transaction {
    Transaction {
        transaction_id: "tx-000042".into(),
        customer_id: "cust-17".into(),
        session_id: "sess-9".into(),
        timestamp: 1_717_171_717_171,
        status: TxStatus::Completed,
        currency: "EUR".into(),
        amount: dec("1234.50"),
        payment_method: "card".into(),
        items: vec![
            LineItem {
                product_id: "p-1".into(),
                category: "books".into(),
                quantity: 3,
                unit_price: dec("400.00"),
                discount: dec("0.50"),
            },
            LineItem {
                product_id: "p-2".into(),
                category: "bücher & café".into(),
                quantity: 1,
                unit_price: dec("35.00"),
                discount: dec("0.00"),
            },
        ],
        location: Location {
            country: "DE".into(),
            state: Some("BE".into()),
            city: None,
            lat: 52.52,
            lon: -13.405,
        },
        device: device(),
        ip_address: "203.0.113.7".into(),
        channel: "web".into(),
        email: Some("anna@example.com".into()),
    }
}

/// Variants that stress decimals and optional fields.
pub fn transactions() -> Vec<Transaction> {
    let mut out = vec![transaction()];
    for (i, (amount, status)) in [
        ("0.00", TxStatus::Pending),
        ("-5.01", TxStatus::Refunded),
        ("0.10", TxStatus::Failed),
        ("9999999999999999.99", TxStatus::Completed),
        ("-9999999999999999.99", TxStatus::Refunded),
    ]
    .into_iter()
    .enumerate()
    {
        let mut t = transaction();
        t.transaction_id = format!("tx-{i}");
        t.amount = dec(amount);
        t.status = status;
        t.items.clear();
        t.email = None;
        t.location.state = None;
        t.customer_id = String::new();
        out.push(t);
    }
    out
}

pub fn user_events() -> Vec<UserEvent> {
    [
        EventType::PageView,
        EventType::Search,
        EventType::AddToCart,
        EventType::RemoveFromCart,
        EventType::CheckoutStart,
        EventType::Purchase,
    ]
    .into_iter()
    .enumerate()
    .map(|(i, event_type)| UserEvent {
        event_id: format!("ev-{i}"),
        customer_id: "cust-17".into(),
        session_id: "sess-9".into(),
        event_type,
        product_id: (i % 2 == 0).then(|| format!("p-{i}")),
        timestamp: 1_717_171_717_000 + i as i64,
        page_url: "https://shop.example/p?id=1&q=ü".into(),
        device: device(),
        referrer: (i % 3 == 0).then(|| "https://search.example".into()),
    })
    .collect()
}

pub fn product() -> Product {
    Product {
        product_id: "p-1".into(),
        name: "The Rust Book".into(),
        category: "books".into(),
        brand: "No Starch".into(),
        price: dec("39.95"),
        cost: dec("12.30"),
        inventory_count: 1_000_000_000_000,
        reorder_point: Some(5),
        updated_at: 1_700_000_000_000,
    }
}

pub fn enriched_order() -> EnrichedOrder {
    EnrichedOrder {
        order: transaction(),
        items: vec![
            EnrichedItem {
                product_id: "p-1".into(),
                product_name: Some("The Rust Book".into()),
                brand: Some("No Starch".into()),
                unit_cost: Some(dec("12.30")),
                known: true,
            },
            EnrichedItem {
                product_id: "p-2".into(),
                product_name: None,
                brand: None,
                unit_cost: None,
                known: false,
            },
        ],
        fraud_score: 0.125,
        fraud_reasons: vec!["new_device".into(), "velocity_1h".into()],
        source: source(),
    }
}

pub fn fraud_alert() -> FraudAlert {
    FraudAlert {
        transaction_id: "tx-000042".into(),
        customer_id: "cust-17".into(),
        timestamp: 1_717_171_717_171,
        amount: dec("1234.50"),
        currency: "EUR".into(),
        score: 0.97,
        reasons: vec!["impossible_travel".into()],
        features: BTreeMap::from([
            ("amount_zscore".to_string(), 4.5),
            ("travel_kmh".to_string(), 2400.0),
            ("velocity_1h".to_string(), -0.0),
        ]),
        source: source(),
    }
}

pub fn kpi_rows() -> Vec<KpiRow> {
    [
        EmitStatus::Early,
        EmitStatus::OnTime,
        EmitStatus::LateUpdate,
        EmitStatus::Final,
    ]
    .into_iter()
    .enumerate()
    .map(|(i, status)| KpiRow {
        kpi: "revenue".into(),
        window_start: 1_717_171_680_000,
        window_end: 1_717_171_740_000,
        dimension: "category=books".into(),
        values: if i == 0 {
            BTreeMap::new()
        } else {
            BTreeMap::from([
                ("revenue".to_string(), dec("1234.50")),
                ("orders".to_string(), dec("3")),
                ("conversion".to_string(), dec("0.123456")),
            ])
        },
        status,
        revision: u32::MAX - i as u32,
    })
    .collect()
}

pub fn dlq_record() -> DlqRecord {
    DlqRecord {
        original: vec![0x00, 0xff, 0xfe, b'{', 0x80],
        original_key: Some(b"cust-17".to_vec()),
        reason: "undecodable".into(),
        rule: "decode".into(),
        detail: "magic byte 0x01".into(),
        source: source(),
    }
}

pub fn late_record() -> LateRecord {
    LateRecord {
        record_id: "tx-000042".into(),
        customer_id: "cust-17".into(),
        event_time: 1_717_171_717_171,
        watermark: 1_717_181_717_171,
        lateness_ms: 10_000_000,
        reason: "beyond_allowed_lateness".into(),
        original: vec![],
        source: source(),
    }
}
