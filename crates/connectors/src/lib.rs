//! Connectors: the ends of the data path. A [`Source`] describes its tables and yields each
//! table's rows as a byte stream in one known [`Format`]; a [`Destination`] recreates the schema
//! and loads each table atomically from transformed parts.
//!
//! - [`postgres`]: `pg_catalog` introspection, `pg_dump`-based schema copy, `COPY … TO STDOUT`
//!   under one exported snapshot, `COPY … FROM STDIN` in one transaction per table.
//! - [`redshift`]: Data Pipeline V2 — UNLOAD to S3, parts streamed to the transform, parts
//!   written back to S3 and COPYed into a staging table that is swapped in.
//! - [`files`]: a folder of CSV files plus `schema.json` — the embedded default that needs no
//!   server.
//!
//! Which connector a URL means is decided in one place, [`registry::connector_for`]; each
//! connector owns the checks a run needs ([`check`]); S3 staging (layout, compression,
//! manifests) is its own module, [`staging`], shared by the Redshift connector and the Lambda
//! handler.

#![warn(missing_docs)]

pub mod aws;
pub mod check;
#[cfg(test)]
mod conformance;
pub mod files;
pub mod grants;
pub mod postgres;
pub mod redshift;
pub mod registry;
pub mod sql;
pub mod staging;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use mirage_core::schema::{Catalog, Table};
use mirage_core::workspace::SchemaFilter;
use mirage_core::{ColumnStats, QualifiedName, StatsKind};
pub use mirage_transform::codec::Format;
use std::any::Any;
use std::future::Future;
use std::sync::{Arc, OnceLock};

/// Errors from a connector. Messages never carry row values: database messages are redacted.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// A connection could not be opened.
    #[error("cannot connect to the {role} ({endpoint}): {detail}")]
    Connect {
        /// `source` or `destination`.
        role: &'static str,
        /// `user@host:port/db`, never a password.
        endpoint: String,
        /// The driver's reason, redacted.
        detail: String,
        /// The server answered (refused the login, has no such database): a setting to fix,
        /// not a server that is down.
        answered: bool,
    },
    /// A statement or storage request failed.
    #[error("{what}: {detail}")]
    Database {
        /// What was being done.
        what: String,
        /// The server's reason, redacted.
        detail: String,
    },
    /// An external tool (`pg_dump`, `pg_restore`) failed.
    #[error("{tool} failed: {detail}")]
    Tool {
        /// The program.
        tool: &'static str,
        /// Its reason.
        detail: String,
    },
    /// A local file could not be read or written.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Something the user must fix: a setting, a grant, a missing object.
    #[error("{0}")]
    Invalid(String),
    /// A workspace setting is wrong (the error names the file, line and key).
    #[error(transparent)]
    Workspace(#[from] mirage_core::WorkspaceError),
    /// Checks made before anything is written failed; each line says what fixes it.
    #[error("{}", .0.join("\n"))]
    Preflight(Vec<String>),
    /// The parts stream was aborted by the caller (e.g. a generator failed); nothing was loaded.
    #[error("load aborted; the table was left as it was")]
    Aborted,
    /// Objects of the post-data (indexes, constraints, triggers …) that did not build; every
    /// table's rows are loaded.
    #[error("{}", post_data_message(.0))]
    PostData(Vec<PostDataItem>),
    /// Another job holds the destination; nothing was written.
    #[error(
        "the destination {destination} is in use by {holder}; nothing was written: wait for \
         that job to end (a job whose process died frees it)"
    )]
    InUse {
        /// How the destination is named.
        destination: String,
        /// The job that holds it: id, host, process, start time.
        holder: String,
    },
}

/// Who runs a job, as a destination lock records it (and a second job's refusal names it).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct JobTag {
    /// The job id.
    pub job: String,
    /// The machine's host name.
    pub host: String,
    /// The worker's process id.
    pub pid: u32,
    /// When the job started (RFC 3339, UTC).
    pub started: String,
}

impl JobTag {
    /// This process's tag for job `job`.
    pub fn new(job: &str) -> JobTag {
        JobTag {
            job: job.to_string(),
            host: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "unknown host".into()),
            pid: std::process::id(),
            started: humantime_now(),
        }
    }
}

