//! Numbers and time: noise, random values in ranges, sequences, timestamp shifts and truncation.

use crate::datetime::{DAY_MICROS, Stamp, civil_from_days, days_from_civil};
use crate::{
    BuildError, Built, ColumnContext, GenerateError, Generator, Prf, Row, RowGenerator, RowRead,
    no_options, options,
};
use mirage_core::ValueType;
use serde::Deserialize;
use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// Digits after the decimal point in a number's text.
fn decimals(v: &str) -> usize {
    v.split_once('.')
        .map_or(0, |(_, f)| f.bytes().take_while(u8::is_ascii_digit).count())
}

/// Largest absolute value a `numeric(p, s)` holds, when declared.
fn numeric_limit(ty: &ValueType) -> Option<f64> {
    match ty {
        ValueType::Numeric {
            precision: Some(p),
            scale,
        } => {
            let s = scale.unwrap_or(0);
            Some(10f64.powi(p.saturating_sub(s) as i32) - 10f64.powi(-(s as i32)))
        }
        ValueType::SmallInt => Some(i16::MAX as f64),
        ValueType::Integer => Some(i32::MAX as f64),
        ValueType::BigInt => Some(9.0e18),
        _ => None,
    }
}

/// Write `x` with `places` decimals (integers: none), clamped to `limit`.
fn write_number(x: f64, places: usize, limit: Option<f64>, out: &mut String) {
    let x = match limit {
        Some(l) => x.clamp(-l, l),
        None => x,
    };
    let _ = write!(out, "{x:.places$}");
}

struct Noise {
    prf: Prf,
    multiplicative: bool,
    scale: f64,
    integer: bool,
    scale_digits: Option<usize>,
    limit: Option<f64>,
}

impl Generator for Noise {
    fn generate(&self, input: Option<&str>, out: &mut String) -> Result<bool, GenerateError> {
        let Some(v) = input else { return Ok(false) };
        // Beyond the floating-point range (NUMERIC(1000) holds 1e400) noise has no meaning:
        // refused rather than written as Infinity.
        let beyond = GenerateError::Unparsable {
            expected: "a number within the floating-point range (±1.8e308) that noise can shift",
        };
        let x: f64 = v.trim().parse().map_err(|_| GenerateError::Unparsable {
            expected: "a number",
        })?;
        if !x.is_finite() {
            return Err(beyond);
        }
        let mut rng = self.prf.rng("number", v.as_bytes());
        // Uniform in [-1, 1).
        let u = (rng.below(1 << 53) as f64 / (1u64 << 52) as f64) - 1.0;
        let y = if self.multiplicative {
            x * (1.0 + u * self.scale)
        } else {
            x + u * self.scale
        };
        if !y.is_finite() {
            return Err(beyond);
        }
        let places = if self.integer {
            0
        } else {
            self.scale_digits.unwrap_or_else(|| decimals(v))
        };
        write_number(y, places, self.limit, out);
        Ok(true)
    }
}

pub(crate) fn noise(opts: &toml::Table, ctx: &ColumnContext, prf: &Prf) -> Built {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Opts {
        kind: Option<String>,
        scale: f64,
    }
    let o: Opts = options("noise", opts)?;
    let multiplicative = match o.kind.as_deref() {
        None | Some("additive") => false,
        Some("multiplicative") => true,
        Some(k) => {
            return Err(BuildError::BadOption(format!(
                "generator `noise`: kind `{k}` is not additive or multiplicative"
            )));
        }
    };
    if !(o.scale.is_finite() && o.scale > 0.0) {
        return Err(BuildError::BadOption(
            "generator `noise`: `scale` must be a positive number".into(),
        ));
    }
    let scale_digits = match ctx.value_type {
        ValueType::Numeric { scale: Some(s), .. } => Some(*s as usize),
        _ => None,
    };
    Ok(Arc::new(Noise {
        prf: prf.derive("noise"),
        multiplicative,
        scale: o.scale,
        integer: ctx.value_type.integer_range().is_some(),
        scale_digits,
        limit: numeric_limit(ctx.value_type),
    }))
}

/// What a `random_*` generator draws.
enum Draw {
    Integer(i64, i64),
    Double(f64, f64),
    Boolean,
    Uuid,
    /// Microseconds since 1970 (inclusive bounds); `date_only` writes dates.
    Timestamp(i64, i64, bool),
}

