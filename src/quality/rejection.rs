//! Why a record was rejected: [`Rejection`] carries a short machine-readable reason (the
//! DLQ's `reason`, a metrics label), the rule that failed and a human-readable detail. The
//! codecs construct one for bytes they cannot decode ([`Rejection::undecodable`]); the
//! validation rules construct the others. The reason and rule names are constants here so
//! dashboards, alerts and tests share one spelling.

use crate::model::{DlqRecord, SourceCoord};

/// DLQ reasons.
pub mod reason {
    pub const UNDECODABLE: &str = "undecodable";
    pub const MISSING_FIELD: &str = "missing_field";
    pub const KEY_MISMATCH: &str = "key_mismatch";
    pub const FUTURE_TIMESTAMP: &str = "future_timestamp";
    pub const INVALID_AMOUNT: &str = "invalid_amount";
    pub const INVALID_ITEM: &str = "invalid_item";
    pub const AMOUNT_MISMATCH: &str = "amount_mismatch";
    pub const INVALID_CURRENCY: &str = "invalid_currency";
    pub const INVALID_EMAIL: &str = "invalid_email";
    pub const TOO_MANY_ITEMS: &str = "too_many_items";
    pub const OVERSIZED_OUTPUT: &str = "oversized_output";
}

/// Validation rules.
pub mod rule {
    pub const DECODE: &str = "decode";
    pub const REQUIRED_FIELDS: &str = "required_fields";
    pub const KEY_MATCHES_CUSTOMER_ID: &str = "key_matches_customer_id";
    pub const TIMESTAMP_NOT_FUTURE: &str = "timestamp_not_future";
    pub const AMOUNT_POSITIVE: &str = "amount_positive";
    pub const ITEM_QUANTITY_MIN: &str = "item_quantity_min";
    pub const ITEM_UNIT_PRICE_POSITIVE: &str = "item_unit_price_positive";
    pub const ITEM_DISCOUNT_NON_NEGATIVE: &str = "item_discount_non_negative";
    pub const AMOUNT_MATCHES_ITEMS: &str = "amount_matches_items";
    pub const CURRENCY_ISO4217: &str = "currency_iso4217";
    pub const EMAIL_FORMAT: &str = "email_format";
    pub const MAX_ITEMS: &str = "max_items";
    pub const OUTPUT_FITS_MESSAGE: &str = "output_fits_message";
}

/// A failed check: which rule, why, and details for a human.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub reason: String,
    pub rule: String,
    pub detail: String,
}

impl Rejection {
    pub fn new(reason: &str, rule: &str, detail: impl Into<String>) -> Self {
        Rejection {
            reason: reason.to_owned(),
            rule: rule.to_owned(),
            detail: detail.into(),
        }
    }

    /// For the codecs: the bytes could not be decoded (bad framing, unknown schema id,
    /// malformed Avro/JSON, missing required field...). `rule` names the decoding step.
    pub fn undecodable(rule: &str, detail: impl Into<String>) -> Self {
        Rejection::new(reason::UNDECODABLE, rule, detail)
    }

    /// For the codecs: the record decoded but lacks a required field.
    pub fn missing_field(field: &str) -> Self {
        Rejection::new(
            reason::MISSING_FIELD,
            rule::REQUIRED_FIELDS,
            format!("{field} is missing or empty"),
        )
    }

    /// The DLQ output for the rejected record.
    pub fn into_dlq(self, original: &[u8], key: Option<&[u8]>, source: SourceCoord) -> DlqRecord {
        DlqRecord {
            original: original.to_vec(),
            original_key: key.map(<[u8]>::to_vec),
            reason: self.reason,
            rule: self.rule,
            detail: self.detail,
            source,
        }
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.reason, self.rule, self.detail)
    }
}
