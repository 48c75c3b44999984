//! PostgreSQL introspection from `pg_catalog`.

use super::db_error;
use crate::ConnectorError;
use crate::Result;
use mirage_core::schema::{
    Catalog, Column, ForeignKey, QualifiedName, Table, TableKind, ValueType,
};
use mirage_core::workspace::SchemaFilter;
use std::collections::HashMap;
use tokio_postgres::{Client, Row};

const SCHEMAS: &str = "
SELECT n.nspname::text AS nspname
FROM pg_namespace n
WHERE n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
  AND n.nspname <> '_mirage_preserve'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_namespace'::regclass
                  AND d.objid = n.oid AND d.deptype = 'e')
ORDER BY 1";

const TABLES: &str = "
SELECT c.oid::int8 AS oid, n.nspname::text AS schema_name, c.relname::text AS table_name,
       c.relkind::text AS kind, pg_get_userbyid(c.relowner)::text AS owner,
       c.reltuples::float8 AS reltuples, pg_total_relation_size(c.oid)::int8 AS bytes,
       pn.nspname::text AS parent_schema, pc.relname::text AS parent_name
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_inherits i ON c.relispartition AND i.inhrelid = c.oid
LEFT JOIN pg_class pc ON pc.oid = i.inhparent
LEFT JOIN pg_namespace pn ON pn.oid = pc.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY($1)
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY n.nspname, c.relname";

const COLUMNS: &str = "
SELECT a.attrelid::int8 AS oid, a.attname::text AS name,
       format_type(a.atttypid, a.atttypmod) AS type_name, a.attnotnull AS not_null,
       a.attgenerated <> '' AS generated, a.attidentity <> '' AS identity,
       bt.typname::text AS base, bt.typtype::text AS base_kind,
       format_type(bt.oid, CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END) AS formatted,
       et.typname::text AS element, et.typtype::text AS element_kind
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid
JOIN pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
LEFT JOIN pg_type et ON et.oid = bt.typelem AND bt.typcategory = 'A'
WHERE a.attrelid::int8 = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum";

const KEYS: &str = "
SELECT con.contype::text AS kind, con.conname::text AS name, con.conrelid::int8 AS oid,
       con.confrelid::int8 AS referenced_oid,
       CASE WHEN con.confrelid <> 0 THEN con.confrelid::regclass::text END AS referenced_name,
       ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(n, o)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.o)
         AS columns,
       ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(n, o)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.o)
         AS referenced_columns
FROM pg_constraint con
WHERE con.contype IN ('p', 'f') AND con.conrelid::int8 = ANY($1) AND con.conparentid = 0
ORDER BY con.conname";

