//! The schema model: what a connector says about the tables it can read.

use serde::Serialize;
use std::fmt;

/// `schema.table`, as a user writes it in `workspace.toml`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct QualifiedName {
    pub schema: String,
    pub name: String,
}

impl QualifiedName {
    pub fn new(schema: impl Into<String>, name: impl Into<String>) -> Self {
        QualifiedName {
            schema: schema.into(),
            name: name.into(),
        }
    }

    /// Parse `schema.table`; a bare `table` means `public.table`.
    pub fn parse(text: &str) -> QualifiedName {
        match text.split_once('.') {
            Some((s, t)) => QualifiedName::new(s, t),
            None => QualifiedName::new("public", text),
        }
    }

    /// The name quoted for SQL: `"schema"."table"`.
    pub fn quoted(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.name))
    }
}

impl fmt::Display for QualifiedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

/// Quote an SQL identifier, doubling embedded quotes.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quote an SQL string literal, doubling embedded quotes.
pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// What kind of value a column holds, as far as generators care.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueType {
    Boolean,
    SmallInt,
    Integer,
    BigInt,
    Numeric {
        precision: Option<u32>,
        scale: Option<u32>,
    },
    Real,
    Double,
    /// `text`, `varchar(n)`: `max_chars` is `n` when declared.
    Text {
        max_chars: Option<u32>,
    },
    /// `char(n)`, blank-padded.
    Char {
        len: Option<u32>,
    },
    Date,
    Time,
    TimeTz,
    Timestamp,
    TimestampTz,
    Interval,
    Uuid,
    Json,
    Jsonb,
    Bytea,
    Inet,
    /// `macaddr` / `macaddr8`.
    MacAddr,
    /// A user-defined enum type.
    Enum,
    Array(Box<ValueType>),
    /// Anything else (geometric types, ranges, composite types …): passthrough only.
    Other,
}

/// Broad families generators declare they accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TypeFamily {
    Integer,
    Decimal,
    Float,
    Text,
    Boolean,
    Temporal,
    Uuid,
    Json,
    Binary,
    Network,
    Enum,
    Array,
    Other,
}

impl TypeFamily {
    pub fn describe(self) -> &'static str {
        match self {
            TypeFamily::Integer => "integer types (smallint, integer, bigint)",
            TypeFamily::Decimal => "numeric/decimal",
            TypeFamily::Float => "real/double precision",
            TypeFamily::Text => "text, varchar and char",
            TypeFamily::Boolean => "boolean",
            TypeFamily::Temporal => "date, time and timestamp types",
            TypeFamily::Uuid => "uuid",
            TypeFamily::Json => "json and jsonb",
            TypeFamily::Binary => "bytea",
            TypeFamily::Network => "inet, cidr and macaddr",
            TypeFamily::Enum => "enum types",
            TypeFamily::Array => "arrays",
            TypeFamily::Other => "other types",
        }
    }
}

impl ValueType {
    pub fn family(&self) -> TypeFamily {
        match self {
            ValueType::SmallInt | ValueType::Integer | ValueType::BigInt => TypeFamily::Integer,
            ValueType::Numeric { .. } => TypeFamily::Decimal,
            ValueType::Real | ValueType::Double => TypeFamily::Float,
            ValueType::Text { .. } | ValueType::Char { .. } => TypeFamily::Text,
            ValueType::Enum => TypeFamily::Enum,
            ValueType::Boolean => TypeFamily::Boolean,
            ValueType::Date
            | ValueType::Time
            | ValueType::TimeTz
            | ValueType::Timestamp
            | ValueType::TimestampTz
            | ValueType::Interval => TypeFamily::Temporal,
            ValueType::Uuid => TypeFamily::Uuid,
            ValueType::Json | ValueType::Jsonb => TypeFamily::Json,
            ValueType::Bytea => TypeFamily::Binary,
            ValueType::Inet | ValueType::MacAddr => TypeFamily::Network,
            ValueType::Array(_) => TypeFamily::Array,
            ValueType::Other => TypeFamily::Other,
        }
    }

