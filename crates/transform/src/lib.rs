//! The part transform: a pure function from a part (a buffer of whole records) to a part.
//!
//! It parses records, rewrites only the fields whose column has a generator, and copies every
//! other field through as the exact input bytes. It knows nothing about databases or networks:
//! the same code runs in the worker, in a Lambda function and on local files.
//!
//! ```
//! use mirage_core::ValueType;
//! use mirage_generators::{build, ColumnContext, Prf};
//! use mirage_transform::{codec::Format, PartTransform};
//!
//! let ty = ValueType::Text { max_chars: None };
//! let ctx = ColumnContext { table: "public.people", column: "name", value_type: &ty, not_null: false };
//! let name = build("full_name", &toml::Table::new(), &ctx, &Prf::from_seed("seed")).unwrap();
//! let t = PartTransform::new(Format::PgText, vec![("id".into(), None), ("name".into(), Some(name))]);
//! let mut out = Vec::new();
//! let stats = t.apply(b"1\tAda Lovelace\n2\t\\N\n", &mut out).unwrap();
//! assert_eq!(stats.rows, 2);
//! assert!(out.starts_with(b"1\t") && out.ends_with(b"2\t\\N\n"));
//! ```

pub mod codec;

use codec::{CsvReader, Format, csv_escape, pg_escape, pg_unescape};
use mirage_generators::{GenerateError, Generator};
use std::sync::Arc;

/// What went wrong in a part. Carries the column and the record's position, never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransformError {
    #[error("column {column}, record {record} of the part: {source}")]
    Generate {
        column: String,
        record: u64,
        #[source]
        source: GenerateError,
    },
    #[error("column {column}, record {record} of the part: the value is not valid UTF-8")]
    NotUtf8 { column: String, record: u64 },
    #[error("record {record} of the part has {found} fields, the table has {expected}")]
    FieldCount {
        record: u64,
        found: usize,
        expected: usize,
    },
    #[error("record {record} of the part is malformed CSV: {reason}")]
    Malformed { record: u64, reason: &'static str },
}

/// Counts for one transformed part.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PartStats {
    pub rows: u64,
}

/// A table's transform: one optional generator per field, in field order.
pub struct PartTransform {
    format: Format,
    names: Vec<String>,
    generators: Vec<Option<Arc<dyn Generator>>>,
    any_generator: bool,
}

/// Reusable buffers for one field's value.
#[derive(Default)]
struct Scratch {
    decoded: Vec<u8>,
    generated: String,
}

impl PartTransform {
    /// `columns` lists every field of a record in order, with its generator (None = passthrough).
    pub fn new(format: Format, columns: Vec<(String, Option<Arc<dyn Generator>>)>) -> Self {
        let (names, generators): (Vec<_>, Vec<_>) = columns
            .into_iter()
            .map(|(n, g)| (n, g.filter(|g| !g.is_passthrough())))
            .unzip();
        let any_generator = generators.iter().any(Option::is_some);
        PartTransform {
            format,
            names,
            generators,
            any_generator,
        }
    }

    pub fn format(&self) -> &Format {
        &self.format
    }

    /// True when no field changes: parts may be passed through without parsing.
    pub fn is_identity(&self) -> bool {
        !self.any_generator
    }

    /// Transform `input` (whole records) and append the result to `out`.
    pub fn apply(&self, input: &[u8], out: &mut Vec<u8>) -> Result<PartStats, TransformError> {
        out.reserve(input.len() + input.len() / 8);
        match &self.format {
            Format::PgText => self.apply_pg(input, out),
            Format::Csv { delimiter, null } => self.apply_csv(input, *delimiter, null, out),
        }
    }

