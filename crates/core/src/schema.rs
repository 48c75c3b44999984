//! The schema model: what a connector says about the tables it can read.

use serde::Serialize;
use std::fmt;

/// `schema.table`, as a user writes it in `workspace.toml`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct QualifiedName {
    /// The schema's name, unquoted, exactly as the database stores it (case kept).
    pub schema: String,
    /// The table's name within the schema, unquoted, exactly as the database stores it.
    pub name: String,
}

impl QualifiedName {
    /// The name made of its two parts, taken as they are (nothing is split, folded or quoted).
    pub fn new(schema: impl Into<String>, name: impl Into<String>) -> Self {
        QualifiedName {
            schema: schema.into(),
            name: name.into(),
        }
    }

    /// Parse `schema.table`; a bare `table` means `public.table`. Either part may be written in
    /// double quotes, with `""` for a quote, to hold dots: `"a.b".c` is table `c` of schema
    /// `a.b`, `a."b.c"` table `b.c` of schema `a` (how [`fmt::Display`] writes such names).
    /// Unquoted, the first dot splits.
    pub fn parse(text: &str) -> QualifiedName {
        let (schema, rest) = match unquote_prefix(text) {
            Some((schema, rest)) => match rest.strip_prefix('.') {
                Some(table) => (schema, table),
                None if rest.is_empty() => return QualifiedName::new("public", schema),
                None => return QualifiedName::naive(text),
            },
            None => match text.split_once('.') {
                Some((s, t)) => (s.to_string(), t),
                None => return QualifiedName::new("public", text),
            },
        };
        match unquote_prefix(rest) {
            Some((table, "")) => QualifiedName::new(schema, table),
            _ => QualifiedName::new(schema, rest),
        }
    }

    fn naive(text: &str) -> QualifiedName {
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

/// `"name"…` → (name, what follows the closing quote), `""` read as one quote; None when `text`
/// does not start with a quote or the quote is not closed.
fn unquote_prefix(text: &str) -> Option<(String, &str)> {
    let body = text.strip_prefix('"')?;
    let mut name = String::new();
    let mut chars = body.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '"' {
            if matches!(chars.peek(), Some((_, '"'))) {
                chars.next();
                name.push('"');
            } else {
                return Some((name, &body[i + 1..]));
            }
        } else {
            name.push(c);
        }
    }
    None
}

/// A part of a name as [`QualifiedName`]'s display writes it: quoted when it holds a dot or a
/// quote (or is empty), so that the text parses back to the same two parts.
fn display_part(part: &str) -> std::borrow::Cow<'_, str> {
    if part.is_empty() || part.contains(['.', '"']) {
        std::borrow::Cow::Owned(quote_ident(part))
    } else {
        std::borrow::Cow::Borrowed(part)
    }
}

impl fmt::Display for QualifiedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}",
            display_part(&self.schema),
            display_part(&self.name)
        )
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
    /// `boolean` (`bool`).
    Boolean,
    /// `smallint` (`int2`): 16-bit integers.
    SmallInt,
    /// `integer` (`int4`, `serial`): 32-bit integers.
    Integer,
    /// `bigint` (`int8`, `bigserial`): 64-bit integers.
    BigInt,
    /// `numeric(p, s)` / `decimal(p, s)`: exact decimals.
    Numeric {
        /// Total significant digits `p`, when declared.
        precision: Option<u32>,
        /// Digits after the decimal point `s`, when declared.
        scale: Option<u32>,
    },
    /// `real` (`float4`): single-precision floating point.
    Real,
    /// `double precision` (`float8`).
    Double,
    /// `text`, `varchar(n)`: `max_chars` is `n` when declared.
    Text {
        /// The declared `n` of `varchar(n)`; `None` for `text` and an unbounded `varchar`.
        /// Counts bytes rather than characters when [`Catalog::byte_lengths`] is set.
        max_chars: Option<u32>,
    },
    /// `char(n)`, blank-padded.
    Char {
        /// The declared `n` (bytes when [`Catalog::byte_lengths`] is set), if known.
        len: Option<u32>,
    },
    /// `date`.
    Date,
    /// `time` (without time zone).
    Time,
    /// `time with time zone` (`timetz`).
    TimeTz,
    /// `timestamp` (without time zone).
    Timestamp,
    /// `timestamp with time zone` (`timestamptz`).
    TimestampTz,
    /// `interval` (PostgreSQL).
    Interval,
    /// `uuid`.
    Uuid,
    /// `json`, and Redshift's `SUPER`.
    Json,
    /// `jsonb` (PostgreSQL).
    Jsonb,
    /// `bytea`, and Redshift's `VARBYTE` (`binary varying`).
    Bytea,
    /// `inet` and `cidr`: IP addresses and networks.
    Inet,
    /// `macaddr` / `macaddr8`.
    MacAddr,
    /// A user-defined enum type.
    Enum,
    /// A PostgreSQL array (`integer[]`, `text[]` …) of the element type.
    Array(Box<ValueType>),
    /// Anything else (geometric types, ranges, composite types …): passthrough only.
    Other,
}

