//! The changelog encoding of a fraud [`Profile`]: compact binary instead of JSON, so a
//! flush costs a few bytes copied per remembered transaction rather than number and
//! decimal formatting. Byte 0 is the format version ([`VERSION`]); a value that starts
//! with `{` is the JSON written by earlier releases and still restores; any other first
//! byte is rejected with an error that names it. Version 1, after the version byte
//! (integers LEB128, signed ones zigzag-encoded; hashes and float bit patterns as 8 bytes
//! little-endian, so a restored profile is bit-for-bit the saved one): transactions seen,
//! newest event time, the Welford count, mean and M2; the latest purchase (a 0/1 byte,
//! then its time, latitude and longitude); the device, IP and place sets (a count, then
//! the hashes); the recent transactions (a count, then per entry: event time as the
//! difference from the previous entry's, session hash, a flags byte — small, failed,
//! negative amount — the amount's scale and its unsigned mantissa). The decoder checks
//! every count against the bytes left and rejects trailing bytes, an amount beyond
//! `Decimal`'s range or a seen-count beyond u32: a damaged value is an error, never a
//! panic or an outsized allocation.

use std::collections::VecDeque;

use rust_decimal::Decimal;

use super::profile::{LastSeen, Profile, Recent, Welford};

/// The binary format this build writes (and the only binary one it reads).
pub const VERSION: u8 = 1;

const SMALL: u8 = 1;
const FAILED: u8 = 2;
const NEGATIVE: u8 = 4;

fn put_uvar(out: &mut Vec<u8>, mut v: u128) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_ivar(out: &mut Vec<u8>, v: i64) {
    put_uvar(out, u128::from(((v << 1) ^ (v >> 63)) as u64));
}

