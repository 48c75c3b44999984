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
//! let ctx = ColumnContext { table: "public.people", column: "name", value_type: &ty, not_null: false, columns: &[], stats: None };
//! let name = build("full_name", &toml::Table::new(), &ctx, &Prf::from_seed("seed")).unwrap();
//! let t = PartTransform::new(Format::PgText, vec![("id".into(), None), ("name".into(), Some(name))]);
//! let mut out = Vec::new();
//! let stats = t.apply(b"1\tAda Lovelace\n2\t\\N\n", &mut out).unwrap();
//! assert_eq!(stats.rows, 2);
//! assert!(out.starts_with(b"1\t") && out.ends_with(b"2\t\\N\n"));
//! ```

#![warn(missing_docs)]

pub mod codec;
pub mod spec;

use codec::{CsvReader, Format, csv_escape, pg_escape, pg_unescape};
use mirage_generators::{GenerateError, Generator, Row};
use std::sync::Arc;

/// What went wrong in a part. Carries the column and the record's position, never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransformError {
    /// A column's generator failed on a value.
    #[error("column {column}, record {record} of the part: {source}")]
    Generate {
        /// The column whose generator failed.
        column: String,
        /// The record's 1-based position in the part.
        record: u64,
        /// The generator's error.
        #[source]
        source: GenerateError,
    },
    /// A value a generator needs (its own column's, or one it reads) is not valid UTF-8.
    #[error("column {column}, record {record} of the part: the value is not valid UTF-8")]
    NotUtf8 {
        /// The column holding the value.
        column: String,
        /// The record's 1-based position in the part.
        record: u64,
    },
    /// A record has more or fewer fields than the table has columns.
    #[error("record {record} of the part has {found} fields, the table has {expected}")]
    FieldCount {
        /// The record's 1-based position in the part.
        record: u64,
        /// Fields in the record.
        found: usize,
        /// Columns the transform was built with.
        expected: usize,
    },
    /// A CSV record cannot be parsed (a quoted field not closed, text after a closing quote).
    #[error("record {record} of the part is malformed CSV: {reason}")]
    Malformed {
        /// The record's 1-based position in the part.
        record: u64,
        /// What is wrong, from [`codec::CsvMalformed`].
        reason: &'static str,
    },
}

/// Counts for one transformed part.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PartStats {
    /// Records read from the part (and written to the output).
    pub rows: u64,
}

/// A table's transform: one optional generator per field, in field order.
pub struct PartTransform {
    format: Format,
    names: Vec<String>,
    generators: Vec<Option<Arc<dyn Generator>>>,
    any_generator: bool,
    /// Set when a generator reads other columns of the row.
    rows: Option<RowPlan>,
}

/// How to evaluate a row when generators read other columns.
struct RowPlan {
    /// Fields whose source value is decoded for every row.
    decode: Vec<bool>,
    /// Fields with a generator, in evaluation order: those reading generated values last.
    order: Vec<usize>,
}

/// The row as generators see it.
struct RowView<'a> {
    originals: &'a [Option<String>],
    generated: &'a [Option<Option<String>>],
    fingerprint: u64,
}

/// FNV-1a of a record's bytes: a stable fingerprint (not a secret; generators key it).
fn fingerprint(record: &[u8]) -> u64 {
    record.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Row for RowView<'_> {
    fn original(&self, index: usize) -> Option<&str> {
        self.originals.get(index).and_then(|v| v.as_deref())
    }

    /// A column without a generator passes through, so its "generated" value is its source value.
    /// (Generators that read generated values run last, and may not read each other: the plan
    /// refuses such chains, so nothing here can see a source value that is about to be masked.)
    fn generated(&self, index: usize) -> Option<&str> {
        match self.generated.get(index) {
            Some(Some(v)) => v.as_deref(),
            _ => self.original(index),
        }
    }

    fn fingerprint(&self) -> u64 {
        self.fingerprint
    }
}

