//! Scanning and reviewing: [`scan`] samples source columns and classifies them
//! ([`mirage_scan`]); [`diff`] compares the live source with the workspace, so that no column
//! is copied unless someone decided about it (a column listed with a generator, `passthrough`
//! included, or a table whose mode copies no source rows).

use crate::job::RunError;
use mirage_connectors::registry::AnySource;
use mirage_core::schema::{Catalog, Table};
use mirage_core::workspace::{TableMode, Unreviewed, Workspace};
use mirage_scan::{Finding, KeyRole};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Rows sampled per table by default.
pub const DEFAULT_SAMPLE: usize = 1000;

/// One column's scan result.
#[derive(Debug, Clone, Serialize)]
pub struct ColumnScan {
    /// `schema.table`.
    pub table: String,
    /// The column.
    pub column: String,
    /// Its type as the source names it.
    #[serde(rename = "type")]
    pub type_name: String,
    /// The verdict.
    #[serde(flatten)]
    pub finding: Finding,
    /// Whether the column is part of the primary key or a foreign key.
    pub key: bool,
    /// The generator that fits, with its options.
    pub suggested: serde_json::Value,
}

impl ColumnScan {
    /// The suggested generator and its other options.
    pub fn suggestion(&self) -> (String, toml::Table) {
        let mut options: toml::Table =
            serde_json::from_value(self.suggested.clone()).unwrap_or_default();
        let generator = match options.remove("generator") {
            Some(toml::Value::String(g)) => g,
            _ => "passthrough".to_string(),
        };
        (generator, options)
    }
}

/// Whether a column is part of the table's primary key or of a foreign key (either end).
fn is_key(catalog: &Catalog, table: &Table, column: &str) -> bool {
    table.primary_key.iter().any(|c| c == column)
        || catalog.foreign_keys.iter().any(|fk| {
            (fk.table == table.name && fk.columns.iter().any(|c| c == column))
                || (fk.referenced == table.name
                    && fk.referenced_columns.iter().any(|c| c == column))
        })
}

/// The tables a scan or review concerns: those configured on their own (partitions follow
/// their partitioned table, whose sample covers them).
pub fn configured_tables(catalog: &Catalog) -> impl Iterator<Item = &Table> {
    catalog
        .tables
        .iter()
        .filter(|t| t.kind.settings_parent().is_none())
}

/// Sample `columns` of `table` (at most `limit` rows) and classify each one.
pub async fn scan_table(
    source: &dyn AnySource,
    catalog: &Catalog,
    table: &Table,
    columns: &[String],
    limit: usize,
) -> Result<Vec<ColumnScan>, RunError> {
    if columns.is_empty() {
        return Ok(Vec::new());
    }
    let rows = source.sample(table, columns, limit).await?;
    let mut out = Vec::new();
    for (i, name) in columns.iter().enumerate() {
        let Some(col) = table.column(name) else {
            continue;
        };
        // At most SAMPLE_VALUE_CHARS of each value (files are read whole).
        let values: Vec<&str> = rows
            .iter()
            .filter_map(|r| r.get(i).and_then(|v| v.as_deref()))
            .map(|v| {
                match v
                    .char_indices()
                    .nth(mirage_connectors::sql::SAMPLE_VALUE_CHARS)
                {
                    Some((end, _)) => &v[..end],
                    None => v,
                }
            })
            .collect();
        let mut finding = mirage_scan::classify(name, &col.value_type, &values);
        // Two decimals are all a reader needs.
        finding.confidence = (finding.confidence * 100.0).round() / 100.0;
        finding.matched = finding.matched.map(|m| (m * 100.0).round() / 100.0);
        let key = is_key(catalog, table, name);
        let role = if key { KeyRole::Key } else { KeyRole::None };
        let (g, options) = mirage_scan::suggest(&finding, &col.value_type, role);
        let mut suggested = serde_json::Map::new();
        suggested.insert("generator".into(), g.into());
        if let Ok(serde_json::Value::Object(o)) = serde_json::to_value(&options) {
            suggested.extend(o);
        }
        out.push(ColumnScan {
            table: table.name.to_string(),
            column: name.clone(),
            type_name: col.type_name.clone(),
            finding,
            key,
            suggested: serde_json::Value::Object(suggested),
        });
    }
    Ok(out)
}

