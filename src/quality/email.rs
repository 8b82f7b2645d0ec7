//! A practical well-formedness check for email addresses (the `email_format` rule): one
//! `@`, a dot-atom local part of at most 64 characters, and a domain of at least two
//! dot-separated labels (letters, digits, inner hyphens, ≤ 63 each) ending in an
//! alphabetic top-level label, 254 characters at most in total. Quoted local parts and IP
//! literals, legal but never produced by shop front-ends, are rejected.

/// Character classes, one bit each, looked up per byte.
const ALPHA: u8 = 1;
const DIGIT: u8 = 2;
/// Allowed in a local-part atom besides letters and digits (the hyphen included).
const LOCAL_SPECIAL: u8 = 4;
const HYPHEN: u8 = 8;

const CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        if b.is_ascii_alphabetic() {
            t[c] |= ALPHA;
        }
        if b.is_ascii_digit() {
            t[c] |= DIGIT;
        }
        c += 1;
    }
    let specials = b"!#$%&'*+/=?^_`{|}~-";
    let mut i = 0;
    while i < specials.len() {
        t[specials[i] as usize] |= LOCAL_SPECIAL;
        i += 1;
    }
    t[b'-' as usize] |= HYPHEN;
    t
};

/// Whether `s` is a well-formed address. One pass over the bytes with a class table, no
/// allocation.
pub fn is_well_formed(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() > 254 {
        return false;
    }
    let Some(at) = b.iter().position(|&c| c == b'@') else {
        return false;
    };
    let (local, domain) = (&b[..at], &b[at + 1..]);
    if local.is_empty() || local.len() > 64 {
        return false;
    }
    // Dot-separated non-empty atoms of allowed characters.
    let mut after_dot = true;
    for &c in local {
        if c == b'.' {
            if after_dot {
                return false;
            }
            after_dot = true;
        } else if CLASS[c as usize] & (ALPHA | DIGIT | LOCAL_SPECIAL) != 0 {
            after_dot = false;
        } else {
            return false;
        }
    }
    if after_dot {
        return false;
    }
    // At least two labels of letters, digits and inner hyphens, at most 63 long (a
    // second '@' is not a label character), the last one alphabetic and at least two
    // long.
    let mut labels = 0;
    let (mut start, mut alphabetic) = (0, true);
    for (i, &c) in domain.iter().enumerate() {
        if c == b'.' {
            let label = &domain[start..i];
            if label.is_empty()
                || label.len() > 63
                || label[0] == b'-'
                || label[label.len() - 1] == b'-'
            {
                return false;
            }
            labels += 1;
            (start, alphabetic) = (i + 1, true);
            continue;
        }
        let class = CLASS[c as usize];
        if class & (ALPHA | DIGIT | HYPHEN) == 0 {
            return false;
        }
        alphabetic &= class & ALPHA != 0;
    }
    // The last label: alphabetic (so no hyphen at either end), 2 to 63 long.
    let tld = &domain[start..];
    labels >= 1 && (2..=63).contains(&tld.len()) && alphabetic
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local_char_ok(c: u8) -> bool {
        c.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~-".contains(&c)
    }

    fn label_ok(b: &[u8]) -> bool {
        !b.is_empty()
            && b.len() <= 63
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
            && b[0] != b'-'
            && b[b.len() - 1] != b'-'
    }

    #[test]
    fn accepts_ordinary_addresses() {
        for s in [
            "a@b.co",
            "first.last+tag@mail.example.com",
            "x_y@sub-domain.example.org",
        ] {
            assert!(is_well_formed(s), "{s}");
        }
    }

    #[test]
    fn rejects_malformed_addresses() {
        for s in [
            "",
            "plain",
            "@b.co",
            "a@",
            "a@b",
            "a@@b.co",
            "a@b@c.co",
            ".a@b.co",
            "a.@b.co",
            "a..b@c.co",
            "a@-b.co",
            "a@b-.co",
            "a@b..co",
            "a b@c.co",
            "a@b.c0",
            "a@b.c",
        ] {
            assert!(!is_well_formed(s), "{s}");
        }
        assert!(!is_well_formed(&format!("{}@b.co", "a".repeat(65))));
    }

    /// The original split-based formulation, kept as the reference.
    fn reference(s: &str) -> bool {
        if s.len() > 254 {
            return false;
        }
        let Some((local, domain)) = s.split_once('@') else {
            return false;
        };
        if local.is_empty() || local.len() > 64 || domain.contains('@') {
            return false;
        }
        if local
            .split('.')
            .any(|atom| atom.is_empty() || !atom.bytes().all(local_char_ok))
        {
            return false;
        }
        let labels: Vec<&str> = domain.split('.').collect();
        labels.len() >= 2
            && labels.iter().all(|l| label_ok(l.as_bytes()))
            && labels
                .last()
                .is_some_and(|tld| tld.len() >= 2 && tld.bytes().all(|c| c.is_ascii_alphabetic()))
    }

    #[test]
    fn agrees_with_the_reference_on_random_strings() {
        let alphabet: Vec<char> = "ab1.-@_+é ".chars().collect();
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 12) as usize;
            let s: String = (0..len)
                .map(|i| alphabet[((x >> (i * 5)) % alphabet.len() as u64) as usize])
                .collect();
            assert_eq!(is_well_formed(&s), reference(&s), "{s:?}");
        }
    }

    #[test]
    fn agrees_with_the_reference_on_long_and_varied_strings() {
        let alphabet: Vec<char> = "aZ9.-@_+!~é x".chars().collect();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for n in 0..200_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Mostly letters, so long labels and atoms occur.
            let len = (x % 90) as usize;
            let mut y = x;
            let s: String = (0..len)
                .map(|_| {
                    y = y.wrapping_mul(0x2545_f491_4f6c_dd1d).wrapping_add(n);
                    let r = (y >> 40) as usize;
                    if r % 3 == 0 {
                        alphabet[r / 3 % alphabet.len()]
                    } else {
                        'a'
                    }
                })
                .collect();
            assert_eq!(is_well_formed(&s), reference(&s), "{s:?}");
        }
        for s in [
            format!("a@{}.co", "b".repeat(63)),
            format!("a@{}.co", "b".repeat(64)),
            format!("a@b.{}", "c".repeat(63)),
            format!("a@b.{}", "c".repeat(64)),
            format!("{}@b.co", "a".repeat(64)),
            format!("a@{}.com", "b".repeat(250)),
        ] {
            assert_eq!(is_well_formed(&s), reference(&s), "{s:?}");
        }
    }
}
