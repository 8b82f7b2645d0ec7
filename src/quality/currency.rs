//! The ISO 4217 list of active alphabetic currency codes (fund and precious-metal codes
//! included, as they appear in the standard's table A.1), for the `currency_iso4217` rule.

/// Active ISO 4217 codes, sorted for binary search.
const CODES: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BGN",
    "BHD", "BIF", "BMD", "BND", "BOB", "BOV", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD",
    "CDF", "CHE", "CHF", "CHW", "CLF", "CLP", "CNY", "COP", "COU", "CRC", "CUP", "CVE", "CZK",
    "DJF", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS",
    "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD",
    "IRR", "ISK", "JMD", "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD",
    "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT",
    "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MXV", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK",
    "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD",
    "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP",
    "STN", "SVC", "SYP", "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS",
    "UAH", "UGX", "USD", "USN", "UYI", "UYU", "UYW", "UZS", "VED", "VES", "VND", "VUV", "WST",
    "XAF", "XAG", "XAU", "XBA", "XBB", "XBC", "XBD", "XCD", "XCG", "XDR", "XOF", "XPD", "XPF",
    "XPT", "XSU", "XTS", "XUA", "XXX", "YER", "ZAR", "ZMW", "ZWG",
];

/// Index of a three-letter upper-case code in 26³ (None for anything else).
const fn index(b: &[u8]) -> Option<usize> {
    if b.len() != 3 {
        return None;
    }
    let mut v = 0;
    let mut i = 0;
    while i < 3 {
        if !b[i].is_ascii_uppercase() {
            return None;
        }
        v = v * 26 + (b[i] - b'A') as usize;
        i += 1;
    }
    Some(v)
}

/// [`CODES`] as a bitmap over all 26³ three-letter codes: one lookup instead of a search.
const TABLE: [u64; 26 * 26 * 26 / 64 + 1] = {
    let mut t = [0u64; 26 * 26 * 26 / 64 + 1];
    let mut i = 0;
    while i < CODES.len() {
        match index(CODES[i].as_bytes()) {
            Some(v) => t[v / 64] |= 1 << (v % 64),
            None => panic!("ISO 4217 codes are three upper-case letters"),
        }
        i += 1;
    }
    t
};

/// Whether `code` is an active ISO 4217 alphabetic code (exact, upper case).
#[inline]
pub fn is_iso4217(code: &str) -> bool {
    index(code.as_bytes()).is_some_and(|v| TABLE[v / 64] & (1 << (v % 64)) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_is_sorted_and_unique() {
        assert!(CODES.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn known_and_unknown_codes() {
        for c in ["USD", "EUR", "GBP", "JPY", "CHF", "XCG", "ZWG"] {
            assert!(is_iso4217(c), "{c}");
        }
        for c in ["usd", "US", "USDX", "ABC", "XYZ", "", "DEM", "HRK"] {
            assert!(!is_iso4217(c), "{c}");
        }
    }

    #[test]
    fn table_holds_exactly_the_list() {
        let mut n = 0;
        for a in b'A'..=b'Z' {
            for b in b'A'..=b'Z' {
                for c in b'A'..=b'Z' {
                    let code = String::from_utf8(vec![a, b, c]).unwrap();
                    let listed = CODES.binary_search(&code.as_str()).is_ok();
                    assert_eq!(is_iso4217(&code), listed, "{code}");
                    n += usize::from(listed);
                }
            }
        }
        assert_eq!(n, CODES.len());
        assert!(!is_iso4217("ÉUR") && !is_iso4217("EU€"));
    }
}
