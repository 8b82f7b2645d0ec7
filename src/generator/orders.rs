//! Building transactions: line items priced from the catalog with optional line discounts,
//! the amount as exactly Σ quantity × unit_price − discount, payment statuses (mostly
//! completed, some failed, pending or refunded), payment methods by customer preference,
//! sales channels by device, and the customer's usual device, location and IP address.
//! Both ordinary sessions and fraud episodes build their transactions here.

use rand::seq::SliceRandom;
use rand::Rng;
use rust_decimal::Decimal;

use super::catalog::Catalog;
use super::customers::{Customer, PAYMENT_METHODS};
use super::ids::{money, uuid};
use crate::model::time::Millis;
use crate::model::{Device, LineItem, Location, Transaction, TxStatus};

/// A line of `qty` units of product `idx`, with `discount_pct` percent off the line.
pub fn line(catalog: &Catalog, idx: u32, qty: u8, discount_pct: u32) -> LineItem {
    let item = &catalog.items[idx as usize];
    let gross = item.price_cents * i64::from(qty);
    let discount = (gross * i64::from(discount_pct) + 50) / 100;
    LineItem {
        product_id: item.product.product_id.clone(),
        category: item.product.category.clone(),
        quantity: i32::from(qty),
        unit_price: money(item.price_cents),
        discount: money(discount),
    }
}

/// A line with a discount drawn for a normal or a promotion day.
pub fn discounted_line(
    rng: &mut impl Rng,
    catalog: &Catalog,
    idx: u32,
    qty: u8,
    promo: bool,
) -> LineItem {
    let pct = if promo && rng.gen_bool(0.6) {
        *[20, 25, 30, 40].choose(rng).expect("pcts")
    } else if rng.gen_bool(0.12) {
        *[5, 10, 15, 20].choose(rng).expect("pcts")
    } else {
        0
    };
    line(catalog, idx, qty, pct)
}

/// Σ quantity × unit_price − discount.
pub fn amount(items: &[LineItem]) -> Decimal {
    items
        .iter()
        .map(|i| Decimal::from(i.quantity) * i.unit_price - i.discount)
        .sum()
}

/// Share of payments that fail during a payment outage.
const OUTAGE_FAILURES: f64 = 0.8;

/// A payment outcome for a first attempt (`outage`: during a payment outage).
pub fn first_status(rng: &mut impl Rng, outage: bool) -> TxStatus {
    if outage && rng.gen_bool(OUTAGE_FAILURES) {
        return TxStatus::Failed;
    }
    match rng.gen_range(0..1000) {
        0..=919 => TxStatus::Completed,
        920..=959 => TxStatus::Failed,
        960..=984 => TxStatus::Pending,
        _ => TxStatus::Refunded,
    }
}

/// A payment outcome for a retry after a failure.
pub fn retry_status(rng: &mut impl Rng, outage: bool) -> TxStatus {
    if outage && rng.gen_bool(OUTAGE_FAILURES) {
        return TxStatus::Failed;
    }
    if rng.gen_bool(0.85) {
        TxStatus::Completed
    } else {
        TxStatus::Failed
    }
}

/// The payment method a customer uses this time.
pub fn payment_method(rng: &mut impl Rng, customer: &Customer) -> &'static str {
    match rng.gen_range(0..100) {
        0..=79 => customer.payment_methods[0],
        80..=91 => customer.payment_methods.last().expect("preferences"),
        _ => PAYMENT_METHODS.choose(rng).expect("methods").0,
    }
}

/// The sales channel for a purchase from `device_type`.
pub fn channel(rng: &mut impl Rng, device_type: &str) -> &'static str {
    if rng.gen_bool(0.04) {
        return "marketplace";
    }
    let app_share = match device_type {
        "mobile" => 0.7,
        "tablet" => 0.5,
        _ => 0.0,
    };
    if rng.gen_bool(app_share) {
        "app"
    } else {
        "web"
    }
}

/// Where, on what and from which address a customer usually shops.
#[derive(Debug, Clone)]
pub struct Context {
    pub location: Location,
    pub device: Device,
    pub ip_address: String,
}

impl Context {
    /// The customer's usual context with device `device`.
    pub fn usual(rng: &mut impl Rng, customer: &Customer, device: usize) -> Context {
        let ip = if customer.ips.len() > 1 && rng.gen_bool(0.2) {
            &customer.ips[1]
        } else {
            &customer.ips[0]
        };
        Context {
            location: customer.location.clone(),
            device: customer.devices[device % customer.devices.len()].clone(),
            ip_address: ip.clone(),
        }
    }
}

/// A transaction of `customer` at `at`.
pub fn transaction(
    rng: &mut impl Rng,
    customer: &Customer,
    session_id: &str,
    at: Millis,
    status: TxStatus,
    items: Vec<LineItem>,
    ctx: Context,
) -> Transaction {
    Transaction {
        transaction_id: uuid(rng),
        customer_id: customer.id.clone(),
        session_id: session_id.to_string(),
        timestamp: at,
        status,
        currency: customer.currency.to_string(),
        amount: amount(&items),
        payment_method: payment_method(rng, customer).to_string(),
        items,
        channel: channel(rng, &ctx.device.device_type).to_string(),
        location: ctx.location,
        device: ctx.device,
        ip_address: ctx.ip_address,
        email: Some(customer.email.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::ids::{rng_for, Stream};

    #[test]
    fn amount_is_sum_of_lines() {
        let mut rng = rng_for(1, Stream::World);
        let c = Catalog::generate(&mut rng, 50, 0);
        let items = vec![line(&c, 0, 3, 15), line(&c, 1, 1, 0)];
        let p0 = c.items[0].price_cents;
        let expect = p0 * 3 - (p0 * 3 * 15 + 50) / 100 + c.items[1].price_cents;
        assert_eq!(amount(&items), money(expect));
        assert_eq!(amount(&items).scale(), 2);
    }
}