/// Broad families generators declare they accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TypeFamily {
    /// `smallint`, `integer` and `bigint`.
    Integer,
    /// `numeric` / `decimal`.
    Decimal,
    /// `real` and `double precision`.
    Float,
    /// `text`, `varchar` and `char`.
    Text,
    /// `boolean`.
    Boolean,
    /// `date`, `time`, `timetz`, `timestamp`, `timestamptz` and `interval`.
    Temporal,
    /// `uuid`.
    Uuid,
    /// `json`, `jsonb` (and Redshift's `SUPER`).
    Json,
    /// `bytea` (and Redshift's `VARBYTE`).
    Binary,
    /// `inet`, `cidr`, `macaddr` and `macaddr8`.
    Network,
    /// User-defined enum types.
    Enum,
    /// Arrays of any element type.
    Array,
    /// Every other type ([`ValueType::Other`]): only the generators that take any type fit
    /// (`passthrough`, `null`, `constant`, `conditional`).
    Other,
}

impl TypeFamily {
    /// The family's types in words, for messages: `"integer types (smallint, integer, bigint)"`.
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
    /// The family the type belongs to: what generators declare they accept.
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
    /// The column's name, unquoted, as the database stores it.
    pub name: String,
    /// The type as the database spells it, e.g. `character varying(120)`.
    pub type_name: String,
    /// The kind of value it holds, which decides the generators that fit it.
    pub value_type: ValueType,
    /// Declared `NOT NULL`: generators that would write NULL into it are refused.
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
    Partitioned {
        /// When it is itself a partition (sub-partitioning): the top partitioned table, whose
        /// settings it follows.
        parent: Option<QualifiedName>,
    },
    /// A partition.
    Partition {
        /// The top partitioned table it belongs to (through sub-partitions too): the table
        /// whose settings it follows.
        parent: QualifiedName,
    },
}

impl TableKind {
    /// The table whose settings this one follows, when it is a partition (at any depth).
    pub fn settings_parent(&self) -> Option<&QualifiedName> {
        match self {
            TableKind::Partition { parent } => Some(parent),
            TableKind::Partitioned { parent } => parent.as_ref(),
            TableKind::Table => None,
        }
    }
}

/// One table of the source.
#[derive(Debug, Clone, Serialize)]
pub struct Table {
    /// The table's schema-qualified name.
    pub name: QualifiedName,
    /// Ordinary table, partitioned parent or partition.
    pub kind: TableKind,
    /// The columns, in declaration order.
    pub columns: Vec<Column>,
    /// The primary key's columns, in key order; empty when the table has none.
    pub primary_key: Vec<String>,
    /// The role that owns the table; empty when the source has no owners (`files`).
    pub owner: String,
    /// Estimated rows (from statistics), if known.
    pub row_estimate: Option<u64>,
    /// Estimated bytes on disk, if known.
    pub byte_estimate: Option<u64>,
}

impl Table {
    /// The column with this exact (case-sensitive) name, if the table has one.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Whether rows are copied for this relation (partitioned parents hold none).
    pub fn holds_rows(&self) -> bool {
        !matches!(self.kind, TableKind::Partitioned { .. })
    }
}

/// A foreign key: `table(columns)` references `referenced(referenced_columns)`.
#[derive(Debug, Clone, Serialize)]
pub struct ForeignKey {
    /// The constraint's name.
    pub name: String,
    /// The referencing table.
    pub table: QualifiedName,
    /// The referencing columns of `table`, in key order.
    pub columns: Vec<String>,
    /// The referenced table.
    pub referenced: QualifiedName,
    /// The referenced columns of `referenced`, matching `columns` position by position.
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
    /// The tables of those schemas, partitioned parents and partitions included.
    pub tables: Vec<Table>,
    /// The foreign keys of those tables.
    pub foreign_keys: Vec<ForeignKey>,
    /// Declared lengths count bytes, and `char` holds single-byte characters only (Redshift);
    /// otherwise they count characters (PostgreSQL).
    pub byte_lengths: bool,
    /// What the source holds that the job does not copy (external schemas, datashares …), one
    /// line each: shown by `mirage plan` and kept in the job report.
    pub not_copied: Vec<String>,
}

impl Catalog {
    /// The table with this name, if the source has it (and the filter admitted it).
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
        // Dots and quotes in names: written quoted, parsed back to the same parts.
        let dotted_schema = QualifiedName::new("a.b", "c");
        let dotted_table = QualifiedName::new("a", "b.c");
        assert_eq!(dotted_schema.to_string(), "\"a.b\".c");
        assert_eq!(dotted_table.to_string(), "a.\"b.c\"");
        for name in [
            dotted_schema,
            dotted_table,
            QualifiedName::new("we\"ird", "t\"."),
            QualifiedName::new("s", "line\nbreak"),
            QualifiedName::new("public", ""),
        ] {
            assert_eq!(QualifiedName::parse(&name.to_string()), name, "{name}");
        }
        assert_eq!(
            QualifiedName::parse("\"public\".\"users\""),
            QualifiedName::new("public", "users")
        );
        assert_eq!(
            QualifiedName::parse("\"Users\""),
            QualifiedName::new("public", "Users")
        );
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
