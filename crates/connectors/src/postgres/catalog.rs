//! PostgreSQL introspection from `pg_catalog`.

use super::db_error;
use crate::Result;
use mirage_core::schema::{
    Catalog, Column, ForeignKey, QualifiedName, Table, TableKind, ValueType,
};
use mirage_core::workspace::SchemaFilter;
use std::collections::HashMap;
use tokio_postgres::Client;

const SCHEMAS: &str = "
SELECT n.nspname
FROM pg_namespace n
WHERE n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
  AND n.nspname <> '_mirage_preserve'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_namespace'::regclass
                  AND d.objid = n.oid AND d.deptype = 'e')
ORDER BY 1";

const TABLES: &str = "
SELECT c.oid::int8, n.nspname, c.relname, c.relkind::text, pg_get_userbyid(c.relowner),
       c.reltuples::float8, pg_total_relation_size(c.oid)::int8, pn.nspname, pc.relname
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
SELECT a.attrelid::int8, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       a.attgenerated <> '', a.attidentity <> '',
       bt.typname::text, bt.typtype::text,
       format_type(bt.oid, CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END),
       et.typname::text, et.typtype::text
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid
JOIN pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
LEFT JOIN pg_type et ON et.oid = bt.typelem AND bt.typcategory = 'A'
WHERE a.attrelid::int8 = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum";

const KEYS: &str = "
SELECT con.contype::text, con.conname, con.conrelid::int8, con.confrelid::int8,
       ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(n, o)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.o),
       ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(n, o)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.o)
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

/// Read schemas, tables, columns, keys and sizes.
pub async fn read(client: &Client, filter: &SchemaFilter) -> Result<Catalog> {
    let schemas: Vec<String> = client
        .query(SCHEMAS, &[])
        .await
        .map_err(db_error("listing schemas"))?
        .iter()
        .map(|r| r.get::<_, String>(0))
        .filter(|s| filter.admits(s))
        .collect();
    let rows = client
        .query(TABLES, &[&schemas])
        .await
        .map_err(db_error("listing tables"))?;
    let mut tables = Vec::with_capacity(rows.len());
    let mut by_oid: HashMap<i64, usize> = HashMap::new();
    for r in &rows {
        let oid: i64 = r.get(0);
        let kind: String = r.get(3);
        let parent_schema: Option<String> = r.get(7);
        let parent_name: Option<String> = r.get(8);
        let kind = match (kind.as_str(), parent_schema, parent_name) {
            ("p", _, _) => TableKind::Partitioned,
            (_, Some(s), Some(n)) => TableKind::Partition {
                parent: QualifiedName::new(s, n),
            },
            _ => TableKind::Table,
        };
        let reltuples: f64 = r.get(5);
        by_oid.insert(oid, tables.len());
        tables.push(Table {
            name: QualifiedName::new(r.get::<_, String>(1), r.get::<_, String>(2)),
            kind,
            columns: Vec::new(),
            primary_key: Vec::new(),
            owner: r.get(4),
            row_estimate: (reltuples >= 0.0).then_some(reltuples as u64),
            byte_estimate: Some(r.get::<_, i64>(6).max(0) as u64),
        });
    }
    let oids: Vec<i64> = by_oid.keys().copied().collect();
    for r in client
        .query(COLUMNS, &[&oids])
        .await
        .map_err(db_error("listing columns"))?
    {
        let Some(&idx) = by_oid.get(&r.get::<_, i64>(0)) else {
            continue;
        };
        let base: String = r.get(6);
        let base_kind: String = r.get(7);
        let formatted: String = r.get(8);
        let elem: Option<String> = r.get(9);
        let elem_kind: Option<String> = r.get(10);
        let value_type = match (elem, elem_kind) {
            (Some(e), Some(k)) => ValueType::Array(Box::new(value_type(&e, &k, ""))),
            _ => value_type(&base, &base_kind, &formatted),
        };
        tables[idx].columns.push(Column {
            name: r.get(1),
            type_name: r.get(2),
            value_type,
            not_null: r.get(3),
            generated: r.get(4),
            identity: r.get(5),
        });
    }
    let mut foreign_keys = Vec::new();
    for r in client
        .query(KEYS, &[&oids])
        .await
        .map_err(db_error("listing keys"))?
    {
        let kind: String = r.get(0);
        let Some(&idx) = by_oid.get(&r.get::<_, i64>(2)) else {
            continue;
        };
        let cols: Vec<String> = r.get(4);
        if kind == "p" {
            tables[idx].primary_key = cols;
        } else if let Some(&ref_idx) = by_oid.get(&r.get::<_, i64>(3)) {
            foreign_keys.push(ForeignKey {
                name: r.get(1),
                table: tables[idx].name.clone(),
                columns: cols,
                referenced: tables[ref_idx].name.clone(),
                referenced_columns: r.get(5),
            });
        }
    }
    Ok(Catalog {
        byte_lengths: false,
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