impl std::fmt::Display for JobTag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "job {} (host {}, process {}, started {})",
            self.job, self.host, self.pid, self.started
        )
    }
}

/// Now as `YYYY-MM-DDTHH:MM:SSZ`.
fn humantime_now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// What holds a destination for a job until dropped (or until the process ends).
pub type DestinationLock = Box<dyn std::any::Any + Send + Sync>;

/// An object of the post-data that did not build: its kind, table and name, and the server's
/// reason as SQLSTATE and fixed wording (never a value).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PostDataItem {
    /// `index`, `constraint`, `trigger`, `rule`, `policy`.
    pub kind: &'static str,
    /// The table it belongs to, `schema.table`.
    pub table: String,
    /// Its name.
    pub name: String,
    /// Why it did not build.
    pub reason: String,
}

impl std::fmt::Display for PostDataItem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} on {} ({})",
            self.kind,
            mirage_core::display::printable(&self.name),
            mirage_core::display::printable(&self.table),
            self.reason
        )
    }
}

fn post_data_message(items: &[PostDataItem]) -> String {
    format!(
        "{} index(es), constraint(s) or trigger(s) did not build: {}; every table's rows are \
         loaded: fix the cause and run again",
        items.len(),
        items
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    )
}

impl ConnectorError {
    /// An I/O error with what was being done.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        ConnectorError::Io {
            what: what.into(),
            source,
        }
    }

    /// A connection failed before any server answered (down, unreachable, timed out): perhaps
    /// for now, unlike a refused login or a missing database.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            ConnectorError::Connect {
                answered: false,
                ..
            }
        )
    }
}

/// A connector result.
pub type Result<T> = std::result::Result<T, ConnectorError>;

/// The caller aborted a load stream.
#[derive(Debug, Clone, Copy)]
pub struct Aborted;

/// A table's rows as chunks of bytes in the source's [`Format`] (chunk boundaries are arbitrary).
pub type ChunkStream = BoxStream<'static, Result<Bytes>>;

/// Transformed parts on their way to the destination (each part is whole records).
pub type PartStream = BoxStream<'static, std::result::Result<Bytes, Aborted>>;

/// A table's rows as they leave the source.
pub struct Extract {
    /// The rows, in the source's [`Format`].
    pub chunks: ChunkStream,
    /// Bytes the extract wrote to intermediate storage (Redshift's UNLOAD files, compressed),
    /// set once known; never set by sources that stream directly.
    pub stored_bytes: Arc<OnceLock<u64>>,
}

impl Extract {
    /// An extract that streams without intermediate storage.
    pub fn streamed(chunks: ChunkStream) -> Extract {
        Extract {
            chunks,
            stored_bytes: Arc::new(OnceLock::new()),
        }
    }
}

/// What a load did.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LoadStats {
    /// Rows the table holds now.
    pub rows: u64,
    /// Bytes written to intermediate storage for the load (Redshift's COPY files, compressed).
    pub stored_bytes: Option<u64>,
    /// For a direct or remote load: bytes the source's extract stored.
    pub extract_stored_bytes: Option<u64>,
    /// For a remote load ([`Destination::load_remote`]): what the remote transform did.
    pub remote: Option<RemoteStats>,
}

/// What a remote transform (the SQS + Lambda process) did for a table.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct RemoteStats {
    /// Files transformed (one invocation each).
    pub files: u64,
    /// Seconds of transform, all files together.
    pub seconds: f64,
    /// Seconds of the slowest file.
    pub max_seconds: f64,
    /// Bytes the transform read and wrote, uncompressed (what V2 reports as read and
    /// transformed).
    #[serde(skip)]
    pub raw_bytes: (u64, u64),
}

impl LoadStats {
    /// A load that wrote nothing but the table.
    pub fn rows(rows: u64) -> LoadStats {
        LoadStats {
            rows,
            ..LoadStats::default()
        }
    }
}

/// What the destination needs to know about schema copy.
#[derive(Debug, Clone, Default)]
pub struct SchemaOptions {
    /// Schemas being copied (dropped and recreated in the destination).
    pub schemas: Vec<String>,
    /// Give objects the source's owners (and privileges).
    pub preserve_ownership: bool,
    /// Tables whose destination rows are kept.
    pub preserved: Vec<Table>,
}

