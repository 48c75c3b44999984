//! The `files` connector: a folder with `schema.json` and one CSV file per table
//! (`<schema>.<table>.csv`, a header line, PostgreSQL CSV conventions: an unquoted empty field is
//! NULL, `""` is the empty string). It needs no server, which makes it the embedded default that
//! `mirage demo` runs on; it is also handy to de-identify exports.

use crate::check::{CheckContext, Checks, SourceFacts};
use crate::registry::{AnySource, Connector, Ends, Role, boxed_source, ends};
use crate::{
    Aborted, ConnectorError, Destination, DestinationLock, Extract, Format, JobTag, LoadStats,
    PartStream, Result, SchemaOptions, Source,
};
use bytes::Bytes;
use futures_util::FutureExt;
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use mirage_core::schema::{
    Catalog, Column, ForeignKey, MAX_CATEGORIES, QUANTILES, QualifiedName, Table, TableKind,
    ValueType,
};
use mirage_core::workspace::SchemaFilter;
use mirage_core::workspace::Workspace;
use mirage_core::{ColumnStats, StatsKind};
use mirage_transform::codec::{CsvReader, RecordSplitter, count_records, csv_escape};
use serde::{Deserialize, Serialize};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `schema.json`: the tables of a files dataset.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SchemaFile {
    /// The tables; each one's rows are in `<schema>.<table>.csv` (no file: no rows).
    pub tables: Vec<FileTable>,
    /// Foreign keys between the tables (optional).
    #[serde(default)]
    pub foreign_keys: Vec<FileForeignKey>,
}

/// A table in `schema.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileTable {
    /// The table's schema, e.g. `public`.
    pub schema: String,
    /// The table's name within its schema.
    pub name: String,
    /// The columns, in the order of the CSV file's fields (its header line must list them so).
    pub columns: Vec<FileColumn>,
    /// The primary key's columns, in key order (optional).
    #[serde(default)]
    pub primary_key: Vec<String>,
}

/// A column of a table in `schema.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileColumn {
    /// The column's name, as the CSV file's header line spells it.
    pub name: String,
    /// A PostgreSQL type name: `integer`, `bigint`, `text`, `varchar(80)`, `numeric(10,2)`,
    /// `date`, `timestamptz`, `boolean`, `uuid`, `jsonb`, …
    #[serde(rename = "type")]
    pub type_name: String,
    /// Declared `NOT NULL` (optional, default false).
    #[serde(default)]
    pub not_null: bool,
}

/// A foreign key in `schema.json`: `table(columns)` references `references(referenced_columns)`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileForeignKey {
    /// The referencing table, `schema.table` (a bare name means `public.name`).
    pub table: String,
    /// The referencing columns, in key order.
    pub columns: Vec<String>,
    /// The referenced table, `schema.table` (a bare name means `public.name`).
    pub references: String,
    /// The referenced columns, matching `columns` position by position.
    pub referenced_columns: Vec<String>,
}

/// A PostgreSQL type name as written in `schema.json` → [`ValueType`].
pub fn parse_type(name: &str) -> ValueType {
    let lower = name.trim().to_ascii_lowercase();
    if let Some(elem) = lower.strip_suffix("[]") {
        return ValueType::Array(Box::new(parse_type(elem)));
    }
    let base = lower.split('(').next().unwrap_or("").trim();
    let typname = match base {
        "boolean" | "bool" => "bool",
        "smallint" | "int2" => "int2",
        "integer" | "int" | "int4" | "serial" => "int4",
        "bigint" | "int8" | "bigserial" => "int8",
        "numeric" | "decimal" => "numeric",
        "real" | "float4" => "float4",
        "double precision" | "float8" => "float8",
        "text" => "text",
        "varchar" | "character varying" => "varchar",
        "char" | "character" | "bpchar" => "bpchar",
        "timestamp" | "timestamp without time zone" => "timestamp",
        "timestamptz" | "timestamp with time zone" => "timestamptz",
        "time" | "time without time zone" => "time",
        "timetz" | "time with time zone" => "timetz",
        other => other,
    };
    crate::postgres::catalog::value_type(typname, "b", &lower)
}

impl SchemaFile {
    fn to_catalog(&self, filter: &SchemaFilter) -> Catalog {
        let tables: Vec<Table> = self
            .tables
            .iter()
            .filter(|t| filter.admits(&t.schema))
            .map(|t| Table {
                name: QualifiedName::new(&t.schema, &t.name),
                kind: TableKind::Table,
                columns: t
                    .columns
                    .iter()
                    .map(|c| Column {
                        name: c.name.clone(),
                        type_name: c.type_name.clone(),
                        value_type: parse_type(&c.type_name),
                        not_null: c.not_null,
                        generated: false,
                        identity: false,
                    })
                    .collect(),
                primary_key: t.primary_key.clone(),
                owner: String::new(),
                row_estimate: None,
                byte_estimate: None,
            })
            .collect();
        let mut schemas: Vec<String> = tables.iter().map(|t| t.name.schema.clone()).collect();
        schemas.sort();
        schemas.dedup();
        let foreign_keys = self
            .foreign_keys
            .iter()
            .map(|f| ForeignKey {
                name: format!("{}_{}_fkey", f.table, f.columns.join("_")),
                table: QualifiedName::parse(&f.table),
                columns: f.columns.clone(),
                referenced: QualifiedName::parse(&f.references),
                referenced_columns: f.referenced_columns.clone(),
            })
            .filter(|f| {
                tables.iter().any(|t| t.name == f.table)
                    && tables.iter().any(|t| t.name == f.referenced)
            })
            .collect();
        Catalog {
            byte_lengths: false,
            not_copied: Vec::new(),
            schemas,
            tables,
            foreign_keys,
        }
    }

