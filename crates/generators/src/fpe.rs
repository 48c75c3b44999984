//! Format-preserving encryption: keyed permutations of `0..n` and of strings over mixed radixes.
//!
//! [`IntPermutation`] is an FF1-shaped alternating Feistel network on the smallest bit width that
//! holds `n`, with cycle-walking (re-encrypt until the result falls inside `0..n`). Every round is
//! invertible, so the map is a bijection with an inverse ([`IntPermutation::invert`]): distinct
//! inputs give distinct outputs, which is what lets key generators run on primary keys. The round
//! function is SipHash-1-3 under a key derived from the consistency PRF (a few tens of nanoseconds
//! a round). A 64-bit tweak selects an independent permutation.
//!
//! [`MixedRadix`] extends this to strings whose positions each have their own alphabet size
//! (digits, letters of one case, hex digits …): positions are grouped into chunks whose domain fits
//! in 63 bits; each chunk is permuted with a tweak that depends on the chunk's index and on the
//! plaintext of the chunks before it, so changing an early character changes everything after it,
//! and decryption (chunk by chunk, in order) recovers the input.

use crate::prf::Prf;
use siphasher::sip::SipHasher13;
use std::hash::Hasher;

const ROUNDS: u32 = 10;

/// A keyed permutation family over `0..n` for any `n ≤ 2^64`.
#[derive(Clone)]
pub struct IntPermutation {
    k0: u64,
    k1: u64,
}

fn mask(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

/// Bits needed for a domain of `n` values (`n == 0` stands for 2^64).
fn width(n: u64) -> u32 {
    if n == 0 {
        64
    } else {
        (64 - (n - 1).leading_zeros()).max(2)
    }
}

impl IntPermutation {
    /// The permutation family keyed by a subkey of `prf`: the same PRF (seed) always gives the
    /// same permutations.
    pub fn new(prf: &Prf) -> IntPermutation {
        let k = prf.derive("integer permutation");
        let k = k.key_bytes();
        let word = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&k[i..i + 8]);
            u64::from_le_bytes(b)
        };
        IntPermutation {
            k0: word(0),
            k1: word(8),
        }
    }

    fn round(&self, bits: u32, round: u32, tweak: u64, half: u64) -> u64 {
        let mut h = SipHasher13::new_with_keys(self.k0, self.k1);
        h.write_u64(((bits as u64) << 32) | round as u64);
        h.write_u64(tweak);
        h.write_u64(half);
        h.finish()
    }

    /// One Feistel encryption over `bits` bits (2 ≤ bits ≤ 64).
    fn encrypt_bits(&self, x: u64, bits: u32, tweak: u64) -> u64 {
        let u = bits / 2;
        let v = bits - u;
        let mut a = x >> v;
        let mut b = x & mask(v);
        for i in 0..ROUNDS {
            let m = if i % 2 == 0 { u } else { v };
            let c = a.wrapping_add(self.round(bits, i, tweak, b)) & mask(m);
            a = b;
            b = c;
        }
        // After an even number of rounds `a` holds u bits and `b` holds v bits again.
        (a << v) | b
    }

    fn decrypt_bits(&self, y: u64, bits: u32, tweak: u64) -> u64 {
        let u = bits / 2;
        let v = bits - u;
        let mut a = y >> v;
        let mut b = y & mask(v);
        for i in (0..ROUNDS).rev() {
            let m = if i % 2 == 0 { u } else { v };
            let prev_b = a;
            let prev_a = b.wrapping_sub(self.round(bits, i, tweak, prev_b)) & mask(m);
            a = prev_a;
            b = prev_b;
        }
        (a << v) | b
    }

    /// The image of `x` under the permutation of `0..n` (requires `x < n`; `n == 0` means 2^64).
    pub fn permute(&self, x: u64, n: u64) -> u64 {
        self.permute_tweaked(x, n, 0)
    }

    /// Like [`IntPermutation::permute`], in the independent permutation selected by `tweak`.
    pub fn permute_tweaked(&self, x: u64, n: u64, tweak: u64) -> u64 {
        if n == 1 {
            return 0;
        }
        let bits = width(n);
        let mut y = self.encrypt_bits(x, bits, tweak);
        while n != 0 && y >= n {
            y = self.encrypt_bits(y, bits, tweak);
        }
        y
    }

    /// The inverse of [`IntPermutation::permute_tweaked`].
    pub fn invert(&self, y: u64, n: u64, tweak: u64) -> u64 {
        if n == 1 {
            return 0;
        }
        let bits = width(n);
        let mut x = self.decrypt_bits(y, bits, tweak);
        while n != 0 && x >= n {
            x = self.decrypt_bits(x, bits, tweak);
        }
        x
    }
}

/// A keyed permutation of digit strings where position `i` holds a digit in `0..radix[i]`.
#[derive(Clone)]
pub struct MixedRadix {
    perm: IntPermutation,
}

/// Split positions into chunks whose domain (product of radixes) fits in 63 bits.
fn chunks(radixes: &[u32]) -> Vec<(usize, usize, u64)> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut size: u64 = 1;
    for (i, &r) in radixes.iter().enumerate() {
        let r = r.max(1) as u64;
        match size.checked_mul(r).filter(|s| *s < (1 << 63)) {
            Some(s) => size = s,
            None => {
                out.push((start, i, size));
                start = i;
                size = r;
            }
        }
    }
    if start < radixes.len() {
        out.push((start, radixes.len(), size));
    }
    out
}

