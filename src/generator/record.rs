//! What the generator emits: a `GenRecord` (topic, key, event time, typed payload or raw
//! bytes, and its position in the stream) and, for records with injected faults or fraud,
//! a `TruthEntry` — one line of the ground-truth JSONL file. Labels live only in the truth
//! entry, never in the record itself, so the processor under test cannot peek at them.

use serde::{Deserialize, Serialize};

use crate::model::time::Millis;
use crate::model::{Product, Transaction, UserEvent};

/// The three topics the generator writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TopicKind {
    Transactions,
    Events,
    Products,
}

impl TopicKind {
    pub const ALL: [TopicKind; 3] = [
        TopicKind::Transactions,
        TopicKind::Events,
        TopicKind::Products,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    /// Whether records on this topic count towards `--count` and `--rate`.
    pub fn is_input(self) -> bool {
        self != TopicKind::Products
    }
}

/// The topic names to write to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicNames {
    pub transactions: String,
    pub events: String,
    pub products: String,
}

impl Default for TopicNames {
    fn default() -> Self {
        TopicNames {
            transactions: "shop.transactions".into(),
            events: "shop.events".into(),
            products: "shop.products".into(),
        }
    }
}

impl TopicNames {
    pub fn name(&self, kind: TopicKind) -> &str {
        match kind {
            TopicKind::Transactions => &self.transactions,
            TopicKind::Events => &self.events,
            TopicKind::Products => &self.products,
        }
    }
}

/// The value of a record: a typed record for the encoder, or raw bytes produced by a
/// structural fault (a JSON document with a required field removed, undecodable bytes),
/// which every encoder passes through unchanged.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    Transaction(Transaction),
    Event(UserEvent),
    Product(Product),
    Raw(Vec<u8>),
}

/// One record of the generated stream.
#[derive(Debug, Clone, PartialEq)]
pub struct GenRecord {
    /// Position in the whole generated stream, all topics, from 0.
    pub seq: u64,
    /// Position among the records of its topic, from 0.
    pub topic_seq: u64,
    pub topic: TopicKind,
    /// customer_id on the input topics, product_id on the products topic.
    pub key: String,
    /// The event time the record carries (used as the Kafka message timestamp).
    pub event_time: Millis,
    pub payload: Payload,
}

/// Kinds of invalid records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InvalidKind {
    NegativePrice,
    BadEmail,
    BadCurrency,
    AmountMismatch,
    MissingField,
    Undecodable,
}

impl InvalidKind {
    pub fn as_str(self) -> &'static str {
        match self {
            InvalidKind::NegativePrice => "negative_price",
            InvalidKind::BadEmail => "bad_email",
            InvalidKind::BadCurrency => "bad_currency",
            InvalidKind::AmountMismatch => "amount_mismatch",
            InvalidKind::MissingField => "missing_field",
            InvalidKind::Undecodable => "undecodable",
        }
    }
}

/// Fraud patterns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FraudPattern {
    VelocityBurst,
    ImpossibleTravel,
    CardTesting,
    AmountOutlier,
    NewDevice,
    HighRiskCountry,
}

impl FraudPattern {
    pub const ALL: [FraudPattern; 6] = [
        FraudPattern::VelocityBurst,
        FraudPattern::ImpossibleTravel,
        FraudPattern::CardTesting,
        FraudPattern::AmountOutlier,
        FraudPattern::NewDevice,
        FraudPattern::HighRiskCountry,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FraudPattern::VelocityBurst => "velocity_burst",
            FraudPattern::ImpossibleTravel => "impossible_travel",
            FraudPattern::CardTesting => "card_testing",
            FraudPattern::AmountOutlier => "amount_outlier",
            FraudPattern::NewDevice => "new_device",
            FraudPattern::HighRiskCountry => "high_risk_country",
        }
    }
}

/// A ground-truth label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Label {
    /// An exact re-send of an earlier transaction.
    Duplicate,
    /// Event time moved back by at most the configured out-of-order bound.
    OutOfOrder,
    /// Event time moved back far beyond the configured lateness.
    Late,
    Invalid(InvalidKind),
    Fraud(FraudPattern),
    /// A valid transaction with a line whose product the catalog does not have.
    UnknownProduct,
}

impl Label {
    /// The label as written to the truth file: `duplicate`, `out_of_order`, `late`,
    /// `invalid:<kind>`, `fraud:<pattern>`, `unknown_product`.
    pub fn name(self) -> String {
        match self {
            Label::Duplicate => "duplicate".into(),
            Label::OutOfOrder => "out_of_order".into(),
            Label::Late => "late".into(),
            Label::Invalid(k) => format!("invalid:{}", k.as_str()),
            Label::Fraud(p) => format!("fraud:{}", p.as_str()),
            Label::UnknownProduct => "unknown_product".into(),
        }
    }
}

/// One line of the truth file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthEntry {
    pub seq: u64,
    pub topic: String,
    pub topic_seq: u64,
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// Event time the record carries (or would carry, for raw invalid records).
    pub event_time: Millis,
    pub labels: Vec<String>,
    /// For duplicates: `seq` of the original.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_seq: Option<u64>,
    /// For duplicates, out-of-order and late records: the largest event time on the input
    /// topics before this record, minus this record's event time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_ms: Option<i64>,
    /// For fraud: the episode (one fraudster's run of transactions) the record belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub episode: Option<u64>,
    /// For `invalid:missing_field`: the field that was removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}