/// One field of a record: its raw bytes and, for CSV, whether it was quoted.
#[derive(Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
    quoted: bool,
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
        let rows = generators
            .iter()
            .flatten()
            .any(|g| !g.reads().is_empty() || g.uses_fingerprint())
            .then(|| {
                let mut decode: Vec<bool> = generators.iter().map(Option::is_some).collect();
                for g in generators.iter().flatten() {
                    for r in g.reads() {
                        if let Some(d) = decode.get_mut(r.column) {
                            *d = true;
                        }
                    }
                }
                let reads_generated = |i: &usize| {
                    generators[*i]
                        .as_ref()
                        .is_some_and(|g| g.reads().iter().any(|r| r.generated))
                };
                let mut order: Vec<usize> = (0..generators.len())
                    .filter(|i| generators[*i].is_some())
                    .collect();
                order.sort_by_key(|i| reads_generated(i));
                RowPlan { decode, order }
            });
        PartTransform {
            format,
            names,
            generators,
            any_generator,
            rows,
        }
    }

    /// The format records are read and written in (the same on both sides).
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
        if let Some(plan) = &self.rows {
            return self.apply_rows(plan, input, out);
        }
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

    /// Record by record, with every generator able to see the rest of the row.
    fn apply_rows(
        &self,
        plan: &RowPlan,
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<PartStats, TransformError> {
        let expected = self.names.len();
        let (delimiter, null): (u8, &[u8]) = match &self.format {
            Format::PgText => (b'\t', b"\\N"),
            Format::Csv { delimiter, null } => (*delimiter, null),
        };
        let mut spans: Vec<Span> = Vec::with_capacity(expected);
        let mut originals: Vec<Option<String>> = vec![None; expected];
        let mut generated: Vec<Option<Option<String>>> = vec![None; expected];
        let mut bytes = Vec::new();
        let mut rows = 0u64;
        let mut csv = CsvReader::new(input, delimiter);
        let mut pos = 0;
        loop {
            // Split one record into field spans.
            spans.clear();
            match &self.format {
                Format::PgText => {
                    if pos >= input.len() {
                        break;
                    }
                    let end = memchr::memchr(b'\n', &input[pos..]).map_or(input.len(), |i| pos + i);
                    let mut start = pos;
                    for tab in memchr::memchr_iter(b'\t', &input[pos..end]) {
                        spans.push(Span {
                            start,
                            end: pos + tab,
                            quoted: false,
                        });
                        start = pos + tab + 1;
                    }
                    spans.push(Span {
                        start,
                        end,
                        quoted: false,
                    });
                    pos = end + 1;
                }
                Format::Csv { .. } => {
                    if csv.at_end() {
                        break;
                    }
                    loop {
                        let f = csv.next_field().map_err(|e| TransformError::Malformed {
                            record: rows + 1,
                            reason: e.0,
                        })?;
                        spans.push(Span {
                            start: f.start,
                            end: f.end,
                            quoted: f.quoted,
                        });
                        if f.last {
                            break;
                        }
                    }
                }
            }
            rows += 1;
            if spans.len() != expected {
                return Err(TransformError::FieldCount {
                    record: rows,
                    found: spans.len(),
                    expected,
                });
            }
            // Source values the generators need.
            for (i, sp) in spans.iter().enumerate() {
                originals[i] = None;
                generated[i] = None;
                if !plan.decode[i] {
                    continue;
                }
                let raw = &input[sp.start..sp.end];
                if !sp.quoted && raw == null {
                    continue;
                }
                bytes.clear();
                match &self.format {
                    Format::PgText => pg_unescape(raw, &mut bytes),
                    Format::Csv { .. } => csv.decode(
                        codec::CsvField {
                            start: sp.start,
                            end: sp.end,
                            quoted: sp.quoted,
                            last: false,
                        },
                        &mut bytes,
                    ),
                }
                originals[i] =
                    Some(String::from_utf8(std::mem::take(&mut bytes)).map_err(|_| {
                        TransformError::NotUtf8 {
                            column: self.names[i].clone(),
                            record: rows,
                        }
                    })?);
            }
            let record_fp = match (spans.first(), spans.last()) {
                (Some(a), Some(b)) => fingerprint(&input[a.start..b.end]),
                _ => 0,
            };
            for &f in &plan.order {
                let Some(g) = &self.generators[f] else {
                    continue;
                };
                let mut value = String::new();
                let present = {
                    let view = RowView {
                        originals: &originals,
                        generated: &generated,
                        fingerprint: record_fp,
                    };
                    g.generate_in_row(originals[f].as_deref(), &view, &mut value)
                        .map_err(|source| TransformError::Generate {
                            column: self.names[f].clone(),
                            record: rows,
                            source,
                        })?
                };
                generated[f] = Some(present.then_some(value));
            }
            for (i, sp) in spans.iter().enumerate() {
                if i > 0 {
                    out.push(delimiter);
                }
                match (&generated[i], &self.format) {
                    (None, _) => out.extend_from_slice(&input[sp.start..sp.end]),
                    (Some(None), _) => out.extend_from_slice(null),
                    (Some(Some(v)), Format::PgText) => pg_escape(v.as_bytes(), out),
                    (Some(Some(v)), Format::Csv { .. }) => {
                        csv_escape(v.as_bytes(), delimiter, null, out)
                    }
                }
            }
            out.push(b'\n');
        }
        Ok(PartStats { rows })
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
            columns: &[],
            stats: None,
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
            columns: &[],
            stats: None,
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

    #[test]
    fn row_generators_see_the_rest_of_the_row() {
        let text = ValueType::Text { max_chars: None };
        let columns: Vec<(String, ValueType)> = ["id", "first", "greeting", "note"]
            .iter()
            .map(|c| (c.to_string(), text.clone()))
            .collect();
        let prf = Prf::from_seed("s");
        let ctx = |c: &'static str| ColumnContext {
            table: "t",
            column: c,
            value_type: &text,
            not_null: false,
            columns: &columns,
            stats: None,
        };
        let first = build("first_name", &toml::Table::new(), &ctx("first"), &prf).unwrap();
        let mut o = toml::Table::new();
        o.insert("template".into(), "Hi {first} ({id})".into());
        let greeting = build("template", &o, &ctx("greeting"), &prf).unwrap();
        for format in [Format::PgText, Format::csv()] {
            let t = PartTransform::new(
                format.clone(),
                vec![
                    ("id".into(), None),
                    ("first".into(), Some(first.clone())),
                    ("greeting".into(), Some(greeting.clone())),
                    ("note".into(), None),
                ],
            );
            let input: &[u8] = match format {
                Format::PgText => b"7\tAda\told\ta\\tb\n8\t\\N\told\t\\N\n",
                Format::Csv { .. } => b"7,Ada,old,\"a,b\"\n8,,old,\n",
            };
            let mut out = Vec::new();
            assert_eq!(t.apply(input, &mut out).unwrap().rows, 2);
            let text = String::from_utf8(out).unwrap();
            let sep = if format == Format::PgText { '\t' } else { ',' };
            let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split(sep).collect()).collect();
            let name = rows[0][1];
            assert_ne!(name, "Ada");
            assert_eq!(rows[0][2], format!("Hi {name} (7)"), "{text}");
            assert_eq!(
                rows[1][2], "Hi  (8)",
                "a NULL first name reads as empty: {text}"
            );
            // Passthrough fields are the input's bytes.
            let note = if format == Format::PgText {
                "a\\tb"
            } else {
                "\"a"
            };
            assert_eq!(rows[0][3], note);
        }
    }
}
