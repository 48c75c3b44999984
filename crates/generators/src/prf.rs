//! The keyed pseudo-random function every consistent generator draws from.
//!
//! A generator's output is a pure function of (seed, generator, value type, value): the seed is
//! stretched into a key with BLAKE3's key derivation, each generator gets its own sub-key, and
//! every value is hashed under that sub-key with its type tag: keyed BLAKE3 where 32 bytes are
//! wanted ([`Prf::hash`]), SipHash-2-4 — a PRF made for short inputs, about six times faster on
//! them — where 64 bits are ([`Prf::u64`], [`Prf::rng`], which most generators use). No global or thread RNG is used
//! anywhere in generator code (clippy's `disallowed-methods` enforces it).

use std::convert::Infallible;
use std::hash::Hasher;

/// Inputs up to this many bytes are hashed from a stack buffer in one call.
const SHORT: usize = 256;

/// A keyed PRF (keyed BLAKE3).
#[derive(Clone)]
pub struct Prf {
    key: [u8; 32],
    /// SipHash-2-4's 128-bit key: the first 16 bytes of a key derived from `key`.
    sip: (u64, u64),
}

impl std::fmt::Debug for Prf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Prf(<secret>)")
    }
}

impl Prf {
    /// The root PRF of a seed.
    pub fn from_seed(seed: &str) -> Prf {
        Prf::with_key(blake3::derive_key(
            "mirage consistency seed v1",
            seed.as_bytes(),
        ))
    }

    fn with_key(key: [u8; 32]) -> Prf {
        let k = blake3::keyed_hash(&key, b"siphash-2-4 key");
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&k.as_bytes()[i..i + 8]);
            u64::from_le_bytes(w)
        };
        Prf {
            key,
            sip: (word(0), word(8)),
        }
    }

    /// The root key, to hand to a worker that transforms far from the plan (the Lambda
    /// handler). It is as secret as the seed's effect: never log or print it.
    pub fn root_key(&self) -> [u8; 32] {
        self.key
    }

    /// The PRF of a key [`Prf::root_key`] gave: the same draws as the PRF it came from.
    pub fn from_root_key(key: [u8; 32]) -> Prf {
        Prf::with_key(key)
    }

    /// An independent PRF for a purpose (a generator name, a round of a cipher …).
    pub fn derive(&self, purpose: &str) -> Prf {
        Prf::with_key(*blake3::keyed_hash(&self.key, purpose.as_bytes()).as_bytes())
    }

    /// 32 pseudo-random bytes for `(tag, value)`.
    pub fn hash(&self, tag: &str, value: &[u8]) -> [u8; 32] {
        // Short inputs (nearly all values) are laid out on the stack and hashed in one call,
        // which skips the incremental hasher's set-up; the bytes hashed are the same either way.
        let len = 4 + tag.len() + value.len();
        if len <= SHORT {
            let mut buf = [0u8; SHORT];
            buf[..4].copy_from_slice(&(tag.len() as u32).to_le_bytes());
            buf[4..4 + tag.len()].copy_from_slice(tag.as_bytes());
            buf[4 + tag.len()..len].copy_from_slice(value);
            return *blake3::keyed_hash(&self.key, &buf[..len]).as_bytes();
        }
        let mut h = blake3::Hasher::new_keyed(&self.key);
        h.update(&(tag.len() as u32).to_le_bytes());
        h.update(tag.as_bytes());
        h.update(value);
        *h.finalize().as_bytes()
    }

    /// A 64-bit pseudo-random number for `(tag, value)`.
    pub fn u64(&self, tag: &str, value: &[u8]) -> u64 {
        let mut h = siphasher::sip::SipHasher24::new_with_keys(self.sip.0, self.sip.1);
        h.write(&(tag.len() as u32).to_le_bytes());
        h.write(tag.as_bytes());
        h.write(value);
        h.finish()
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
    /// An RNG whose sequence is fixed by `seed` (normally a PRF output, see [`Prf::rng`]).
    pub fn new(seed: u64) -> ValueRng {
        ValueRng(seed)
    }

    /// The next 64 uniformly distributed bits of the sequence.
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
    fn short_and_long_inputs_hash_as_one_stream() {
        let p = Prf::from_seed("s").derive("t");
        for n in [0usize, 1, 200, 251, 252, 253, 300, 5000] {
            let v: Vec<u8> = (0..n).map(|i| i as u8).collect();
            let mut h = blake3::Hasher::new_keyed(&p.key);
            h.update(&4u32.to_le_bytes());
            h.update(b"text");
            h.update(&v);
            assert_eq!(p.hash("text", &v), *h.finalize().as_bytes(), "{n} bytes");
        }
    }

    #[test]
    fn u64_is_keyed_by_seed_purpose_and_tag() {
        let a = Prf::from_seed("s1").derive("email");
        assert_eq!(
            a.u64("text", b"x"),
            Prf::from_seed("s1").derive("email").u64("text", b"x")
        );
        assert_ne!(
            a.u64("text", b"x"),
            Prf::from_seed("s2").derive("email").u64("text", b"x")
        );
        assert_ne!(
            a.u64("text", b"x"),
            Prf::from_seed("s1").derive("name").u64("text", b"x")
        );
        assert_ne!(a.u64("text", b"x"), a.u64("texx", b""));
        assert_ne!(a.u64("text", b"12"), a.u64("integer", b"12"));
        // Tag and value are framed: moving bytes between them changes the output.
        assert_ne!(a.u64("ab", b"c"), a.u64("a", b"bc"));
        let distinct: std::collections::HashSet<u64> = (0..10_000u32)
            .map(|i| a.u64("text", &i.to_le_bytes()))
            .collect();
        assert_eq!(distinct.len(), 10_000);
    }

    #[test]
    fn rng_below_stays_in_range() {
        let mut r = ValueRng::new(7);
        assert!((0..1000).all(|_| r.below(10) < 10));
    }
}