    /// What makes the file unusable, each naming the table or key: empty or duplicate names,
    /// names whose file name would be too long, keys naming columns or tables that do not exist.
    fn problems(&self) -> Vec<String> {
        use mirage_core::display::printable;
        let mut out = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for (i, t) in self.tables.iter().enumerate() {
            let name = QualifiedName::new(&t.schema, &t.name);
            let shown = printable(&name.to_string()).into_owned();
            if t.schema.is_empty() || t.name.is_empty() {
                out.push(format!("tables[{i}] has an empty schema or name"));
                continue;
            }
            if t.schema.contains('\0') || t.name.contains('\0') {
                out.push(format!(
                    "tables[{i}] ({shown}): a name holds a NUL character"
                ));
                continue;
            }
            if table_file_name(&name).len() > 250 {
                out.push(format!(
                    "tables[{i}] ({shown}): the name is too long for a file name"
                ));
            }
            if !seen.insert(name.clone()) {
                out.push(format!("tables[{i}] ({shown}) is listed twice"));
            }
            if t.columns.is_empty() {
                out.push(format!("tables[{i}] ({shown}) has no columns"));
            }
            let mut columns = std::collections::BTreeSet::new();
            for c in &t.columns {
                if c.name.is_empty() {
                    out.push(format!("table {shown}: a column has an empty name"));
                } else if !columns.insert(c.name.as_str()) {
                    out.push(format!(
                        "table {shown}: column {} is listed twice",
                        printable(&c.name)
                    ));
                }
            }
            for k in &t.primary_key {
                if !columns.contains(k.as_str()) {
                    out.push(format!(
                        "table {shown}: primary_key names column {}, which it does not have",
                        printable(k)
                    ));
                }
            }
        }
        for (i, f) in self.foreign_keys.iter().enumerate() {
            for (table, cols, key) in [
                (&f.table, &f.columns, "table"),
                (&f.references, &f.referenced_columns, "references"),
            ] {
                let name = QualifiedName::parse(table);
                match self
                    .tables
                    .iter()
                    .find(|t| QualifiedName::new(&t.schema, &t.name) == name)
                {
                    None => out.push(format!(
                        "foreign_keys[{i}].{key}: no table {} in tables",
                        printable(table)
                    )),
                    Some(t) => {
                        for c in cols.iter() {
                            if !t.columns.iter().any(|tc| &tc.name == c) {
                                out.push(format!(
                                    "foreign_keys[{i}]: table {} has no column {}",
                                    printable(table),
                                    printable(c)
                                ));
                            }
                        }
                    }
                }
            }
            if f.columns.is_empty() || f.columns.len() != f.referenced_columns.len() {
                out.push(format!(
                    "foreign_keys[{i}]: columns and referenced_columns must list as many columns"
                ));
            }
        }
        out
    }

    fn from_catalog(catalog: &Catalog) -> SchemaFile {
        SchemaFile {
            tables: catalog
                .tables
                .iter()
                .map(|t| FileTable {
                    schema: t.name.schema.clone(),
                    name: t.name.name.clone(),
                    columns: t
                        .columns
                        .iter()
                        .map(|c| FileColumn {
                            name: c.name.clone(),
                            type_name: c.type_name.clone(),
                            not_null: c.not_null,
                        })
                        .collect(),
                    primary_key: t.primary_key.clone(),
                })
                .collect(),
            foreign_keys: catalog
                .foreign_keys
                .iter()
                .map(|f| FileForeignKey {
                    table: f.table.to_string(),
                    columns: f.columns.clone(),
                    references: f.referenced.to_string(),
                    referenced_columns: f.referenced_columns.clone(),
                })
                .collect(),
        }
    }
}

/// The `files:` connector.
pub struct FilesConnector;

impl FilesConnector {
    /// The folder of the workspace's source or destination.
    pub fn folder(ws: &Workspace, role: Role) -> Result<PathBuf> {
        let conn = role.connection(ws);
        folder_of(&conn.url, &ws.base_dir()).ok_or_else(|| {
            ConnectorError::Workspace(ws.error(
                conn.line,
                format!("{}.url", role.as_str()),
                "write files:./folder",
            ))
        })
    }
}

