//! Deterministic builders of valid input records for tests and benchmarks: transaction ids
//! in the generator's lowercase-UUID form, customers `customer-<n>`, one to three line
//! items from a small category set, and an amount that equals the items' total. Shared so
//! unit tests, property tests and the engine benchmark build records one way.

use rust_decimal::Decimal;

use super::dedup::id::format_uuid;
use crate::model::time::Millis;
use crate::model::{Device, EventType, LineItem, Location, Transaction, TxStatus, UserEvent};

/// The categories items are drawn from.
pub const CATEGORIES: [&str; 6] = ["books", "electronics", "home", "toys", "sports", "beauty"];

/// The id of transaction number `n` (a UUID; distinct `n` give distinct ids).
pub fn transaction_id(n: u64) -> String {
    format_uuid(u128::from(n).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835) | 1 << 76)
}

pub fn customer_id(n: u64) -> String {
    format!("customer-{n}")
}

fn device() -> Device {
    Device {
        device_type: "mobile".into(),
        os: "android".into(),
        fingerprint: "fp-1".into(),
    }
}

/// A valid, completed transaction; items and prices vary with `n`.
pub fn transaction(n: u64, customer: u64, ts: Millis) -> Transaction {
    let items: Vec<LineItem> = (0..1 + n % 3)
        .map(|i| {
            let k = n.wrapping_add(i * 7);
            LineItem {
                product_id: format!("p-{}", k % 50),
                category: CATEGORIES[(k % CATEGORIES.len() as u64) as usize].to_owned(),
                quantity: 1 + (k % 4) as i32,
                unit_price: Decimal::new(199 + (k % 1000) as i64 * 5, 2),
                discount: Decimal::new(((k % 3) * 50) as i64, 2),
            }
        })
        .collect();
    let amount = items
        .iter()
        .map(|i| Decimal::from(i.quantity) * i.unit_price - i.discount)
        .sum();
    Transaction {
        transaction_id: transaction_id(n),
        customer_id: customer_id(customer),
        session_id: format!("s-{customer}"),
        timestamp: ts,
        status: TxStatus::Completed,
        currency: "EUR".into(),
        amount,
        payment_method: "card".into(),
        items,
        location: Location {
            country: "DE".into(),
            state: None,
            city: Some("Berlin".into()),
            lat: 52.52,
            lon: 13.40,
        },
        device: device(),
        ip_address: "192.0.2.1".into(),
        channel: "web".into(),
        email: Some(format!("c{customer}@example.com")),
    }
}

/// A valid user event.
pub fn event(n: u64, customer: u64, ts: Millis, event_type: EventType) -> UserEvent {
    UserEvent {
        event_id: format!("e-{n}"),
        customer_id: customer_id(customer),
        session_id: format!("s-{customer}"),
        event_type,
        product_id: Some(format!("p-{}", n % 50)),
        timestamp: ts,
        page_url: "/p".into(),
        device: device(),
        referrer: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_distinct_canonical_uuids() {
        let ids: std::collections::HashSet<String> = (0..10_000).map(transaction_id).collect();
        assert_eq!(ids.len(), 10_000);
        assert!(ids
            .iter()
            .all(|s| super::super::dedup::id::parse_uuid(s).is_some()));
    }
}
