//! SQL through the simple query protocol (text results), the common ground of Redshift, its
//! emulator and PostgreSQL: rows are read by column name, never by position, and statements
//! get their values as quoted literals. Shared by the Redshift connector, the grant checks and
//! `mirage check`.

use crate::postgres::describe;
use crate::{ConnectorError, Result};
use mirage_core::schema::{Table, quote_ident};
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use tokio_postgres::{Client, SimpleQueryMessage};

/// One result row as text, read by column name.
#[derive(Debug, Clone)]
pub struct TextRow {
    columns: Arc<HashMap<String, usize>>,
    values: Vec<Option<String>>,
}

impl TextRow {
    /// The value of `column`; `None` when NULL or when the result has no such column.
    pub fn get(&self, column: &str) -> Option<&str> {
        self.columns
            .get(column)
            .and_then(|&i| self.values.get(i))
            .and_then(|v| v.as_deref())
    }

    /// The value of `column`, `""` when NULL or absent.
    pub fn text(&self, column: &str) -> String {
        self.get(column).unwrap_or_default().to_string()
    }

    /// A boolean column (`t`/`true`); false when NULL or absent.
    pub fn flag(&self, column: &str) -> bool {
        matches!(self.get(column), Some("t" | "true"))
    }

    /// A numeric column parsed as `T`; `None` when NULL, absent or not a `T`.
    pub fn number<T: FromStr>(&self, column: &str) -> Option<T> {
        self.get(column).and_then(|v| v.trim().parse().ok())
    }

    /// The first column's value (for `SELECT f(…)` of one unnamed column).
    pub fn first(&self) -> Option<&str> {
        self.values.first().and_then(|v| v.as_deref())
    }

    /// The `i`th column's value, for `SELECT f(a), f(b), …` batches whose columns are all alike.
    pub fn nth(&self, i: usize) -> Option<&str> {
        self.values.get(i).and_then(|v| v.as_deref())
    }
}

/// Rows of a statement, as text, through the simple protocol; `what` names the work in errors.
pub async fn rows(client: &Client, sql: &str, what: &str) -> Result<Vec<TextRow>> {
    let messages = client
        .simple_query(sql)
        .await
        .map_err(|e| ConnectorError::Database {
            what: what.to_string(),
            detail: describe(&e),
        })?;
    let mut columns: Option<Arc<HashMap<String, usize>>> = None;
    let mut out = Vec::new();
    for m in messages {
        if let SimpleQueryMessage::Row(r) = m {
            let names = columns
                .get_or_insert_with(|| {
                    Arc::new(
                        r.columns()
                            .iter()
                            .enumerate()
                            .map(|(i, c)| (c.name().to_string(), i))
                            .collect(),
                    )
                })
                .clone();
            out.push(TextRow {
                columns: names,
                values: (0..r.len()).map(|i| r.get(i).map(str::to_string)).collect(),
            });
        }
    }
    Ok(out)
}

/// Sampled rows: each row's values in the order of the columns asked for (NULL as `None`).
pub type Sample = Vec<Vec<Option<String>>>;

/// The most characters of one value a sample reads: a table of 60 MB documents is judged on
/// their beginnings, in bounded memory.
pub const SAMPLE_VALUE_CHARS: usize = 8192;

/// A bounded sample of `columns` of `table` as text: `SELECT … LIMIT limit`, spread over the
/// table with `TABLESAMPLE SYSTEM` when `sample_percent` is given (PostgreSQL). When that
/// sample comes back short (few pages chosen), the first `limit` rows are read instead.
pub async fn sample(
    client: &Client,
    table: &Table,
    columns: &[String],
    limit: usize,
    sample_percent: Option<f64>,
    capped: impl Fn(&str) -> String,
) -> Result<Sample> {
    if columns.is_empty() || limit == 0 {
        return Ok(Vec::new());
    }
    let list = columns
        .iter()
        .map(|c| capped(&quote_ident(c)))
        .collect::<Vec<_>>()
        .join(", ");
    let what = format!("sampling {}", table.name);
    let t = table.name.quoted();
    let what = &what;
    let read = |sql: String| async move {
        Ok::<_, ConnectorError>(
            rows(client, &sql, what)
                .await?
                .into_iter()
                .map(|r| r.values)
                .collect::<Sample>(),
        )
    };
    if let Some(p) = sample_percent {
        let sampled = read(format!(
            "SELECT {list} FROM {t} TABLESAMPLE SYSTEM ({p:.4}) LIMIT {limit}"
        ))
        .await?;
        if sampled.len() * 2 >= limit {
            return Ok(sampled);
        }
    }
    read(format!("SELECT {list} FROM {t} LIMIT {limit}")).await
}

/// The first column of the first row, `""` when there is none.
pub async fn one(client: &Client, sql: &str, what: &str) -> Result<String> {
    Ok(rows(client, sql, what)
        .await?
        .first()
        .and_then(|r| r.first().map(str::to_string))
        .unwrap_or_default())
}

/// Run statements (no results).
pub async fn exec(client: &Client, sql: &str, what: &str) -> Result<()> {
    client
        .batch_execute(sql)
        .await
        .map_err(|e| ConnectorError::Database {
            what: what.to_string(),
            detail: describe(&e),
        })
}

/// The connected user: name and whether a superuser.
pub async fn whoami(client: &Client) -> Result<(String, bool)> {
    let r = rows(
        client,
        "SELECT usename, usesuper FROM pg_user WHERE usename = current_user",
        "reading the connected user",
    )
    .await?;
    Ok(r.first()
        .map(|r| (r.text("usename"), r.flag("usesuper")))
        .unwrap_or_default())
}

/// An identifier as a person would type it in a GRANT: bare when it is a plain lower-case
/// name that is not a keyword, quoted otherwise.
pub fn ident(name: &str) -> String {
    const KEYWORDS: &[&str] = &[
        "all",
        "user",
        "public",
        "group",
        "select",
        "table",
        "from",
        "to",
        "grant",
        "order",
        "default",
        "role",
        "current_user",
        "session_user",
        "limit",
        "where",
        "column",
        "check",
    ];
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$');
    if plain && !KEYWORDS.contains(&name) {
        name.to_string()
    } else {
        mirage_core::schema::quote_ident(name)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn identifiers_are_quoted_only_when_needed() {
        assert_eq!(super::ident("src_user"), "src_user");
        assert_eq!(super::ident("user"), "\"user\"");
        assert_eq!(super::ident("Bob"), "\"Bob\"");
        assert_eq!(super::ident("a\"b"), "\"a\"\"b\"");
    }
}
