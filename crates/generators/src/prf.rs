//! The keyed pseudo-random function every consistent generator draws from.
//!
//! A generator's output is a pure function of (seed, generator, value type, value): the seed is
//! stretched into a key with BLAKE3's key derivation, each generator gets its own sub-key, and
//! every value is hashed under that sub-key with its type tag. No global or thread RNG is used
//! anywhere in generator code (clippy's `disallowed-methods` enforces it).

use std::convert::Infallible;

/// A keyed PRF (keyed BLAKE3).
#[derive(Clone)]
pub struct Prf {
    key: [u8; 32],
}

impl std::fmt::Debug for Prf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Prf(<secret>)")
    }
}

impl Prf {
    /// The root PRF of a seed.
    pub fn from_seed(seed: &str) -> Prf {
        Prf {
            key: blake3::derive_key("mirage consistency seed v1", seed.as_bytes()),
        }
    }

    /// An independent PRF for a purpose (a generator name, a round of a cipher …).
    pub fn derive(&self, purpose: &str) -> Prf {
        Prf {
            key: *blake3::keyed_hash(&self.key, purpose.as_bytes()).as_bytes(),
        }
    }

    /// 32 pseudo-random bytes for `(tag, value)`.
    pub fn hash(&self, tag: &str, value: &[u8]) -> [u8; 32] {
        let mut h = blake3::Hasher::new_keyed(&self.key);
        h.update(&(tag.len() as u32).to_le_bytes());
        h.update(tag.as_bytes());
        h.update(value);
        *h.finalize().as_bytes()
    }

    /// A 64-bit pseudo-random number for `(tag, value)`.
    pub fn u64(&self, tag: &str, value: &[u8]) -> u64 {
        let b = self.hash(tag, value);
        u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
    }

    /// A deterministic RNG seeded from `(tag, value)`, for driving fake-data libraries.
    pub fn rng(&self, tag: &str, value: &[u8]) -> ValueRng {
        ValueRng::new(self.u64(tag, value))
    }

    /// Raw key bytes for ciphers built on this PRF.
    pub(crate) fn key_bytes(&self) -> &[u8; 32] {
        &self.key
    }
}

/// SplitMix64: a tiny deterministic RNG. Its seed comes from the PRF, so its output is as
/// consistent as the PRF's; it only spreads one 64-bit draw into as many as a generator needs.
pub struct ValueRng(u64);

impl ValueRng {
    pub fn new(seed: u64) -> ValueRng {
        ValueRng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0), without modulo bias worth caring about for n ≪ 2^64.
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
}

impl fake::rand::TryRng for ValueRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok((self.next_u64() >> 32) as u32)
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(self.next_u64())
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for chunk in dst.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_output_and_tags_separate() {
        let a = Prf::from_seed("s1").derive("email");
        let b = Prf::from_seed("s1").derive("email");
        let c = Prf::from_seed("s2").derive("email");
        assert_eq!(a.hash("text", b"x"), b.hash("text", b"x"));
        assert_ne!(a.hash("text", b"x"), c.hash("text", b"x"));
        assert_ne!(a.hash("text", b"123"), a.hash("integer", b"123"));
        assert_ne!(
            Prf::from_seed("s1").derive("hash").hash("text", b"x"),
            a.hash("text", b"x")
        );
    }

    #[test]
    fn rng_below_stays_in_range() {
        let mut r = ValueRng::new(7);
        assert!((0..1000).all(|_| r.below(10) < 10));
    }
}
