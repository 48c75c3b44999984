//! What a reading user may do, asked of the database in batches: used by the Redshift source
//! before it reads anything and by `mirage check`, which word the answers their own way.

use crate::Result;
use crate::sql::rows;
use mirage_core::QualifiedName;
use mirage_core::schema::quote_literal;
use tokio_postgres::Client;

/// Privileges a reader lacks.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MissingReads {
    /// Schemas without USAGE.
    pub usage: Vec<String>,
    /// Tables without SELECT, among those in schemas with USAGE (a table name cannot even be
    /// resolved in a schema the user may not use).
    pub select: Vec<QualifiedName>,
}

/// One `SELECT f(a), f(b), …` per 100 items: which items the check holds for.
async fn each(c: &Client, items: &[String], check: impl Fn(&str) -> String) -> Result<Vec<bool>> {
    let mut out = Vec::with_capacity(items.len());
    for chunk in items.chunks(100) {
        let sql = format!(
            "SELECT {}",
            chunk
                .iter()
                .map(|i| check(i))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let r = rows(c, &sql, "checking privileges").await?;
        out.extend((0..chunk.len()).map(|i| {
            r.first()
                .is_some_and(|r| matches!(r.nth(i), Some("t" | "true")))
        }));
    }
    Ok(out)
}

/// USAGE on each schema and SELECT on each table, for the connected user.
pub async fn missing_reads(
    c: &Client,
    schemas: &[String],
    tables: &[QualifiedName],
) -> Result<MissingReads> {
    let usage = each(c, schemas, |s| {
        format!("has_schema_privilege({}, 'USAGE')", quote_literal(s))
    })
    .await?;
    let no_usage: Vec<String> = schemas
        .iter()
        .zip(usage)
        .filter(|(_, ok)| !ok)
        .map(|(s, _)| s.clone())
        .collect();
    let usable: Vec<&QualifiedName> = tables
        .iter()
        .filter(|t| !no_usage.contains(&t.schema))
        .collect();
    let names: Vec<String> = usable.iter().map(|t| t.quoted()).collect();
    let select = each(c, &names, |t| {
        format!("has_table_privilege({}, 'SELECT')", quote_literal(t))
    })
    .await?;
    Ok(MissingReads {
        usage: no_usage,
        select: usable
            .into_iter()
            .zip(select)
            .filter(|(_, ok)| !ok)
            .map(|(t, _)| t.clone())
            .collect(),
    })
}

/// The first of `tables` that holds a row. Empty tables are absent from Redshift's
/// `svv_table_info`, so when it shows nothing, a table with rows proves its rows hidden.
pub async fn first_with_rows(
    c: &Client,
    tables: &[QualifiedName],
) -> Result<Option<QualifiedName>> {
    for t in tables {
        let sample = rows(
            c,
            &format!("SELECT 1 FROM {} LIMIT 1", t.quoted()),
            &format!("reading {t}"),
        )
        .await?;
        if !sample.is_empty() {
            return Ok(Some(t.clone()));
        }
    }
    Ok(None)
}
