//! Statistical generators: they draw, per row, from facts about the whole column that the plan
//! gathered from the source before the run (category counts, quantiles). A row's draw comes from
//! the PRF of its record's fingerprint, so the same source gives the same destination, whatever
//! order or parts the rows travel in.

use crate::datetime::Stamp;
use crate::{BuildError, Built, ColumnContext, GenerateError, Prf, Row, RowGenerator, options};
use mirage_core::ValueType;
use serde::Deserialize;
use std::sync::Arc;

/// A uniform number in [0, 1) for this row and generator.
fn draw(prf: &Prf, row: &dyn Row, input: &str) -> f64 {
    let mut seed = row.fingerprint().to_le_bytes().to_vec();
    seed.extend_from_slice(input.as_bytes());
    (prf.u64("row", &seed) >> 11) as f64 / (1u64 << 53) as f64
}

struct Categorical {
    prf: Prf,
    values: Vec<String>,
    /// Cumulative weights.
    cumulative: Vec<f64>,
}

impl RowGenerator for Categorical {
    fn generate_in_row(
        &self,
        input: Option<&str>,
        row: &dyn Row,
        out: &mut String,
    ) -> Result<bool, GenerateError> {
        let Some(v) = input else { return Ok(false) };
        let Some(total) = self.cumulative.last().copied().filter(|t| *t > 0.0) else {
            out.push_str(v);
            return Ok(true);
        };
        let target = draw(&self.prf, row, v) * total;
        let i = self
            .cumulative
            .partition_point(|c| *c <= target)
            .min(self.values.len() - 1);
        out.push_str(&self.values[i]);
        Ok(true)
    }

    fn uses_fingerprint(&self) -> bool {
        true
    }
}

/// A Laplace(0, scale) sample from a uniform `u` in (0, 1).
fn laplace(u: f64, scale: f64) -> f64 {
    let centered = u - 0.5;
    -scale * centered.signum() * (1.0 - 2.0 * centered.abs()).max(f64::MIN_POSITIVE).ln()
}

pub(crate) fn categorical(opts: &toml::Table, ctx: &ColumnContext, prf: &Prf) -> Built {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Opts {
        epsilon: Option<f64>,
    }
    let o: Opts = options("categorical", opts)?;
    if o.epsilon.is_some_and(|e| !(e.is_finite() && e > 0.0)) {
        return Err(BuildError::BadOption(
            "generator `categorical`: `epsilon` must be a positive number".into(),
        ));
    }
    let stats = ctx.stats.ok_or_else(|| {
        BuildError::BadOption("generator `categorical` needs the column's categories, which the plan gathers; it cannot run on a lone value".into())
    })?;
    let prf = prf.derive("categorical");
    let mut values = Vec::with_capacity(stats.categories.len());
    let mut cumulative = Vec::with_capacity(stats.categories.len());
    let mut total = 0.0;
    for (value, count) in &stats.categories {
        let mut weight = *count as f64;
        if let Some(eps) = o.epsilon {
            // The noise is drawn from the PRF, so a re-run publishes the same noisy counts.
            let u = (prf.u64("dp", value.as_bytes()) >> 11) as f64 / (1u64 << 53) as f64;
            weight = (weight + laplace(u.clamp(1e-12, 1.0 - 1e-12), 1.0 / eps)).max(0.0);
        }
        total += weight;
        values.push(value.clone());
        cumulative.push(total);
    }
    Ok(Arc::new(Categorical {
        prf,
        values,
        cumulative,
    }))
}

struct Continuous {
    prf: Prf,
    quantiles: Vec<String>,
    /// Numeric positions of the quantiles (numbers, or microseconds for dates/timestamps).
    points: Vec<f64>,
    kind: Kind,
    decimals: usize,
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Integer,
    Number,
    Temporal,
}

impl RowGenerator for Continuous {
    fn generate_in_row(
        &self,
        input: Option<&str>,
        row: &dyn Row,
        out: &mut String,
    ) -> Result<bool, GenerateError> {
        let Some(v) = input else { return Ok(false) };
        if self.points.len() < 2 {
            out.push_str(self.quantiles.first().map_or(v, String::as_str));
            return Ok(true);
        }
        let pos = draw(&self.prf, row, v) * (self.points.len() - 1) as f64;
        let i = (pos as usize).min(self.points.len() - 2);
        let frac = pos - i as f64;
        let x = self.points[i] + (self.points[i + 1] - self.points[i]) * frac;
        match self.kind {
            Kind::Integer => out.push_str(&format!("{}", x.round() as i64)),
            Kind::Number => out.push_str(&format!("{x:.prec$}", prec = self.decimals)),
            Kind::Temporal => {
                // Take the shape (date or timestamp, zone) of the nearer quantile.
                let mut st = Stamp::parse(&self.quantiles[if frac < 0.5 { i } else { i + 1 }])
                    .ok_or(GenerateError::Unparsable {
                        expected: "a date or timestamp",
                    })?;
                st.set_total_micros(x as i64);
                st.write(out);
            }
        }
        Ok(true)
    }

    fn uses_fingerprint(&self) -> bool {
        true
    }
}

