//! Executing `COPY table FROM 's3://…'` the way Redshift reads files: a manifest (honouring
//! `mandatory`) or a bare key prefix (which also matches `t10…` for `t1`), GZIP, IGNOREHEADER per
//! file, and Redshift's CSV rules — with `NULL AS`, an unquoted field equal to it is NULL; an empty
//! field is `''` in character columns (NULL with EMPTYASNULL) and NULL in other columns. Each file
//! is rewritten into PostgreSQL's CSV with an explicit NULL marker and streamed with
//! `COPY … FROM STDIN`, all inside one transaction.

use crate::csvfile::{FieldReader, push_quoted};
use crate::datetime::Reading;
use crate::statement::{Compression, CopyFrom, FileFormat, Rejected};
use crate::unload::split_url;
use crate::wire::{Backend, DbError, WireError};
use bytes::Bytes;
use futures_util::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use std::sync::Arc;

/// The NULL marker of the rewritten files (never data: it holds a NUL-free private-use char).
const MARKER: &str = "\u{F8FF}NULL\u{F8FF}";

/// The keys to load: the manifest's entries (missing mandatory ones are an error) or every key
/// starting with the prefix.
async fn keys(store: &dyn ObjectStore, c: &CopyFrom) -> Result<Vec<String>, Rejected> {
    let (_, key) = split_url(&c.from)?;
    if c.manifest {
        let raw = store
            .get(&Path::from(key))
            .await
            .map_err(|_| Rejected(format!("Manifest file is not found: {}", c.from)))?
            .bytes()
            .await
            .map_err(Rejected::from)?;
        let manifest: serde_json::Value =
            serde_json::from_slice(&raw).map_err(|e| Rejected(format!("Invalid manifest: {e}")))?;
        let mut out = Vec::new();
        for e in manifest["entries"].as_array().cloned().unwrap_or_default() {
            let url = e["url"].as_str().unwrap_or_default();
            let (_, k) = split_url(url)?;
            let exists = store.head(&Path::from(k)).await.is_ok();
            match (exists, e["mandatory"].as_bool().unwrap_or(false)) {
                (true, _) => out.push(k.to_string()),
                (false, true) => {
                    return Err(Rejected(format!(
                        "The specified S3 prefix '{url}' does not exist"
                    )));
                }
                (false, false) => {}
            }
        }
        return Ok(out);
    }
    let parent = key.rsplit_once('/').map_or("", |(p, _)| p);
    let mut out: Vec<String> = store
        .list(Some(&Path::from(parent)))
        .map_ok(|m| m.location.to_string())
        .try_collect::<Vec<_>>()
        .await
        .map_err(Rejected::from)?
        .into_iter()
        .filter(|k| k.starts_with(key))
        .collect();
    out.sort();
    if out.is_empty() {
        return Err(Rejected(format!(
            "The specified S3 prefix '{key}' does not exist"
        )));
    }
    Ok(out)
}

/// A row Redshift would record in `stl_load_errors`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// The table loaded into, as named in the COPY.
    pub table: String,
    /// The `s3://bucket/key` of the file holding the record.
    pub filename: String,
    /// The record's line in its file (1-based, header lines counted).
    pub line_number: u64,
    /// The column whose value failed, or empty when the record as a whole did.
    pub colname: String,
    /// The record as written in the file, without its line ending.
    pub raw_line: String,
    /// The failing field's value as read from the file, or empty.
    pub raw_field_value: String,
    /// Redshift's load error code (1204 too long, 1214 delimiter not found, …).
    pub err_code: i32,
    /// Redshift's text for the error code.
    pub err_reason: String,
}

