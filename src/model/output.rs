//! Output records: enriched orders, fraud alerts, KPI rows, DLQ and late records. Each is
//! keyed deterministically (by transaction_id, or by KPI family + window + dimension) so a
//! replay produces the same keys and sinks can upsert idempotently.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::input::{SourceCoord, Transaction};
use super::time::Millis;

/// A line item with catalog attributes joined in. `known` is false when the product was
/// not in the catalog (enriched as unknown and counted, not dropped).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnrichedItem {
    pub product_id: String,
    pub product_name: Option<String>,
    pub brand: Option<String>,
    pub unit_cost: Option<Decimal>,
    pub known: bool,
}

/// A validated, deduplicated transaction with catalog enrichment and its fraud score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnrichedOrder {
    pub order: Transaction,
    pub items: Vec<EnrichedItem>,
    pub fraud_score: f64,
    pub fraud_reasons: Vec<String>,
    pub source: SourceCoord,
}

/// A transaction scored above the alert threshold, with the features that explain it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FraudAlert {
    pub transaction_id: String,
    pub customer_id: String,
    #[serde(with = "super::time::millis")]
    pub timestamp: Millis,
    pub amount: Decimal,
    pub currency: String,
    pub score: f64,
    pub reasons: Vec<String>,
    pub features: BTreeMap<String, f64>,
    pub source: SourceCoord,
}

/// Lifecycle of a window result. Sinks keep the highest revision per key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmitStatus {
    Early,
    OnTime,
    LateUpdate,
    Final,
}

impl EmitStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EmitStatus::Early => "early",
            EmitStatus::OnTime => "on_time",
            EmitStatus::LateUpdate => "late_update",
            EmitStatus::Final => "final",
        }
    }
}

/// One revision of one windowed KPI result. The key is (kpi, window_start, window_end,
/// dimension); `revision` only grows for a key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KpiRow {
    /// KPI family, e.g. `revenue`, `funnel`, `quality`.
    pub kpi: String,
    #[serde(with = "super::time::millis")]
    pub window_start: Millis,
    #[serde(with = "super::time::millis")]
    pub window_end: Millis,
    /// Dimension of the row, e.g. `category=books` or `all`.
    pub dimension: String,
    /// Named values; counts and money alike are exact decimals.
    pub values: BTreeMap<String, Decimal>,
    pub status: EmitStatus,
    pub revision: u32,
}

impl KpiRow {
    /// The deterministic upsert key of this row.
    pub fn key(&self) -> String {
        format!(
            "{}|{}|{}|{}",
            self.kpi, self.window_start, self.window_end, self.dimension
        )
    }
}

/// A rejected input record: the original bytes, why it was rejected and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DlqRecord {
    #[serde(with = "serde_bytes_b64")]
    pub original: Vec<u8>,
    #[serde(default, with = "serde_opt_bytes_b64")]
    pub original_key: Option<Vec<u8>>,
    /// Short machine-readable reason, e.g. `undecodable`, `invalid_amount`, `key_mismatch`.
    pub reason: String,
    /// The rule that failed, e.g. `amount_matches_items`.
    pub rule: String,
    /// Human-readable explanation.
    pub detail: String,
    pub source: SourceCoord,
}

/// A record that arrived after its window's allowed lateness expired.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LateRecord {
    /// transaction_id or event_id.
    pub record_id: String,
    pub customer_id: String,
    #[serde(with = "super::time::millis")]
    pub event_time: Millis,
    /// The task watermark when the record arrived.
    #[serde(with = "super::time::millis")]
    pub watermark: Millis,
    pub lateness_ms: i64,
    pub reason: String,
    #[serde(with = "serde_bytes_b64")]
    pub original: Vec<u8>,
    pub source: SourceCoord,
}

/// Byte fields are base64 in JSON so stock tools can print them.
mod serde_bytes_b64 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::b64::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        super::b64::decode(&s).map_err(serde::de::Error::custom)
    }
}

mod serde_opt_bytes_b64 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_some(&super::b64::encode(b)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| super::b64::decode(&s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

mod b64 {
    use base64::Engine;

    pub fn encode(v: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(v)
    }

    pub fn decode(s: &str) -> Result<Vec<u8>, base64::DecodeError> {
        base64::engine::general_purpose::STANDARD.decode(s)
    }
}
