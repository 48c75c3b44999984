//! A table's transform as data: what a worker far from the CLI (the Lambda handler) needs to
//! transform that table's files — the record format, the columns in order, each column's
//! generator configuration as the workspace wrote it (resolved: generators inherited through
//! foreign keys are filled in), the facts statistical generators were built with, the byte-length
//! rule and the fallbacks (which travel inside each generator's options). It serialises to JSON
//! and back; [`TableSpec::transform`] builds the same [`PartTransform`] the plan does (the
//! engine makes specs from its plan, and tests that the two transforms give the same bytes).
//!
//! The consistency key is not part of the spec: it travels separately as a
//! [`ConsistencyKey`], which never prints.

use crate::PartTransform;
use crate::codec::Format;
use mirage_core::{ColumnStats, ValueType};
use mirage_generators::{ColumnContext, Prf};
use serde::{Deserialize, Serialize};

/// The version of the spec's JSON; a worker refuses another.
pub const SPEC_VERSION: u32 = 1;

/// Why a spec cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The JSON is not a spec of this version.
    #[error("table spec: {0}")]
    Invalid(String),
    /// A generator does not build from its configuration (names the column, never a value).
    #[error("table spec of {table}, column {column}: {message}")]
    Generator {
        /// `schema.table`
        table: String,
        /// The column.
        column: String,
        /// Why.
        message: String,
    },
}

/// The record format of the files a spec's table comes in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FormatSpec {
    /// PostgreSQL `COPY` text.
    PgText,
    /// CSV with a delimiter byte and the unquoted text that means NULL.
    Csv {
        /// The field delimiter.
        delimiter: u8,
        /// What an unquoted NULL field holds.
        null: String,
    },
}

impl FormatSpec {
    /// The spec of a format.
    pub fn of(format: &Format) -> FormatSpec {
        match format {
            Format::PgText => FormatSpec::PgText,
            Format::Csv { delimiter, null } => FormatSpec::Csv {
                delimiter: *delimiter,
                null: String::from_utf8_lossy(null).into_owned(),
            },
        }
    }

    /// The format itself.
    pub fn format(&self) -> Format {
        match self {
            FormatSpec::PgText => Format::PgText,
            FormatSpec::Csv { delimiter, null } => Format::Csv {
                delimiter: *delimiter,
                null: null.as_bytes().to_vec(),
            },
        }
    }
}

/// One column of a table spec, in record order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnSpec {
    /// The column.
    pub name: String,
    /// Its declared type, as the source names it.
    pub type_name: String,
    /// What kind of value it holds (with its length, precision and scale).
    pub value_type: ValueType,
    /// Declared NOT NULL.
    pub not_null: bool,
    /// The generator (`passthrough` when none).
    pub generator: String,
    /// The generator's options as the workspace wrote them, `fallback` included.
    pub options: serde_json::Map<String, serde_json::Value>,
    /// The key this column's generator was inherited from through a foreign key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inherited_from: Option<String>,
    /// The facts about its values a statistical generator was built with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<ColumnStats>,
}

/// What a worker needs to transform one table's files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSpec {
    /// [`SPEC_VERSION`].
    pub version: u32,
    /// `schema.table`
    pub table: String,
    /// The files' record format.
    pub format: FormatSpec,
    /// Declared lengths count bytes (Redshift): generated values are cut to fit in bytes.
    pub byte_lengths: bool,
    /// Every field of a record, in order.
    pub columns: Vec<ColumnSpec>,
}

/// The consistency key: what makes the same input give the same fake in every run with the
/// same seed. It never prints (its `Debug` is redacted) and is never part of a spec or report.
#[derive(Clone)]
pub struct ConsistencyKey {
    prf: Prf,
}

impl std::fmt::Debug for ConsistencyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConsistencyKey(<secret>)")
    }
}

impl ConsistencyKey {
    /// The key of a seed.
    pub fn from_seed(seed: &str) -> ConsistencyKey {
        ConsistencyKey {
            prf: Prf::from_seed(seed),
        }
    }

    /// The key as text (64 hex digits) for a worker's own encrypted object: derived from the
    /// seed one way, so it does not reveal the seed. Never log it.
    pub fn to_secret_text(&self) -> String {
        self.prf
            .root_key()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// A key from [`ConsistencyKey::to_secret_text`].
    pub fn from_secret_text(text: &str) -> Result<ConsistencyKey, SpecError> {
        let text = text.trim();
        let bad = || SpecError::Invalid("the consistency key is not 64 hex digits".into());
        if text.len() != 64 || !text.is_ascii() {
            return Err(bad());
        }
        let mut key = [0u8; 32];
        for (i, b) in key.iter_mut().enumerate() {
            *b = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        Ok(ConsistencyKey {
            prf: Prf::from_root_key(key),
        })
    }
}

impl TableSpec {
    /// The spec as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// A spec from JSON; refuses another version.
    pub fn from_json(text: &str) -> Result<TableSpec, SpecError> {
        let spec: TableSpec =
            serde_json::from_str(text).map_err(|e| SpecError::Invalid(e.to_string()))?;
        if spec.version != SPEC_VERSION {
            return Err(SpecError::Invalid(format!(
                "version {} (this mirage reads version {SPEC_VERSION}); run the same mirage version \
                 on both sides",
                spec.version
            )));
        }
        Ok(spec)
    }

    /// Build the table's transform under `key`: the same generators, in the same order, as the
    /// plan built.
    pub fn transform(&self, key: &ConsistencyKey) -> Result<PartTransform, SpecError> {
        let record: Vec<(String, ValueType)> = self
            .columns
            .iter()
            .map(|c| (c.name.clone(), c.value_type.clone()))
            .collect();
        let mut generators = Vec::with_capacity(self.columns.len());
        for c in &self.columns {
            let failed = |message: String| SpecError::Generator {
                table: self.table.clone(),
                column: c.name.clone(),
                message,
            };
            let options: toml::Table =
                serde_json::from_value(serde_json::Value::Object(c.options.clone()))
                    .map_err(|e| failed(format!("options: {e}")))?;
            let ctx = ColumnContext {
                table: &self.table,
                column: &c.name,
                value_type: &c.value_type,
                not_null: c.not_null,
                columns: &record,
                stats: c.stats.as_ref(),
            };
            let g = mirage_generators::build(&c.generator, &options, &ctx, &key.prf)
                .map_err(|e| failed(e.to_string()))?;
            let g = if self.byte_lengths {
                mirage_generators::fit_bytes(g, &c.value_type)
            } else {
                g
            };
            generators.push((c.name.clone(), Some(g)));
        }
        Ok(PartTransform::new(self.format.format(), generators))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_never_prints_and_other_versions_are_refused() {
        assert_eq!(
            format!("{:?}", ConsistencyKey::from_seed("hunter2")),
            "ConsistencyKey(<secret>)"
        );
        let e = TableSpec::from_json(
            "{\"version\": 99, \"table\": \"t\", \"format\": {\"kind\": \"pg_text\"}, \
             \"byte_lengths\": false, \"columns\": []}",
        )
        .unwrap_err();
        assert!(e.to_string().contains("version 99"), "{e}");
        let text = ConsistencyKey::from_seed("hunter2").to_secret_text();
        assert_eq!(text.len(), 64);
        assert!(!text.contains("hunter2"));
        assert!(ConsistencyKey::from_secret_text("zz").is_err());
    }
}
