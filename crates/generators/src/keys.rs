//! Key generators: one-to-one, so primary keys stay unique and foreign keys still join.

use crate::fpe::{IntPermutation, MixedRadix};
use crate::{BuildError, Built, ColumnContext, GenerateError, Generator, Prf, no_options, options};
use serde::Deserialize;
use std::fmt::Write;
use std::sync::Arc;

/// The default domain of `integer_key`: each band maps onto itself, so a value that fits a
/// `smallint` stays a `smallint`, one that fits an `integer` stays an `integer`, and the mapping
/// does not depend on the column's declared width (an `integer` key and its `bigint` foreign key
/// rewrite alike). Negative values map through the mirror image of the same bands.
const BANDS: [(u64, u64); 3] = [(0, 1 << 15), (1 << 15, 1 << 31), (1 << 31, 1 << 63)];

struct IntegerKey {
    perm: IntPermutation,
    negative: IntPermutation,
    /// Explicit `[min, max]`, when configured.
    range: Option<(i64, i64)>,
}

impl IntegerKey {
    fn map_nonnegative(perm: &IntPermutation, x: u64) -> u64 {
        for (lo, hi) in BANDS {
            if x < hi {
                return lo + perm.permute(x - lo, hi - lo);
            }
        }
        x // unreachable for x < 2^63
    }

    fn map(&self, x: i64) -> Result<i64, GenerateError> {
        if let Some((min, max)) = self.range {
            if x < min || x > max {
                return Err(GenerateError::OutOfRange { min, max });
            }
            let n = (max as i128 - min as i128 + 1) as u128;
            let n = if n > u64::MAX as u128 { 0 } else { n as u64 };
            let off = (x as i128 - min as i128) as u64;
            return Ok((min as i128 + self.perm.permute(off, n) as i128) as i64);
        }
        if x >= 0 {
            Ok(Self::map_nonnegative(&self.perm, x as u64) as i64)
        } else {
            let mirrored = (-1 - x) as u64;
            Ok(-1 - Self::map_nonnegative(&self.negative, mirrored) as i64)
        }
    }
}

impl Generator for IntegerKey {
    fn generate(&self, input: Option<&str>, out: &mut String) -> Result<bool, GenerateError> {
        let Some(text) = input else { return Ok(false) };
        let x: i64 = text.trim().parse().map_err(|_| GenerateError::Unparsable {
            expected: "an integer",
        })?;
        let _ = write!(out, "{}", self.map(x)?);
        Ok(true)
    }
}

pub(crate) fn integer_key(opts: &toml::Table, ctx: &ColumnContext, prf: &Prf) -> Built {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Opts {
        min: Option<i64>,
        max: Option<i64>,
    }
    let o: Opts = options("integer_key", opts)?;
    let range = match (o.min, o.max) {
        (None, None) => None,
        (Some(min), Some(max)) if min <= max => {
            if let Some((lo, hi)) = ctx.value_type.integer_range()
                && (min < lo || max > hi)
            {
                return Err(BuildError::BadOption(format!(
                    "generator `integer_key`: [{min}, {max}] does not fit the column's range [{lo}, {hi}]"
                )));
            }
            Some((min, max))
        }
        (Some(_), Some(_)) => {
            return Err(BuildError::BadOption(
                "generator `integer_key`: `min` must not be greater than `max`".into(),
            ));
        }
        _ => {
            return Err(BuildError::BadOption(
                "generator `integer_key`: give both `min` and `max`, or neither".into(),
            ));
        }
    };
    // The range is part of the key: a different domain is a different permutation anyway.
    let prf = prf.derive("integer_key");
    let prf = match range {
        Some((a, b)) => prf.derive(&format!("range {a} {b}")),
        None => prf,
    };
    Ok(Arc::new(IntegerKey {
        perm: IntPermutation::new(&prf),
        negative: IntPermutation::new(&prf.derive("negative")),
        range,
    }))
}

/// Which characters a string key rewrites; everything else stays in place.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alphabet {
    /// `0-9`.
    Digits,
    /// `A-Z`, `a-z` (case kept) and `0-9`.
    Alphanumeric,
    /// Printable ASCII, space to `~`.
    Ascii,
    /// Hex digits, case kept.
    Hex,
}

