//! Helpers shared by the generator's integration tests: a small, fast configuration, the
//! stream collected in memory, and independent validity checks (deliberately not the
//! generator's own code, so a generator bug cannot hide behind itself).
#![allow(dead_code)]

use std::collections::HashSet;

use rust_decimal::Decimal;
use shopstream::generator::{
    Emitted, FaultConfig, Generator, GeneratorConfig, JsonEncoder, PayloadEncoder, ShopConfig,
    TopicNames,
};
use shopstream::model::Transaction;

/// 2024-03-04 17:00 UTC, an ordinary Monday.
pub const START: i64 = 1_709_571_600_000;

pub fn config(seed: u64, limit: u64) -> GeneratorConfig {
    GeneratorConfig {
        shop: ShopConfig {
            seed,
            start: START,
            event_rate: 1000.0,
            customers: 2_000,
            products: 300,
            fraud_rate: 0.02,
            payment_outage: None,
        },
        faults: FaultConfig::default(),
        topics: TopicNames::default(),
        limit: Some(limit),
    }
}

pub fn collect(cfg: &GeneratorConfig) -> Vec<Emitted> {
    Generator::new(cfg).collect()
}

pub fn json(e: &Emitted) -> Vec<u8> {
    let mut out = Vec::new();
    JsonEncoder.encode("t", &e.record, &mut out).unwrap();
    out
}

pub fn iso_currencies() -> HashSet<&'static str> {
    ["USD", "EUR", "GBP", "CAD", "AUD", "JPY", "MXN", "CHF"]
        .into_iter()
        .collect()
}

pub fn email_ok(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.contains(' ')
}

/// Σ quantity × unit_price − discount.
pub fn items_total(tx: &Transaction) -> Decimal {
    tx.items
        .iter()
        .map(|i| Decimal::from(i.quantity) * i.unit_price - i.discount)
        .sum()
}

/// Why a decoded transaction is invalid, if it is.
pub fn tx_problem(tx: &Transaction) -> Option<&'static str> {
    if tx.items.iter().any(|i| i.unit_price < Decimal::ZERO) {
        return Some("negative_price");
    }
    if !tx.email.as_deref().is_some_and(email_ok) {
        return Some("bad_email");
    }
    if !iso_currencies().contains(tx.currency.as_str()) {
        return Some("bad_currency");
    }
    if (tx.amount - items_total(tx)).abs() > Decimal::new(1, 2) {
        return Some("amount_mismatch");
    }
    None
}