impl Connector for FilesConnector {
    fn name(&self) -> &'static str {
        "files"
    }

    fn accepts(&self, url: &str) -> bool {
        url.starts_with("files:")
    }

    fn example(&self) -> &'static str {
        "files:./folder"
    }

    fn source_checks<'a>(
        &'a self,
        ws: &'a Workspace,
        out: &'a mut Checks,
    ) -> BoxFuture<'a, SourceFacts> {
        async move {
            let source = Self::folder(ws, Role::Source).and_then(|d| FilesSource::open(&d));
            match source {
                Ok(s) => {
                    out.pass("source", format!("{}/schema.json is readable", s.dir.display()));
                    // Every table the job reads has its file (truncated and preserved ones
                    // are not read).
                    for t in s.schema.tables.iter().filter(|t| ws.schemas.admits(&t.schema)) {
                        let name = QualifiedName::new(&t.schema, &t.name);
                        let read = ws.table_config(&name.to_string()).is_none_or(|c| {
                            c.mode == mirage_core::workspace::TableMode::DeIdentify
                        });
                        let path = table_file(&s.dir, &name);
                        if read && !path.is_file() {
                            out.fail(
                                "source",
                                format!(
                                    "{} exists",
                                    mirage_core::display::printable(&path.display().to_string())
                                ),
                                Some(missing_file(&name, &path).to_string()),
                                "add the file (its header line alone for a table without rows)",
                            );
                        }
                    }
                    SourceFacts {
                        schemas: s
                            .schema
                            .tables
                            .iter()
                            .map(|t| t.schema.clone())
                            .filter(|n| ws.schemas.admits(n))
                            .collect(),
                        identity: Some(s.folder_identity()),
                    }
                }
                Err(e) => {
                    out.fail(
                        "source",
                        "the source folder holds a schema.json",
                        Some(e.to_string()),
                        "point source.url at a folder written by mirage (files:./folder) or add its schema.json",
                    );
                    SourceFacts::default()
                }
            }
        }
        .boxed()
    }

    fn destination_checks<'a>(
        &'a self,
        ws: &'a Workspace,
        ctx: &'a CheckContext,
        out: &'a mut Checks,
    ) -> BoxFuture<'a, ()> {
        async move {
            const A: &str = "destination";
            let dir = match Self::folder(ws, Role::Destination) {
                Ok(d) => d,
                Err(e) => {
                    out.fail(
                        A,
                        "destination.url",
                        Some(e.to_string()),
                        "write files:./folder",
                    );
                    return;
                }
            };
            if dir.exists() && !dir.is_dir() {
                out.fail(
                    A,
                    format!("{} is a folder", dir.display()),
                    Some("it exists and is not a folder".into()),
                    "point destination.url at a folder",
                );
                return;
            }
            out.pass(
                A,
                format!("{} is a folder (created when missing)", dir.display()),
            );
            let dest = FilesDestination::new(&dir);
            if ctx.source_identity.as_deref() == Some(dest.folder_identity().as_str()) {
                out.same_as_source(A, "folder");
            } else if ctx.source_identity.is_some() {
                out.pass(A, "a folder of its own");
            }
            for t in &ctx.preserved {
                let f = table_file(&dir, &t.name);
                let what = format!("preserved table {} exists", t.name);
                if f.exists() {
                    out.pass(A, what);
                } else {
                    out.fail(
                        A,
                        what,
                        Some(format!(
                            "table {} is preserve-destination but {} does not exist",
                            t.name,
                            f.display()
                        )),
                        "use mode \"truncate\" or \"de-identify\" for the first run",
                    );
                }
            }
        }
        .boxed()
    }

    fn open_source<'a>(&'a self, ws: &'a Workspace) -> BoxFuture<'a, Result<Box<dyn AnySource>>> {
        async move {
            Ok(boxed_source(FilesSource::open(&Self::folder(
                ws,
                Role::Source,
            )?)?))
        }
        .boxed()
    }

    fn open_job<'a>(&'a self, ws: &'a Workspace, _job_id: &'a str) -> BoxFuture<'a, Result<Ends>> {
        async move {
            Ok(ends(
                FilesSource::open(&Self::folder(ws, Role::Source)?)?,
                FilesDestination::new(&Self::folder(ws, Role::Destination)?),
            ))
        }
        .boxed()
    }
}

/// Parse a `files:` URL into a folder, relative paths against `base`.
pub fn folder_of(url: &str, base: &Path) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("files://")
        .or_else(|| url.strip_prefix("files:"))?;
    let p = PathBuf::from(rest);
    Some(if p.is_absolute() { p } else { base.join(p) })
}

/// The file holding a table's rows: `<schema>.<table>.csv`, each name encoded by
/// [`file_part`] so that no name leaves the folder and two tables never share a file.
pub fn table_file(dir: &Path, table: &QualifiedName) -> PathBuf {
    dir.join(table_file_name(table))
}

fn table_file_name(table: &QualifiedName) -> String {
    format!(
        "{}.{}.csv",
        file_part(&table.schema),
        file_part(&table.name)
    )
}

