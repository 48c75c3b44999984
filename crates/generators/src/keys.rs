//! Key generators: one-to-one, so primary keys stay unique and foreign keys still join.

use crate::fpe::IntPermutation;
use crate::{BuildError, Built, ColumnContext, GenerateError, Generator, Prf, options};
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
    let prf = match range {
        Some((a, b)) => prf.derive(&format!("range {a} {b}")),
        None => prf.clone(),
    };
    Ok(Arc::new(IntegerKey {
        perm: IntPermutation::new(&prf),
        negative: IntPermutation::new(&prf.derive("negative")),
        range,
    }))
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
}
