//! Generators replace one value with another. They are pure functions: no database, no I/O, no
//! unkeyed randomness. A consistent generator's output depends only on (seed, generator, value
//! type, value), so the same input gives the same output across columns, tables and runs.
//!
//! ```
//! use mirage_core::ValueType;
//! use mirage_generators::{build, ColumnContext, Prf};
//!
//! let prf = Prf::from_seed("my secret seed");
//! let ty = ValueType::Integer;
//! let ctx = ColumnContext { table: "public.users", column: "id", value_type: &ty, not_null: true };
//! let key = build("integer_key", &toml::Table::new(), &ctx, &prf).unwrap();
//! let mut out = String::new();
//! key.generate(Some("42"), &mut out).unwrap();
//! assert_ne!(out, "42");
//! ```

pub mod fpe;
mod identity;
mod keys;
pub mod prf;
mod simple;
mod text;

pub use prf::Prf;

use mirage_core::schema::{TypeFamily, ValueType};
use mirage_core::suggest::did_you_mean;
use serde::de::DeserializeOwned;
use std::sync::Arc;

/// Why a generator could not produce a value. Never carries the value itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenerateError {
    #[error("a value is not {expected}")]
    Unparsable { expected: &'static str },
    #[error("a value is outside the generator's range {min}..={max}")]
    OutOfRange { min: i64, max: i64 },
    #[error("a NULL cannot be written: the column is NOT NULL")]
    NullIntoNotNull,
}

/// Why a generator could not be built from its configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error("unknown generator `{name}`{suggestion}; `mirage generators` lists them all")]
    Unknown { name: String, suggestion: String },
    #[error("generator `{generator}` does not work on type {type_name}; it accepts {accepts}")]
    WrongType {
        generator: &'static str,
        type_name: String,
        accepts: String,
    },
    #[error("{0}")]
    BadOption(String),
}

/// The column a generator is built for.
#[derive(Debug, Clone, Copy)]
pub struct ColumnContext<'a> {
    /// `schema.table`
    pub table: &'a str,
    pub column: &'a str,
    pub value_type: &'a ValueType,
    pub not_null: bool,
}

/// One column's value replacer.
pub trait Generator: Send + Sync {
    /// Replace `input` (`None` is NULL; otherwise the value's text form) by writing the new value
    /// into `out`. Returns `Ok(false)` to write NULL.
    fn generate(&self, input: Option<&str>, out: &mut String) -> Result<bool, GenerateError>;

    /// True when the generator leaves every value unchanged (lets the transform skip the column).
    fn is_passthrough(&self) -> bool {
        false
    }
}

/// What the catalogue says about a generator.
#[derive(Debug, Clone, Copy)]
pub struct GeneratorInfo {
    pub name: &'static str,
    pub summary: &'static str,
    /// Same input ⇒ same output, across tables and runs.
    pub consistent: bool,
    /// Distinct inputs ⇒ distinct outputs (safe on primary keys and unique columns).
    pub unique: bool,
    /// Type families accepted; empty means every type.
    pub accepts: &'static [TypeFamily],
    /// Options, as `name: meaning` lines.
    pub options: &'static [&'static str],
}

/// What a generator's build function returns.
pub(crate) type Built = Result<Arc<dyn Generator>, BuildError>;

type Builder = fn(&toml::Table, &ColumnContext, &Prf) -> Built;

struct Entry {
    info: GeneratorInfo,
    build: Builder,
}

