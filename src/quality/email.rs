//! A practical well-formedness check for email addresses (the `email_format` rule): one
//! `@`, a dot-atom local part of at most 64 characters, and a domain of at least two
//! dot-separated labels (letters, digits, inner hyphens, ≤ 63 each) ending in an
//! alphabetic top-level label, 254 characters at most in total. Quoted local parts and IP
//! literals, legal but never produced by shop front-ends, are rejected.

fn local_char_ok(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~-".contains(&c)
}

fn label_ok(l: &str) -> bool {
    let b = l.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// Whether `s` is a well-formed address.
pub fn is_well_formed(s: &str) -> bool {
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
    // At least two labels, all well formed, the last one alphabetic (no allocation).
    let Some((_, tld)) = domain.rsplit_once('.') else {
        return false;
    };
    domain.split('.').all(label_ok)
        && tld.len() >= 2
        && tld.bytes().all(|c| c.is_ascii_alphabetic())
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
}