/// Sample and classify every copied column of every table of the catalog.
pub async fn scan(
    source: &dyn AnySource,
    catalog: &Catalog,
    limit: usize,
) -> Result<Vec<ColumnScan>, RunError> {
    let mut out = Vec::new();
    for t in configured_tables(catalog) {
        let columns: Vec<String> = t
            .columns
            .iter()
            .filter(|c| !c.generated)
            .map(|c| c.name.clone())
            .collect();
        out.extend(scan_table(source, catalog, t, &columns, limit).await?);
    }
    Ok(out)
}

/// How the live source differs from what the workspace reviewed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// A table the workspace does not list.
    NewTable,
    /// A column the workspace does not list (in a new table too).
    NewColumn,
    /// A column whose type differs from the `type` recorded when it was reviewed.
    TypeChanged,
    /// A table the workspace lists that the source no longer has.
    DroppedTable,
    /// A column the workspace lists that the source table no longer has.
    DroppedColumn,
}

/// One difference.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// What changed.
    pub change: ChangeKind,
    /// `schema.table`.
    pub table: String,
    /// The column, for column changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// The source's type of the column now.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_name: Option<String>,
    /// The type recorded when it was reviewed (type changes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub was: Option<String>,
    /// Whether the column may hold NULL.
    #[serde(skip)]
    pub not_null: bool,
    /// The scan's verdict on the column (new columns and type changes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Finding>,
    /// Why the column could not be sampled, when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scan_error: Option<String>,
    /// Line of the workspace entry concerned (0 when none).
    #[serde(skip)]
    pub line: usize,
}

impl Change {
    /// Whether the change leaves a column that would be copied without a decision.
    pub fn unreviewed(&self) -> bool {
        matches!(self.change, ChangeKind::NewColumn | ChangeKind::TypeChanged)
    }

    /// `the scan finds email (…)` or `the scan finds nothing sensitive …`.
    pub fn verdict_text(&self) -> String {
        match (&self.verdict, &self.scan_error) {
            (Some(f), _) => format!("scan: {}", f.describe()),
            (None, Some(e)) => format!("not scanned: {e}"),
            (None, None) => "not scanned".into(),
        }
    }
}

/// The live source compared with the workspace, and what the run does about it.
#[derive(Debug, Clone, Serialize)]
pub struct Review {
    /// `[run] unreviewed`.
    pub policy: Unreviewed,
    /// Every difference found.
    pub changes: Vec<Change>,
}

impl Review {
    /// A review that found no difference (for plans built from a catalog made to match).
    pub fn unchanged(ws: &Workspace) -> Review {
        Review {
            policy: ws.run.unreviewed,
            changes: Vec::new(),
        }
    }

    /// The columns copied without a decision, by (table, column).
    pub fn unreviewed(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(|c| c.unreviewed())
    }

    /// Whether the source matches what the workspace reviewed.
    pub fn is_clean(&self) -> bool {
        self.changes.is_empty()
    }

    /// (table, column) of every unreviewed column.
    pub fn unreviewed_keys(&self) -> BTreeSet<(String, String)> {
        self.unreviewed()
            .filter_map(|c| c.column.clone().map(|col| (c.table.clone(), col)))
            .collect()
    }
}

