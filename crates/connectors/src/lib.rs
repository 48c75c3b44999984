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

#[cfg(test)]
mod conformance;
pub mod files;
pub mod grants;
pub mod postgres;
pub mod redshift;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use mirage_core::schema::{Catalog, Table};
use mirage_core::workspace::SchemaFilter;
use mirage_core::{ColumnStats, QualifiedName, StatsKind};
pub use mirage_transform::codec::Format;
use std::future::Future;

/// Errors from a connector. Messages never carry row values: database messages are redacted.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    #[error("cannot connect to the {role} ({endpoint}): {detail}")]
    Connect {
        role: &'static str,
        endpoint: String,
        detail: String,
    },
    #[error("{what}: {detail}")]
    Database { what: String, detail: String },
    #[error("{tool} failed: {detail}")]
    Tool { tool: &'static str, detail: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
    /// The parts stream was aborted by the caller (e.g. a generator failed); nothing was loaded.
    #[error("load aborted; the table was left as it was")]
    Aborted,
}

impl ConnectorError {
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        ConnectorError::Io {
            what: what.into(),
            source,
        }
    }
}

pub type Result<T> = std::result::Result<T, ConnectorError>;

/// The caller aborted a load stream.
#[derive(Debug, Clone, Copy)]
pub struct Aborted;

/// A table's rows as chunks of bytes in the source's [`Format`] (chunk boundaries are arbitrary).
pub type ChunkStream = BoxStream<'static, Result<Bytes>>;

/// Transformed parts on their way to the destination (each part is whole records).
pub type PartStream = BoxStream<'static, std::result::Result<Bytes, Aborted>>;

/// A table's rows already in staging storage (Redshift's UNLOAD files), which a destination of
/// the same kind can load without the worker reading them: for tables with nothing to transform.
#[derive(Debug, Clone)]
pub struct Staged {
    /// The data files' keys.
    pub keys: Vec<String>,
    /// Where they are (deleted once loaded).
    pub prefix: String,
    pub rows: u64,
    pub bytes: u64,
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
    ) -> impl Future<Output = Result<ChunkStream>> + Send;

    /// Bytes a table's extract put in staging storage (Redshift's UNLOAD), when there is one.
    fn staged_bytes(&self, _table: &QualifiedName) -> Option<u64> {
        None
    }

    /// Extract a table into staging storage for a destination to load as is (no transform);
    /// `None` when this source has no such storage.
    fn stage(
        &self,
        _table: &Table,
        _columns: &[String],
    ) -> impl Future<Output = Result<Option<Staged>>> + Send {
        async { Ok(None) }
    }
}

/// Where rows go.
pub trait Destination: Send + Sync + 'static {
    type Schema: Send + Sync + 'static;

    /// Checks made before anything is written: permissions, preserved tables present and alike.
    fn preflight(&self, options: &SchemaOptions) -> impl Future<Output = Result<()>> + Send;

    /// Recreate schemas and tables without indexes or constraints; preserved tables' rows are
    /// kept aside until [`Destination::restore_preserved`].
    fn create_schema(
        &self,
        schema: &Self::Schema,
        options: &SchemaOptions,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Load one table from parts, atomically: all rows or none.
    fn load(
        &self,
        table: &Table,
        columns: &[String],
        parts: PartStream,
    ) -> impl Future<Output = Result<u64>> + Send;

    /// Put a preserved table's kept rows back; returns the rows.
    fn restore_preserved(&self, table: &Table) -> impl Future<Output = Result<u64>> + Send;

    /// Indexes, constraints, triggers, sequence values: everything that comes after the data.
    fn finish_schema(
        &self,
        schema: &Self::Schema,
        options: &SchemaOptions,
    ) -> impl Future<Output = Result<()>> + Send;

    /// After a job in which some tables failed: put back what [`Destination::create_schema`]
    /// took away from the tables that stay, where that is safe. `None`: nothing is put back
    /// (the post-data waits for a successful run); `Some(problems)`: what could not be.
    fn finish_after_failure(
        &self,
        _schema: &Self::Schema,
    ) -> impl Future<Output = Option<Vec<String>>> + Send {
        async { None }
    }

    /// Bytes a table's load wrote to staging storage (files for Redshift's COPY), if any.
    fn staged_bytes(&self, _table: &QualifiedName) -> Option<u64> {
        None
    }

    /// Whether [`Destination::load_staged`] works (the source's staging storage is readable).
    fn accepts_staged(&self) -> bool {
        false
    }

    /// Load a table, atomically, from what [`Source::stage`] put in staging storage.
    fn load_staged(
        &self,
        table: &Table,
        _columns: &[String],
        _staged: &Staged,
    ) -> impl Future<Output = Result<u64>> + Send {
        let name = table.name.clone();
        async move {
            Err(ConnectorError::Invalid(format!(
                "{name}: this destination cannot load staged files"
            )))
        }
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
    match &table.kind {
        mirage_core::TableKind::Partition { parent } => parent,
        _ => &table.name,
    }
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
