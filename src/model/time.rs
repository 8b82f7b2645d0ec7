//! Event-time helpers: serde for millisecond timestamps that accept either epoch
//! milliseconds or an RFC 3339 string on input (JSON producers send both) and always write
//! epoch milliseconds, plus formatting for logs and exports.

use serde::{Deserializer, Serializer};

/// Milliseconds since the Unix epoch, UTC.
pub type Millis = i64;

/// Formats epoch milliseconds as RFC 3339 (UTC), for logs, CSV exports and SQL.
pub fn to_rfc3339(ms: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| ms.to_string())
}

/// Parses RFC 3339 into epoch milliseconds.
pub fn parse_rfc3339(s: &str) -> Option<Millis> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// Accepts epoch milliseconds (any integer, or a float without a fraction) or RFC 3339
/// text. A hand-written visitor rather than an untagged enum: it is on the decode hot path
/// and must not buffer.
struct MillisVisitor;

impl serde::de::Visitor<'_> for MillisVisitor {
    type Value = Millis;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("epoch milliseconds or an RFC 3339 timestamp")
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Millis, E> {
        Ok(v)
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Millis, E> {
        i64::try_from(v).map_err(|_| E::custom(format!("timestamp {v} out of range")))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Millis, E> {
        if v.fract() == 0.0 && v.abs() < 9.0e15 {
            Ok(v as i64)
        } else {
            Err(E::custom(format!("invalid timestamp {v}")))
        }
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Millis, E> {
        parse_rfc3339(s).ok_or_else(|| E::custom(format!("invalid timestamp {s:?}")))
    }
}

/// `#[serde(with = "crate::model::time::millis")]`
pub mod millis {
    use super::*;

    pub fn serialize<S: Serializer>(v: &Millis, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(*v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Millis, D::Error> {
        d.deserialize_any(MillisVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip() {
        let ms = 1_700_000_000_123;
        assert_eq!(parse_rfc3339(&to_rfc3339(ms)), Some(ms));
    }
}