/// `random_*`: a value drawn from a range, derived from the input value (so it is consistent).
struct Random {
    prf: Prf,
    draw: Draw,
}

impl Generator for Random {
    fn generate(&self, input: Option<&str>, out: &mut String) -> Result<bool, GenerateError> {
        let Some(v) = input else { return Ok(false) };
        let mut rng = self.prf.rng("random", v.as_bytes());
        match self.draw {
            Draw::Integer(lo, hi) => {
                let span = (hi as i128 - lo as i128 + 1) as u128;
                let r = if span > u64::MAX as u128 {
                    rng.next_u64() as i128
                } else {
                    rng.below(span as u64) as i128
                };
                let _ = write!(out, "{}", lo as i128 + r);
            }
            Draw::Double(lo, hi) => {
                let u = rng.below(1 << 53) as f64 / (1u64 << 53) as f64;
                let _ = write!(out, "{}", lo + u * (hi - lo));
            }
            Draw::Boolean => out.push(if rng.below(2) == 0 { 'f' } else { 't' }),
            Draw::Uuid => {
                let (a, b) = (rng.next_u64(), rng.next_u64());
                // Version 4, RFC 4122 variant.
                let a = (a & 0xffff_ffff_ffff_0fff) | 0x4000;
                let b = (b & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
                let _ = write!(
                    out,
                    "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
                    a >> 32,
                    (a >> 16) & 0xffff,
                    a & 0xffff,
                    b >> 48,
                    b & 0xffff_ffff_ffff
                );
            }
            Draw::Timestamp(lo, hi, date_only) => {
                let t = lo + rng.below((hi - lo + 1) as u64) as i64;
                let st = Stamp {
                    days: t.div_euclid(DAY_MICROS),
                    micros: (!date_only).then(|| t.rem_euclid(DAY_MICROS) / 1_000_000 * 1_000_000),
                    separator: ' ',
                    fraction: 0,
                    suffix: if date_only {
                        String::new()
                    } else {
                        "+00".into()
                    },
                };
                st.write(out);
            }
        }
        Ok(true)
    }
}

fn parse_bound(generator: &str, key: &str, v: &str) -> Result<i64, BuildError> {
    Stamp::parse(v).map(|s| s.total_micros()).ok_or_else(|| {
        BuildError::BadOption(format!(
            "generator `{generator}`: `{key}` is not a date or timestamp like 2024-01-31 or 2024-01-31 12:00:00"
        ))
    })
}

pub(crate) fn random(
    generator: &'static str,
    opts: &toml::Table,
    ctx: &ColumnContext,
    prf: &Prf,
) -> Built {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Opts {
        min: Option<toml::Value>,
        max: Option<toml::Value>,
    }
    let o: Opts = options(generator, opts)?;
    let bad = |m: &str| BuildError::BadOption(format!("generator `{generator}`: {m}"));
    let draw = match generator {
        "random_integer" => {
            let (tlo, thi) = ctx
                .value_type
                .integer_range()
                .unwrap_or((i64::MIN, i64::MAX));
            let lo = o
                .min
                .as_ref()
                .and_then(toml::Value::as_integer)
                .unwrap_or(tlo.max(0));
            let hi = o
                .max
                .as_ref()
                .and_then(toml::Value::as_integer)
                .unwrap_or(thi);
            if lo > hi || lo < tlo || hi > thi {
                return Err(bad(&format!(
                    "[min, max] must be ordered and inside the column's range [{tlo}, {thi}]"
                )));
            }
            Draw::Integer(lo, hi)
        }
        "random_double" => {
            let num = |v: &Option<toml::Value>, d: f64| {
                v.as_ref()
                    .and_then(|x| x.as_float().or(x.as_integer().map(|i| i as f64)))
                    .unwrap_or(d)
            };
            let (lo, hi) = (num(&o.min, 0.0), num(&o.max, 1.0));
            if lo.partial_cmp(&hi) != Some(std::cmp::Ordering::Less) {
                return Err(bad("`min` must be below `max`"));
            }
            Draw::Double(lo, hi)
        }
        "random_boolean" | "random_uuid" => {
            if o.min.is_some() || o.max.is_some() {
                return Err(bad("takes no min/max"));
            }
            if generator == "random_boolean" {
                Draw::Boolean
            } else {
                Draw::Uuid
            }
        }
        _ => {
            let text = |v: &Option<toml::Value>, d: &str| match v {
                Some(toml::Value::String(s)) => s.clone(),
                Some(toml::Value::Datetime(d)) => d.to_string().replace('T', " "),
                _ => d.to_string(),
            };
            let lo = parse_bound(generator, "min", &text(&o.min, "2000-01-01"))?;
            let hi = parse_bound(generator, "max", &text(&o.max, "2030-12-31"))?;
            if lo > hi {
                return Err(bad("`min` must not be after `max`"));
            }
            Draw::Timestamp(lo, hi, *ctx.value_type == ValueType::Date)
        }
    };
    Ok(Arc::new(Random {
        prf: prf.derive(generator),
        draw,
    }))
}

/// `sequential_integer`: start, start + step, … in the order rows are transformed. Unique, but
/// not consistent across runs (parts are transformed in parallel).
struct Sequential {
    next: AtomicI64,
    step: i64,
}

impl Generator for Sequential {
    fn generate(&self, input: Option<&str>, out: &mut String) -> Result<bool, GenerateError> {
        if input.is_none() {
            return Ok(false);
        }
        let v = self.next.fetch_add(self.step, Ordering::Relaxed);
        let _ = write!(out, "{v}");
        Ok(true)
    }
}

pub(crate) fn sequential_integer(opts: &toml::Table, _: &ColumnContext, _: &Prf) -> Built {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Opts {
        start: Option<i64>,
        step: Option<i64>,
    }
    let o: Opts = options("sequential_integer", opts)?;
    let step = o.step.unwrap_or(1);
    if step == 0 {
        return Err(BuildError::BadOption(
            "generator `sequential_integer`: `step` must not be 0".into(),
        ));
    }
    Ok(Arc::new(Sequential {
        next: AtomicI64::new(o.start.unwrap_or(1)),
        step,
    }))
}

/// `timestamp_shift` / `event_timestamps`: move a date or timestamp by an offset drawn from the
/// PRF of a key — the value itself, or another column of the row (every row of one patient moves
/// by the same amount, so the order of and gaps between their events survive).
struct Shift {
    prf: Prf,
    min_micros: i64,
    max_micros: i64,
    key: Option<RowRead>,
}

impl RowGenerator for Shift {
    fn generate_in_row(
        &self,
        input: Option<&str>,
        row: &dyn Row,
        out: &mut String,
    ) -> Result<bool, GenerateError> {
        let Some(v) = input else { return Ok(false) };
        let mut st = Stamp::parse(v).ok_or(GenerateError::Unparsable {
            expected: "a date or timestamp",
        })?;
        let key = match self.key {
            Some(r) => row.original(r.column).unwrap_or(""),
            None => v,
        };
        let mut rng = self.prf.rng("shift", key.as_bytes());
        let span = (self.max_micros - self.min_micros) as u64 + 1;
        let mut offset = self.min_micros + rng.below(span) as i64;
        if st.micros.is_none() {
            // Dates move by whole days.
            offset = offset.div_euclid(DAY_MICROS) * DAY_MICROS;
        }
        st.set_total_micros(st.total_micros() + offset);
        st.write(out);
        Ok(true)
    }

