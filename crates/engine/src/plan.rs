//! The plan: the workspace matched against the live schema. Every table and column named in the
//! workspace is checked, every generator is built, foreign keys get their referenced key's
//! generator, and only then may a single row move.

use crate::review::{ChangeKind, Review};
use mirage_connectors::SchemaOptions;
use mirage_core::display::printable;
use mirage_core::schema::{Catalog, QualifiedName, Table, TableKind};
use mirage_core::suggest::did_you_mean;
use mirage_core::workspace::{
    TableMode, Unreviewed, Workspace, WorkspaceError, column_key, table_key,
};
use mirage_generators::{ColumnContext, Generator, Prf};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;

/// One column's treatment.
#[derive(Clone)]
pub struct ColumnPlan {
    /// The column.
    pub name: String,
    /// `passthrough` when nothing is configured.
    pub generator_name: String,
    /// The generator's options as the workspace wrote them.
    pub options: toml::Table,
    /// The generator built (`None` only in a plan that failed).
    pub generator: Option<Arc<dyn Generator>>,
    /// Set when the generator was taken from the key a foreign key references.
    pub inherited_from: Option<String>,
    /// The facts about the column's values the generator was built with.
    pub stats: Option<mirage_core::ColumnStats>,
}

/// One table's treatment.
#[derive(Clone)]
pub struct TablePlan {
    /// The table, as the source describes it.
    pub table: Table,
    /// What happens to it.
    pub mode: TableMode,
    /// Columns copied (stored generated columns are recomputed by the destination).
    pub columns: Vec<ColumnPlan>,
}

impl TablePlan {
    /// The columns copied, in order.
    pub fn copy_columns(&self) -> Vec<String> {
        self.columns.iter().map(|c| c.name.clone()).collect()
    }

    /// The columns with a generator.
    pub fn masked(&self) -> impl Iterator<Item = &ColumnPlan> {
        self.columns
            .iter()
            .filter(|c| c.generator_name != "passthrough")
    }
}

/// The validated plan.
pub struct Plan {
    /// The source's catalog.
    pub catalog: Catalog,
    /// Tables that hold rows (partitioned parents are represented by their partitions), biggest
    /// first.
    pub tables: Vec<TablePlan>,
    /// What the destination needs to know for schema copy.
    pub schema_options: SchemaOptions,
    /// The live source compared with the workspace.
    pub review: Review,
    /// Columns copied unchanged without a decision (`unreviewed = "passthrough"`), one line each.
    pub warnings: Vec<String>,
}

/// Facts gathered about columns before the plan, keyed by (table, column).
pub type Stats = std::collections::HashMap<(String, String), mirage_core::ColumnStats>;

/// Resolved configuration for a column: (generator, options, line, inherited from).
type Choice = (String, toml::Table, usize, Option<String>);

