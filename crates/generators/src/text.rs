//! Text generators: keyed hash and character scramble.

use crate::{BuildError, Built, ColumnContext, GenerateError, Generator, Prf, no_options, options};
use serde::Deserialize;
use std::sync::Arc;

struct Hash {
    prf: Prf,
    length: usize,
}

const HEX: &[u8; 16] = b"0123456789abcdef";

impl Generator for Hash {
    fn generate(&self, input: Option<&str>, out: &mut String) -> Result<bool, GenerateError> {
        let Some(v) = input else { return Ok(false) };
        let h = self.prf.hash("text", v.as_bytes());
        for b in h.iter().flat_map(|b| [b >> 4, b & 15]).take(self.length) {
            out.push(HEX[b as usize] as char);
        }
        Ok(true)
    }
}

pub(crate) fn hash(opts: &toml::Table, ctx: &ColumnContext, prf: &Prf) -> Built {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Opts {
        length: Option<usize>,
    }
    let o: Opts = options("hash", opts)?;
    let col_max = ctx.value_type.max_chars().map(|m| m as usize);
    let length = o.length.unwrap_or(64).min(col_max.unwrap_or(64));
    if length == 0 || length > 64 {
        return Err(BuildError::BadOption(
            "generator `hash`: `length` must be between 1 and 64".into(),
        ));
    }
    Ok(Arc::new(Hash {
        prf: prf.clone(),
        length,
    }))
}

struct CharacterScramble {
    prf: Prf,
}

impl Generator for CharacterScramble {
    fn generate(&self, input: Option<&str>, out: &mut String) -> Result<bool, GenerateError> {
        let Some(v) = input else { return Ok(false) };
        let mut rng = self.prf.rng("text", v.as_bytes());
        for c in v.chars() {
            let r = if c.is_ascii_lowercase() {
                (b'a' + rng.below(26) as u8) as char
            } else if c.is_ascii_uppercase() {
                (b'A' + rng.below(26) as u8) as char
            } else if c.is_ascii_digit() {
                (b'0' + rng.below(10) as u8) as char
            } else if c.is_alphabetic() {
                // Other scripts: keep the character class, map into lower-case ASCII letters so
                // the output never grows longer than the input in characters.
                (b'a' + rng.below(26) as u8) as char
            } else {
                c
            };
            out.push(r);
        }
        Ok(true)
    }
}

pub(crate) fn character_scramble(opts: &toml::Table, _: &ColumnContext, prf: &Prf) -> Built {
    no_options("character_scramble", opts)?;
    Ok(Arc::new(CharacterScramble { prf: prf.clone() }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mirage_core::ValueType;

    fn run(name: &str, ty: &ValueType, v: &str) -> String {
        let ctx = ColumnContext {
            table: "t",
            column: "c",
            value_type: ty,
            not_null: false,
        };
        let g = crate::build(name, &toml::Table::new(), &ctx, &Prf::from_seed("k")).unwrap();
        let mut s = String::new();
        g.generate(Some(v), &mut s).unwrap();
        s
    }

    #[test]
    fn scramble_keeps_shape() {
        let ty = ValueType::Text { max_chars: None };
        let out = run("character_scramble", &ty, "Ab-12 cd, Zürich!");
        assert_eq!(out.chars().count(), "Ab-12 cd, Zürich!".chars().count());
        let shape = |s: &str| {
            s.chars()
                .map(|c| match c {
                    'a'..='z' => 'a',
                    'A'..='Z' => 'A',
                    '0'..='9' => '9',
                    c if c.is_alphabetic() => 'a',
                    c => c,
                })
                .collect::<String>()
        };
        assert_eq!(shape(&out), shape("Ab-12 cd, Zürich!"));
        assert_ne!(out, "Ab-12 cd, Zürich!");
    }

    #[test]
    fn hash_fits_the_column() {
        let ty = ValueType::Text {
            max_chars: Some(10),
        };
        let h = run("hash", &ty, "secret");
        assert_eq!(h.len(), 10);
        assert!(h.bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