/// `character varying(120)` → 120; `numeric(10,2)` → (10, 2).
fn modifiers(formatted: &str) -> Vec<u32> {
    formatted
        .split_once('(')
        .and_then(|(_, r)| r.split_once(')'))
        .map(|(inner, _)| {
            inner
                .split(',')
                .filter_map(|p| p.trim().parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Map a base type name (and its type kind) to a [`ValueType`].
pub fn value_type(typname: &str, typtype: &str, formatted: &str) -> ValueType {
    if typtype == "e" {
        return ValueType::Enum;
    }
    let m = modifiers(formatted);
    match typname {
        "bool" => ValueType::Boolean,
        "int2" => ValueType::SmallInt,
        "int4" => ValueType::Integer,
        "int8" => ValueType::BigInt,
        "numeric" => ValueType::Numeric {
            precision: m.first().copied(),
            scale: m.get(1).copied(),
        },
        "float4" => ValueType::Real,
        "float8" => ValueType::Double,
        "text" | "citext" | "name" => ValueType::Text { max_chars: None },
        "varchar" => ValueType::Text {
            max_chars: m.first().copied(),
        },
        "bpchar" => ValueType::Char {
            len: m.first().copied(),
        },
        "date" => ValueType::Date,
        "time" => ValueType::Time,
        "timetz" => ValueType::TimeTz,
        "timestamp" => ValueType::Timestamp,
        "timestamptz" => ValueType::TimestampTz,
        "interval" => ValueType::Interval,
        "uuid" => ValueType::Uuid,
        "json" => ValueType::Json,
        "jsonb" => ValueType::Jsonb,
        "bytea" => ValueType::Bytea,
        "inet" | "cidr" => ValueType::Inet,
        "macaddr" | "macaddr8" => ValueType::MacAddr,
        _ => ValueType::Other,
    }
}

/// A row of [`TABLES`].
struct TableRow {
    oid: i64,
    schema: String,
    name: String,
    kind: String,
    owner: String,
    reltuples: f64,
    bytes: i64,
    parent: Option<QualifiedName>,
}

impl TableRow {
    fn from(r: &Row) -> TableRow {
        let parent_schema: Option<String> = r.get("parent_schema");
        let parent_name: Option<String> = r.get("parent_name");
        TableRow {
            oid: r.get("oid"),
            schema: r.get("schema_name"),
            name: r.get("table_name"),
            kind: r.get("kind"),
            owner: r.get("owner"),
            reltuples: r.get("reltuples"),
            bytes: r.get("bytes"),
            parent: parent_schema
                .zip(parent_name)
                .map(|(s, n)| QualifiedName::new(s, n)),
        }
    }
}

/// A row of [`COLUMNS`].
struct ColumnRow {
    oid: i64,
    name: String,
    type_name: String,
    not_null: bool,
    generated: bool,
    identity: bool,
    base: String,
    base_kind: String,
    formatted: String,
    element: Option<(String, String)>,
}

impl ColumnRow {
    fn from(r: &Row) -> ColumnRow {
        let element: Option<String> = r.get("element");
        let element_kind: Option<String> = r.get("element_kind");
        ColumnRow {
            oid: r.get("oid"),
            name: r.get("name"),
            type_name: r.get("type_name"),
            not_null: r.get("not_null"),
            generated: r.get("generated"),
            identity: r.get("identity"),
            base: r.get("base"),
            base_kind: r.get("base_kind"),
            formatted: r.get("formatted"),
            element: element.zip(element_kind),
        }
    }
}

/// A row of [`KEYS`].
struct KeyRow {
    primary: bool,
    name: String,
    oid: i64,
    referenced_oid: i64,
    referenced_name: Option<String>,
    columns: Vec<String>,
    referenced_columns: Vec<String>,
}

impl KeyRow {
    fn from(r: &Row) -> KeyRow {
        KeyRow {
            primary: r.get::<_, String>("kind") == "p",
            name: r.get("name"),
            oid: r.get("oid"),
            referenced_oid: r.get("referenced_oid"),
            referenced_name: r.get("referenced_name"),
            columns: r.get("columns"),
            referenced_columns: r.get("referenced_columns"),
        }
    }
}

/// Read schemas, tables, columns, keys and sizes.
pub async fn read(client: &Client, filter: &SchemaFilter) -> Result<Catalog> {
    let schemas: Vec<String> = client
        .query(SCHEMAS, &[])
        .await
        .map_err(db_error("listing schemas"))?
        .iter()
        .map(|r| r.get::<_, String>("nspname"))
        .filter(|s| filter.admits(s))
        .collect();
    // A partition in a schema left out would silently lose its rows (its partitioned table
    // is copied without it): refused, naming it.
    let outside: Vec<String> = client
        .query(
            "SELECT format('%I.%I', n.nspname, c.relname) || ' (a partition of ' || \
             format('%I.%I', pn.nspname, p.relname) || ')' FROM pg_inherits i \
             JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
             JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace pn ON pn.oid = p.relnamespace \
             WHERE p.relkind = 'p' AND pn.nspname = ANY($1) AND NOT n.nspname = ANY($1) ORDER BY 1",
            &[&schemas],
        )
        .await
        .map_err(db_error("listing partitions"))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if !outside.is_empty() {
        return Err(ConnectorError::Invalid(format!(
            "schemas: {} in a schema [schemas] leaves out: its rows would not be copied; include \
             its schema too (or detach the partition)",
            outside.join(", ")
        )));
    }
    let rows = client
        .query(TABLES, &[&schemas])
        .await
        .map_err(db_error("listing tables"))?;
    let mut tables = Vec::with_capacity(rows.len());
    let mut by_oid: HashMap<i64, usize> = HashMap::new();
    let rows: Vec<TableRow> = rows.iter().map(TableRow::from).collect();
    // A partition follows its top partitioned table, through any levels of sub-partitions.
    let parents: HashMap<QualifiedName, QualifiedName> = rows
        .iter()
        .filter_map(|r| {
            r.parent
                .clone()
                .map(|p| (QualifiedName::new(r.schema.clone(), r.name.clone()), p))
        })
        .collect();
    let root = |mut p: QualifiedName| {
        for _ in 0..64 {
            match parents.get(&p) {
                Some(up) => p = up.clone(),
                None => break,
            }
        }
        p
    };
    for r in rows {
        let kind = match (r.kind.as_str(), r.parent.clone()) {
            ("p", parent) => TableKind::Partitioned {
                parent: parent.map(&root),
            },
            (_, Some(parent)) => TableKind::Partition {
                parent: root(parent),
            },
            _ => TableKind::Table,
        };
        by_oid.insert(r.oid, tables.len());
        tables.push(Table {
            name: QualifiedName::new(r.schema, r.name),
            kind,
            columns: Vec::new(),
            primary_key: Vec::new(),
            owner: r.owner,
            row_estimate: (r.reltuples >= 0.0).then_some(r.reltuples as u64),
            byte_estimate: Some(r.bytes.max(0) as u64),
        });
    }
    let oids: Vec<i64> = by_oid.keys().copied().collect();
    for r in client
        .query(COLUMNS, &[&oids])
        .await
        .map_err(db_error("listing columns"))?
        .iter()
        .map(ColumnRow::from)
    {
        let Some(&idx) = by_oid.get(&r.oid) else {
            continue;
        };
        let value_type = match &r.element {
            Some((e, k)) => ValueType::Array(Box::new(value_type(e, k, ""))),
            None => value_type(&r.base, &r.base_kind, &r.formatted),
        };
        tables[idx].columns.push(Column {
            name: r.name,
            type_name: r.type_name,
            value_type,
            not_null: r.not_null,
            generated: r.generated,
            identity: r.identity,
        });
    }
    let mut foreign_keys = Vec::new();
    let mut outside_keys = Vec::new();
    for r in client
        .query(KEYS, &[&oids])
        .await
        .map_err(db_error("listing keys"))?
        .iter()
        .map(KeyRow::from)
    {
        let Some(&idx) = by_oid.get(&r.oid) else {
            continue;
        };
        if r.primary {
            tables[idx].primary_key = r.columns;
        } else if !by_oid.contains_key(&r.referenced_oid) {
            // Into a schema the workspace leaves out: the key could not be rebuilt.
            outside_keys.push(format!(
                "{} of {} references {}",
                r.name,
                tables[idx].name,
                r.referenced_name.as_deref().unwrap_or("?")
            ));
        } else if let Some(&ref_idx) = by_oid.get(&r.referenced_oid) {
            foreign_keys.push(ForeignKey {
                name: r.name,
                table: tables[idx].name.clone(),
                columns: r.columns,
                referenced: tables[ref_idx].name.clone(),
                referenced_columns: r.referenced_columns,
            });
        }
    }
    if !outside_keys.is_empty() {
        return Err(crate::ConnectorError::Invalid(format!(
            "schemas: foreign key {} — in a schema [schemas] leaves out, so the key could not be \
             rebuilt; include that schema too (or leave out the referencing table's)",
            mirage_core::display::printable(&outside_keys.join("; "))
        )));
    }
    Ok(Catalog {
        byte_lengths: false,
        not_copied: Vec::new(),
        schemas,
        tables,
        foreign_keys,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_types() {
        assert_eq!(
            value_type("varchar", "b", "character varying(120)"),
            ValueType::Text {
                max_chars: Some(120)
            }
        );
        assert_eq!(
            value_type("numeric", "b", "numeric(10,2)"),
            ValueType::Numeric {
                precision: Some(10),
                scale: Some(2)
            }
        );
        assert_eq!(value_type("mood", "e", "mood"), ValueType::Enum);
        assert_eq!(value_type("point", "b", "point"), ValueType::Other);
    }
}
