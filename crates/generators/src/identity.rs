//! Names and email addresses, drawn from the `fake` crate's word lists with an RNG seeded by the
//! consistency PRF: realistic, and the same input always gives the same fake.

use crate::prf::ValueRng;
use crate::{
    BuildError, Built, ColumnContext, GenerateError, Generator, Prf, no_options, options,
    truncate_chars,
};
use fake::Fake;
use fake::faker::internet::en::FreeEmailProvider;
use fake::faker::name::en::{FirstName, LastName};
use serde::Deserialize;
use std::fmt::Write;
use std::sync::Arc;

#[derive(Clone, Copy)]
pub(crate) enum NamePart {
    First,
    Last,
    Full,
}

struct Name {
    prf: Prf,
    part: NamePart,
    max_chars: Option<u32>,
}

fn first(rng: &mut ValueRng) -> String {
    FirstName().fake_with_rng(rng)
}

fn last(rng: &mut ValueRng) -> String {
    LastName().fake_with_rng(rng)
}

impl Generator for Name {
    fn generate(&self, input: Option<&str>, out: &mut String) -> Result<bool, GenerateError> {
        let Some(v) = input else { return Ok(false) };
        let mut rng = self.prf.rng("text", v.as_bytes());
        let start = out.len();
        match self.part {
            NamePart::First => out.push_str(&first(&mut rng)),
            NamePart::Last => out.push_str(&last(&mut rng)),
            NamePart::Full => {
                out.push_str(&first(&mut rng));
                out.push(' ');
                out.push_str(&last(&mut rng));
            }
        }
        let mut generated = out.split_off(start);
        truncate_chars(&mut generated, self.max_chars);
        out.push_str(&generated);
        Ok(true)
    }
}

pub(crate) fn name(
    generator: &'static str,
    part: NamePart,
    opts: &toml::Table,
    ctx: &ColumnContext,
    prf: &Prf,
) -> Built {
    no_options(generator, opts)?;
    Ok(Arc::new(Name {
        prf: prf.clone(),
        part,
        max_chars: ctx.value_type.max_chars(),
    }))
}

struct Email {
    prf: Prf,
    keep_domain: bool,
    domain: Option<String>,
    max_chars: Option<u32>,
}

/// Lower-case ASCII letters of a name (drops apostrophes, spaces, accents).
fn local_part(name: &str, out: &mut String) {
    out.extend(
        name.chars()
            .filter(|c| c.is_ascii_alphabetic())
            .map(|c| c.to_ascii_lowercase()),
    );
}

impl Generator for Email {
    fn generate(&self, input: Option<&str>, out: &mut String) -> Result<bool, GenerateError> {
        let Some(v) = input else { return Ok(false) };
        // The local part is derived from the whole address, so two people at one domain differ.
        let mut rng = self.prf.rng("text", v.as_bytes());
        let mut email = String::with_capacity(32);
        local_part(&first(&mut rng), &mut email);
        email.push(match rng.below(3) {
            0 => '.',
            1 => '_',
            _ => '.',
        });
        local_part(&last(&mut rng), &mut email);
        let _ = write!(email, "{}", rng.below(10_000));
        email.push('@');
        let kept = self
            .keep_domain
            .then(|| v.rsplit_once('@').map(|(_, d)| d))
            .flatten();
        match (kept, &self.domain) {
            (Some(d), _) => email.push_str(d),
            (None, Some(d)) => email.push_str(d),
            (None, None) => {
                let d: String = FreeEmailProvider().fake_with_rng(&mut rng);
                email.push_str(&d);
            }
        }
        truncate_chars(&mut email, self.max_chars);
        out.push_str(&email);
        Ok(true)
    }
}

pub(crate) fn email(opts: &toml::Table, ctx: &ColumnContext, prf: &Prf) -> Built {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Opts {
        #[serde(default)]
        keep_domain: bool,
        domain: Option<String>,
    }
    let o: Opts = options("email", opts)?;
    if o.keep_domain && o.domain.is_some() {
        return Err(BuildError::BadOption(
            "generator `email`: choose `keep_domain` or `domain`, not both".into(),
        ));
    }
    Ok(Arc::new(Email {
        prf: prf.clone(),
        keep_domain: o.keep_domain,
        domain: o.domain,
        max_chars: ctx.value_type.max_chars(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mirage_core::ValueType;

    fn gen_with(name: &str, opts: toml::Table, ty: &ValueType, v: &str) -> String {
        let ctx = ColumnContext {
            table: "t",
            column: "c",
            value_type: ty,
            not_null: false,
        };
        let g = crate::build(name, &opts, &ctx, &Prf::from_seed("seed")).unwrap();
        let mut s = String::new();
        g.generate(Some(v), &mut s).unwrap();
        s
    }

    #[test]
    fn names_look_like_names_and_fit() {
        let ty = ValueType::Text { max_chars: None };
        let full = gen_with("full_name", toml::Table::new(), &ty, "Grace Hopper");
        assert_eq!(full.split(' ').count(), 2, "{full}");
        let short = ValueType::Text { max_chars: Some(3) };
        assert!(
            gen_with("full_name", toml::Table::new(), &short, "Grace Hopper")
                .chars()
                .count()
                <= 3
        );
    }

    #[test]
    fn emails_are_addresses_and_can_keep_the_domain() {
        let ty = ValueType::Text { max_chars: None };
        let e = gen_with("email", toml::Table::new(), &ty, "grace@navy.mil");
        assert!(e.contains('@') && !e.contains("grace@"), "{e}");
        let mut o = toml::Table::new();
        o.insert("keep_domain".into(), toml::Value::Boolean(true));
        let e = gen_with("email", o, &ty, "grace@navy.mil");
        assert!(e.ends_with("@navy.mil"), "{e}");
        let mut o = toml::Table::new();
        o.insert("domain".into(), toml::Value::String("example.com".into()));
        assert!(gen_with("email", o, &ty, "x@y.z").ends_with("@example.com"));
    }

    #[test]
    fn different_inputs_mostly_differ() {
        let ty = ValueType::Text { max_chars: None };
        let outs: std::collections::HashSet<String> = (0..2000)
            .map(|i| {
                gen_with(
                    "email",
                    toml::Table::new(),
                    &ty,
                    &format!("user{i}@corp.com"),
                )
            })
            .collect();
        assert!(outs.len() > 1990, "{}", outs.len());
    }
}
