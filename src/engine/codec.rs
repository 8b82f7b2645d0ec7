//! Fixed-width binary building blocks for compact changelog values (RFM profiles, user
//! sessions): integers as little-endian bytes of their full width, decimals as their
//! 16-byte `rust_decimal` form (scale and 96-bit integer mantissa, so a restored amount is
//! exactly the saved one), and a [`Reader`] that takes them back off a byte slice. Every
//! read checks the bytes left and every decimal's flags, so a truncated or damaged value
//! is an error naming what was wrong, never a panic; counts are checked against the bytes
//! left before anything is allocated for them. Key builders write `<prefix><name>`
//! changelog keys with one exact-size allocation instead of `format!`.

use rust_decimal::Decimal;

/// The flag bits a valid `Decimal` may have: the scale (bits 16–23) and the sign (bit 31).
const DECIMAL_FLAGS: u32 = 0x801F_0000;

pub fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub fn put_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub fn put_decimal(out: &mut Vec<u8>, v: Decimal) {
    out.extend_from_slice(&v.serialize());
}

/// An optional event time: a 0/1 byte, then the time when present.
pub fn put_opt_i64(out: &mut Vec<u8>, v: Option<i64>) {
    match v {
        None => out.push(0),
        Some(t) => {
            out.push(1);
            put_i64(out, t);
        }
    }
}

/// A state value with a compact binary changelog form (the per-session aggregate of
/// session windows, see `session_codec`).
pub trait BinaryForm: Sized {
    /// Appends the encoding of `self`.
    fn encode(&self, out: &mut Vec<u8>);

    /// Reads one value back; damaged bytes are an error.
    fn decode(r: &mut Reader<'_>) -> Result<Self, String>;
}

/// The changelog key `<prefix><name>` in one allocation of its exact size.
pub fn prefixed_key(prefix: &[u8], name: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(prefix.len() + name.len());
    key.extend_from_slice(prefix);
    key.extend_from_slice(name);
    key
}

/// Reads fixed-width fields off the front of a value.
pub struct Reader<'a> {
    v: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(v: &'a [u8]) -> Self {
        Reader { v }
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let Some((head, rest)) = self.v.split_first_chunk::<N>() else {
            return Err(format!(
                "truncated: {} bytes left, {N} needed",
                self.v.len()
            ));
        };
        self.v = rest;
        Ok(*head)
    }

    pub fn byte(&mut self) -> Result<u8, String> {
        Ok(self.take::<1>()?[0])
    }

    pub fn bool(&mut self) -> Result<bool, String> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(format!("flag byte {b:#04x} is neither 0 nor 1")),
        }
    }

    pub fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take()?))
    }

    pub fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take()?))
    }

    pub fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_le_bytes(self.take()?))
    }

    pub fn opt_i64(&mut self) -> Result<Option<i64>, String> {
        Ok(if self.bool()? {
            Some(self.i64()?)
        } else {
            None
        })
    }

    pub fn decimal(&mut self) -> Result<Decimal, String> {
        let b: [u8; 16] = self.take()?;
        let flags = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        if flags & !DECIMAL_FLAGS != 0 || (flags >> 16) & 0xff > Decimal::MAX_SCALE {
            return Err(format!("invalid decimal flags {flags:#010x}"));
        }
        Ok(Decimal::deserialize(b))
    }

    /// A count of items of at least `item_bytes` bytes each, checked against the bytes
    /// left so that a damaged count cannot cause an outsized allocation.
    pub fn count(&mut self, item_bytes: usize) -> Result<usize, String> {
        let n = self.u32()? as usize;
        if n.saturating_mul(item_bytes.max(1)) > self.v.len() {
            return Err(format!("count {n} exceeds the {} bytes left", self.v.len()));
        }
        Ok(n)
    }

    /// Succeeds when every byte was read.
    pub fn finish(self) -> Result<(), String> {
        if self.v.is_empty() {
            Ok(())
        } else {
            Err(format!("{} trailing bytes", self.v.len()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_and_damage_is_an_error() {
        let mut v = Vec::new();
        put_u64(&mut v, u64::MAX);
        put_i64(&mut v, -5);
        put_opt_i64(&mut v, Some(i64::MIN));
        put_opt_i64(&mut v, None);
        put_decimal(&mut v, Decimal::new(-123_456_789, 4));
        let mut r = Reader::new(&v);
        assert_eq!(r.u64(), Ok(u64::MAX));
        assert_eq!(r.i64(), Ok(-5));
        assert_eq!(r.opt_i64(), Ok(Some(i64::MIN)));
        assert_eq!(r.opt_i64(), Ok(None));
        let d = r.decimal().unwrap();
        assert_eq!((d, d.scale()), (Decimal::new(-123_456_789, 4), 4));
        assert!(r.finish().is_ok());
        assert!(Reader::new(&v[..v.len() - 1]).u64().is_ok());
        let mut bad = [0u8; 16];
        bad[2] = 29;
        assert!(Reader::new(&bad).decimal().is_err(), "scale beyond 28");
        bad[2] = 0;
        bad[0] = 1;
        assert!(Reader::new(&bad).decimal().is_err(), "unused flag bits");
        assert!(Reader::new(&[2]).bool().is_err());
        assert!(Reader::new(&[1, 0, 0]).u32().is_err(), "truncated");
        assert!(Reader::new(&[9, 0, 0, 0, 1]).count(1).is_err());
        assert!(Reader::new(&[1]).finish().is_err());
        assert_eq!(prefixed_key(b"rfm/", b"c1"), b"rfm/c1");
    }
}