/// Why a COPY failed: refused before loading, or a record that did not load.
#[derive(Debug, thiserror::Error)]
pub enum CopyFailure {
    /// The statement or its files were refused before any record was loaded.
    #[error(transparent)]
    Rejected(#[from] Rejected),
    /// A record did not load; Redshift records it in `stl_load_errors`.
    #[error("Load into table '{}' failed. Check 'stl_load_errors' system table for details.", .0.table)]
    Load(Box<LoadError>),
}

impl From<WireError> for CopyFailure {
    fn from(e: WireError) -> Self {
        CopyFailure::Rejected(e.into())
    }
}

/// A file's bytes, decompressed.
async fn fetch(store: &dyn ObjectStore, key: &str, c: &CopyFrom) -> Result<Vec<u8>, Rejected> {
    let raw = store
        .get(&Path::from(key))
        .await
        .map_err(Rejected::from)?
        .bytes()
        .await
        .map_err(Rejected::from)?;
    crate::compress::decompress(c.compression, &raw).map_err(|e| Rejected(format!("{key}: {e}")))
}

/// Why a file could not be sent: refused as a whole, or a record with the wrong field count.
enum FileFailure {
    Rejected(String),
    Load(Box<LoadError>),
}

/// What rewriting a file into PostgreSQL's CSV needs to know.
struct Rules {
    /// Per column: holds characters (Redshift's empty-field rule), how a date or time is read.
    columns: Vec<(bool, Option<Reading>)>,
    delimiter: u8,
    null: Vec<u8>,
    ignore_header: u64,
    empty_as_null: bool,
    blanks_as_null: bool,
    accept_inv_chars: Option<String>,
    table: String,
    /// `s3://bucket/`, for the file names load errors carry.
    bucket: String,
}

impl Rules {
    /// Rewrite a file into PostgreSQL CSV with the private NULL marker; (bytes, records).
    fn rewrite(&self, key: &str, data: &[u8]) -> Result<(Vec<u8>, u64), FileFailure> {
        let mut reader = FieldReader::new(data, self.delimiter);
        let mut out = Vec::with_capacity(data.len() + data.len() / 8);
        let (mut field, mut record, mut sent) = (0usize, 0u64, 0u64);
        let mut value = Vec::new();
        while let Some(f) = reader
            .next_field()
            .map_err(|e| FileFailure::Rejected(format!("{key}: {e}")))?
        {
            let skip = record < self.ignore_header;
            if !skip {
                if field > 0 {
                    out.push(b',');
                }
                value.clear();
                value.extend_from_slice(reader.value());
                let column = self.columns.get(field);
                let is_char = column.is_some_and(|col| col.0);
                let is_null = (!f.quoted && value == self.null)
                    || (value.is_empty() && (!is_char || self.empty_as_null))
                    || (self.blanks_as_null
                        && is_char
                        && !value.is_empty()
                        && value.iter().all(|b| *b == b' '));
                if is_null {
                    out.extend_from_slice(MARKER.as_bytes());
                } else {
                    if let Some(reading) = column.and_then(|col| col.1.as_ref())
                        && let Some(iso) = std::str::from_utf8(&value)
                            .ok()
                            .and_then(|v| reading.to_iso(v))
                    {
                        value = iso.into_bytes();
                    }
                    if self.accept_inv_chars.is_some() && std::str::from_utf8(&value).is_err() {
                        let fixed = String::from_utf8_lossy(&value)
                            .replace('\u{FFFD}', self.accept_inv_chars.as_deref().unwrap_or("?"));
                        value = fixed.into_bytes();
                    }
                    // Every value is quoted: only the unquoted marker is NULL to PostgreSQL, and
                    // a quoted `\.` is not its end-of-data line.
                    push_quoted(&value, &mut out);
                }
            }
            field += 1;
            if f.last {
                if !skip {
                    if field != self.columns.len() {
                        let (raw_line, _) = record_text(data, self.delimiter, record);
                        let short = field < self.columns.len();
                        return Err(FileFailure::Load(Box::new(LoadError {
                            table: self.table.clone(),
                            filename: format!("{}{key}", self.bucket),
                            line_number: record + 1,
                            colname: String::new(),
                            raw_line,
                            raw_field_value: String::new(),
                            err_code: if short { 1214 } else { 1216 },
                            err_reason: if short {
                                "Delimiter not found".into()
                            } else {
                                "Extra column(s) found".into()
                            },
                        })));
                    }
                    out.push(b'\n');
                    sent += 1;
                }
                field = 0;
                record += 1;
            }
        }
        Ok((out, sent))
    }
}

/// The `index`th record of a file (0-based), as written, and its decoded fields.
fn record_text(data: &[u8], delimiter: u8, index: u64) -> (String, Vec<String>) {
    let mut reader = FieldReader::new(data, delimiter);
    let (mut record, mut start) = (0u64, 0usize);
    let mut fields = Vec::new();
    while let Ok(Some(f)) = reader.next_field() {
        if record == index {
            fields.push(String::from_utf8_lossy(reader.value()).into_owned());
        }
        if f.last {
            if record == index {
                let line = String::from_utf8_lossy(&data[start..reader.position()]);
                return (line.trim_end_matches(['\n', '\r']).to_string(), fields);
            }
            record += 1;
            start = reader.position();
        }
    }
    (String::new(), fields)
}

/// Run `c` in the backend's session, reading from `store` (the bucket named in `c.from`). All
/// files go through one `COPY … FROM STDIN`, so the load is all or nothing. Returns rows loaded.
pub async fn copy_from(
    backend: &mut Backend,
    store: &dyn ObjectStore,
    c: &CopyFrom,
) -> Result<u64, CopyFailure> {
    if c.format != FileFormat::Csv {
        return Err(Rejected("the emulator loads CSV only".into()).into());
    }
    if matches!(c.compression, Some(Compression::Bzip2 | Compression::Lzop)) {
        return Err(Rejected("the emulator reads GZIP, ZSTD or uncompressed files".into()).into());
    }
    // Columns and which of them hold characters (Redshift's empty-field rule depends on it).
    let (schema, table) = c
        .table
        .split_once('.')
        .unwrap_or(("public", c.table.as_str()));
    let found = backend
        .run(
            "SELECT a.attname::text, t.typcategory::text, a.attidentity::text, t.typname::text FROM pg_attribute a \
             JOIN pg_class r ON r.oid = a.attrelid JOIN pg_namespace n ON n.oid = r.relnamespace \
             JOIN pg_type t ON t.oid = a.atttypid \
             WHERE n.nspname = $1 AND r.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            &[Some(schema), Some(table)],
        )
        .await?;
    if found.rows.is_empty() {
        return Err(Rejected(format!("relation \"{}\" does not exist", c.table)).into());
    }
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let time_reading = Reading::of(c.time_format.as_deref());
    let date_reading = Reading::of(c.date_format.as_deref());
    // (name, holds characters, identity, how its text is read when a date or time)
    let all: Vec<(String, bool, bool, Option<&Reading>)> = found
        .rows
        .iter()
        .map(|r| {
            let reading = match text(&r[3]).as_str() {
                "date" => Some(&date_reading),
                "timestamp" | "timestamptz" | "time" | "timetz" => Some(&time_reading),
                _ => None,
            }
            .filter(|r| **r != Reading::Auto);
            (text(&r[0]), text(&r[1]) == "S", text(&r[2]) == "a", reading)
        })
        .collect();
    let columns: Vec<&(String, bool, bool, Option<&Reading>)> = if c.columns.is_empty() {
        all.iter().collect()
    } else {
        c.columns
            .iter()
            .map(|n| {
                all.iter().find(|a| &a.0 == n).ok_or_else(|| {
                    Rejected(format!(
                        "column \"{n}\" of relation \"{}\" does not exist",
                        c.table
                    ))
                })
            })
            .collect::<Result<_, _>>()?
    };
    if !c.explicit_ids && columns.iter().any(|col| col.2) {
        return Err(
            Rejected("cannot set an identity column to a value; use EXPLICIT_IDS".into()).into(),
        );
    }
    let delimiter = c
        .delimiter
        .as_deref()
        .unwrap_or(",")
        .as_bytes()
        .first()
        .copied()
        .unwrap_or(b',');
    let null = c.null_as.clone().unwrap_or_else(|| "\\N".into());
    let list = columns
        .iter()
        .map(|col| format!("\"{}\"", col.0.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(", ");
    let target = c
        .table
        .split('.')
        .map(|p| format!("\"{}\"", p.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(".");
    // Resolve the files first, so a missing one fails before anything is sent.
    let keys = keys(store, c).await?;
    let sql = format!("COPY {target} ({list}) FROM STDIN WITH (FORMAT csv, NULL '{MARKER}')");
    backend.copy_in_start(&sql).await?;
    // Files are fetched, decompressed and rewritten one ahead of the one PostgreSQL is reading
    // (Redshift reads a load's files in parallel too).
    let rules = Arc::new(Rules {
        columns: columns.iter().map(|col| (col.1, col.3.cloned())).collect(),
        delimiter,
        null: null.clone().into_bytes(),
        ignore_header: c.ignore_header,
        empty_as_null: c.empty_as_null,
        blanks_as_null: c.blanks_as_null,
        accept_inv_chars: c.accept_inv_chars.clone(),
        table: c.table.clone(),
        bucket: bucket_prefix(&c.from),
    });
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<(String, Vec<u8>, u64), FileFailure>>(1);
    let producer = async move {
        for key in keys {
            let ready = match fetch(store, &key, c).await {
                Ok(data) => {
                    let rules = rules.clone();
                    tokio::task::spawn_blocking(move || {
                        rules.rewrite(&key, &data).map(|(out, n)| (key, out, n))
                    })
                    .await
                    .unwrap_or_else(|e| {
                        Err(FileFailure::Rejected(format!("rewriting a file: {e}")))
                    })
                }
                Err(e) => Err(FileFailure::Rejected(e.0)),
            };
            let failed = ready.is_err();
            if tx.send(ready).await.is_err() || failed {
                return;
            }
        }
    };
    // (key, index of its first record in the COPY, records sent from it)
    let consumer = async {
        let mut sent: Vec<(String, u64, u64)> = Vec::new();
        let mut total = 0u64;
        while let Some(file) = rx.recv().await {
            match file {
                Ok((key, out, n)) => {
                    sent.push((key, total, n));
                    total += n;
                    backend.copy_in_send(Bytes::from(out)).await?;
                }
                Err(FileFailure::Rejected(why)) => {
                    backend.copy_in_fail(&why).await;
                    return Err(Rejected(why).into());
                }
                Err(FileFailure::Load(e)) => {
                    let _ = backend
                        .copy_in_fail("record with the wrong number of fields")
                        .await;
                    return Err(CopyFailure::Load(e));
                }
            }
        }
        Ok::<_, CopyFailure>(sent)
    };
    let ((), sent) = futures_util::future::join(producer, consumer).await;
    let sent = sent?;
    match backend.copy_in_finish().await {
        Ok(rows) => Ok(rows),
        Err(WireError::Db(e)) => {
            // PostgreSQL names the record ("COPY t, line N[, column c]"); find its file.
            let Some(at) = e.context.as_deref().and_then(copy_position) else {
                return Err(Rejected(e.message).into());
            };
            let index = at.0.saturating_sub(1);
            let Some((key, first, _)) = sent
                .iter()
                .find(|(_, first, n)| index >= *first && index < first + n)
                .cloned()
            else {
                return Err(Rejected(e.message).into());
            };
            let in_file = index - first + c.ignore_header;
            let (raw_line, fields) = match fetch(store, &key, c).await {
                Ok(data) => record_text(&data, delimiter, in_file),
                Err(_) => (String::new(), Vec::new()),
            };
            let colname = at.1.or_else(|| {
                e.constraint
                    .as_deref()
                    .and_then(|n| n.strip_prefix("rs_bytes_").or(n.strip_prefix("rs_char_")))
                    .map(str::to_string)
            });
            let raw_field_value = colname
                .as_ref()
                .and_then(|n| columns.iter().position(|col| &col.0 == n))
                .and_then(|i| fields.get(i).cloned())
                .unwrap_or_default();
            let (err_code, err_reason) = load_reason(&e);
            Err(CopyFailure::Load(Box::new(LoadError {
                table: c.table.clone(),
                filename: format!("{}{key}", bucket_prefix(&c.from)),
                line_number: in_file + 1,
                colname: colname.unwrap_or_default(),
                raw_line,
                raw_field_value,
                err_code,
                err_reason,
            })))
        }
        Err(e) => Err(e.into()),
    }
}

/// `s3://bucket/` of a URL.
fn bucket_prefix(url: &str) -> String {
    split_url(url)
        .map(|(b, _)| format!("s3://{b}/"))
        .unwrap_or_default()
}

/// `COPY t, line 3, column c: "…"` → (3, Some("c")).
fn copy_position(context: &str) -> Option<(u64, Option<String>)> {
    let rest = &context[context.find(", line ")? + 7..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let line = digits.parse().ok()?;
    let column = rest[digits.len()..]
        .strip_prefix(", column ")
        .map(|c| c.split(':').next().unwrap_or(c).trim().to_string());
    Some((line, column))
}

/// Redshift's error code and reason for a PostgreSQL load failure.
fn load_reason(e: &DbError) -> (i32, String) {
    let reason = match e.code.as_str() {
        "22001" => (1204, "String length exceeds DDL length"),
        "23514"
            if e.constraint
                .as_deref()
                .is_some_and(|c| c.starts_with("rs_bytes_")) =>
        {
            (1204, "String length exceeds DDL length")
        }
        "23514"
            if e.constraint
                .as_deref()
                .is_some_and(|c| c.starts_with("rs_char_")) =>
        {
            (
                1220,
                "Multibyte character not supported for CHAR (Hint: try using VARCHAR)",
            )
        }
        "23502" => (1213, "Missing data for not-null field"),
        "22P02" | "22003" => (1207, "Invalid digit or value out of range"),
        "22007" | "22008" => (1205, "Invalid Date or Timestamp format"),
        _ => (1200, "Invalid value"),
    };
    (reason.0, reason.1.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use object_store::local::LocalFileSystem;

    #[test]
    fn finds_the_failing_record_in_postgresql_context() {
        assert_eq!(
            copy_position("COPY dst, line 3, column v: \"xyz\""),
            Some((3, Some("v".into())))
        );
        assert_eq!(
            copy_position("COPY dst, line 12: \"a,b\""),
            Some((12, None))
        );
        assert_eq!(copy_position("SQL statement"), None);
        let data = b"h1,h2\n1,\"a\nb\"\n2,c\n";
        assert_eq!(
            record_text(data, b',', 1),
            (
                "1,\"a\nb\"".to_string(),
                vec!["1".to_string(), "a\nb".to_string()]
            )
        );
    }

    /// Rules for a table of `columns` (true: holds characters), comma-separated, NULL AS `null`.
    fn rules(columns: &[bool], null: &str) -> Rules {
        Rules {
            columns: columns.iter().map(|c| (*c, None)).collect(),
            delimiter: b',',
            null: null.as_bytes().to_vec(),
            ignore_header: 0,
            empty_as_null: false,
            blanks_as_null: false,
            accept_inv_chars: None,
            table: "t".into(),
            bucket: "s3://b/".into(),
        }
    }

    /// What PostgreSQL is sent for `data` (the NULL marker shown as `NULL`), and the record count.
    fn sent(rules: &Rules, data: &str) -> (String, u64) {
        match rules.rewrite("k", data.as_bytes()) {
            Ok((out, n)) => (String::from_utf8(out).unwrap().replace(MARKER, "NULL"), n),
            Err(FileFailure::Rejected(why)) => panic!("rejected: {why}"),
            Err(FileFailure::Load(e)) => panic!("load error: {e:?}"),
        }
    }

    #[test]
    fn null_string_quotes_and_empty_fields_follow_redshift() {
        let r = rules(&[false, true, true], "__N__");
        // An unquoted NULL string is NULL, a quoted one the text; an empty field is '' in a
        // character column (quoted or not) and NULL in others; quotes, delimiters and line breaks
        // inside quotes, CRLF and multi-byte characters come through.
        let data = "1,__N__,\"__N__\"\r\n2,,\"\"\n,\"a,\"\"b\"\"\r\nc\",\u{e9}\u{65e5}\n";
        assert_eq!(
            sent(&r, data),
            (
                "\"1\",NULL,\"__N__\"\n\"2\",\"\",\"\"\nNULL,\"a,\"\"b\"\"\r\nc\",\"\u{e9}\u{65e5}\"\n"
                    .to_string(),
                3
            )
        );
        // EMPTYASNULL: empty character fields are NULL too, quoted or not.
        let r = Rules {
            empty_as_null: true,
            ..rules(&[false, true, true], "__N__")
        };
        assert_eq!(sent(&r, "2,,\"\"\n").0, "\"2\",NULL,NULL\n");
        // BLANKSASNULL: a character value of spaces only, quoted or not, is NULL.
        let r = Rules {
            blanks_as_null: true,
            ..rules(&[true, true], "__N__")
        };
        assert_eq!(sent(&r, "\"  \", x \n").0, "NULL,\" x \"\n");
        // Without NULL AS, `\N` is the NULL string; a value that looks like PostgreSQL's
        // end-of-data line is quoted, so it stays data.
        let r = rules(&[true], "\\N");
        assert_eq!(
            sent(&r, "\\N\n\"\\N\"\n\\.\n").0,
            "NULL\n\"\\N\"\n\"\\.\"\n"
        );
        // A blank line is a record of one empty field.
        let r = rules(&[false], "__N__");
        assert_eq!(
            sent(&r, "1\n\n2\n"),
            ("\"1\"\nNULL\n\"2\"\n".to_string(), 3)
        );
    }

    #[test]
    fn header_lines_bad_quoting_and_wrong_field_counts() {
        // IGNOREHEADER counts records, so a header with a quoted line break is one.
        let r = Rules {
            ignore_header: 1,
            ..rules(&[false, true], "__N__")
        };
        assert_eq!(
            sent(&r, "id,\"two\nline name\"\n1,a\n"),
            ("\"1\",\"a\"\n".to_string(), 1)
        );
        let r = rules(&[false, true], "__N__");
        for (data, why) in [
            ("1,\"a\"b\n", "k: text follows a closing quote"),
            ("1,\"a\n2,b\n", "k: a quoted field is not closed"),
        ] {
            match r.rewrite("k", data.as_bytes()) {
                Err(FileFailure::Rejected(got)) => assert_eq!(got, why),
                _ => panic!("{data:?} was not refused"),
            }
        }
        for (data, line, raw, code) in [
            ("1,a\r\n2\r\n", 2, "2", 1214),
            ("1,\"a\nb\",c\r\n", 1, "1,\"a\nb\",c", 1216),
            // A delimiter at the very end leaves an empty last field: one too many.
            ("1,a,", 1, "1,a,", 1216),
        ] {
            match r.rewrite("k", data.as_bytes()) {
                Err(FileFailure::Load(e)) => {
                    assert_eq!(
                        (e.line_number, e.raw_line.as_str(), e.err_code),
                        (line, raw, code),
                        "{data:?}"
                    );
                    assert_eq!(e.filename, "s3://b/k");
                }
                _ => panic!("{data:?} loaded"),
            }
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn unload_then_copy_round_trips_and_follows_redshift_rules() {
        let (pg, mut client) = crate::testing::database(
            "CREATE TABLE src (id int, v varchar(100), n int);
             INSERT INTO src VALUES (1, 'plain', 1), (2, NULL, NULL), (3, '', 3), (4, E'a,\"b\"\\nc', 4), (5, ' ', 5);
             CREATE TABLE dst (id int, v varchar(100), n int);
             CREATE TABLE dst2 (id int, v varchar(100), n int);
             CREATE TABLE ids (id int GENERATED ALWAYS AS IDENTITY, v text);",
        )
        .await;
        let dir = tempfile::tempdir().unwrap();
        let store = LocalFileSystem::new_with_prefix(dir.path()).unwrap();
        let u = unload_of(
            "UNLOAD ('select * from src') TO 's3://b/j/t1/' IAM_ROLE default CSV NULL AS '__N__' GZIP HEADER MANIFEST",
        );
        run_unload(&mut client, &store, &u).await.unwrap();
        // With the sentinel, NULL and '' come back apart.
        let c = copy_of(
            "COPY dst FROM 's3://b/j/t1/manifest' IAM_ROLE default MANIFEST CSV GZIP NULL AS '__N__' IGNOREHEADER 1",
        );
        assert_eq!(run_copy(&mut client, &store, &c).await.unwrap(), 5);
        let dump = |t: &str| {
            pg.psql("rs", &format!("SELECT string_agg(id || ':' || coalesce('[' || v || ']', 'NULL') || ':' || coalesce(n::text, 'NULL'), ' ' ORDER BY id) FROM {t}")).unwrap()
        };
        assert_eq!(dump("dst"), dump("src"));
        // Without NULL AS (a bare prefix this time): Redshift's CSV rule turns the NULL text into ''.
        let plain =
            unload_of("UNLOAD ('select * from src') TO 's3://b/j/t2/' IAM_ROLE default CSV");
        run_unload(&mut client, &store, &plain).await.unwrap();
        let c = copy_of("COPY dst2 FROM 's3://b/j/t2/' IAM_ROLE default CSV");
        run_copy(&mut client, &store, &c).await.unwrap();
        assert!(
            dump("dst2").starts_with("1:[plain]:1 2:[]:NULL 3:[]:3"),
            "{}",
            dump("dst2")
        );
        // EMPTYASNULL makes them NULL instead; a prefix matches t2… only, not t1's files.
        pg.psql("rs", "TRUNCATE dst2").unwrap();
        let c = copy_of("COPY dst2 FROM 's3://b/j/t2' IAM_ROLE default CSV EMPTYASNULL");
        assert_eq!(run_copy(&mut client, &store, &c).await.unwrap(), 5);
        assert!(
            dump("dst2").starts_with("1:[plain]:1 2:NULL:NULL 3:NULL:3"),
            "{}",
            dump("dst2")
        );
        // Identity columns need EXPLICIT_IDS; missing mandatory files fail.
        let c = copy_of("COPY ids (id, v) FROM 's3://b/j/t2/' IAM_ROLE default CSV");
        assert!(
            run_copy(&mut client, &store, &c)
                .await
                .unwrap_err()
                .to_string()
                .contains("EXPLICIT_IDS")
        );
        std::fs::write(
            dir.path().join("j/bad.manifest"),
            r#"{"entries": [{"url": "s3://b/j/none", "mandatory": true}]}"#,
        )
        .unwrap();
        let c = copy_of("COPY dst2 FROM 's3://b/j/bad.manifest' IAM_ROLE default MANIFEST CSV");
        assert!(
            run_copy(&mut client, &store, &c)
                .await
                .unwrap_err()
                .to_string()
                .contains("does not exist")
        );
    }
}
