//! The changelog encoding of an RFM profile (`rfm/<customer>` values): fixed-width binary
//! instead of JSON, so a flush copies 57 bytes per changed customer rather than formatting
//! numbers and a decimal. Byte 0 is the format version ([`VERSION`]); a value that starts
//! with `{` is the JSON written by earlier releases and still restores; any other first
//! byte is an error naming it. Version 1, after the version byte (`engine::codec`
//! fields, little-endian): order count, revision, first and last order time, the measure
//! time `as_of`, and the lifetime value as its 16-byte decimal (scale and mantissa, so the
//! restored value is exactly the saved one). A short, long or damaged value is an error,
//! never a panic.

use super::rfm_state::RfmProfile;
use crate::engine::codec::{self, Reader};

/// The binary format this build writes (and the only binary one it reads).
pub const VERSION: u8 = 1;

/// The encoded size of a version-1 profile.
pub const SIZE: usize = 1 + 5 * 8 + 16;

/// Appends the version-1 encoding of `p` to `out`.
pub fn encode(p: &RfmProfile, out: &mut Vec<u8>) {
    out.reserve(SIZE);
    out.push(VERSION);
    codec::put_u64(out, p.orders);
    codec::put_u64(out, p.revision);
    codec::put_i64(out, p.first);
    codec::put_i64(out, p.last);
    codec::put_i64(out, p.as_of);
    codec::put_decimal(out, p.value);
}

/// Decodes a profile value: version 1, or the legacy JSON.
pub fn decode(v: &[u8]) -> Result<RfmProfile, String> {
    match v.first() {
        Some(&VERSION) => {
            let mut r = Reader::new(&v[1..]);
            let orders = r.u64()?;
            let revision = r.u64()?;
            let (first, last, as_of) = (r.i64()?, r.i64()?, r.i64()?);
            let value = r.decimal()?;
            r.finish()?;
            Ok(RfmProfile::new(orders, value, first, last, as_of, revision))
        }
        Some(b'{') => serde_json::from_slice(v).map_err(|e| format!("legacy JSON profile: {e}")),
        Some(b) => Err(format!(
            "unknown RFM profile format (first byte {b:#04x}; this build reads binary \
             version {VERSION} and the legacy JSON)"
        )),
        None => Err("empty RFM profile value".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;

    fn sample() -> RfmProfile {
        RfmProfile::new(7, Decimal::new(-1_234_567, 3), -5, i64::MAX, i64::MIN, 42)
    }

    #[test]
    fn round_trips_exactly_and_reads_the_legacy_json() {
        let p = sample();
        let mut v = Vec::new();
        encode(&p, &mut v);
        assert_eq!(v.len(), SIZE);
        assert_eq!(decode(&v), Ok(p));
        let big = RfmProfile::new(1, Decimal::MAX, 0, 0, 0, u64::MAX);
        v.clear();
        encode(&big, &mut v);
        assert_eq!(decode(&v), Ok(big));
        let legacy = serde_json::to_vec(&p).unwrap();
        assert_eq!(legacy[0], b'{', "the JSON earlier releases wrote");
        assert_eq!(decode(&legacy), Ok(p));
    }

    #[test]
    fn damaged_values_are_errors() {
        let mut v = Vec::new();
        encode(&sample(), &mut v);
        for n in 0..v.len() {
            assert!(decode(&v[..n]).is_err(), "truncated to {n}");
        }
        let mut long = v.clone();
        long.push(0);
        assert!(decode(&long).is_err());
        let mut bad_scale = v.clone();
        bad_scale[SIZE - 16 + 2] = 40;
        assert!(decode(&bad_scale).is_err());
        assert!(decode(&[2]).unwrap_err().contains("0x02"));
        assert!(decode(b"{").is_err());
    }
}
