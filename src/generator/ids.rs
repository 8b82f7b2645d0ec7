//! Reproducible randomness and identifiers. Every random choice the generator makes comes
//! from a ChaCha8 stream derived from the user's seed (ChaCha8 is specified bit for bit, so
//! the same seed gives the same stream on every platform and Rust version); separate
//! streams for the world (catalog, customers), the simulation, fraud and faults keep, for
//! example, the shop's sessions unchanged when only a fault rate changes. Identifiers such
//! as UUIDs, fingerprints and IP addresses are built from those streams, never from the OS.

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;

/// The generator's random number generator.
pub type GenRng = ChaCha8Rng;

/// The independent random streams derived from one seed.
#[derive(Debug, Clone, Copy)]
pub enum Stream {
    World = 1,
    Sim = 2,
    Fraud = 3,
    Faults = 4,
    Estimate = 5,
    WarmUp = 6,
}

/// The random stream `stream` of `seed`.
pub fn rng_for(seed: u64, stream: Stream) -> GenRng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream as u64);
    rng
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn push_hex(s: &mut String, byte: u8) {
    s.push(HEX[(byte >> 4) as usize] as char);
    s.push(HEX[(byte & 15) as usize] as char);
}

/// A random (version 4 layout) UUID in lowercase hyphenated form.
pub fn uuid(rng: &mut impl RngCore) -> String {
    let mut b = [0u8; 16];
    rng.fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let mut s = String::with_capacity(36);
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        push_hex(&mut s, *byte);
    }
    s
}

/// `n` random bytes as lowercase hex.
pub fn hex(rng: &mut impl RngCore, n: usize) -> String {
    let mut s = String::with_capacity(n * 2);
    for _ in 0..n {
        push_hex(&mut s, rng.gen());
    }
    s
}

/// An IPv4 address inside one of the given /8 prefixes.
pub fn ipv4(rng: &mut impl Rng, prefixes: &[u8]) -> String {
    let first = prefixes[rng.gen_range(0..prefixes.len())];
    format!(
        "{first}.{}.{}.{}",
        rng.gen::<u8>(),
        rng.gen::<u8>(),
        rng.gen_range(1..255u8)
    )
}

/// An amount of money from integer cents.
pub fn money(cents: i64) -> Decimal {
    Decimal::new(cents, 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_is_lowercase_v4_and_reproducible() {
        let a = uuid(&mut rng_for(7, Stream::World));
        let b = uuid(&mut rng_for(7, Stream::World));
        assert_eq!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"));
        assert!(a
            .chars()
            .all(|c| c == '-' || c.is_ascii_hexdigit() && !c.is_uppercase()));
        assert_ne!(a, uuid(&mut rng_for(7, Stream::Sim)));
    }
}
