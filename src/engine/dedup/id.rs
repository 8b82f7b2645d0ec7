//! Lossless compact forms of identifiers. A canonical lowercase UUID string
//! (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, the generator's form) maps one-to-one to a
//! `u128`; every other string (including upper-case UUIDs, which are different strings and
//! therefore different ids) is kept verbatim. No two distinct strings share a form.

/// Lowercase hex digit values; 0xff for every other byte.
const HEX_VALUE: [u8; 256] = {
    let mut t = [0xff; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// Positions of the hex digits in the canonical form.
const HEX_POSITIONS: [u8; 32] = [
    0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 14, 15, 16, 17, 19, 20, 21, 22, 24, 25, 26, 27, 28, 29,
    30, 31, 32, 33, 34, 35,
];

/// Parses a canonical lowercase hyphenated UUID into its 128 bits.
#[inline]
pub fn parse_uuid(s: &str) -> Option<u128> {
    let b: &[u8; 36] = s.as_bytes().try_into().ok()?;
    if b[8] != b'-' || b[13] != b'-' || b[18] != b'-' || b[23] != b'-' {
        return None;
    }
    let mut v: u128 = 0;
    let mut bad = 0u8;
    for &p in &HEX_POSITIONS {
        let d = HEX_VALUE[b[p as usize] as usize];
        bad |= d;
        v = (v << 4) | u128::from(d & 0xf);
    }
    // Any invalid digit (0xff) sets the high bits, which no valid digit has.
    (bad & 0xf0 == 0).then_some(v)
}

/// Where the two hex digits of each of the 16 bytes go in the canonical form.
const BYTE_POSITIONS: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];

/// Writes 128 bits as the canonical lowercase UUID (36 bytes) into `out`.
#[inline]
pub fn write_uuid(v: u128, out: &mut [u8; 36]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for p in [8, 13, 18, 23] {
        out[p] = b'-';
    }
    for (b, &p) in v.to_be_bytes().iter().zip(&BYTE_POSITIONS) {
        out[p] = HEX[usize::from(b >> 4)];
        out[p + 1] = HEX[usize::from(b & 0xf)];
    }
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