fn registry() -> &'static [Entry] {
    use TypeFamily::*;
    static ENTRIES: &[Entry] = &[
        Entry {
            info: GeneratorInfo {
                name: "passthrough",
                summary: "copies the value unchanged, byte for byte",
                consistent: true,
                unique: true,
                accepts: &[],
                options: &[],
            },
            build: simple::passthrough,
        },
        Entry {
            info: GeneratorInfo {
                name: "null",
                summary: "writes NULL (not allowed on NOT NULL columns)",
                consistent: true,
                unique: false,
                accepts: &[],
                options: &[],
            },
            build: simple::null,
        },
        Entry {
            info: GeneratorInfo {
                name: "constant",
                summary: "writes the same value in every non-NULL row",
                consistent: true,
                unique: false,
                accepts: &[],
                options: &[
                    "value: the text written (required)",
                    "keep_null: keep NULLs as NULL (default true)",
                ],
            },
            build: simple::constant,
        },
        Entry {
            info: GeneratorInfo {
                name: "hash",
                summary: "keyed hash of the value, as hex, cut to the column's length",
                consistent: true,
                unique: false,
                accepts: &[Text],
                options: &["length: characters kept (default: the column's length, at most 64)"],
            },
            build: text::hash,
        },
        Entry {
            info: GeneratorInfo {
                name: "character_scramble",
                summary: "letters → letters, digits → digits; case, punctuation and spaces kept",
                consistent: true,
                unique: false,
                accepts: &[Text],
                options: &[],
            },
            build: text::character_scramble,
        },
        Entry {
            info: GeneratorInfo {
                name: "integer_key",
                summary: "one-to-one integer mapping (format-preserving encryption) that keeps the column's range; safe on keys",
                consistent: true,
                unique: true,
                accepts: &[Integer],
                options: &[
                    "min, max: map values inside [min, max] onto [min, max] (default: each of the ranges [0, 2^15), [2^15, 2^31), [2^31, 2^63) and their negatives onto itself)",
                ],
            },
            build: keys::integer_key,
        },
        Entry {
            info: GeneratorInfo {
                name: "first_name",
                summary: "a realistic first name",
                consistent: true,
                unique: false,
                accepts: &[Text],
                options: &[],
            },
            build: |o, c, p| identity::name("first_name", identity::NamePart::First, o, c, p),
        },
        Entry {
            info: GeneratorInfo {
                name: "last_name",
                summary: "a realistic last name",
                consistent: true,
                unique: false,
                accepts: &[Text],
                options: &[],
            },
            build: |o, c, p| identity::name("last_name", identity::NamePart::Last, o, c, p),
        },
        Entry {
            info: GeneratorInfo {
                name: "full_name",
                summary: "a realistic \"First Last\" name",
                consistent: true,
                unique: false,
                accepts: &[Text],
                options: &[],
            },
            build: |o, c, p| identity::name("full_name", identity::NamePart::Full, o, c, p),
        },
        Entry {
            info: GeneratorInfo {
                name: "email",
                summary: "a realistic email address",
                consistent: true,
                unique: false,
                accepts: &[Text],
                options: &[
                    "keep_domain: keep the part after @ (default false)",
                    "domain: use this domain for every address",
                ],
            },
            build: identity::email,
        },
    ];
    ENTRIES
}

/// Every generator, in catalogue order.
pub fn catalogue() -> impl Iterator<Item = &'static GeneratorInfo> {
    registry().iter().map(|e| &e.info)
}

/// Look up a generator by name.
pub fn info(name: &str) -> Option<&'static GeneratorInfo> {
    catalogue().find(|i| i.name == name)
}