pub(crate) fn continuous(opts: &toml::Table, ctx: &ColumnContext, prf: &Prf) -> Built {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Opts {}
    let _: Opts = options("continuous", opts)?;
    let stats = ctx.stats.ok_or_else(|| {
        BuildError::BadOption("generator `continuous` needs the column's quantiles, which the plan gathers; it cannot run on a lone value".into())
    })?;
    let kind = match ctx.value_type.family() {
        mirage_core::schema::TypeFamily::Integer => Kind::Integer,
        mirage_core::schema::TypeFamily::Temporal => Kind::Temporal,
        _ => Kind::Number,
    };
    let points = stats
        .quantiles
        .iter()
        .map(|q| match kind {
            Kind::Temporal => Stamp::parse(q).map(|s| s.total_micros() as f64),
            _ => q.trim().parse::<f64>().ok(),
        })
        .collect::<Option<Vec<f64>>>()
        .ok_or_else(|| {
            BuildError::BadOption(format!(
                "generator `continuous`: the values of {}.{} are not numbers or dates",
                ctx.table, ctx.column
            ))
        })?;
    let decimals = match ctx.value_type {
        ValueType::Numeric { scale: Some(s), .. } => *s as usize,
        _ => stats
            .quantiles
            .iter()
            .map(|q| q.split_once('.').map_or(0, |(_, f)| f.len()))
            .max()
            .unwrap_or(0)
            .min(15),
    };
    Ok(Arc::new(Continuous {
        prf: prf.derive("continuous"),
        quantiles: stats.quantiles.clone(),
        points,
        kind,
        decimals,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mirage_core::ColumnStats;
    use std::collections::HashMap;

    struct Fp(u64);
    impl Row for Fp {
        fn original(&self, _: usize) -> Option<&str> {
            None
        }
        fn generated(&self, _: usize) -> Option<&str> {
            None
        }
        fn fingerprint(&self) -> u64 {
            self.0
        }
    }

    #[test]
    fn categorical_keeps_frequencies() {
        let stats = ColumnStats {
            categories: vec![
                ("gold".into(), 600),
                ("silver".into(), 300),
                ("bronze".into(), 100),
            ],
            quantiles: vec![],
        };
        let ty = ValueType::Text { max_chars: None };
        let ctx = ColumnContext {
            table: "t",
            column: "tier",
            value_type: &ty,
            not_null: false,
            columns: &[],
            stats: Some(&stats),
        };
        let g = crate::build(
            "categorical",
            &toml::Table::new(),
            &ctx,
            &Prf::from_seed("c"),
        )
        .unwrap();
        let mut counts: HashMap<String, u32> = HashMap::new();
        for i in 0..10_000u64 {
            let mut s = String::new();
            g.generate_in_row(Some("gold"), &Fp(i), &mut s).unwrap();
            *counts.entry(s).or_default() += 1;
        }
        assert!((5700..6300).contains(&counts["gold"]), "{counts:?}");
        assert!((2700..3300).contains(&counts["silver"]), "{counts:?}");
        assert!((800..1200).contains(&counts["bronze"]), "{counts:?}");
        // Same row, same draw.
        let (mut a, mut b) = (String::new(), String::new());
        g.generate_in_row(Some("gold"), &Fp(7), &mut a).unwrap();
        g.generate_in_row(Some("gold"), &Fp(7), &mut b).unwrap();
        assert_eq!(a, b);
        let no_stats = ColumnContext { stats: None, ..ctx };
        assert!(
            crate::build(
                "categorical",
                &toml::Table::new(),
                &no_stats,
                &Prf::from_seed("c")
            )
            .is_err()
        );
    }

    #[test]
    fn continuous_follows_the_quantiles() {
        // A skewed column: quantiles of x² on [0, 100].
        let quantiles: Vec<String> = (0..=1000)
            .map(|i| format!("{:.2}", (i as f64 / 10.0).powi(2)))
            .collect();
        let stats = ColumnStats {
            categories: vec![],
            quantiles,
        };
        let ty = ValueType::Numeric {
            precision: Some(10),
            scale: Some(2),
        };
        let ctx = ColumnContext {
            table: "t",
            column: "x",
            value_type: &ty,
            not_null: false,
            columns: &[],
            stats: Some(&stats),
        };
        let g = crate::build(
            "continuous",
            &toml::Table::new(),
            &ctx,
            &Prf::from_seed("c"),
        )
        .unwrap();
        let mut below_2500 = 0;
        for i in 0..10_000u64 {
            let mut s = String::new();
            g.generate_in_row(Some("1"), &Fp(i), &mut s).unwrap();
            let x: f64 = s.parse().unwrap();
            assert!(
                (0.0..=10_000.0).contains(&x) && s.split('.').nth(1).map_or(0, str::len) == 2,
                "{s}"
            );
            below_2500 += usize::from(x < 2500.0);
        }
        // P(x² < 2500) = P(x < 50) = 0.5.
        assert!((4700..5300).contains(&below_2500), "{below_2500}");
    }

    #[test]
    fn differential_privacy_perturbs_counts() {
        let stats = ColumnStats {
            categories: vec![("a".into(), 5), ("b".into(), 5)],
            quantiles: vec![],
        };
        let ty = ValueType::Text { max_chars: None };
        let ctx = ColumnContext {
            table: "t",
            column: "c",
            value_type: &ty,
            not_null: false,
            columns: &[],
            stats: Some(&stats),
        };
        let mut o = toml::Table::new();
        o.insert("epsilon".into(), toml::Value::Float(0.5));
        assert!(crate::build("categorical", &o, &ctx, &Prf::from_seed("c")).is_ok());
        o.insert("epsilon".into(), toml::Value::Float(-1.0));
        assert!(crate::build("categorical", &o, &ctx, &Prf::from_seed("c")).is_err());
    }
}