/// Where rows come from.
pub trait Source: Send + Sync + 'static {
    /// What schema copy carries from this source to a destination of the same kind.
    type Schema: Send + Sync + 'static;

    /// `user@host:port/db` or a folder: how messages and reports name it (no password).
    fn describe(&self) -> String;

    /// Whether its connections are encrypted (TLS), once one is open; `None` where that does
    /// not apply (a folder) or is not known.
    fn encrypted(&self) -> Option<bool> {
        None
    }

    /// What identifies the database (server + database), to refuse copying one onto itself.
    fn identity(&self) -> impl Future<Output = Result<String>> + Send;

    /// The record format of the chunks [`Source::read`] yields.
    fn format(&self) -> Format;

    /// Tables, columns, keys and sizes of the schemas the filter admits.
    fn catalog(&self, filter: &SchemaFilter) -> impl Future<Output = Result<Catalog>> + Send;

    /// Capture the schemas in the catalog (tables and everything else in them) for copying.
    fn schema(&self, catalog: &Catalog) -> impl Future<Output = Result<Self::Schema>> + Send;

    /// Facts about one column's values (for statistical generators), read under the same
    /// snapshot as the rows.
    fn column_stats(
        &self,
        table: &QualifiedName,
        column: &str,
        kind: StatsKind,
    ) -> impl Future<Output = Result<ColumnStats>> + Send;

    /// Stream a table's rows, `columns` in that order.
    fn read(
        &self,
        table: &Table,
        columns: &[String],
    ) -> impl Future<Output = Result<Extract>> + Send;

    /// Up to `limit` rows of `columns` as text (NULL as `None`), read as a bounded sample:
    /// never a full scan of a large table. What `mirage scan` judges columns by.
    fn sample(
        &self,
        table: &Table,
        columns: &[String],
        limit: usize,
    ) -> impl Future<Output = Result<sql::Sample>> + Send;
}

/// Where rows go.
pub trait Destination: Send + Sync + 'static {
    /// The schema copy this destination takes (its source's [`Source::Schema`]).
    type Schema: Send + Sync + 'static;
    /// What [`Destination::create_schema`] learned that the loads need (DDL, dropped foreign
    /// keys …), handed back to every later call.
    type Loader: Send + Sync + 'static;

    /// `user@host:port/db` or a folder: how messages and reports name it (no password).
    fn describe(&self) -> String;

    /// Whether its connections are encrypted (TLS), once one is open; `None` where that does
    /// not apply (a folder) or is not known.
    fn encrypted(&self) -> Option<bool> {
        None
    }

    /// What identifies the database (server + database), to refuse copying one onto itself.
    fn identity(&self) -> impl Future<Output = Result<String>> + Send;

    /// Recreate schemas and tables without indexes or constraints; preserved tables' rows are
    /// kept aside until [`Destination::restore_preserved`].
    fn create_schema(
        &self,
        schema: &Self::Schema,
        options: &SchemaOptions,
    ) -> impl Future<Output = Result<Self::Loader>> + Send;

    /// Load one table from parts, atomically: all rows or none.
    fn load(
        &self,
        loader: &Self::Loader,
        table: &Table,
        columns: &[String],
        parts: PartStream,
    ) -> impl Future<Output = Result<LoadStats>> + Send;

    /// Load a table with nothing to transform straight from `source` when this destination
    /// can read the source's storage itself (a source of its own kind); `None` when it cannot,
    /// and the rows are streamed through [`Destination::load`] instead.
    fn load_direct(
        &self,
        _loader: &Self::Loader,
        _source: &(dyn Any + Send + Sync),
        _table: &Table,
        _columns: &[String],
    ) -> impl Future<Output = Option<Result<LoadStats>>> + Send {
        async { None }
    }

    /// Transform and load a table elsewhere (the SQS + Lambda process): the destination ships
    /// `spec` and `key` to the workers it runs, has `source` extract the rows where they can
    /// read them, and loads what they write; `progress` gets (rows, bytes) as files are done.
    /// `None` when this destination transforms nothing remotely and the rows are streamed
    /// through [`Destination::load`] instead.
    #[allow(clippy::too_many_arguments)]
    fn load_remote(
        &self,
        _loader: &Self::Loader,
        _source: &(dyn Any + Send + Sync),
        _table: &Table,
        _columns: &[String],
        _spec: &mirage_transform::spec::TableSpec,
        _key: &mirage_transform::spec::ConsistencyKey,
        _progress: &(dyn Fn(u64, u64) + Send + Sync),
    ) -> impl Future<Output = Option<Result<LoadStats>>> + Send {
        async { None }
    }

    /// Put a preserved table's kept rows back; returns the rows.
    fn restore_preserved(
        &self,
        loader: &Self::Loader,
        table: &Table,
    ) -> impl Future<Output = Result<u64>> + Send;

    /// Indexes, constraints, triggers, sequence values, views: everything that comes after the
    /// data. Returns what could not be recreated and does not fail the job (a view whose body
    /// no longer compiles), one line each.
    fn finish_schema(
        &self,
        loader: &Self::Loader,
        schema: &Self::Schema,
        options: &SchemaOptions,
    ) -> impl Future<Output = Result<Vec<String>>> + Send;

    /// After a job in which some tables failed: put back what [`Destination::create_schema`]
    /// took away from the tables that stay, where that is safe. `None`: nothing is put back
    /// (the post-data waits for a successful run); `Some(problems)`: what could not be.
    fn finish_after_failure(
        &self,
        _loader: &Self::Loader,
        _schema: &Self::Schema,
    ) -> impl Future<Output = Option<Vec<String>>> + Send {
        async { None }
    }

    /// The job is over (whatever its outcome): remove what it kept outside the destination
    /// (staging files).
    fn end_job(&self) -> impl Future<Output = Result<()>> + Send {
        async { Ok(()) }
    }

    /// Take the destination for job `tag` before anything is written: a second job on it stops
    /// with [`ConnectorError::InUse`] naming the holder. Held until the returned value is
    /// dropped; a job whose process dies frees it.
    fn lock(&self, _tag: &JobTag) -> impl Future<Output = Result<DestinationLock>> + Send {
        async { Ok(Box::new(()) as DestinationLock) }
    }
}

