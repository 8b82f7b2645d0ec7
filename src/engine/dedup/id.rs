//! Lossless compact forms of identifiers. A canonical lowercase UUID string
//! (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, the generator's form) maps one-to-one to a
//! `u128`; every other string (including upper-case UUIDs, which are different strings and
//! therefore different ids) is kept verbatim. No two distinct strings share a form.

/// Parses a canonical lowercase hyphenated UUID into its 128 bits.
#[inline]
pub fn parse_uuid(s: &str) -> Option<u128> {
    let b = s.as_bytes();
    if b.len() != 36 {
        return None;
    }
    let mut v: u128 = 0;
    for (i, &c) in b.iter().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
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
        v = (v << 4) | u128::from(d);
    }
    Some(v)
}

/// Formats 128 bits as the canonical lowercase UUID string (inverse of [`parse_uuid`]).
pub fn format_uuid(v: u128) -> String {
    let hex = format!("{v:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
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