/// What `[run] unreviewed` does with the columns nobody decided about: `fail` adds an error
/// for each (a new table's columns in one), `null` has them written as NULL (a NOT NULL one is
/// an error), `passthrough` copies them with a warning each (returned). A new column that is a
/// foreign key into a masked key keeps the key's generator: it must still join.
fn apply_review(
    ws: &Workspace,
    review: &Review,
    choice: &mut BTreeMap<(String, String), Choice>,
    errors: &mut Vec<WorkspaceError>,
) -> Vec<String> {
    let mut warnings = Vec::new();
    let set_policy =
        "or set [run] unreviewed = \"null\" (write NULL) or \"passthrough\" (copy unchanged)";
    // A new table: one message listing its columns.
    for t in review
        .changes
        .iter()
        .filter(|c| c.change == ChangeKind::NewTable)
    {
        let columns: Vec<String> = review
            .unreviewed()
            .filter(|c| c.table == t.table)
            .map(|c| {
                format!(
                    "{} ({}; {})",
                    printable(c.column.as_deref().unwrap_or("")),
                    printable(c.type_name.as_deref().unwrap_or("")),
                    c.verdict_text()
                )
            })
            .collect();
        if ws.run.unreviewed == Unreviewed::Fail {
            errors.push(ws.error(
                0,
                table_key(&t.table),
                format!(
                    "is a table of the source the workspace does not list, so nobody decided how \
                     to copy its columns: {}; add [tables.\"{}\".columns] with a generator for \
                     each (`passthrough` for those that are not sensitive; `mirage scan --write` \
                     adds them with the scan's suggestions), or give it mode = \"truncate\", {set_policy}",
                    columns.join(", "),
                    printable(&t.table),
                ),
            ));
        }
    }
    let new_tables: std::collections::BTreeSet<&str> = review
        .changes
        .iter()
        .filter(|c| c.change == ChangeKind::NewTable)
        .map(|c| c.table.as_str())
        .collect();
    for c in review.unreviewed() {
        let Some(column) = c.column.as_deref() else {
            continue;
        };
        let key = (c.table.clone(), column.to_string());
        let ty = c.type_name.as_deref().unwrap_or("");
        let what = match c.change {
            ChangeKind::TypeChanged => format!(
                "changed type from {} to {} since it was reviewed",
                printable(c.was.as_deref().unwrap_or("")),
                printable(ty)
            ),
            _ => format!(
                "is a column ({}) the workspace does not list",
                printable(ty)
            ),
        };
        match ws.run.unreviewed {
            Unreviewed::Fail => {
                if new_tables.contains(c.table.as_str()) {
                    continue; // named in its table's message
                }
                let fix = match c.change {
                    ChangeKind::TypeChanged => format!(
                        "check that its generator still fits, then write type = \"{}\" in its entry",
                        printable(ty)
                    ),
                    _ => format!(
                        "add it under [tables.\"{}\".columns] with a generator (`passthrough` if it \
                         is not sensitive; `mirage scan --write` adds it with the scan's suggestion), \
                         {set_policy}",
                        printable(&c.table)
                    ),
                };
                errors.push(ws.error(
                    c.line,
                    column_key(&c.table, column),
                    format!("{what} ({}); {fix}", c.verdict_text()),
                ));
            }
            Unreviewed::Null => {
                if choice.get(&key).is_some_and(|ch| ch.3.is_some()) {
                    continue; // a foreign key: it keeps its key's generator
                }
                if c.not_null {
                    errors.push(ws.error(
                        c.line,
                        column_key(&c.table, column),
                        format!(
                            "{what} ({}), and is NOT NULL, so unreviewed = \"null\" cannot write \
                             NULL into it; add it to the workspace with a generator",
                            c.verdict_text()
                        ),
                    ));
                } else {
                    choice.insert(key, ("null".into(), toml::Table::new(), c.line, None));
                    warnings.push(format!(
                        "{}.{} {what} ({}); written as NULL (unreviewed = \"null\")",
                        printable(&c.table),
                        printable(column),
                        c.verdict_text()
                    ));
                }
            }
            Unreviewed::Passthrough => {
                if choice.get(&key).is_some_and(|ch| ch.3.is_some()) {
                    continue;
                }
                // A column whose type changed keeps the generator it was given.
                let treatment = match choice.get(&key) {
                    Some((g, ..)) => format!("its generator `{}` still applies", printable(g)),
                    None => "copied unchanged".to_string(),
                };
                warnings.push(format!(
                    "{}.{} {what} ({}); {treatment} (unreviewed = \"passthrough\")",
                    printable(&c.table),
                    printable(column),
                    c.verdict_text()
                ));
            }
        }
    }
    warnings
}