    fn generate(
        &self,
        field: usize,
        record: u64,
        value: Option<&[u8]>,
        scratch: &mut Scratch,
    ) -> Result<bool, TransformError> {
        let generator = self.generators[field].as_ref().map(Arc::as_ref);
        let Some(generator) = generator else {
            return Ok(value.is_some());
        };
        let text = match value {
            None => None,
            Some(v) => Some(std::str::from_utf8(v).map_err(|_| TransformError::NotUtf8 {
                column: self.names[field].clone(),
                record,
            })?),
        };
        scratch.generated.clear();
        generator
            .generate(text, &mut scratch.generated)
            .map_err(|source| TransformError::Generate {
                column: self.names[field].clone(),
                record,
                source,
            })
    }

    fn apply_pg(&self, input: &[u8], out: &mut Vec<u8>) -> Result<PartStats, TransformError> {
        let expected = self.names.len();
        let mut rows = 0u64;
        let mut scratch = Scratch::default();
        for line in input.split_inclusive(|b| *b == b'\n') {
            let row = line.strip_suffix(b"\n").unwrap_or(line);
            rows += 1;
            if !self.any_generator {
                let found = memchr::memchr_iter(b'\t', row).count() + 1;
                if found != expected {
                    return Err(TransformError::FieldCount {
                        record: rows,
                        found,
                        expected,
                    });
                }
                out.extend_from_slice(row);
                out.push(b'\n');
                continue;
            }
            // Copy untouched spans in one go; rewrite only generated fields.
            let mut copied_to = 0;
            let mut field_start = 0;
            let mut field = 0;
            let ends = memchr::memchr_iter(b'\t', row).chain(std::iter::once(row.len()));
            for end in ends {
                if field >= expected {
                    field += 1;
                    continue;
                }
                if self.generators[field].is_some() {
                    let raw = &row[field_start..end];
                    out.extend_from_slice(&row[copied_to..field_start]);
                    let value = if raw == b"\\N" {
                        None
                    } else {
                        scratch.decoded.clear();
                        pg_unescape(raw, &mut scratch.decoded);
                        Some(std::mem::take(&mut scratch.decoded))
                    };
                    let present = self.generate(field, rows, value.as_deref(), &mut scratch)?;
                    if let Some(v) = value {
                        scratch.decoded = v;
                    }
                    if present {
                        pg_escape(scratch.generated.as_bytes(), out);
                    } else {
                        out.extend_from_slice(b"\\N");
                    }
                    copied_to = end;
                }
                field += 1;
                field_start = end + 1;
            }
            if field != expected {
                return Err(TransformError::FieldCount {
                    record: rows,
                    found: field,
                    expected,
                });
            }
            out.extend_from_slice(&row[copied_to..]);
            out.push(b'\n');
        }
        Ok(PartStats { rows })
    }