fn to_number(digits: &[u32], radixes: &[u32]) -> u64 {
    digits
        .iter()
        .zip(radixes)
        .fold(0u64, |acc, (&d, &r)| acc * r.max(1) as u64 + d as u64)
}

fn from_number(mut x: u64, radixes: &[u32], out: &mut [u32]) {
    for (d, &r) in out.iter_mut().zip(radixes).rev() {
        let r = r.max(1) as u64;
        *d = (x % r) as u32;
        x /= r;
    }
}

/// Tweak for chunk `index`, chained on the plaintext of the chunks before it.
fn chain(previous: u64, index: usize, plain: u64) -> u64 {
    let mut h = SipHasher13::new_with_keys(previous, index as u64);
    h.write_u64(plain);
    h.finish()
}

impl MixedRadix {
    /// The permutation keyed by a subkey of `prf`, independent of the [`IntPermutation`] built
    /// on the same PRF.
    pub fn new(prf: &Prf) -> MixedRadix {
        MixedRadix {
            perm: IntPermutation::new(&prf.derive("mixed radix")),
        }
    }

    /// Encrypt `digits` in place. `radixes[i]` is the alphabet size of position `i`; `tweak`
    /// selects an independent permutation (e.g. per length or character-class pattern).
    pub fn encrypt(&self, digits: &mut [u32], radixes: &[u32], tweak: u64) {
        let mut t = tweak;
        for (i, (s, e, n)) in chunks(radixes).into_iter().enumerate() {
            let plain = to_number(&digits[s..e], &radixes[s..e]);
            let chunk_tweak = chain(t, i, 0);
            let y = self.perm.permute_tweaked(plain, n, chunk_tweak);
            from_number(y, &radixes[s..e], &mut digits[s..e]);
            t = chain(t, i, plain);
        }
    }

    /// Decrypt what [`MixedRadix::encrypt`] produced with the same radixes and tweak.
    pub fn decrypt(&self, digits: &mut [u32], radixes: &[u32], tweak: u64) {
        let mut t = tweak;
        for (i, (s, e, n)) in chunks(radixes).into_iter().enumerate() {
            let y = to_number(&digits[s..e], &radixes[s..e]);
            let plain = self.perm.invert(y, n, chain(t, i, 0));
            from_number(plain, &radixes[s..e], &mut digits[s..e]);
            t = chain(t, i, plain);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn is_a_bijection_on_odd_sized_domains() {
        let p = IntPermutation::new(&Prf::from_seed("t"));
        for n in [1u64, 2, 3, 7, 100, 1000, 4097] {
            let out: HashSet<u64> = (0..n).map(|x| p.permute(x, n)).collect();
            assert_eq!(out.len() as u64, n, "n={n}");
            assert!(out.iter().all(|y| *y < n));
            for x in 0..n.min(300) {
                assert_eq!(p.invert(p.permute_tweaked(x, n, 9), n, 9), x);
            }
        }
    }

    #[test]
    fn depends_on_the_key_and_moves_values() {
        let p = IntPermutation::new(&Prf::from_seed("a"));
        let q = IntPermutation::new(&Prf::from_seed("b"));
        let n = 1 << 31;
        let moved = (0..1000).filter(|x| p.permute(*x, n) != *x).count();
        assert!(moved > 990);
        let differ = (0..1000)
            .filter(|x| p.permute(*x, n) != q.permute(*x, n))
            .count();
        assert!(differ > 990);
        let big = u64::MAX - 5;
        assert_ne!(p.permute(big, 0), big);
        assert_eq!(p.invert(p.permute(big, 0), 0, 0), big);
    }

    #[test]
    fn mixed_radix_round_trips_across_chunks() {
        let m = MixedRadix::new(&Prf::from_seed("m"));
        // 40 hex digits: three chunks.
        let radixes = vec![16u32; 40];
        let plain: Vec<u32> = (0..40).map(|i| (i * 7 % 16) as u32).collect();
        let mut d = plain.clone();
        m.encrypt(&mut d, &radixes, 1);
        assert_ne!(d, plain);
        assert!(d.iter().all(|x| *x < 16));
        m.decrypt(&mut d, &radixes, 1);
        assert_eq!(d, plain);
        // Changing the first digit changes the last chunk too (chaining).
        let mut a = plain.clone();
        let mut b = plain.clone();
        b[0] = (b[0] + 1) % 16;
        m.encrypt(&mut a, &radixes, 1);
        m.encrypt(&mut b, &radixes, 1);
        assert_ne!(a[30..], b[30..]);
    }

    #[test]
    fn every_four_digit_string_maps_uniquely() {
        let m = MixedRadix::new(&Prf::from_seed("d"));
        let radixes = [10u32; 4];
        let mut seen = HashSet::new();
        for x in 0..10_000u32 {
            let mut d = [x / 1000, x / 100 % 10, x / 10 % 10, x % 10];
            m.encrypt(&mut d, &radixes, 0);
            assert!(seen.insert(d));
        }
    }
}
