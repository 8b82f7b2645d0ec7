//! Lossless compact forms of identifiers. A canonical lowercase UUID string
//! (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, the generator's form) maps one-to-one to a
//! `u128`; every other string (including upper-case UUIDs, which are different strings and
//! therefore different ids) is kept verbatim. No two distinct strings share a form.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// The 32 bits spelled by 8 lowercase hex digits (first digit most significant), or
/// `None` if any byte is not one. Works on all 8 bytes at once: with bit 7 cleared, adding
/// `0x80 - lo` to a byte sets its bit 7 iff the byte is `>= lo`, and no addition carries
/// into the next byte.
#[inline]
fn hex8(chunk: [u8; 8]) -> Option<u32> {
    let x = u64::from_be_bytes(chunk);
    let x7 = x & !HIGH;
    let digit = x7.wrapping_add(0x50 * ONES) & !x7.wrapping_add(0x46 * ONES); // 0x30..=0x39
    let alpha = x7.wrapping_add(0x1f * ONES) & !x7.wrapping_add(0x19 * ONES); // 0x61..=0x66
    if (digit | alpha) & !x & HIGH != HIGH {
        return None;
    }
    // Nibble values: the low four bits, plus 9 for the letters a-f.
    let v = (x & (0x0f * ONES)) + ((alpha & HIGH) >> 7) * 9;
    // Gather the eight nibbles (one per byte, most significant first) into 32 bits.
    let v = (v | (v >> 4)) & 0x00ff_00ff_00ff_00ff;
    let v = (v | (v >> 8)) & 0x0000_ffff_0000_ffff;
    Some((v | (v >> 16)) as u32)
}

/// The 8 lowercase hex digits of `v` (inverse of [`hex8`]).
#[inline]
fn hex8_write(v: u32) -> [u8; 8] {
    // Spread the nibbles one per byte, most significant first.
    let x = u64::from(v);
    let x = (x | (x << 16)) & 0x0000_ffff_0000_ffff;
    let x = (x | (x << 8)) & 0x00ff_00ff_00ff_00ff;
    let x = (x | (x << 4)) & (0x0f * ONES);
    // '0' + n, plus 'a' - ':' for nibbles above 9 (bit 4 of n + 6).
    let above9 = ((x + 0x06 * ONES) >> 4) & ONES;
    (x + 0x30 * ONES + above9 * 0x27).to_be_bytes()
}

/// Eight bytes of `b` starting at `at`.
#[inline]
fn take8(b: &[u8; 36], at: usize) -> [u8; 8] {
    let mut c = [0; 8];
    c.copy_from_slice(&b[at..at + 8]);
    c
}

/// Parses a canonical lowercase hyphenated UUID into its 128 bits.
#[inline]
pub fn parse_uuid(s: &str) -> Option<u128> {
    let b: &[u8; 36] = s.as_bytes().try_into().ok()?;
    if b[8] != b'-' || b[13] != b'-' || b[18] != b'-' || b[23] != b'-' {
        return None;
    }
    // Digits 0-7, 9-12 + 14-17, 19-22 + 24-27, 28-35.
    let join = |a: usize, b2: usize| {
        let mut c = [0; 8];
        c[..4].copy_from_slice(&b[a..a + 4]);
        c[4..].copy_from_slice(&b[b2..b2 + 4]);
        c
    };
    let w0 = hex8(take8(b, 0))?;
    let w1 = hex8(join(9, 14))?;
    let w2 = hex8(join(19, 24))?;
    let w3 = hex8(take8(b, 28))?;
    Some((u128::from(w0) << 96) | (u128::from(w1) << 64) | (u128::from(w2) << 32) | u128::from(w3))
}

/// Writes 128 bits as the canonical lowercase UUID (36 bytes) into `out`.
#[inline]
pub fn write_uuid(v: u128, out: &mut [u8; 36]) {
    let [w0, w1, w2, w3] = [
        (v >> 96) as u32,
        (v >> 64) as u32,
        (v >> 32) as u32,
        v as u32,
    ];
    out[0..8].copy_from_slice(&hex8_write(w0));
    out[8] = b'-';
    let h1 = hex8_write(w1);
    out[9..13].copy_from_slice(&h1[..4]);
    out[13] = b'-';
    out[14..18].copy_from_slice(&h1[4..]);
    out[18] = b'-';
    let h2 = hex8_write(w2);
    out[19..23].copy_from_slice(&h2[..4]);
    out[23] = b'-';
    out[24..28].copy_from_slice(&h2[4..]);
    out[28..36].copy_from_slice(&hex8_write(w3));
}

/// Formats 128 bits as the canonical lowercase UUID string (inverse of [`parse_uuid`]).
pub fn format_uuid(v: u128) -> String {
    let mut buf = [0u8; 36];
    write_uuid(v, &mut buf);
    buf.iter().map(|&b| char::from(b)).collect()
}

/// An identifier in its compact form.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum CompactId {
    Uuid(u128),
    Other(Box<str>),
}