/// A character's class (distinct per alphabet within a class), its radix, and its digit.
fn classify(alphabet: Alphabet, c: char) -> Option<(u8, u32, u32)> {
    let b = c as u32;
    match alphabet {
        Alphabet::Digits => c.is_ascii_digit().then(|| (0, 10, b - '0' as u32)),
        Alphabet::Alphanumeric => match c {
            '0'..='9' => Some((0, 10, b - '0' as u32)),
            'a'..='z' => Some((1, 26, b - 'a' as u32)),
            'A'..='Z' => Some((2, 26, b - 'A' as u32)),
            _ => None,
        },
        Alphabet::Ascii => (' '..='~').contains(&c).then(|| (0, 95, b - ' ' as u32)),
        Alphabet::Hex => match c {
            '0'..='9' => Some((0, 16, b - '0' as u32)),
            'a'..='f' => Some((1, 16, b - 'a' as u32 + 10)),
            'A'..='F' => Some((2, 16, b - 'A' as u32 + 10)),
            _ => None,
        },
    }
}

fn unclassify(alphabet: Alphabet, class: u8, digit: u32) -> char {
    let at = |base: char, d: u32| char::from_u32(base as u32 + d).unwrap_or(base);
    match (alphabet, class) {
        (Alphabet::Digits, _) | (Alphabet::Alphanumeric, 0) => at('0', digit),
        (Alphabet::Alphanumeric, 1) => at('a', digit),
        (Alphabet::Alphanumeric, _) => at('A', digit),
        (Alphabet::Ascii, _) => at(' ', digit),
        (Alphabet::Hex, 1) => {
            if digit < 10 {
                at('0', digit)
            } else {
                at('a', digit - 10)
            }
        }
        (Alphabet::Hex, 2) => {
            if digit < 10 {
                at('0', digit)
            } else {
                at('A', digit - 10)
            }
        }
        (Alphabet::Hex, _) => {
            if digit < 10 {
                at('0', digit)
            } else {
                at('a', digit - 10)
            }
        }
    }
}

/// One-to-one rewrite of the characters of an alphabet, in place: same length, same character
/// classes at the same positions, every other character kept. Strings with the same class
/// pattern form one domain, permuted with format-preserving encryption.
pub(crate) struct StringKey {
    fpe: MixedRadix,
    alphabet: Alphabet,
}

impl StringKey {
    pub(crate) fn new(prf: &Prf, alphabet: Alphabet) -> StringKey {
        StringKey {
            fpe: MixedRadix::new(prf),
            alphabet,
        }
    }

    /// Rewrite `input` into `out`; `decrypt` runs the inverse.
    pub(crate) fn apply(&self, input: &str, out: &mut String, decrypt: bool) {
        let mut classes = Vec::with_capacity(input.len());
        let mut radixes = Vec::with_capacity(input.len());
        let mut digits = Vec::with_capacity(input.len());
        // Hex output keeps the case of the input's letters, even for positions holding digits.
        let hex_class = match self.alphabet {
            Alphabet::Hex if input.chars().any(|c| c.is_ascii_uppercase()) => 2,
            _ => 1,
        };
        let mut pattern = siphasher::sip::SipHasher13::new_with_keys(0x6d69, 0x7261);
        for c in input.chars() {
            if let Some((class, radix, digit)) = classify(self.alphabet, c) {
                let class = if self.alphabet == Alphabet::Hex {
                    hex_class
                } else {
                    class
                };
                classes.push(class);
                radixes.push(radix);
                digits.push(digit);
                std::hash::Hasher::write_u8(&mut pattern, class);
            } else {
                std::hash::Hasher::write_u8(&mut pattern, 255);
            }
        }
        let tweak = std::hash::Hasher::finish(&pattern);
        if decrypt {
            self.fpe.decrypt(&mut digits, &radixes, tweak);
        } else {
            self.fpe.encrypt(&mut digits, &radixes, tweak);
        }
        let mut k = 0;
        for c in input.chars() {
            if classify(self.alphabet, c).is_some() {
                out.push(unclassify(self.alphabet, classes[k], digits[k]));
                k += 1;
            } else {
                out.push(c);
            }
        }
    }
}