    fn apply_csv(
        &self,
        input: &[u8],
        delimiter: u8,
        null: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<PartStats, TransformError> {
        let expected = self.names.len();
        let mut reader = CsvReader::new(input, delimiter);
        let mut scratch = Scratch::default();
        let mut rows = 0u64;
        while !reader.at_end() {
            rows += 1;
            let mut field = 0;
            loop {
                let f = reader.next_field().map_err(|e| TransformError::Malformed {
                    record: rows,
                    reason: e.0,
                })?;
                if field > 0 && field <= expected {
                    out.push(delimiter);
                }
                if field < expected {
                    if self.generators[field].is_some() {
                        let value = if !f.quoted && &input[f.start..f.end] == null {
                            None
                        } else {
                            scratch.decoded.clear();
                            reader.decode(f, &mut scratch.decoded);
                            Some(std::mem::take(&mut scratch.decoded))
                        };
                        let present = self.generate(field, rows, value.as_deref(), &mut scratch)?;
                        if let Some(v) = value {
                            scratch.decoded = v;
                        }
                        if present {
                            csv_escape(scratch.generated.as_bytes(), delimiter, null, out);
                        } else {
                            out.extend_from_slice(null);
                        }
                    } else {
                        out.extend_from_slice(&input[f.start..f.end]);
                    }
                }
                field += 1;
                if f.last {
                    break;
                }
            }
            if field != expected {
                return Err(TransformError::FieldCount {
                    record: rows,
                    found: field,
                    expected,
                });
            }
            out.push(b'\n');
        }
        Ok(PartStats { rows })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mirage_core::ValueType;
    use mirage_generators::{ColumnContext, Prf, build};

    fn text_gen(name: &str) -> Arc<dyn Generator> {
        let ty = ValueType::Text { max_chars: None };
        let ctx = ColumnContext {
            table: "t",
            column: "c",
            value_type: &ty,
            not_null: false,
        };
        build(name, &toml::Table::new(), &ctx, &Prf::from_seed("s")).unwrap()
    }

    fn transform(format: Format) -> PartTransform {
        PartTransform::new(
            format,
            vec![
                ("a".into(), None),
                ("secret".into(), Some(text_gen("character_scramble"))),
                ("c".into(), None),
            ],
        )
    }

    #[test]
    fn pg_passthrough_fields_are_byte_identical() {
        let input = b"x\\ty\tHello\\nWorld\tq\\\\r\n\\N\t\\N\t\n";
        let mut out = Vec::new();
        let stats = transform(Format::PgText).apply(input, &mut out).unwrap();
        assert_eq!(stats.rows, 2);
        let out_rows: Vec<&[u8]> = out.split(|b| *b == b'\n').collect();
        let fields: Vec<&[u8]> = out_rows[0].split(|b| *b == b'\t').collect();
        assert_eq!(fields[0], b"x\\ty");
        assert_eq!(fields[2], b"q\\\\r");
        assert_ne!(fields[1], b"Hello\\nWorld");
        assert!(
            fields[1].windows(2).any(|w| w == b"\\n"),
            "newline kept escaped"
        );
        assert_eq!(out_rows[1], b"\\N\t\\N\t");
    }

    #[test]
    fn pg_field_count_mismatch_is_an_error() {
        let mut out = Vec::new();
        let e = transform(Format::PgText)
            .apply(b"a\tb\n", &mut out)
            .unwrap_err();
        assert!(matches!(
            e,
            TransformError::FieldCount {
                found: 2,
                expected: 3,
                ..
            }
        ));
        let id = PartTransform::new(Format::PgText, vec![("a".into(), None)]);
        assert!(id.apply(b"a\tb\n", &mut out).is_err());
    }

    #[test]
    fn csv_keeps_null_and_empty_apart() {
        let input = b"1,\"\",z\n2,,\"q,\"\"\"\n3,\"multi\nline\",\n";
        let mut out = Vec::new();
        let stats = transform(Format::csv()).apply(input, &mut out).unwrap();
        assert_eq!(stats.rows, 3);
        let mut r = CsvReader::new(&out, b',');
        let mut fields = Vec::new();
        while !r.at_end() {
            let f = r.next_field().unwrap();
            let mut v = Vec::new();
            r.decode(f, &mut v);
            fields.push((String::from_utf8(v).unwrap(), f.quoted));
        }
        assert_eq!(fields[1], (String::new(), true), "'' stays ''");
        assert_eq!(fields[4], (String::new(), false), "NULL stays NULL");
        assert_eq!(fields[5].0, "q,\"");
        assert_eq!(fields[7].0.len(), "multi\nline".len());
        assert!(fields[7].0.contains('\n'));
        assert_ne!(fields[7].0, "multi\nline");
    }

    #[test]
    fn generator_errors_name_the_column_not_the_value() {
        let ctx = ColumnContext {
            table: "t",
            column: "id",
            value_type: &ValueType::Integer,
            not_null: true,
        };
        let key = build(
            "integer_key",
            &toml::Table::new(),
            &ctx,
            &Prf::from_seed("s"),
        )
        .unwrap();
        let t = PartTransform::new(Format::PgText, vec![("id".into(), Some(key))]);
        let mut out = Vec::new();
        let e = t.apply(b"1\nsecret-value\n", &mut out).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("column id, record 2"), "{msg}");
        assert!(!msg.contains("secret-value"));
    }
}
