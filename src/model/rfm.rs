//! The customer RFM profile output: one record per customer on the compacted
//! `shop.customers.rfm` topic, keyed by customer_id. Each emission carries a per-customer
//! revision that grows by one, so a compacted topic or an upserting sink keeps the latest
//! profile (higher revision wins) however often it is redelivered.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::time::Millis;

/// A customer's purchase profile with its RFM scores and segment, measured at `as_of`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerRfm {
    pub customer_id: String,
    /// Grows by one per emission of this customer.
    pub revision: i64,
    /// Completed orders.
    pub order_count: i64,
    /// Sum of the completed orders' amounts in `currency` (the reporting currency).
    pub lifetime_value: Decimal,
    pub currency: String,
    #[serde(with = "super::time::millis")]
    pub first_order_at: Millis,
    #[serde(with = "super::time::millis")]
    pub last_order_at: Millis,
    /// The event time the scores were measured at (the watermark when emitted, at least
    /// the last order).
    #[serde(with = "super::time::millis")]
    pub as_of: Millis,
    /// Whole days from the last order to `as_of`.
    pub recency_days: i64,
    pub recency: i32,
    pub frequency: i32,
    pub monetary: i32,
    pub segment: String,
}