/// A schema or table name as part of a file name: `%`, `.`, path separators, control characters
/// and the characters other systems refuse in file names (`:*?"<>|`) become `%XX` (their UTF-8
/// bytes in hex); everything else stays. So `a.b`+`c` (`a%2Eb.c.csv`) and `a`+`b.c`
/// (`a.b%2Ec.csv`) differ, `..` is `%2E%2E`, and `x/../y` cannot climb out of the folder.
pub fn file_part(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_control()
            || matches!(
                c,
                '%' | '.' | '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|'
            )
        {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The header line for a table's columns.
fn header(columns: &[String]) -> Vec<u8> {
    let mut h = Vec::new();
    for (i, c) in columns.iter().enumerate() {
        if i > 0 {
            h.push(b',');
        }
        csv_escape(c.as_bytes(), b',', b"\x00", &mut h);
    }
    h.push(b'\n');
    h
}

/// A files source.
pub struct FilesSource {
    dir: PathBuf,
    schema: SchemaFile,
}

impl FilesSource {
    /// Read the folder's `schema.json`.
    pub fn open(dir: &Path) -> Result<FilesSource> {
        let path = dir.join("schema.json");
        let text = std::fs::read_to_string(&path).map_err(|e| {
            ConnectorError::io(
                format!(
                    "reading {} (a files source needs a schema.json)",
                    path.display()
                ),
                e,
            )
        })?;
        let schema: SchemaFile = serde_json::from_str(&text)
            .map_err(|e| ConnectorError::Invalid(format!("{}: {e}", path.display())))?;
        let problems = schema.problems();
        if !problems.is_empty() {
            return Err(ConnectorError::Invalid(format!(
                "{}: {}",
                path.display(),
                problems.join("; ")
            )));
        }
        Ok(FilesSource {
            dir: dir.to_path_buf(),
            schema,
        })
    }

    fn folder_identity(&self) -> String {
        canonical(&self.dir)
    }
}

/// A folder's canonical path: what two folders share when they are the same. The path is made
/// absolute and its `.` and `..` components resolved lexically first, so a path through a folder
/// that does not exist (`./x/../src`) is still `src`; then the longest existing ancestor is
/// canonicalized (symbolic links resolved) and the missing rest appended.
fn canonical(dir: &Path) -> String {
    let absolute = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let normal = lexical(&absolute);
    let mut existing = normal.as_path();
    let mut missing = Vec::new();
    let resolved = loop {
        if let Ok(c) = std::fs::canonicalize(existing) {
            break c;
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                missing.push(name.to_owned());
                existing = parent;
            }
            _ => break existing.to_path_buf(),
        }
    };
    missing
        .iter()
        .rev()
        .fold(resolved, |p, name| p.join(name))
        .display()
        .to_string()
}

/// `path` with `.` components dropped and each `..` removing the component before it (at the
/// root, `..` stays the root).
fn lexical(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if matches!(out.components().next_back(), Some(Component::Normal(_))) {
                    out.pop();
                } else if !out.has_root() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

impl Source for FilesSource {
    type Schema = SchemaFile;

    fn describe(&self) -> String {
        self.folder_identity()
    }

    async fn identity(&self) -> Result<String> {
        Ok(self.folder_identity())
    }

    fn format(&self) -> Format {
        Format::csv()
    }

    async fn catalog(&self, filter: &SchemaFilter) -> Result<Catalog> {
        let mut catalog = self.schema.to_catalog(filter);
        for t in &mut catalog.tables {
            t.byte_estimate = std::fs::metadata(table_file(&self.dir, &t.name))
                .ok()
                .map(|m| m.len());
        }
        Ok(catalog)
    }

    async fn schema(&self, catalog: &Catalog) -> Result<SchemaFile> {
        Ok(SchemaFile::from_catalog(catalog))
    }

    async fn column_stats(
        &self,
        table: &QualifiedName,
        column: &str,
        kind: StatsKind,
    ) -> Result<ColumnStats> {
        let t = self
            .schema
            .tables
            .iter()
            .find(|t| t.schema == table.schema && t.name == table.name)
            .ok_or_else(|| ConnectorError::Invalid(format!("no table {table} in schema.json")))?;
        let index = t
            .columns
            .iter()
            .position(|c| c.name == column)
            .ok_or_else(|| {
                ConnectorError::Invalid(format!("no column {table}.{column} in schema.json"))
            })?;
        let data = match tokio::fs::read(table_file(&self.dir, table)).await {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(ConnectorError::io(format!("reading {table}"), e)),
        };
        // Every non-NULL value of the column (the header record skipped).
        let mut values: Vec<String> = Vec::new();
        let mut reader = CsvReader::new(&data, b',');
        let (mut field, mut record) = (0, 0);
        while !reader.at_end() {
            let f = reader
                .next_field()
                .map_err(|e| ConnectorError::Invalid(format!("{table}: {}", e.0)))?;
            if record > 0 && field == index && (f.quoted || f.end > f.start) {
                let mut v = Vec::new();
                reader.decode(f, &mut v);
                values.push(String::from_utf8_lossy(&v).into_owned());
            }
            field += 1;
            if f.last {
                field = 0;
                record += 1;
            }
        }
        let mut stats = ColumnStats::default();
        match kind {
            StatsKind::Categories => {
                let mut counts: std::collections::HashMap<String, u64> = Default::default();
                for v in values {
                    *counts.entry(v).or_default() += 1;
                }
                if counts.len() > MAX_CATEGORIES {
                    return Err(crate::too_many_categories(table, column));
                }
                stats.categories = counts.into_iter().collect();
                stats
                    .categories
                    .sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            }
            StatsKind::Quantiles => {
                let mut numbers: Vec<(f64, String)> = values
                    .into_iter()
                    .filter_map(|v| v.trim().parse::<f64>().ok().map(|x| (x, v)))
                    .collect();
                numbers.sort_by(|a, b| a.0.total_cmp(&b.0));
                if !numbers.is_empty() {
                    stats.quantiles = (0..=QUANTILES)
                        .map(|i| numbers[((numbers.len() - 1) * i) / QUANTILES].1.clone())
                        .collect();
                }
            }
        }
        Ok(stats)
    }

    async fn sample(
        &self,
        table: &Table,
        columns: &[String],
        limit: usize,
    ) -> Result<crate::sql::Sample> {
        use tokio::io::AsyncReadExt;
        // The first records of the file: at most 16 MiB of it is read.
        const MAX_READ: u64 = 16 * 1024 * 1024;
        let path = table_file(&self.dir, &table.name);
        let what = path.display().to_string();
        let file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(ConnectorError::io(format!("opening {what}"), e)),
        };
        let mut data = Vec::new();
        file.take(MAX_READ)
            .read_to_end(&mut data)
            .await
            .map_err(|e| ConnectorError::io(format!("reading {what}"), e))?;
        let truncated = data.len() as u64 == MAX_READ;
        let mut reader = CsvReader::new(&data, b',');
        let mut records: Vec<Vec<Option<String>>> = vec![Vec::new()];
        while !reader.at_end() && records.len() <= limit + 1 {
            let f = match reader.next_field() {
                Ok(f) => f,
                // A record cut by the read's end is left out.
                Err(_) if truncated => {
                    records.pop();
                    break;
                }
                Err(e) => return Err(ConnectorError::Invalid(format!("{what}: {}", e.0))),
            };
            let value = (f.quoted || f.end > f.start).then(|| {
                let mut v = Vec::new();
                reader.decode(f, &mut v);
                String::from_utf8_lossy(&v).into_owned()
            });
            if let Some(r) = records.last_mut() {
                r.push(value);
            }
            if f.last {
                records.push(Vec::new());
            }
        }
        let mut records = records.into_iter().filter(|r| !r.is_empty());
        let header: Vec<String> = records
            .next()
            .unwrap_or_default()
            .into_iter()
            .map(Option::unwrap_or_default)
            .collect();
        let index: Vec<Option<usize>> = columns
            .iter()
            .map(|c| header.iter().position(|h| h == c))
            .collect();
        Ok(records
            .take(limit)
            .map(|r| {
                index
                    .iter()
                    .map(|i| i.and_then(|i| r.get(i).cloned().flatten()))
                    .collect()
            })
            .collect())
    }

    async fn read(&self, table: &Table, columns: &[String]) -> Result<Extract> {
        let path = table_file(&self.dir, &table.name);
        let what = path.display().to_string();
        let mut file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(missing_file(&table.name, &path));
            }
            Err(e) => return Err(ConnectorError::io(format!("opening {what}"), e)),
        };
        // Read and check the header record.
        let mut pending = Vec::new();
        let mut splitter = RecordSplitter::new(Format::csv());
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = file
                .read(&mut buf)
                .await
                .map_err(|e| ConnectorError::io(format!("reading {what}"), e))?;
            pending.extend_from_slice(&buf[..n]);
            let complete = splitter.complete_len(&pending);
            if complete > 0 || n == 0 {
                break;
            }
        }
        let mut reader = CsvReader::new(&pending, b',');
        let mut names = Vec::new();
        while !reader.at_end() {
            let f = reader
                .next_field()
                .map_err(|e| ConnectorError::Invalid(format!("{what}: header: {}", e.0)))?;
            let mut v = Vec::new();
            reader.decode(f, &mut v);
            names.push(String::from_utf8_lossy(&v).into_owned());
            if f.last {
                break;
            }
        }
        let header_len = reader.position();
        if !names.is_empty() && names != columns {
            // The line may be a row (a file without a header): its fields are never shown.
            let differ: Vec<String> = (0..names.len().max(columns.len()))
                .filter(|i| names.get(*i) != columns.get(*i))
                .map(|i| (i + 1).to_string())
                .collect();
            return Err(ConnectorError::Invalid(format!(
                "{what}, line 1: not the header schema.json expects ({}): it has {} field(s), \
                 field(s) {} differ (a file without a header line, or columns in another order); \
                 its content is not shown. Make line 1 that header",
                columns.join(","),
                names.len(),
                differ.join(", ")
            )));
        }
        let first = Bytes::from(pending.split_off(header_len));
        let header_lines = pending.iter().filter(|b| **b == b'\n').count() as u64;
        let shape = Shape::new(what.clone(), columns.len(), header_lines + 1);
        let rest = futures_util::stream::unfold((file, what), |(mut file, what)| async move {
            let mut buf = vec![0u8; 1 << 20];
            match file.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(Bytes::from(buf)), (file, what)))
                }
                Err(e) => Some((
                    Err(ConnectorError::io(format!("reading {what}"), e)),
                    (file, what),
                )),
            }
        });
        let chunks = futures_util::stream::once(async move { Ok(first) }).chain(rest);
        Ok(Extract::streamed(shape.checked(chunks.boxed())))
    }
}