    /// The type tag mixed into consistent generators: values of one family map alike whatever
    /// the width (an `integer` key and its `bigint` foreign key rewrite identically), while
    /// integer `123` and text `"123"` map differently.
    pub fn consistency_tag(&self) -> &'static str {
        match self.family() {
            TypeFamily::Integer => "integer",
            TypeFamily::Decimal => "decimal",
            TypeFamily::Float => "float",
            TypeFamily::Text | TypeFamily::Enum => "text",
            TypeFamily::Boolean => "boolean",
            TypeFamily::Temporal => "temporal",
            TypeFamily::Uuid => "uuid",
            TypeFamily::Json => "json",
            TypeFamily::Binary => "binary",
            TypeFamily::Network => "network",
            TypeFamily::Array => "array",
            TypeFamily::Other => "other",
        }
    }

    /// Inclusive value range of an integer type.
    pub fn integer_range(&self) -> Option<(i64, i64)> {
        match self {
            ValueType::SmallInt => Some((i16::MIN as i64, i16::MAX as i64)),
            ValueType::Integer => Some((i32::MIN as i64, i32::MAX as i64)),
            ValueType::BigInt => Some((i64::MIN, i64::MAX)),
            _ => None,
        }
    }

    /// The most characters a value may have, when the type limits it.
    pub fn max_chars(&self) -> Option<u32> {
        match self {
            ValueType::Text { max_chars } => *max_chars,
            ValueType::Char { len } => *len,
            _ => None,
        }
    }
}

/// One column of a table.
#[derive(Debug, Clone, Serialize)]
pub struct Column {
    pub name: String,
    /// The type as the database spells it, e.g. `character varying(120)`.
    pub type_name: String,
    pub value_type: ValueType,
    pub not_null: bool,
    /// A stored generated column: computed by the destination, never copied.
    pub generated: bool,
    /// An identity column (its sequence is set to the source's value after the load).
    pub identity: bool,
}

/// What sort of relation a table is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TableKind {
    /// An ordinary table that holds rows.
    Table,
    /// A partitioned table: holds no rows itself; its partitions do.
    Partitioned,
    /// A partition of the named table.
    Partition { parent: QualifiedName },
}

/// One table of the source.
#[derive(Debug, Clone, Serialize)]
pub struct Table {
    pub name: QualifiedName,
    pub kind: TableKind,
    pub columns: Vec<Column>,
    pub primary_key: Vec<String>,
    pub owner: String,
    /// Estimated rows (from statistics), if known.
    pub row_estimate: Option<u64>,
    /// Estimated bytes on disk, if known.
    pub byte_estimate: Option<u64>,
}

impl Table {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Whether rows are copied for this relation (partitioned parents hold none).
    pub fn holds_rows(&self) -> bool {
        !matches!(self.kind, TableKind::Partitioned)
    }
}

/// A foreign key: `table(columns)` references `referenced(referenced_columns)`.
#[derive(Debug, Clone, Serialize)]
pub struct ForeignKey {
    pub name: String,
    pub table: QualifiedName,
    pub columns: Vec<String>,
    pub referenced: QualifiedName,
    pub referenced_columns: Vec<String>,
}

/// Which facts about a column's values a generator needs before rows are transformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StatsKind {
    /// Distinct values and their counts.
    Categories,
    /// Quantiles of the values.
    Quantiles,
}

/// Facts about a column's values, gathered from the source before the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct ColumnStats {
    /// Distinct non-NULL values (text form) with their counts, most frequent first.
    pub categories: Vec<(String, u64)>,
    /// The values (text form) at quantiles 0, 1/n, …, 1 of the non-NULL values.
    pub quantiles: Vec<String>,
}

/// Most distinct values a categorical column may have.
pub const MAX_CATEGORIES: usize = 10_000;

/// Quantiles gathered for continuous columns (this many intervals).
pub const QUANTILES: usize = 1000;

/// Everything a connector reports about the source.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Catalog {
    /// Schemas admitted by the workspace's filter, including ones without tables.
    pub schemas: Vec<String>,
    pub tables: Vec<Table>,
    pub foreign_keys: Vec<ForeignKey>,
    /// Declared lengths count bytes, and `char` holds single-byte characters only (Redshift);
    /// otherwise they count characters (PostgreSQL).
    pub byte_lengths: bool,
}

impl Catalog {
    pub fn table(&self, name: &QualifiedName) -> Option<&Table> {
        self.tables.iter().find(|t| &t.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_quoting() {
        let q = QualifiedName::parse("sales.order\"s");
        assert_eq!(q.schema, "sales");
        assert_eq!(q.quoted(), "\"sales\".\"order\"\"s\"");
        assert_eq!(QualifiedName::parse("users").to_string(), "public.users");
        assert_eq!(quote_literal("it's"), "'it''s'");
    }

    #[test]
    fn integer_widths_share_a_tag() {
        assert_eq!(
            ValueType::Integer.consistency_tag(),
            ValueType::BigInt.consistency_tag()
        );
        assert_ne!(
            ValueType::Integer.consistency_tag(),
            ValueType::Text { max_chars: None }.consistency_tag()
        );
    }
}