impl Generator for StringKey {
    fn generate(&self, input: Option<&str>, out: &mut String) -> Result<bool, GenerateError> {
        let Some(v) = input else { return Ok(false) };
        self.apply(v, out, false);
        Ok(true)
    }
}

pub(crate) fn string_key(
    generator: &'static str,
    alphabet: Alphabet,
    opts: &toml::Table,
    prf: &Prf,
) -> Built {
    no_options(generator, opts)?;
    Ok(Arc::new(StringKey::new(&prf.derive(generator), alphabet)))
}

/// `uuid_key`: a UUID's 128 bits permuted one-to-one; the output is a UUID in canonical form.
struct UuidKey(StringKey);

impl Generator for UuidKey {
    fn generate(&self, input: Option<&str>, out: &mut String) -> Result<bool, GenerateError> {
        let Some(v) = input else { return Ok(false) };
        let hex: String = v
            .chars()
            .filter(|c| *c != '-')
            .collect::<String>()
            .to_ascii_lowercase();
        let hex = hex.trim_start_matches('{').trim_end_matches('}');
        if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(GenerateError::Unparsable { expected: "a UUID" });
        }
        let mut mapped = String::with_capacity(32);
        self.0.apply(hex, &mut mapped, false);
        for (i, c) in mapped.chars().enumerate() {
            if matches!(i, 8 | 12 | 16 | 20) {
                out.push('-');
            }
            out.push(c);
        }
        Ok(true)
    }
}

pub(crate) fn uuid_key(opts: &toml::Table, _: &ColumnContext, prf: &Prf) -> Built {
    no_options("uuid_key", opts)?;
    Ok(Arc::new(UuidKey(StringKey::new(
        &prf.derive("uuid_key"),
        Alphabet::Hex,
    ))))
}

/// `mac_address`: the 48 bits permuted one-to-one; separators and letter case kept.
struct MacKey(StringKey);

impl Generator for MacKey {
    fn generate(&self, input: Option<&str>, out: &mut String) -> Result<bool, GenerateError> {
        let Some(v) = input else { return Ok(false) };
        let hex = v.chars().filter(|c| c.is_ascii_hexdigit()).count();
        let others_ok = v
            .chars()
            .all(|c| c.is_ascii_hexdigit() || matches!(c, ':' | '-' | '.'));
        if !(hex == 12 || hex == 16) || !others_ok {
            return Err(GenerateError::Unparsable {
                expected: "a MAC address",
            });
        }
        self.0.apply(v, out, false);
        Ok(true)
    }
}