/// The error for a table listed in `schema.json` whose CSV file is missing.
fn missing_file(table: &QualifiedName, path: &Path) -> ConnectorError {
    ConnectorError::Invalid(format!(
        "table {} is listed in schema.json but {} does not exist; add the file (its header line \
         alone for a table without rows) or remove the table from schema.json",
        mirage_core::display::printable(&table.to_string()),
        path.display()
    ))
}

/// Checks the records of a CSV file as they stream past: each must have as many fields as the
/// table has columns, and no quoted field may run to the end of the file. Errors name the file
/// and line, never the content.
struct Shape {
    what: String,
    columns: usize,
    /// The line the current record started on (1-based).
    record_line: u64,
    line: u64,
    /// Fields of the current record so far (the one being read included).
    fields: usize,
    state: CsvState,
    /// The current record has a byte (an empty line is a record of one empty field).
    in_record: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum CsvState {
    /// At the start of a field.
    FieldStart,
    /// Inside an unquoted field.
    Unquoted,
    /// Inside a quoted field.
    Quoted,
    /// A quote inside a quoted field: the field's end, or the first of `""`.
    QuoteInQuoted,
}

impl Shape {
    fn new(what: String, columns: usize, first_line: u64) -> Shape {
        Shape {
            what,
            columns,
            record_line: first_line,
            line: first_line,
            fields: 1,
            state: CsvState::FieldStart,
            in_record: false,
        }
    }