/// Remove values from a database message: `…: "value"` becomes `…: "…"`, `(col)=(value)` keeps
/// only the columns, and anything after a DETAIL/CONTEXT line is dropped.
pub fn redact(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for line in message.lines() {
        let t = line.trim_start();
        if t.starts_with("DETAIL") || t.starts_with("CONTEXT") || t.starts_with("LINE ") {
            continue;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        let mut rest = line;
        while let Some(i) = rest.find(": \"") {
            out.push_str(&rest[..i + 3]);
            let after = &rest[i + 3..];
            match after.rfind('"') {
                Some(j) => {
                    out.push('…');
                    rest = &after[j..];
                }
                None => {
                    rest = "";
                    out.push_str("…\"");
                }
            }
        }
        while let Some(i) = rest.find(")=(") {
            out.push_str(&rest[..i + 3]);
            let after = &rest[i + 3..];
            match after.find(')') {
                Some(j) => {
                    out.push('…');
                    rest = &after[j..];
                }
                None => rest = "",
            }
        }
        out.push_str(rest);
    }
    out
}

/// The error for a categorical column with too many distinct values to be categories.
pub(crate) fn too_many_categories(table: &QualifiedName, column: &str) -> ConnectorError {
    ConnectorError::Invalid(format!(
        "{table}.{column} has more than {} distinct values; categorical is for columns with few \
         categories (try continuous or a key generator)",
        mirage_core::schema::MAX_CATEGORIES
    ))
}

/// Resolve the table a partition's settings come from: itself, else its partitioned parent.
pub fn settings_owner(table: &Table) -> &QualifiedName {
    table.kind.settings_parent().unwrap_or(&table.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_removes_values() {
        let m = "invalid input syntax for type integer: \"4111 1111\"\nCONTEXT: COPY t, line 3, column id: \"4111 1111\"";
        let r = redact(m);
        assert!(!r.contains("4111"), "{r}");
        assert!(r.contains("type integer"));
        let m = "insert or update on table \"orders\" violates foreign key constraint \"fk\"\nDETAIL: Key (customer_id)=(42) is not present";
        let r = redact(m);
        assert!(r.contains("\"orders\"") && !r.contains("42"), "{r}");
        assert_eq!(redact("Key (a, b)=(1, 2) exists"), "Key (a, b)=(…) exists");
    }
}