fn put_fixed(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Appends the version-1 encoding of `p` to `out`.
pub fn encode(p: &Profile, out: &mut Vec<u8>) {
    let hashes = p.devices.len() + p.ips.len() + p.places.len();
    out.reserve(64 + 8 * hashes + 24 * p.recent.len());
    out.push(VERSION);
    put_uvar(out, u128::from(p.seen));
    put_ivar(out, p.newest);
    put_uvar(out, u128::from(p.amounts.n));
    put_fixed(out, p.amounts.mean_bits);
    put_fixed(out, p.amounts.m2_bits);
    match p.last {
        None => out.push(0),
        Some(l) => {
            out.push(1);
            put_ivar(out, l.ts);
            put_fixed(out, l.lat_bits);
            put_fixed(out, l.lon_bits);
        }
    }
    for set in [&p.devices, &p.ips, &p.places] {
        put_uvar(out, set.len() as u128);
        for &h in set {
            put_fixed(out, h);
        }
    }
    put_uvar(out, p.recent.len() as u128);
    let mut prev: i64 = 0;
    for r in &p.recent {
        put_ivar(out, r.ts.wrapping_sub(prev));
        prev = r.ts;
        put_fixed(out, r.session);
        let mut flags = 0;
        if r.small {
            flags |= SMALL;
        }
        if r.failed {
            flags |= FAILED;
        }
        if r.amount.is_sign_negative() {
            flags |= NEGATIVE;
        }
        out.push(flags);
        out.push(r.amount.scale() as u8);
        put_uvar(out, r.amount.mantissa().unsigned_abs());
    }
}

/// The encoding of `p` as a new value.
pub fn to_bytes(p: &Profile) -> Vec<u8> {
    let mut v = Vec::new();
    encode(p, &mut v);
    v
}

/// Decodes a profile value: version 1, or the legacy JSON.
pub fn decode(v: &[u8]) -> Result<Profile, String> {
    match v.first() {
        Some(&VERSION) => {
            let mut r = Reader { v: &v[1..] };
            let p = r.profile()?;
            if !r.v.is_empty() {
                return Err(format!("{} trailing bytes", r.v.len()));
            }
            Ok(p)
        }
        Some(b'{') => serde_json::from_slice(v).map_err(|e| format!("legacy JSON profile: {e}")),
        Some(b) => Err(format!(
            "unknown fraud profile format (first byte {b:#04x}; this build reads binary \
             version {VERSION} and the legacy JSON)"
        )),
        None => Err("empty fraud profile value".into()),
    }
}

struct Reader<'a> {
    v: &'a [u8],
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, String> {
        let (&b, rest) = self.v.split_first().ok_or("truncated")?;
        self.v = rest;
        Ok(b)
    }

    fn uvar(&mut self, bits: u32) -> Result<u128, String> {
        let (mut v, mut shift) = (0u128, 0u32);
        loop {
            let b = self.byte()?;
            if shift >= bits {
                return Err("integer too long".into());
            }
            v |= u128::from(b & 0x7f) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                break;
            }
        }
        if bits < 128 && v >> bits != 0 {
            return Err("integer out of range".into());
        }
        Ok(v)
    }

    fn u64(&mut self) -> Result<u64, String> {
        Ok(self.uvar(64)? as u64)
    }

    fn i64(&mut self) -> Result<i64, String> {
        let z = self.u64()?;
        Ok(((z >> 1) as i64) ^ -((z & 1) as i64))
    }

    fn fixed(&mut self) -> Result<u64, String> {
        if self.v.len() < 8 {
            return Err("truncated".into());
        }
        let (b, rest) = self.v.split_at(8);
        self.v = rest;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    /// A count of items of at least `min_bytes` each: never more than the bytes left hold.
    fn count(&mut self, min_bytes: usize) -> Result<usize, String> {
        let n = self.u64()?;
        if n > (self.v.len() / min_bytes) as u64 {
            return Err(format!("count {n} exceeds the value"));
        }
        Ok(n as usize)
    }

    fn hashes(&mut self) -> Result<Vec<u64>, String> {
        let n = self.count(8)?;
        (0..n).map(|_| self.fixed()).collect()
    }

    fn amount(&mut self, flags: u8) -> Result<Decimal, String> {
        let scale = u32::from(self.byte()?);
        let m = self.uvar(96)?;
        if scale > 28 {
            return Err(format!("amount scale {scale} beyond 28"));
        }
        Ok(Decimal::from_parts(
            m as u32,
            (m >> 32) as u32,
            (m >> 64) as u32,
            flags & NEGATIVE != 0,
            scale,
        ))
    }

    fn profile(&mut self) -> Result<Profile, String> {
        let seen = u32::try_from(self.u64()?).map_err(|_| "seen count beyond u32")?;
        let newest = self.i64()?;
        let amounts = Welford {
            n: self.u64()?,
            mean_bits: self.fixed()?,
            m2_bits: self.fixed()?,
        };
        let last = match self.byte()? {
            0 => None,
            1 => Some(LastSeen {
                ts: self.i64()?,
                lat_bits: self.fixed()?,
                lon_bits: self.fixed()?,
            }),
            b => return Err(format!("bad latest-purchase tag {b}")),
        };
        let devices = self.hashes()?;
        let ips = self.hashes()?;
        let places = self.hashes()?;
        // An entry takes at least 12 bytes: delta, session, flags, scale, mantissa.
        let n = self.count(12)?;
        let mut recent = VecDeque::with_capacity(n);
        let mut prev: i64 = 0;
        for _ in 0..n {
            let ts = prev.wrapping_add(self.i64()?);
            prev = ts;
            let session = self.fixed()?;
            let flags = self.byte()?;
            if flags & !(SMALL | FAILED | NEGATIVE) != 0 {
                return Err(format!("bad flags {flags:#04x}"));
            }
            recent.push_back(Recent {
                ts,
                session,
                amount: self.amount(flags)?,
                small: flags & SMALL != 0,
                failed: flags & FAILED != 0,
            });
        }
        Ok(Profile {
            recent,
            amounts,
            last,
            devices,
            ips,
            places,
            seen,
            newest,
            dirty: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::testkit;
    use crate::fraud::FraudRules;

    fn profile(n: u64) -> Profile {
        let rules = FraudRules::default();
        let mut p = Profile::default();
        for i in 0..n {
            let mut t = testkit::transaction(i, 1, 1_709_571_600_000 + i as i64 * 7_777);
            t.amount = Decimal::new(i as i64 * 1_234 + 1, (i % 4) as u32);
            p.record(&t, &rules);
        }
        p
    }

    /// Decoding gives the same state, and encoding that again the same bytes (Decimal's
    /// `==` ignores the scale; the bytes do not).
    fn assert_round_trip(p: &Profile) {
        let bytes = to_bytes(p);
        let back = decode(&bytes).unwrap();
        assert_eq!(&back, p);
        assert_eq!(to_bytes(&back), bytes);
    }

    #[test]
    fn round_trips_bit_for_bit() {
        for n in [0, 1, 2, 5, 40, 300] {
            assert_round_trip(&profile(n));
        }
        let mut p = profile(3);
        p.recent[0].amount = Decimal::from_parts(u32::MAX, u32::MAX, u32::MAX, true, 28);
        p.recent[1].amount = Decimal::from_parts(0, 0, 0, true, 2);
        p.recent[2].ts = i64::MIN;
        p.newest = i64::MAX;
        p.seen = u32::MAX;
        p.amounts.mean_bits = f64::NAN.to_bits();
        assert_round_trip(&p);
        assert!(to_bytes(&p)[..].len() < serde_json::to_vec(&p).unwrap().len());
    }

    #[test]
    fn reads_the_legacy_json() {
        let p = profile(20);
        let json = serde_json::to_vec(&p).unwrap();
        assert_eq!(decode(&json).unwrap(), p);
    }

    #[test]
    fn unknown_versions_and_damage_are_errors() {
        let e = decode(&[2, 0, 0]).unwrap_err();
        assert!(
            e.contains("unknown fraud profile format") && e.contains("0x02"),
            "{e}"
        );
        assert!(decode(&[]).is_err());
        let bytes = to_bytes(&profile(30));
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(decode(&long).unwrap_err().contains("trailing"));
        // A huge count is refused before anything is allocated.
        let mut huge = vec![VERSION, 0, 0, 0];
        huge.extend([0; 16]);
        huge.push(0);
        huge.extend([0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert!(decode(&huge).unwrap_err().contains("exceeds"));
    }

    #[test]
    fn flipped_bytes_never_panic() {
        let bytes = to_bytes(&profile(12));
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut b = bytes.clone();
                b[i] ^= 1 << bit;
                let _ = decode(&b);
            }
        }
    }
}