    fn feed(&mut self, bytes: &[u8]) -> Result<()> {
        use CsvState::*;
        for &b in bytes {
            self.state = match (self.state, b) {
                (Quoted, b'"') => QuoteInQuoted,
                (Quoted, b'\n') => {
                    self.line += 1;
                    Quoted
                }
                (Quoted, _) => Quoted,
                (QuoteInQuoted, b'"') => Quoted,
                (_, b'\n') => {
                    self.end_record()?;
                    self.line += 1;
                    self.record_line = self.line;
                    FieldStart
                }
                (_, b',') => {
                    self.fields += 1;
                    self.in_record = true;
                    FieldStart
                }
                (FieldStart, b'"') => {
                    self.in_record = true;
                    Quoted
                }
                // `ab"c` or `"ab"c`: readers disagree on such a field (PostgreSQL opens a quoted
                // section mid-field, others keep the quote): refused rather than guessed.
                (Unquoted, b'"') | (QuoteInQuoted, _) if b != b'\r' => {
                    return Err(ConnectorError::Invalid(format!(
                        "{}, line {}: a quote inside a field that does not start with one, or text \
                         after a field's closing quote; its content is not shown. Quote the whole \
                         field and double the quotes inside it",
                        self.what, self.line
                    )));
                }
                _ => {
                    self.in_record = true;
                    Unquoted
                }
            };
        }
        Ok(())
    }

    fn end_record(&mut self) -> Result<()> {
        if self.fields != self.columns {
            return Err(ConnectorError::Invalid(format!(
                "{}, line {}: {} field(s) where schema.json lists {} column(s); its content is not \
                 shown. Fix the line (a field holding a comma, quote or line break must be quoted, \
                 its quotes doubled)",
                self.what, self.record_line, self.fields, self.columns
            )));
        }
        self.fields = 1;
        self.in_record = false;
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        if matches!(self.state, CsvState::Quoted) {
            return Err(ConnectorError::Invalid(format!(
                "{}, line {}: a quoted field is not closed before the end of the file; its \
                 content is not shown. Close the quote (a quote inside a field is written twice)",
                self.what, self.record_line
            )));
        }
        if self.in_record {
            self.end_record()?;
        }
        Ok(())
    }

    /// `chunks`, each passed on once checked; an error ends the stream.
    fn checked(self, chunks: crate::ChunkStream) -> crate::ChunkStream {
        futures_util::stream::unfold((chunks, Some(self)), |(mut chunks, shape)| async move {
            let mut shape = shape?;
            match chunks.next().await {
                Some(Ok(b)) => match shape.feed(&b) {
                    Ok(()) => Some((Ok(b), (chunks, Some(shape)))),
                    Err(e) => Some((Err(e), (chunks, None))),
                },
                Some(Err(e)) => Some((Err(e), (chunks, None))),
                None => match shape.finish() {
                    Ok(()) => None,
                    Err(e) => Some((Err(e), (chunks, None))),
                },
            }
        })
        .boxed()
    }
}

/// A files destination.
pub struct FilesDestination {
    dir: PathBuf,
}

impl FilesDestination {
    /// A destination folder (created by the job when missing).
    pub fn new(dir: &Path) -> FilesDestination {
        FilesDestination {
            dir: dir.to_path_buf(),
        }
    }

    fn folder_identity(&self) -> String {
        canonical(&self.dir)
    }

    fn io(&self, what: &str, e: std::io::Error) -> ConnectorError {
        ConnectorError::io(format!("{what} in {}", self.dir.display()), e)
    }
}

impl Destination for FilesDestination {
    type Schema = SchemaFile;
    type Loader = ();

    fn describe(&self) -> String {
        self.folder_identity()
    }

    async fn identity(&self) -> Result<String> {
        Ok(self.folder_identity())
    }

    async fn create_schema(&self, schema: &SchemaFile, _: &SchemaOptions) -> Result<()> {
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| self.io("creating the destination folder", e))?;
        let text = serde_json::to_string_pretty(schema)
            .map_err(|e| ConnectorError::Invalid(format!("serializing schema.json: {e}")))?;
        let tmp = self.dir.join(".schema.json.tmp");
        let mut file = create_no_follow(&tmp)
            .await
            .map_err(|e| self.io("writing schema.json", e))?;
        file.write_all((text + "\n").as_bytes())
            .await
            .map_err(|e| self.io("writing schema.json", e))?;
        file.flush()
            .await
            .map_err(|e| self.io("writing schema.json", e))?;
        drop(file);
        tokio::fs::rename(&tmp, self.dir.join("schema.json"))
            .await
            .map_err(|e| self.io("writing schema.json", e))
    }