    fn reads(&self) -> &[RowRead] {
        self.key.as_slice()
    }
}

pub(crate) fn shift(
    generator: &'static str,
    opts: &toml::Table,
    ctx: &ColumnContext,
    prf: &Prf,
) -> Built {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Opts {
        min_days: Option<f64>,
        max_days: Option<f64>,
        key_column: Option<String>,
        anchor: Option<String>,
    }
    let o: Opts = options(generator, opts)?;
    let max = o.max_days.unwrap_or(30.0);
    let min = o.min_days.unwrap_or(-max);
    if min
        .partial_cmp(&max)
        .is_none_or(|o| o == std::cmp::Ordering::Greater)
        || max.abs() > 36_500.0
        || min.abs() > 36_500.0
    {
        return Err(BuildError::BadOption(format!(
            "generator `{generator}`: need min_days ≤ max_days, within 100 years"
        )));
    }
    let key_name = if generator == "event_timestamps" {
        Some(o.anchor.ok_or_else(|| {
            BuildError::BadOption(
                "generator `event_timestamps`: `anchor` names the column that ties a row's events together (e.g. \"patient_id\")".into(),
            )
        })?)
    } else {
        o.key_column
    };
    let key = key_name
        .as_deref()
        .map(|c| {
            ctx.column_index(generator, c).map(|column| RowRead {
                column,
                generated: false,
            })
        })
        .transpose()?;
    // One key for both names, so timestamp_shift with key_column and event_timestamps with the
    // same anchor shift alike.
    let mut prf = prf.derive("timestamp_shift");
    if let Some(k) = &key_name {
        prf = prf.derive(k);
    }
    Ok(Arc::new(Shift {
        prf,
        min_micros: (min * DAY_MICROS as f64) as i64,
        max_micros: (max * DAY_MICROS as f64) as i64,
        key,
    }))
}

#[derive(Clone, Copy)]
enum Unit {
    Year,
    Month,
    Day,
    Hour,
}

struct Truncate {
    unit: Unit,
}

impl Generator for Truncate {
    fn generate(&self, input: Option<&str>, out: &mut String) -> Result<bool, GenerateError> {
        let Some(v) = input else { return Ok(false) };
        let mut st = Stamp::parse(v).ok_or(GenerateError::Unparsable {
            expected: "a date or timestamp",
        })?;
        let (y, m, _) = civil_from_days(st.days);
        match self.unit {
            Unit::Year => st.days = days_from_civil(y, 1, 1),
            Unit::Month => st.days = days_from_civil(y, m, 1),
            Unit::Day | Unit::Hour => {}
        }
        st.micros = st.micros.map(|us| match self.unit {
            Unit::Hour => us / 3_600_000_000 * 3_600_000_000,
            _ => 0,
        });
        st.write(out);
        Ok(true)
    }
}

pub(crate) fn date_truncate(opts: &toml::Table, _: &ColumnContext, _: &Prf) -> Built {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Opts {
        unit: String,
    }
    let o: Opts = options("date_truncate", opts)?;
    let unit = match o.unit.as_str() {
        "year" => Unit::Year,
        "month" => Unit::Month,
        "day" => Unit::Day,
        "hour" => Unit::Hour,
        other => {
            return Err(BuildError::BadOption(format!(
                "generator `date_truncate`: unit `{other}` is not year, month, day or hour{}",
                mirage_core::suggest::did_you_mean(other, ["year", "month", "day", "hour"])
            )));
        }
    };
    Ok(Arc::new(Truncate { unit }))
}

pub(crate) fn no_range(
    generator: &'static str,
    opts: &toml::Table,
    ctx: &ColumnContext,
    prf: &Prf,
) -> Built {
    no_options(generator, opts)?;
    random(generator, &toml::Table::new(), ctx, prf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(name: &str, ty: &ValueType, opts: &[(&str, toml::Value)], v: &str) -> String {
        let mut s = String::new();
        built(name, ty, opts).generate(Some(v), &mut s).unwrap();
        s
    }

    /// Generator `name` for a column of type `ty` with `opts`.
    fn built(
        name: &str,
        ty: &ValueType,
        opts: &[(&str, toml::Value)],
    ) -> std::sync::Arc<dyn Generator> {
        let ctx = ColumnContext {
            table: "t",
            column: "c",
            value_type: ty,
            not_null: false,
            columns: &[],
            stats: None,
        };
        let o: toml::Table = opts
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        crate::build(name, &o, &ctx, &Prf::from_seed("n")).unwrap()
    }

    #[test]
    fn noise_refuses_numbers_beyond_floats() {
        let ty = ValueType::Numeric {
            precision: None,
            scale: None,
        };
        let gen_ = built("noise", &ty, &[("scale", 0.5.into())]);
        for v in ["1e400", "-1e400", "Infinity", "NaN"] {
            let mut out = String::new();
            assert!(gen_.generate(Some(v), &mut out).is_err(), "{v} gave {out}");
        }
    }

    #[test]
    fn noise_keeps_scale_and_bounds() {
        let ty = ValueType::Numeric {
            precision: Some(6),
            scale: Some(2),
        };
        for i in 0..500 {
            let v = format!("{}.50", 100 + i);
            let out = g(
                "noise",
                &ty,
                &[("kind", "multiplicative".into()), ("scale", 0.1.into())],
                &v,
            );
            let (x, y): (f64, f64) = (v.parse().unwrap(), out.parse().unwrap());
            assert_eq!(decimals(&out), 2, "{out}");
            assert!((y - x).abs() <= x * 0.1 + 0.01, "{v} → {out}");
        }
        assert!(g("noise", &ty, &[("scale", 1e9.into())], "9999.99").len() <= 8);
        let out = g("noise", &ValueType::Integer, &[("scale", 5.into())], "100");
        assert!(
            out.parse::<i64>().is_ok_and(|y| (95..=105).contains(&y)),
            "{out}"
        );
    }

    #[test]
    fn randoms_stay_in_range_and_are_valid() {
        for i in 0..300 {
            let v = i.to_string();
            let x: i64 = g(
                "random_integer",
                &ValueType::Integer,
                &[("min", 10.into()), ("max", 20.into())],
                &v,
            )
            .parse()
            .unwrap();
            assert!((10..=20).contains(&x));
            let u = g("random_uuid", &ValueType::Uuid, &[], &v);
            assert_eq!(u.len(), 36);
            assert_eq!(&u[14..15], "4");
            let t = g(
                "random_timestamp",
                &ValueType::Date,
                &[("min", "2024-01-01".into()), ("max", "2024-12-31".into())],
                &v,
            );
            assert!(t.starts_with("2024-") && t.len() == 10, "{t}");
            let b = g("random_boolean", &ValueType::Boolean, &[], &v);
            assert!(b == "t" || b == "f");
        }
    }

    #[test]
    fn shifts_and_truncation() {
        let ty = ValueType::TimestampTz;
        let out = g(
            "date_truncate",
            &ty,
            &[("unit", "month".into())],
            "2025-03-17 10:11:12.5+00",
        );
        assert_eq!(out, "2025-03-01 00:00:00.0+00");
        let out = g(
            "date_truncate",
            &ty,
            &[("unit", "hour".into())],
            "2025-03-17 10:11:12+00",
        );
        assert_eq!(out, "2025-03-17 10:00:00+00");
        let s = g(
            "timestamp_shift",
            &ty,
            &[("max_days", 2.into())],
            "2025-03-17 10:11:12+00",
        );
        let d = Stamp::parse(&s).unwrap().total_micros()
            - Stamp::parse("2025-03-17 10:11:12+00")
                .unwrap()
                .total_micros();
        assert!(d.abs() <= 2 * DAY_MICROS && d != 0, "{s}");
    }

    #[test]
    fn events_of_one_key_shift_together() {
        let text = ValueType::Text { max_chars: None };
        let ts = ValueType::Timestamp;
        let columns = vec![
            ("patient".to_string(), text),
            ("admitted".to_string(), ts.clone()),
            ("discharged".to_string(), ts.clone()),
        ];
        let mut o = toml::Table::new();
        o.insert("anchor".into(), "patient".into());
        o.insert("max_days".into(), 90.into());
        let make = |c: &'static str| {
            let ctx = ColumnContext {
                table: "t",
                column: c,
                value_type: &ts,
                not_null: false,
                columns: &columns,
                stats: None,
            };
            crate::build("event_timestamps", &o, &ctx, &Prf::from_seed("n")).unwrap()
        };
        let (a, d) = (make("admitted"), make("discharged"));
        struct R;
        impl Row for R {
            fn original(&self, i: usize) -> Option<&str> {
                [Some("p-17"), None, None][i]
            }
            fn generated(&self, _: usize) -> Option<&str> {
                None
            }
        }
        let (mut x, mut y) = (String::new(), String::new());
        a.generate_in_row(Some("2025-01-01 08:00:00"), &R, &mut x)
            .unwrap();
        d.generate_in_row(Some("2025-01-04 12:30:00"), &R, &mut y)
            .unwrap();
        let gap =
            Stamp::parse(&y).unwrap().total_micros() - Stamp::parse(&x).unwrap().total_micros();
        assert_eq!(gap, (3 * 24 + 4) * 3_600_000_000 + 30 * 60_000_000);
        assert_ne!(x, "2025-01-01 08:00:00");
    }
}
