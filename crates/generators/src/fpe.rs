//! Format-preserving encryption of integers: a keyed permutation of `0..n`.
//!
//! An FF1-shaped alternating Feistel network on the smallest bit width that holds `n`, with
//! cycle-walking (re-encrypt until the result falls inside `0..n`). Every round is invertible, so
//! the whole map is a bijection: distinct inputs give distinct outputs, which is what lets a key
//! generator run on a primary key. The round function is SipHash-1-3 under a key derived from the
//! consistency PRF, which keeps a permutation call to a few tens of nanoseconds.

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

impl IntPermutation {
    pub fn new(prf: &Prf) -> IntPermutation {
        let k = prf.derive("integer permutation").key_bytes().to_owned();
        IntPermutation {
            k0: u64::from_le_bytes(k[0..8].try_into().unwrap_or_default()),
            k1: u64::from_le_bytes(k[8..16].try_into().unwrap_or_default()),
        }
    }

    fn round(&self, bits: u32, round: u32, half: u64) -> u64 {
        let mut h = SipHasher13::new_with_keys(self.k0, self.k1);
        h.write_u64(((bits as u64) << 32) | round as u64);
        h.write_u64(half);
        h.finish()
    }

    /// One Feistel encryption over `bits` bits (2 ≤ bits ≤ 64).
    fn encrypt_bits(&self, x: u64, bits: u32) -> u64 {
        let u = bits / 2;
        let v = bits - u;
        let mut a = x >> v;
        let mut b = x & mask(v);
        for i in 0..ROUNDS {
            let m = if i % 2 == 0 { u } else { v };
            let c = a.wrapping_add(self.round(bits, i, b)) & mask(m);
            a = b;
            b = c;
        }
        // After an even number of rounds `a` holds u bits and `b` holds v bits again.
        if v >= 64 { b } else { (a << v) | b }
    }

    /// The image of `x` under the permutation of `0..n` (requires `x < n`, `n ≥ 1`).
    /// `n == 0` stands for 2^64.
    pub fn permute(&self, x: u64, n: u64) -> u64 {
        if n == 1 {
            return 0;
        }
        let bits = if n == 0 {
            64
        } else {
            (64 - (n - 1).leading_zeros()).max(2)
        };
        let mut y = self.encrypt_bits(x, bits);
        while n != 0 && y >= n {
            y = self.encrypt_bits(y, bits);
        }
        y
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
        assert!(p.permute(u64::MAX - 5, 0) != u64::MAX - 5);
    }
}