    async fn load(
        &self,
        _: &(),
        table: &Table,
        columns: &[String],
        mut parts: PartStream,
    ) -> Result<LoadStats> {
        let final_path = table_file(&self.dir, &table.name);
        let tmp = self
            .dir
            .join(format!(".{}.partial", table_file_name(&table.name)));
        let mut file = create_no_follow(&tmp)
            .await
            .map_err(|e| self.io("creating a table file", e))?;
        file.write_all(&header(columns))
            .await
            .map_err(|e| self.io("writing a table file", e))?;
        let mut rows = 0u64;
        while let Some(part) = parts.next().await {
            match part {
                Ok(bytes) => {
                    rows += count_records(&Format::csv(), &bytes);
                    file.write_all(&bytes)
                        .await
                        .map_err(|e| self.io("writing a table file", e))?;
                }
                Err(Aborted) => {
                    drop(file);
                    let _ = tokio::fs::remove_file(&tmp).await;
                    return Err(ConnectorError::Aborted);
                }
            }
        }
        file.flush()
            .await
            .map_err(|e| self.io("writing a table file", e))?;
        drop(file);
        tokio::fs::rename(&tmp, &final_path)
            .await
            .map_err(|e| self.io("renaming a table file", e))?;
        Ok(LoadStats::rows(rows))
    }

    async fn restore_preserved(&self, _: &(), table: &Table) -> Result<u64> {
        // The file was never touched; count its records for the report.
        let data = tokio::fs::read(table_file(&self.dir, &table.name))
            .await
            .map_err(|e| self.io("reading a preserved table", e))?;
        let mut reader = CsvReader::new(&data, b',');
        let mut records = 0u64;
        while !reader.at_end() {
            let f = reader
                .next_field()
                .map_err(|e| ConnectorError::Invalid(format!("{}: {}", table.name, e.0)))?;
            if f.last {
                records += 1;
            }
        }
        Ok(records.saturating_sub(1))
    }

    async fn finish_schema(
        &self,
        _: &(),
        _: &SchemaFile,
        _: &SchemaOptions,
    ) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    /// `.mirage.lock` in the folder, locked (`flock`) for as long as the job runs and holding
    /// the job's tag for a second job's message. The system frees it when the process ends,
    /// however it ends; the partial files a killed job left are removed once it is held.
    async fn lock(&self, tag: &JobTag) -> Result<DestinationLock> {
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| self.io("creating the destination folder", e))?;
        let path = self.dir.join(LOCK_FILE);
        // Never through a symbolic link: the lock file is written, and a link planted in the
        // folder could point anywhere.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| {
                self.io(
                    "opening the lock file (a symbolic link named .mirage.lock is refused: remove it)",
                    e,
                )
            })?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path)
                    .ok()
                    .and_then(|t| serde_json::from_str::<JobTag>(&t).ok())
                    .map_or_else(|| "another mirage job".to_string(), |t| t.to_string());
                return Err(ConnectorError::InUse {
                    destination: self.describe(),
                    holder: mirage_core::display::printable(&holder).into_owned(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(self.io("locking the destination folder", e));
            }
        }
        let text = serde_json::to_string(tag).unwrap_or_default();
        file.set_len(0)
            .and_then(|()| std::io::Write::write_all(&mut &file, text.as_bytes()))
            .map_err(|e| self.io("writing the lock file", e))?;
        remove_partials(&self.dir);
        Ok(Box::new(FolderLock {
            _file: file,
            dir: self.dir.clone(),
        }))
    }
}

/// A held files destination. Dropped at the job's end, whatever the outcome: the files it was
/// writing when it was stopped (`.…csv.partial`, `.schema.json.tmp`) go, then the lock.
struct FolderLock {
    _file: std::fs::File,
    dir: PathBuf,
}

impl Drop for FolderLock {
    fn drop(&mut self) {
        remove_partials(&self.dir);
    }
}

/// Create (or empty) a file the job writes before renaming it into place, never through a
/// symbolic link planted in the folder.
async fn create_no_follow(path: &Path) -> std::io::Result<tokio::fs::File> {
    tokio::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .await
}

/// The lock file of a files destination.
const LOCK_FILE: &str = ".mirage.lock";

