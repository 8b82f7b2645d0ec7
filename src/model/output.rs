//! Output records: enriched orders, fraud and business alerts, KPI rows, DLQ and late
//! records. Each is keyed deterministically (by transaction_id, alert id, or by KPI family +
//! window + dimension) so a replay produces the same keys and sinks can upsert idempotently.

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

/// What a business alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BusinessAlertKind {
    /// Revenue in a window below a fraction of its trailing average.
    RevenueDrop,
    /// Failed payments over attempts in a window above a threshold.
    FailedPaymentRate,
    /// A product's stock (catalog inventory minus units sold since) at or below its
    /// reorder point.
    LowStock,
}

impl BusinessAlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BusinessAlertKind::RevenueDrop => "revenue_drop",
            BusinessAlertKind::FailedPaymentRate => "failed_payment_rate",
            BusinessAlertKind::LowStock => "low_stock",
        }
    }
}

/// A business threshold alert, raised on a settled (`final`) window: what (`kind`), where
/// (`dimension` and the window), the value and the threshold it crossed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusinessAlert {
    /// Deterministic key, the same in a replay.
    pub alert_id: String,
    pub kind: BusinessAlertKind,
    pub dimension: String,
    #[serde(with = "super::time::millis")]
    pub window_start: Millis,
    #[serde(with = "super::time::millis")]
    pub window_end: Millis,
    pub value: Decimal,
    pub threshold: Decimal,
    /// `revenue_drop`: the trailing average the threshold derives from.
    #[serde(default)]
    pub baseline: Option<Decimal>,
    pub detail: String,
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

    /// The key of the row's series: the family, the window size and the dimension, the
    /// same for every window of it. Stage 1 routes partials by it, so one stage-2 merger
    /// sees every window of a series (trailing averages need them all).
    pub fn series_key(&self) -> String {
        format!(
            "{}|{}|{}",
            self.kpi,
            self.window_end.saturating_sub(self.window_start),
            self.dimension
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

/// Byte fields are base64 strings in JSON so stock tools can print them, and raw bytes in
/// binary formats. serde cannot tell the two apart (serde_avro_fast reports itself
/// human-readable), so the Avro encoder switches to raw bytes for the duration of one
/// serialization with [`with_raw_bytes`]. Deserialization accepts both forms: a string is
/// base64-decoded, a byte string is taken as is.
pub mod bytes_repr {
    use std::cell::Cell;

    thread_local! {
        static RAW: Cell<bool> = const { Cell::new(false) };
    }

    /// Runs `f` with byte fields serialized as raw bytes instead of base64 text.
    pub fn with_raw_bytes<R>(f: impl FnOnce() -> R) -> R {
        struct Reset(bool);
        impl Drop for Reset {
            fn drop(&mut self) {
                RAW.with(|r| r.set(self.0));
            }
        }
        let _reset = Reset(RAW.with(|r| r.replace(true)));
        f()
    }

    pub(super) fn raw() -> bool {
        RAW.with(|r| r.get())
    }
}

mod serde_bytes_b64 {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        if super::bytes_repr::raw() {
            s.serialize_bytes(v)
        } else {
            s.serialize_str(&super::b64::encode(v))
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        d.deserialize_any(super::b64::BytesVisitor)
    }
}

mod serde_opt_bytes_b64 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) if super::bytes_repr::raw() => s.serialize_some(&Raw(b)),
            Some(b) => s.serialize_some(&super::b64::encode(b)),
            None => s.serialize_none(),
        }
    }

    /// Borrowed bytes that serialize as a byte string.
    struct Raw<'a>(&'a [u8]);

    impl serde::Serialize for Raw<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(self.0)
        }
    }

    /// Bytes in either representation (a hand-written impl: a derived newtype would ask
    /// binary deserializers for a newtype wrapper they do not have).
    struct Inner(Vec<u8>);

    impl<'de> Deserialize<'de> for Inner {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Inner, D::Error> {
            super::serde_bytes_b64::deserialize(d).map(Inner)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        Ok(Option::<Inner>::deserialize(d)?.map(|b| b.0))
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

    /// Accepts base64 text (JSON) or a byte string (binary formats).
    pub struct BytesVisitor;

    impl serde::de::Visitor<'_> for BytesVisitor {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("base64 text or bytes")
        }

        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Vec<u8>, E> {
            decode(v).map_err(E::custom)
        }

        fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }

        fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }
    }
}