/// Compare the catalog with the workspace (no sampling: verdicts are added by [`review`]).
pub fn diff(ws: &Workspace, catalog: &Catalog) -> Vec<Change> {
    let mut changes = Vec::new();
    let change = |kind, table: &str| Change {
        change: kind,
        table: table.to_string(),
        column: None,
        type_name: None,
        was: None,
        not_null: false,
        verdict: None,
        scan_error: None,
        line: 0,
    };
    for t in configured_tables(catalog) {
        let name = t.name.to_string();
        let tc = ws.table_config(&name);
        if let Some(tc) = tc
            && tc.mode != TableMode::DeIdentify
        {
            continue; // no source row is copied: nothing to decide per column
        }
        if tc.is_none() {
            changes.push(change(ChangeKind::NewTable, &name));
        }
        for c in t.columns.iter().filter(|c| !c.generated) {
            let entry = tc.and_then(|tc| tc.columns.iter().find(|cc| cc.name == c.name));
            let mut ch = change(ChangeKind::NewColumn, &name);
            ch.column = Some(c.name.clone());
            ch.type_name = Some(c.type_name.clone());
            ch.not_null = c.not_null;
            match entry {
                None => {
                    ch.line = tc.map_or(0, |tc| tc.line);
                    changes.push(ch);
                }
                Some(cc) => {
                    if let Some(was) = &cc.reviewed_type
                        && !same_type(was, &c.type_name)
                    {
                        ch.change = ChangeKind::TypeChanged;
                        ch.was = Some(was.clone());
                        ch.line = cc.line;
                        changes.push(ch);
                    }
                }
            }
        }
    }
    // Entries for what the source no longer has (the plan reports them as mistakes too).
    for tc in &ws.tables {
        let parsed = mirage_core::QualifiedName::parse(&tc.name);
        if !ws.schemas.admits(&parsed.schema) {
            continue;
        }
        match catalog.table(&parsed) {
            None => {
                let mut ch = change(ChangeKind::DroppedTable, &parsed.to_string());
                ch.line = tc.line;
                changes.push(ch);
            }
            Some(t) => {
                for cc in &tc.columns {
                    if t.column(&cc.name).is_none() {
                        let mut ch = change(ChangeKind::DroppedColumn, &t.name.to_string());
                        ch.column = Some(cc.name.clone());
                        ch.line = cc.line;
                        changes.push(ch);
                    }
                }
            }
        }
    }
    changes
}

/// Type names compare without case and spaces (`character varying(20)` is how PostgreSQL
/// writes `varchar(20)`; both spellings are taken).
pub fn same_type(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        s.to_lowercase()
            .replace("character varying", "varchar")
            .replace("timestamp without time zone", "timestamp")
            .replace("timestamp with time zone", "timestamptz")
            .replace("double precision", "float8")
            .replace(char::is_whitespace, "")
    };
    norm(a) == norm(b)
}

/// Compare the source with the workspace and give each unreviewed column the scan's verdict
/// (its values sampled, at most `limit` rows of each table concerned).
pub async fn review(
    ws: &Workspace,
    source: &dyn AnySource,
    catalog: &Catalog,
    limit: usize,
) -> Result<Review, RunError> {
    let mut changes = diff(ws, catalog);
    let mut by_table: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in changes.iter().filter(|c| c.unreviewed()) {
        if let Some(col) = &c.column {
            by_table
                .entry(c.table.clone())
                .or_default()
                .push(col.clone());
        }
    }
    for (table, columns) in by_table {
        let Some(t) = configured_tables(catalog).find(|t| t.name.to_string() == table) else {
            continue;
        };
        // The verdict informs; a table that cannot be sampled (a file the run will reject
        // with its own message) still has its columns named.
        let found = match scan_table(source, catalog, t, &columns, limit).await {
            Ok(found) => found,
            Err(e) => {
                for c in changes
                    .iter_mut()
                    .filter(|c| c.unreviewed() && c.table == table)
                {
                    c.scan_error = Some(e.to_string());
                }
                continue;
            }
        };
        let mut verdicts: BTreeMap<String, Finding> =
            found.into_iter().map(|f| (f.column, f.finding)).collect();
        for c in changes
            .iter_mut()
            .filter(|c| c.unreviewed() && c.table == table)
        {
            if let Some(v) = c.column.as_ref().and_then(|col| verdicts.remove(col)) {
                c.verdict = Some(v);
            }
        }
    }
    Ok(Review {
        policy: ws.run.unreviewed,
        changes,
    })
}