impl Plan {
    /// Match the workspace to the catalog. Returns every problem found, not just the first.
    pub fn build(
        ws: &Workspace,
        catalog: Catalog,
        seed: &str,
        stats: &Stats,
        review: &Review,
    ) -> Result<Plan, Vec<WorkspaceError>> {
        let prf = Prf::from_seed(seed);
        let mut errors = Vec::new();
        let names: Vec<String> = catalog
            .tables
            .iter()
            .filter(|t| t.kind.settings_parent().is_none())
            .map(|t| t.name.to_string())
            .collect();

        // A schema `include` names must exist: a typo would copy nothing of it, silently.
        for s in &ws.schemas.include {
            if !catalog.schemas.contains(s) {
                errors.push(ws.error(
                    0,
                    "schemas.include",
                    format!(
                        "the source has no schema {} (or the source user cannot see it); \
                         remove it or fix its name",
                        mirage_core::display::printable(s)
                    ),
                ));
            }
        }
        // Check table and column names first.
        for (i, tc) in ws.tables.iter().enumerate() {
            let parsed = QualifiedName::parse(&tc.name);
            // `a.b.c` unquoted could be `"a.b".c` or `a."b.c"`: when the source has both, say so.
            if !tc.name.contains('"') {
                let readings: Vec<String> = tc
                    .name
                    .match_indices('.')
                    .map(|(i, _)| QualifiedName::new(&tc.name[..i], &tc.name[i + 1..]))
                    .filter(|n| catalog.table(n).is_some())
                    .map(|n| n.to_string())
                    .collect();
                if readings.len() > 1 {
                    errors.push(ws.error(
                        tc.line,
                        table_key(&tc.name),
                        format!(
                            "is ambiguous: the source has {}; quote the part that holds a dot, \
                             e.g. [tables.'{}']",
                            readings.join(" and "),
                            readings[0]
                        ),
                    ));
                    continue;
                }
            }
            if let Some(first) = ws.tables[..i]
                .iter()
                .find(|o| QualifiedName::parse(&o.name) == parsed)
            {
                errors.push(ws.error(
                    tc.line,
                    table_key(&tc.name),
                    format!(
                        "names the same table as tables.\"{}\" (line {}); keep one entry",
                        printable(&first.name),
                        first.line
                    ),
                ));
                continue;
            }
            let Some(table) = catalog.tables.iter().find(|t| t.name == parsed) else {
                let hint = did_you_mean(&tc.name, names.iter().map(String::as_str));
                let why = if ws.schemas.admits(&parsed.schema) {
                    "no such table in the source"
                } else {
                    "its schema is not included by [schemas]"
                };
                errors.push(ws.error(tc.line, table_key(&tc.name), format!("{why}{hint}")));
                continue;
            };
            // A partition follows its partitioned table: settings of its own would be ignored.
            if let Some(root) = table.kind.settings_parent() {
                errors.push(ws.error(
                    tc.line,
                    table_key(&tc.name),
                    format!(
                        "is a partition of {root}, and partitions follow their partitioned table's \
                         settings: move this entry's mode and columns to [tables.\"{root}\"]"
                    ),
                ));
                continue;
            }
            if tc.mode == TableMode::PreserveDestination && table.kind != TableKind::Table {
                errors.push(ws.error(
                    tc.line,
                    table_key(&tc.name),
                    "preserve-destination is not supported for partitioned tables or partitions yet; \
                     use de-identify or truncate",
                ));
            }
            for cc in &tc.columns {
                match table.column(&cc.name) {
                    None => {
                        let hint =
                            did_you_mean(&cc.name, table.columns.iter().map(|c| c.name.as_str()));
                        errors.push(ws.error(
                            cc.line,
                            column_key(&tc.name, &cc.name),
                            format!("table {} has no column {}{hint}", tc.name, cc.name),
                        ));
                    }
                    Some(c) if c.generated && cc.generator != "passthrough" => {
                        errors.push(ws.error(
                            cc.line,
                            column_key(&tc.name, &cc.name),
                            "is a generated column, computed by the destination; it cannot have a generator",
                        ));
                    }
                    Some(_) => {}
                }
            }
        }

        // Configured choices, keyed by (table, column); partitions use their parent's settings.
        let settings_of =
            |t: &Table| ws.table_config(&mirage_connectors::settings_owner(t).to_string());
        let mut choice: BTreeMap<(String, String), Choice> = BTreeMap::new();
        for t in catalog
            .tables
            .iter()
            .filter(|t| t.kind.settings_parent().is_none())
        {
            if let Some(tc) = settings_of(t) {
                for cc in &tc.columns {
                    if cc.generator != "passthrough" || !cc.options.is_empty() {
                        choice.insert(
                            (t.name.to_string(), cc.name.clone()),
                            (cc.generator.clone(), cc.options.clone(), cc.line, None),
                        );
                    }
                }
            }
        }

        // Foreign keys take the generator of the key they reference, so they keep joining.
        // A key declared on a partition, or referencing one, counts as its parent's: partitions
        // are configured through it. Repeat so chains (a → b → c) settle.
        let owner = |name: &QualifiedName| {
            catalog
                .table(name)
                .map(|t| mirage_connectors::settings_owner(t).clone())
                .unwrap_or_else(|| name.clone())
        };
        let foreign_keys: Vec<mirage_core::schema::ForeignKey> = catalog
            .foreign_keys
            .iter()
            .map(|fk| mirage_core::schema::ForeignKey {
                table: owner(&fk.table),
                referenced: owner(&fk.referenced),
                ..fk.clone()
            })
            .collect();
        for _ in 0..4 {
            for fk in &foreign_keys {
                for (col, rcol) in fk.columns.iter().zip(&fk.referenced_columns) {
                    let key = (fk.table.to_string(), col.clone());
                    let rkey = (fk.referenced.to_string(), rcol.clone());
                    let referenced = choice.get(&rkey).cloned();
                    let own = choice.get(&key).cloned();
                    let line = own.as_ref().map(|c| c.2).unwrap_or(0);
                    match (own, referenced) {
                        (None, Some((g, o, _, _))) => {
                            choice
                                .insert(key, (g, o, 0, Some(format!("{}.{rcol}", fk.referenced))));
                        }
                        (Some((g, o, _, None)), Some((rg, ro, _, _))) if g != rg || o != ro => {
                            errors.push(ws.error(
                                line,
                                column_key(&fk.table.to_string(), col),
                                format!(
                                    "references {}.{rcol}, which uses generator `{rg}`; give both \
                                     columns the same generator and options, or the foreign key \
                                     {} will not join",
                                    fk.referenced, fk.name
                                ),
                            ));
                        }
                        (Some((g, _, _, None)), None) if g != "passthrough" => {
                            errors.push(ws.error(
                                line,
                                column_key(&fk.table.to_string(), col),
                                format!(
                                    "references {}.{rcol}, which passes through; give {}.{rcol} the \
                                     same generator `{g}`, or the foreign key {} will not join",
                                    fk.referenced, fk.referenced, fk.name
                                ),
                            ));
                        }
                        _ => {}
                    }
                }
            }
        }
        errors.dedup();

        let warnings = apply_review(ws, review, &mut choice, &mut errors);

        // A foreign key into a truncated table cannot hold once rows arrive.
        let mode_of = |t: &Table| settings_of(t).map(|c| c.mode).unwrap_or_default();
        for fk in &foreign_keys {
            let (Some(child), Some(parent)) =
                (catalog.table(&fk.table), catalog.table(&fk.referenced))
            else {
                continue;
            };
            if mode_of(child) == TableMode::DeIdentify && mode_of(parent) == TableMode::Truncate {
                let line = settings_of(parent).map(|c| c.line).unwrap_or(0);
                errors.push(ws.error(
                    line,
                    table_key(&parent.name.to_string()),
                    format!(
                        "is truncate, but {} (de-identify) has foreign key {} into it; truncate {} too",
                        child.name, fk.name, child.name
                    ),
                ));
            }
        }

        // Build generators.
        let mut tables = Vec::new();
        for t in &catalog.tables {
            if !t.holds_rows() {
                continue;
            }
            let mode = mode_of(t);
            // The record's fields, in order: what row-reading generators index into.
            let record: Vec<(String, mirage_core::ValueType)> = t
                .columns
                .iter()
                .filter(|c| !c.generated)
                .map(|c| (c.name.clone(), c.value_type.clone()))
                .collect();
            let mut columns = Vec::new();
            for c in t.columns.iter().filter(|c| !c.generated) {
                // Partitions are configured (and foreign-keyed) through their parent.
                let key = (
                    mirage_connectors::settings_owner(t).to_string(),
                    c.name.clone(),
                );
                let (gname, options, line, inherited_from) = choice
                    .get(&key)
                    .cloned()
                    .unwrap_or_else(|| ("passthrough".into(), toml::Table::new(), 0, None));
                let table_name = t.name.to_string();
                let ctx = ColumnContext {
                    table: &table_name,
                    column: &c.name,
                    value_type: &c.value_type,
                    not_null: c.not_null,
                    columns: &record,
                    stats: stats.get(&key),
                };
                let generator = match mirage_generators::build(&gname, &options, &ctx, &prf) {
                    Ok(g) if catalog.byte_lengths => {
                        Some(mirage_generators::fit_bytes(g, &c.value_type))
                    }
                    Ok(g) => Some(g),
                    Err(e) => {
                        let via = inherited_from
                            .as_ref()
                            .map(|f| format!(" (inherited from {f} through a foreign key)"))
                            .unwrap_or_default();
                        let owner = mirage_connectors::settings_owner(t).to_string();
                        errors.push(ws.error(
                            line,
                            column_key(&owner, &c.name),
                            format!("{e}{via}; the column is {}", c.type_name),
                        ));
                        None
                    }
                };
                columns.push(ColumnPlan {
                    name: c.name.clone(),
                    generator_name: gname,
                    options,
                    generator,
                    inherited_from,
                    stats: stats.get(&key).cloned(),
                });
            }
            // A generator may read another column's generated value only if that column's own
            // generator reads no generated values (no chains: evaluation is two-phase).
            for c in &columns {
                let Some(g) = &c.generator else { continue };
                for r in g.reads().iter().filter(|r| r.generated) {
                    let Some(target) = columns.get(r.column) else {
                        continue;
                    };
                    let chained = target
                        .generator
                        .as_ref()
                        .is_some_and(|tg| tg.reads().iter().any(|x| x.generated));
                    if chained {
                        let owner = mirage_connectors::settings_owner(t).to_string();
                        let line = settings_of(t)
                            .and_then(|tc| tc.columns.iter().find(|cc| cc.name == c.name))
                            .map_or(0, |cc| cc.line);
                        errors.push(ws.error(
                            line,
                            column_key(&owner, &c.name),
                            format!(
                                "reads the generated value of {}, which is itself built from other \
                                 generated columns; refer to the columns that one is built from",
                                target.name
                            ),
                        ));
                    }
                }
            }
            tables.push(TablePlan {
                table: t.clone(),
                mode,
                columns,
            });
        }
        if !errors.is_empty() {
            errors.sort_by_key(|e| e.line);
            errors.dedup();
            return Err(errors);
        }
        tables.sort_by(|a, b| {
            b.table
                .byte_estimate
                .unwrap_or(0)
                .cmp(&a.table.byte_estimate.unwrap_or(0))
                .then_with(|| a.table.name.cmp(&b.table.name))
        });
        let preserved = tables
            .iter()
            .filter(|t| t.mode == TableMode::PreserveDestination)
            .map(|t| t.table.clone())
            .collect();
        Ok(Plan {
            schema_options: SchemaOptions {
                schemas: catalog.schemas.clone(),
                preserve_ownership: ws.preserve_ownership,
                preserved,
            },
            catalog,
            tables,
            review: review.clone(),
            warnings,
        })
    }

