//! Input records: transactions and user events (keyed by customer_id on their topics) and
//! catalog products (compacted topic keyed by product_id), plus the source coordinates
//! every record carries through the pipeline.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::time::Millis;

/// Where a record came from: its input topic, partition and offset. Every output that a
/// record causes is tagged with it so recovery can tell exactly which input it reflects.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SourceCoord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TxStatus {
    Pending,
    Completed,
    Failed,
    Refunded,
}

impl TxStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TxStatus::Pending => "pending",
            TxStatus::Completed => "completed",
            TxStatus::Failed => "failed",
            TxStatus::Refunded => "refunded",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineItem {
    pub product_id: String,
    pub category: String,
    pub quantity: i32,
    /// Price of one unit, 2 decimal places.
    pub unit_price: Decimal,
    /// Discount on the whole line (not per unit), 2 decimal places.
    pub discount: Decimal,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Location {
    /// ISO 3166-1 alpha-2.
    pub country: String,
    pub state: Option<String>,
    pub city: Option<String>,
    pub lat: f64,
    pub lon: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Device {
    #[serde(rename = "type")]
    pub device_type: String,
    pub os: String,
    pub fingerprint: String,
}

/// A purchase attempt. `amount` must equal the sum over items of
/// `quantity * unit_price - discount` within one cent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transaction {
    pub transaction_id: String,
    pub customer_id: String,
    pub session_id: String,
    /// Event time.
    #[serde(with = "super::time::millis")]
    pub timestamp: Millis,
    pub status: TxStatus,
    /// ISO 4217 code.
    pub currency: String,
    pub amount: Decimal,
    pub payment_method: String,
    pub items: Vec<LineItem>,
    pub location: Location,
    pub device: Device,
    pub ip_address: String,
    pub channel: String,
    /// Optional contact email; validated when present.
    #[serde(default)]
    pub email: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    PageView,
    Search,
    AddToCart,
    RemoveFromCart,
    CheckoutStart,
    Purchase,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::PageView => "page_view",
            EventType::Search => "search",
            EventType::AddToCart => "add_to_cart",
            EventType::RemoveFromCart => "remove_from_cart",
            EventType::CheckoutStart => "checkout_start",
            EventType::Purchase => "purchase",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserEvent {
    pub event_id: String,
    pub customer_id: String,
    pub session_id: String,
    pub event_type: EventType,
    #[serde(default)]
    pub product_id: Option<String>,
    #[serde(with = "super::time::millis")]
    pub timestamp: Millis,
    pub page_url: String,
    pub device: Device,
    #[serde(default)]
    pub referrer: Option<String>,
}

/// A catalog entry from the compacted `shop.products` topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    pub product_id: String,
    pub name: String,
    pub category: String,
    pub brand: String,
    pub price: Decimal,
    pub cost: Decimal,
    pub inventory_count: i64,
    /// Stock level at or below which a low-stock alert fires.
    #[serde(default)]
    pub reorder_point: Option<i64>,
    #[serde(with = "super::time::millis")]
    pub updated_at: Millis,
}

/// A decoded input record.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Transaction(Transaction),
    Event(UserEvent),
}

impl Record {
    pub fn customer_id(&self) -> &str {
        match self {
            Record::Transaction(t) => &t.customer_id,
            Record::Event(e) => &e.customer_id,
        }
    }

    pub fn event_time(&self) -> Millis {
        match self {
            Record::Transaction(t) => t.timestamp,
            Record::Event(e) => e.timestamp,
        }
    }
}
