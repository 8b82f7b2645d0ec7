//! Event-time helpers: serde for millisecond timestamps that accept either epoch
//! milliseconds or an RFC 3339 string on input (JSON producers send both) and always write
//! epoch milliseconds, plus formatting for logs and exports.

use serde::{Deserialize, Deserializer, Serializer};

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

#[derive(Deserialize)]
#[serde(untagged)]
enum MillisOrString {
    Millis(i64),
    Text(String),
}

/// `#[serde(with = "crate::model::time::millis")]`
pub mod millis {
    use super::*;

    pub fn serialize<S: Serializer>(v: &Millis, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(*v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Millis, D::Error> {
        match MillisOrString::deserialize(d)? {
            MillisOrString::Millis(v) => Ok(v),
            MillisOrString::Text(s) => parse_rfc3339(&s)
                .ok_or_else(|| serde::de::Error::custom(format!("invalid timestamp {s:?}"))),
        }
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
