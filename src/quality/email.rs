//! A practical well-formedness check for email addresses (the `email_format` rule): one
//! `@`, a dot-atom local part of at most 64 characters, and a domain of at least two
//! dot-separated labels (letters, digits, inner hyphens, ≤ 63 each) ending in an
//! alphabetic top-level label, 254 characters at most in total. Quoted local parts and IP
//! literals, legal but never produced by shop front-ends, are rejected.

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

/// Whether `s` is a well-formed address. One pass over the bytes, no allocation.
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
        } else if local_char_ok(c) {
            after_dot = false;
        } else {
            return false;
        }
    }
    if after_dot {
        return false;
    }
    // At least two well-formed labels (a second '@' fails the label check), the last one
    // alphabetic and at least two long.
    let mut labels = 0;
    let mut tld: &[u8] = &[];
    for label in domain.split(|&c| c == b'.') {
        if !label_ok(label) {
            return false;
        }
        labels += 1;
        tld = label;
    }
    labels >= 2 && tld.len() >= 2 && tld.iter().all(|c| c.is_ascii_alphabetic())
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