/// Build the generator `name` with `options` for a column. Checks the name, the column's type and
/// the options; the error says what is wrong and suggests the closest valid name.
pub fn build(
    name: &str,
    options: &toml::Table,
    ctx: &ColumnContext,
    prf: &Prf,
) -> Result<Arc<dyn Generator>, BuildError> {
    let entry = registry()
        .iter()
        .find(|e| e.info.name == name)
        .ok_or_else(|| BuildError::Unknown {
            name: name.to_string(),
            suggestion: did_you_mean(name, catalogue().map(|i| i.name)),
        })?;
    let family = ctx.value_type.family();
    if !entry.info.accepts.is_empty() && !entry.info.accepts.contains(&family) {
        return Err(BuildError::WrongType {
            generator: entry.info.name,
            type_name: format!("{:?}", ctx.value_type).to_lowercase(),
            accepts: entry
                .info
                .accepts
                .iter()
                .map(|f| f.describe())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    (entry.build)(options, ctx, &prf.derive(entry.info.name))
}

/// Deserialize a generator's options, turning serde's message into one that names the generator
/// and suggests the closest option.
pub(crate) fn options<T: DeserializeOwned>(
    generator: &str,
    options: &toml::Table,
) -> Result<T, BuildError> {
    toml::Value::Table(options.clone())
        .try_into()
        .map_err(|e: toml::de::Error| {
            let msg = e.message().trim().to_string();
            let hint = mirage_core::suggest::hint_for_serde_error(&msg);
            BuildError::BadOption(format!("generator `{generator}`: {msg}{hint}"))
        })
}

/// Check that a generator without options was given none.
pub(crate) fn no_options(generator: &str, opts: &toml::Table) -> Result<(), BuildError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct NoOptions {}
    options::<NoOptions>(generator, opts).map(|_| ())
}

/// Cut `s` to at most `max` characters (on a character boundary).
pub(crate) fn truncate_chars(s: &mut String, max: Option<u32>) {
    if let Some((idx, _)) = max.and_then(|m| s.char_indices().nth(m as usize)) {
        s.truncate(idx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(ty: &ValueType) -> ColumnContext<'_> {
        ColumnContext {
            table: "public.t",
            column: "c",
            value_type: ty,
            not_null: false,
        }
    }

    #[test]
    fn unknown_generator_suggests() {
        let ty = ValueType::Text { max_chars: None };
        let e = build(
            "emial",
            &toml::Table::new(),
            &ctx(&ty),
            &Prf::from_seed("s"),
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("did you mean `email`"), "{e}");
    }

    #[test]
    fn wrong_type_is_refused() {
        let ty = ValueType::Text { max_chars: None };
        let e = build(
            "integer_key",
            &toml::Table::new(),
            &ctx(&ty),
            &Prf::from_seed("s"),
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("integer types"), "{e}");
        let e = build(
            "email",
            &toml::Table::new(),
            &ctx(&ValueType::Enum),
            &Prf::from_seed("s"),
        )
        .err()
        .unwrap();
        assert!(matches!(e, BuildError::WrongType { .. }));
    }

    #[test]
    fn unknown_option_suggests() {
        let ty = ValueType::Text { max_chars: None };
        let mut opts = toml::Table::new();
        opts.insert("keep_domian".into(), toml::Value::Boolean(true));
        let e = build("email", &opts, &ctx(&ty), &Prf::from_seed("s"))
            .err()
            .unwrap();
        assert!(e.to_string().contains("did you mean `keep_domain`"), "{e}");
    }

    #[test]
    fn every_generator_is_consistent_and_keeps_null() {
        let ty = ValueType::Text {
            max_chars: Some(40),
        };
        let int = ValueType::BigInt;
        for info in catalogue() {
            let ty = if info.accepts.contains(&TypeFamily::Integer) {
                &int
            } else {
                &ty
            };
            let mut opts = toml::Table::new();
            if info.name == "constant" {
                opts.insert("value".into(), toml::Value::String("x".into()));
            }
            let a = build(info.name, &opts, &ctx(ty), &Prf::from_seed("s")).unwrap();
            let b = build(info.name, &opts, &ctx(ty), &Prf::from_seed("s")).unwrap();
            let (mut x, mut y) = (String::new(), String::new());
            let input = if ty == &int { "123456" } else { "Ada Lovelace" };
            let nx = a.generate(Some(input), &mut x).unwrap();
            let ny = b.generate(Some(input), &mut y).unwrap();
            assert_eq!((nx, &x), (ny, &y), "{} is not consistent", info.name);
            if info.name != "passthrough" && info.name != "null" {
                assert_ne!(x, input, "{} did not change the value", info.name);
            }
            let mut z = String::new();
            assert!(
                !a.generate(None, &mut z).unwrap(),
                "{} turned NULL into a value",
                info.name
            );
        }
    }
}