    /// The tables, their modes and every column's generator, for `mirage plan --format json`.
    pub fn tables_json(&self) -> serde_json::Value {
        let tables: Vec<serde_json::Value> = self
            .tables
            .iter()
            .map(|t| {
                let columns: Vec<serde_json::Value> = t
                    .columns
                    .iter()
                    .map(|c| {
                        serde_json::json!({
                            "column": c.name,
                            "generator": c.generator_name,
                            "options": c.options,
                            "inherited_from": c.inherited_from,
                        })
                    })
                    .collect();
                serde_json::json!({
                    "table": t.table.name.to_string(),
                    "mode": t.mode.as_str(),
                    "columns": columns,
                })
            })
            .collect();
        serde_json::Value::Array(tables)
    }

    /// Human-readable plan (control characters of names escaped).
    pub fn describe(&self) -> String {
        let mut s = String::new();
        // Redshift (whose lengths count bytes) swaps tables in one by one; PostgreSQL and files
        // replace the schemas whole.
        let how = if self.catalog.byte_lengths {
            "created when missing; each table replaced as it loads"
        } else {
            "dropped and recreated in the destination"
        };
        let _ = writeln!(
            s,
            "Schemas copied ({how}): {}",
            if self.catalog.schemas.is_empty() {
                "(none)".to_string()
            } else {
                self.catalog
                    .schemas
                    .iter()
                    .map(|n| printable(n))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        );
        let _ = writeln!(s, "Tables, in the order they start:");
        for t in &self.tables {
            let est = match (t.table.row_estimate, t.table.byte_estimate) {
                (Some(r), Some(b)) => format!("~{r} rows, {}", mirage_core::size::ByteSize(b)),
                (None, Some(b)) => format!("{}", mirage_core::size::ByteSize(b)),
                _ => String::new(),
            };
            let _ = writeln!(
                s,
                "  {} [{}] {}",
                printable(&t.table.name.to_string()),
                t.mode.as_str(),
                est
            );
            if t.mode != TableMode::DeIdentify {
                continue;
            }
            let mut passthrough = 0;
            for c in &t.columns {
                if c.generator_name == "passthrough" {
                    passthrough += 1;
                    continue;
                }
                let opts = if c.options.is_empty() {
                    String::new()
                } else {
                    format!(" {}", toml::Value::Table(c.options.clone())).replace('\n', " ")
                };
                let via = c
                    .inherited_from
                    .as_ref()
                    .map(|f| format!("  (from foreign key to {})", printable(f)))
                    .unwrap_or_default();
                let _ = writeln!(
                    s,
                    "      {:<24} {}{}{via}",
                    printable(&c.name),
                    printable(&c.generator_name),
                    printable(&opts)
                );
            }
            let _ = writeln!(s, "      {passthrough} column(s) pass through unchanged");
        }
        if !self.catalog.not_copied.is_empty() {
            let _ = writeln!(s, "Not copied:");
            for n in &self.catalog.not_copied {
                let _ = writeln!(s, "  {}", printable(n));
            }
        }
        s
    }
}