/// Remove the files a job writes before renaming them into place (only while holding the
/// folder's lock: another job's would be in use).
fn remove_partials(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && (name.ends_with(".csv.partial") || name == ".schema.json.tmp") {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_types_and_schemas_and_foreign_keys_read_back() {
        assert_eq!(parse_type("time without time zone"), ValueType::Time);
        assert_eq!(parse_type("time with time zone"), ValueType::TimeTz);
        let column = |name: &str| FileColumn {
            name: name.into(),
            type_name: "integer".into(),
            not_null: false,
        };
        let table = |schema: &str, name: &str| FileTable {
            schema: schema.into(),
            name: name.into(),
            columns: vec![column("id")],
            primary_key: vec![],
        };
        let file = SchemaFile {
            tables: vec![
                table("public", "a"),
                table("sales", "b"),
                table("public", "c"),
            ],
            foreign_keys: vec![FileForeignKey {
                table: "public.a".into(),
                columns: vec!["id".into()],
                references: "sales.b".into(),
                referenced_columns: vec!["id".into()],
            }],
        };
        let all = file.to_catalog(&SchemaFilter::default());
        assert_eq!(all.schemas, ["public", "sales"]);
        assert_eq!(all.foreign_keys.len(), 1);
        let public = file.to_catalog(&SchemaFilter {
            include: vec!["public".into()],
            exclude: vec![],
        });
        assert!(
            public.foreign_keys.is_empty(),
            "a key into an excluded schema is not reported"
        );
    }

    fn shape_of(text: &[u8], columns: usize, chunk: usize) -> Result<()> {
        let mut shape = Shape::new("f.csv".into(), columns, 2);
        for part in text.chunks(chunk.max(1)) {
            shape.feed(part)?;
        }
        shape.finish()
    }

    #[test]
    fn every_record_is_checked_against_the_columns() {
        let good: &[u8] = b"1,\"a,b\"\n2,\"line\nbreak \"\"q\"\"\"\n3,\n4,\"\"\n5,last";
        for chunk in [1, 2, 3, 7, 1000] {
            shape_of(good, 2, chunk).unwrap_or_else(|e| panic!("chunk {chunk}: {e}"));
        }
        // One column: an empty line is a record (NULL).
        shape_of(b"1\n\n3\n", 1, 1).unwrap();
        let ragged = shape_of(b"1,a\n2,b,SECRET\n", 2, 4)
            .unwrap_err()
            .to_string();
        assert!(ragged.contains("f.csv, line 3: 3 field(s)"), "{ragged}");
        assert!(!ragged.contains("SECRET"), "{ragged}");
        let short = shape_of(b"1,a\n2,\"x\ny\"\n3\n", 2, 5)
            .unwrap_err()
            .to_string();
        assert!(short.contains("line 5: 1 field(s)"), "{short}");
        let bare = shape_of(b"1,a\"b\n2,c\"d\n", 2, 4).unwrap_err().to_string();
        assert!(bare.contains("line 2: a quote inside a field"), "{bare}");
        let after = shape_of(b"1,\"a\"b\n", 2, 1).unwrap_err().to_string();
        assert!(after.contains("line 2"), "{after}");
        shape_of(b"1,\"a\"\r\n2,b\r\n", 2, 1).unwrap();
        let open = shape_of(b"1,a\n2,\"SECRET,\n", 2, 3)
            .unwrap_err()
            .to_string();
        assert!(
            open.contains("line 3") && open.contains("not closed"),
            "{open}"
        );
        assert!(!open.contains("SECRET"), "{open}");
        let last = shape_of(b"1,a\n2", 2, 100).unwrap_err().to_string();
        assert!(last.contains("line 3: 1 field(s)"), "{last}");
    }

    #[test]
    fn names_become_safe_distinct_file_names() {
        let dir = Path::new("/d");
        let a = table_file(dir, &QualifiedName::new("a.b", "c"));
        let b = table_file(dir, &QualifiedName::new("a", "b.c"));
        assert_ne!(a, b);
        assert_eq!(a, Path::new("/d/a%2Eb.c.csv"));
        let climbing = table_file(dir, &QualifiedName::new("..", "../../etc/passwd"));
        assert_eq!(climbing.parent(), Some(dir), "{}", climbing.display());
        assert!(
            !climbing.to_string_lossy().contains(".."),
            "{}",
            climbing.display()
        );
        let control = table_file(dir, &QualifiedName::new("s", "new\nline\u{0}"));
        assert_eq!(control, Path::new("/d/s.new%0Aline%00.csv"));
        assert_eq!(file_part("Ünïcode name"), "Ünïcode name");
    }

    #[test]
    fn schema_file_mistakes_are_named() {
        let file: SchemaFile = serde_json::from_str(
            r#"{"tables": [
                {"schema": "public", "name": "t", "columns": [{"name": "id", "type": "int"}, {"name": "id", "type": "text"}], "primary_key": ["nope"]},
                {"schema": "public", "name": "t", "columns": [{"name": "id", "type": "int"}]},
                {"schema": "", "name": "x", "columns": []}
            ], "foreign_keys": [{"table": "public.t", "columns": ["id"], "references": "public.gone", "referenced_columns": ["id"]}]}"#,
        )
        .unwrap();
        let problems = file.problems().join("\n");
        for expected in [
            "column id is listed twice",
            "primary_key names column nope",
            "tables[1] (public.t) is listed twice",
            "tables[2] has an empty schema or name",
            "foreign_keys[0].references: no table public.gone",
        ] {
            assert!(problems.contains(expected), "{expected}: {problems}");
        }
    }

    #[test]
    fn a_folder_is_itself_however_it_is_spelled() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        std::fs::create_dir(&src).unwrap();
        let same = canonical(&src);
        // Through a folder that does not exist, with `.` components, or relative.
        assert_eq!(canonical(&tmp.path().join("x/../src")), same);
        assert_eq!(canonical(&tmp.path().join("./x/y/../.././src/.")), same);
        assert_eq!(canonical(&tmp.path().join("src/missing/..")), same);
        // A missing folder is named by its existing ancestor's canonical path.
        assert_eq!(
            canonical(&tmp.path().join("x/../new/sub")),
            format!("{}/new/sub", canonical(tmp.path()))
        );
        assert_ne!(canonical(&tmp.path().join("x/../dst")), same);
        // Symbolic links of the existing part are resolved.
        std::os::unix::fs::symlink(&src, tmp.path().join("link")).unwrap();
        assert_eq!(canonical(&tmp.path().join("link")), same);
        assert_eq!(canonical(&tmp.path().join("nothing/../link")), same);
        assert_eq!(lexical(Path::new("/../a/./b/..")), Path::new("/a"));
        assert_eq!(lexical(Path::new("../a/../..")), Path::new("../.."));
    }
}