impl CompactId {
    pub fn new(s: &str) -> Self {
        match parse_uuid(s) {
            Some(u) => CompactId::Uuid(u),
            None => CompactId::Other(s.into()),
        }
    }

    /// The original string.
    pub fn to_string_lossless(&self) -> String {
        match self {
            CompactId::Uuid(u) => format_uuid(*u),
            CompactId::Other(s) => s.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_canonical_uuids() {
        let s = "0f8fad5b-d9cb-469f-a165-70867728950e";
        let v = parse_uuid(s).unwrap();
        assert_eq!(format_uuid(v), s);
        assert_eq!(format_uuid(0), "00000000-0000-0000-0000-000000000000");
        assert_eq!(
            format_uuid(u128::MAX),
            "ffffffff-ffff-ffff-ffff-ffffffffffff"
        );
        let mut x: u128 = 0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835;
        for _ in 0..1_000 {
            x = x.wrapping_mul(0x2545_f491_4f6c_dd1d).wrapping_add(12_345);
            let hex = format!("{x:032x}");
            let expected = format!(
                "{}-{}-{}-{}-{}",
                &hex[0..8],
                &hex[8..12],
                &hex[12..16],
                &hex[16..20],
                &hex[20..32]
            );
            assert_eq!(format_uuid(x), expected);
            assert_eq!(parse_uuid(&expected), Some(x));
        }
    }

    /// The per-character definition the word-at-a-time parser must agree with.
    fn parse_reference(s: &str) -> Option<u128> {
        let b = s.as_bytes();
        if b.len() != 36 {
            return None;
        }
        let mut v = 0u128;
        for (i, &c) in b.iter().enumerate() {
            if [8, 13, 18, 23].contains(&i) {
                if c != b'-' {
                    return None;
                }
                continue;
            }
            let d = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                _ => return None,
            };
            v = v << 4 | u128::from(d);
        }
        Some(v)
    }

    #[test]
    fn every_byte_at_every_position_parses_like_the_reference() {
        let base = *b"0f8fad5b-d9cb-469f-a165-70867728950e";
        for pos in 0..36 {
            for c in 0..=255u8 {
                let mut b = base;
                b[pos] = c;
                // Non-UTF-8 bytes cannot form a &str; they are covered by the ASCII cases
                // and the `>= 0x80` check anyway, so test the valid strings.
                let Ok(s) = std::str::from_utf8(&b) else {
                    continue;
                };
                assert_eq!(parse_uuid(s), parse_reference(s), "{s:?}");
            }
        }
        // A two-byte character at every position of a 36-byte string.
        for pos in 0..35 {
            let mut b = base;
            b[pos..pos + 2].copy_from_slice("é".as_bytes());
            let s = std::str::from_utf8(&b).unwrap();
            assert_eq!(parse_uuid(s), None, "{s:?}");
        }
    }

    #[test]
    fn non_canonical_forms_are_not_uuids() {
        for s in [
            "0F8FAD5B-D9CB-469F-A165-70867728950E",
            "0f8fad5bd9cb469fa16570867728950e",
            "0f8fad5b-d9cb-469f-a165-70867728950",
            "0f8fad5b-d9cb-469f-a165_70867728950e",
            "0f8fad5b-d9cb-469f-a165-70867728950g",
            "",
        ] {
            assert_eq!(parse_uuid(s), None, "{s}");
            assert_eq!(CompactId::new(s).to_string_lossless(), s);
        }
    }
}

/// A borrowed [`CompactId`], for allocation-free lookups in sets of compact ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompactRef<'a> {
    Uuid(u128),
    Other(&'a str),
}

impl<'a> CompactRef<'a> {
    #[inline]
    pub fn new(s: &'a str) -> Self {
        match parse_uuid(s) {
            Some(u) => CompactRef::Uuid(u),
            None => CompactRef::Other(s),
        }
    }
}

// CompactId and CompactRef hash identically so either can look up the other.
impl std::hash::Hash for CompactId {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        match self {
            CompactId::Uuid(u) => CompactRef::Uuid(*u).hash(h),
            CompactId::Other(s) => CompactRef::Other(s).hash(h),
        }
    }
}

impl std::hash::Hash for CompactRef<'_> {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        match self {
            CompactRef::Uuid(u) => {
                h.write_u8(0);
                h.write_u128(*u);
            }
            CompactRef::Other(s) => {
                h.write_u8(1);
                s.hash(h);
            }
        }
    }
}

impl hashbrown::Equivalent<CompactId> for CompactRef<'_> {
    fn equivalent(&self, key: &CompactId) -> bool {
        match (self, key) {
            (CompactRef::Uuid(a), CompactId::Uuid(b)) => a == b,
            (CompactRef::Other(a), CompactId::Other(b)) => *a == &**b,
            _ => false,
        }
    }
}

impl From<&CompactRef<'_>> for CompactId {
    fn from(r: &CompactRef<'_>) -> Self {
        match r {
            CompactRef::Uuid(u) => CompactId::Uuid(*u),
            CompactRef::Other(s) => CompactId::Other((*s).into()),
        }
    }
}