pub(crate) fn mac_address(opts: &toml::Table, _: &ColumnContext, prf: &Prf) -> Built {
    no_options("mac_address", opts)?;
    Ok(Arc::new(MacKey(StringKey::new(
        &prf.derive("mac_address"),
        Alphabet::Hex,
    ))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mirage_core::ValueType;
    use std::collections::HashSet;

    fn key(ty: &ValueType, opts: &toml::Table) -> Arc<dyn Generator> {
        let ctx = ColumnContext {
            table: "t",
            column: "id",
            value_type: ty,
            not_null: true,
            columns: &[],
            stats: None,
        };
        crate::build("integer_key", opts, &ctx, &Prf::from_seed("seed")).unwrap()
    }

    fn run(g: &dyn Generator, v: i64) -> i64 {
        let mut s = String::new();
        g.generate(Some(&v.to_string()), &mut s).unwrap();
        s.parse().unwrap()
    }

    #[test]
    fn unique_and_in_band() {
        let g = key(&ValueType::Integer, &toml::Table::new());
        let out: HashSet<i64> = (1..20_000).map(|v| run(&*g, v)).collect();
        assert_eq!(out.len(), 19_999);
        for v in [
            0,
            1,
            32767,
            32768,
            i32::MAX as i64,
            -1,
            -32768,
            i32::MIN as i64,
        ] {
            let y = run(&*g, v);
            let band = |a: i64| {
                let m = if a < 0 { -1 - a } else { a } as u64;
                BANDS.iter().position(|(_, hi)| m < *hi)
            };
            assert_eq!(v < 0, y < 0, "sign of {v}");
            assert_eq!(band(v), band(y), "band of {v}");
        }
        assert!(run(&*g, i64::MAX) >= 0 && run(&*g, i64::MIN) < 0);
    }

    #[test]
    fn width_does_not_change_the_mapping() {
        let a = key(&ValueType::Integer, &toml::Table::new());
        let b = key(&ValueType::BigInt, &toml::Table::new());
        for v in [1, 77, 123_456] {
            assert_eq!(run(&*a, v), run(&*b, v));
        }
    }

    #[test]
    fn explicit_range() {
        let mut opts = toml::Table::new();
        opts.insert("min".into(), toml::Value::Integer(100));
        opts.insert("max".into(), toml::Value::Integer(199));
        let g = key(&ValueType::Integer, &opts);
        let out: HashSet<i64> = (100..200).map(|v| run(&*g, v)).collect();
        assert_eq!(out.len(), 100);
        assert!(out.iter().all(|v| (100..200).contains(v)));
        let mut s = String::new();
        assert!(matches!(
            g.generate(Some("5"), &mut s),
            Err(GenerateError::OutOfRange { .. })
        ));
        assert!(matches!(
            g.generate(Some("abc"), &mut s),
            Err(GenerateError::Unparsable { .. })
        ));
    }

    fn string_key_roundtrip(alphabet: Alphabet, input: &str) -> String {
        let k = StringKey::new(&Prf::from_seed("seed"), alphabet);
        let mut out = String::new();
        k.apply(input, &mut out, false);
        let mut back = String::new();
        k.apply(&out, &mut back, true);
        assert_eq!(back, input, "decrypting recovers the input");
        out
    }

    #[test]
    fn every_four_digit_string_is_a_bijection_keeping_zeros_and_punctuation() {
        let mut seen = HashSet::new();
        for i in 0..10_000 {
            let input = format!("{i:04}");
            let out = string_key_roundtrip(Alphabet::Digits, &input);
            assert_eq!(out.len(), 4);
            assert!(out.bytes().all(|b| b.is_ascii_digit()));
            assert!(seen.insert(out));
        }
        let out = string_key_roundtrip(Alphabet::Digits, "0012-345 x");
        assert_eq!(out.len(), 10);
        assert_eq!(&out[4..5], "-");
        assert!(out.ends_with(" x"));
    }

    #[test]
    fn alphanumeric_keeps_classes_and_is_unique_on_many_inputs() {
        let mut seen = HashSet::new();
        for i in 0..200_000u32 {
            let input = format!("Ab{i:06}z");
            let out = string_key_roundtrip(Alphabet::Alphanumeric, &input);
            let shape = |s: &str| {
                s.chars()
                    .map(|c| {
                        if c.is_ascii_uppercase() {
                            'A'
                        } else if c.is_ascii_lowercase() {
                            'a'
                        } else {
                            '9'
                        }
                    })
                    .collect::<String>()
            };
            assert_eq!(shape(&out), shape(&input));
            assert!(seen.insert(out));
        }
        let out = string_key_roundtrip(Alphabet::Ascii, "p@ss w0rd!~");
        assert!(out.chars().all(|c| (' '..='~').contains(&c)) && out.len() == 11);
    }

    #[test]
    fn uuids_and_macs_stay_valid() {
        let ty = ValueType::Uuid;
        let ctx = ColumnContext {
            table: "t",
            column: "u",
            value_type: &ty,
            not_null: false,
            columns: &[],
            stats: None,
        };
        let g = crate::build("uuid_key", &toml::Table::new(), &ctx, &Prf::from_seed("s")).unwrap();
        let mut seen = HashSet::new();
        for i in 0..10_000u32 {
            let mut out = String::new();
            g.generate(Some(&format!("00000000-0000-4000-8000-{i:012}")), &mut out)
                .unwrap();
            let parts: Vec<&str> = out.split('-').collect();
            assert_eq!(
                parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
                [8, 4, 4, 4, 12]
            );
            assert!(
                out.replace('-', "")
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            );
            assert!(seen.insert(out));
        }
        let mut bad = String::new();
        assert!(g.generate(Some("not-a-uuid"), &mut bad).is_err());
        let mac = string_key_roundtrip(Alphabet::Hex, "08:00:2B:01:02:03");
        assert_eq!(mac.len(), 17);
        assert!(mac.split(':').all(|p| {
            p.len() == 2
                && p.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_lowercase())
        }));
    }
}
