//! `mirage scan`: the scan's findings as a table or JSON lines, and `--write`, which adds the
//! suggested generators for the columns the workspace does not list yet, keeping the rest of
//! the file (comments, layout) as it was.

use mirage_core::display::printable;
use mirage_core::schema::Catalog;
use mirage_core::workspace::{TableMode, Workspace};
use mirage_engine::review::{ColumnScan, configured_tables};
use std::fmt::Write as _;
use toml_edit::{DocumentMut, InlineTable, Item, Table, Value};

/// What the workspace says of each column it lists, by (table, column): the generator (or the
/// table's mode when it copies no source rows), and the type recorded when it was reviewed.
type Listed = std::collections::HashMap<(String, String), (String, Option<String>)>;

fn listing(ws: &Workspace, found: &[ColumnScan]) -> Listed {
    let mut out = Listed::new();
    let mut tables: std::collections::HashMap<&str, Option<&mirage_core::workspace::TableConfig>> =
        Default::default();
    for f in found {
        let tc = *tables
            .entry(f.table.as_str())
            .or_insert_with(|| ws.table_config(&f.table));
        let Some(tc) = tc else { continue };
        let said = if tc.mode != TableMode::DeIdentify {
            Some((format!("({})", tc.mode.as_str()), None))
        } else {
            tc.columns
                .iter()
                .find(|c| c.name == f.column)
                .map(|c| (c.generator.clone(), c.reviewed_type.clone()))
        };
        if let Some(said) = said {
            out.insert((f.table.clone(), f.column.clone()), said);
        }
    }
    out
}

/// What the workspace says of a column, for people: `email`, `email, type was text`.
fn now(listed: &Listed, f: &ColumnScan) -> Option<String> {
    let (g, ty) = listed.get(&(f.table.clone(), f.column.clone()))?;
    Some(match ty {
        Some(t) if !mirage_engine::review::same_type(t, &f.type_name) => {
            format!("{g}; TYPE CHANGED, was {t}")
        }
        _ => g.clone(),
    })
}

/// The findings as a table for people: one line a column.
pub fn render(ws: &Workspace, found: &[ColumnScan]) -> String {
    let listed = listing(ws, found);
    let rows: Vec<[String; 6]> = found
        .iter()
        .map(|f| {
            let kind = f.finding.kind.map_or("-".to_string(), |k| k.to_string());
            let sure = if f.finding.kind.is_some() {
                format!("{:.0}%", f.finding.confidence * 100.0)
            } else {
                String::new()
            };
            let evidence = f
                .finding
                .evidence
                .iter()
                .map(|e| match e {
                    mirage_scan::Evidence::Name => "name",
                    mirage_scan::Evidence::Values => "values",
                    mirage_scan::Evidence::Type => "type",
                })
                .collect::<Vec<_>>()
                .join("+");
            let matched = match f.finding.matched {
                Some(m) => format!("{:.0}% of {}", m * 100.0, f.finding.sampled),
                None => format!("{} sampled", f.finding.sampled),
            };
            let (g, _) = f.suggestion();
            let now = now(&listed, f)
                .map(|g| format!("workspace: {g}"))
                .unwrap_or_else(|| "NOT IN WORKSPACE".into());
            let mut extra = String::new();
            if !f.finding.contains.is_empty() {
                let k: Vec<&str> = f.finding.contains.iter().map(|k| k.as_str()).collect();
                extra = format!(" (holds {})", k.join(", "));
            }
            if !f.finding.paths.is_empty() {
                let p: Vec<String> = f
                    .finding
                    .paths
                    .keys()
                    .map(|p| printable(p).into_owned())
                    .collect();
                extra = format!(" (at {})", p.join(", "));
            }
            [
                printable(&format!("{}.{}", f.table, f.column)).into_owned(),
                format!("{kind}{extra}"),
                sure,
                evidence,
                matched,
                format!("{g}  [{}]", printable(&now)),
            ]
        })
        .collect();
    let header = [
        "COLUMN",
        "KIND",
        "SURE",
        "EVIDENCE",
        "MATCHED",
        "SUGGESTED  [NOW]",
    ];
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut s = String::new();
    let line = |cells: Vec<&str>, s: &mut String| {
        let parts: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        let _ = writeln!(s, "{}", parts.join("  ").trim_end());
    };
    line(header.to_vec(), &mut s);
    for r in &rows {
        line(r.iter().map(String::as_str).collect(), &mut s);
    }
    let sensitive = found.iter().filter(|f| f.finding.is_sensitive()).count();
    let missing = found.iter().filter(|f| now(&listed, f).is_none()).count();
    let _ = write!(
        s,
        "{} column(s) scanned, {sensitive} sensitive, {missing} not in the workspace",
        found.len()
    );
    if missing > 0 {
        let _ = write!(s, " (`mirage scan --write` adds them)");
    }
    s
}

/// One JSON object a column: the finding, the suggestion and what the workspace says now.
pub fn json_lines(ws: &Workspace, found: &[ColumnScan]) -> Vec<String> {
    let listed = listing(ws, found);
    found
        .iter()
        .map(|f| {
            let mut v = serde_json::to_value(f).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.insert(
                    "workspace".into(),
                    now(&listed, f).map_or(serde_json::Value::Null, Into::into),
                );
            }
            v.to_string()
        })
        .collect()
}

/// The comment written beside an added entry: why (never a value).
fn why(f: &ColumnScan) -> String {
    let d = &f.finding;
    match d.kind {
        None if d.sampled == 0 => "scan: no values sampled, nothing sensitive in its name".into(),
        None => format!("scan: nothing sensitive in {} sampled values", d.sampled),
        Some(k) => {
            let mut s = format!("scan: {k}");
            match d.matched {
                Some(m) => {
                    let _ = write!(s, ", {:.0}% of sampled values", m * 100.0);
                }
                None => {
                    let _ = write!(s, ", from its name");
                }
            }
            if !d.contains.is_empty() {
                let k: Vec<&str> = d.contains.iter().map(|k| k.as_str()).collect();
                let _ = write!(s, ", holds {}", k.join(", "));
            }
            if f.key {
                s.push_str("; a key, so a one-to-one generator");
            }
            s
        }
    }
}

/// The entry the scan suggests for a column: (generator, options, comment, whether it
/// follows a foreign key). A foreign key column is `passthrough`: it takes the generator of the
/// key it references, so it keeps joining.
pub fn entry_for(f: &ColumnScan, catalog: &Catalog) -> (String, toml::Table, String, bool) {
    let table = mirage_core::QualifiedName::parse(&f.table);
    let fk = catalog
        .foreign_keys
        .iter()
        .find(|fk| fk.table == table && fk.columns.contains(&f.column));
    match fk {
        Some(fk) => {
            let i = fk.columns.iter().position(|c| c == &f.column).unwrap_or(0);
            let target = fk.referenced_columns.get(i).cloned().unwrap_or_default();
            (
                "passthrough".to_string(),
                toml::Table::new(),
                format!(
                    "scan: foreign key to {}.{}: it takes that column's generator",
                    printable(&fk.referenced.to_string()),
                    printable(&target)
                ),
                true,
            )
        }
        None => {
            let (g, o) = f.suggestion();
            (g, o, why(f), false)
        }
    }
}

/// A generator entry as one line of TOML: `{ generator = "email", part = "city" }`.
pub fn inline_entry(generator: &str, options: &toml::Table, type_name: &str) -> String {
    let mut entry = InlineTable::new();
    entry.insert("generator", generator.into());
    for (k, v) in options {
        entry.insert(k, toml_value(v));
    }
    entry.insert("type", type_name.into());
    entry.fmt();
    entry.to_string()
}

/// A new table under a parent: inline inside an inline table, else a `[header]` table.
fn child(parent_inline: bool) -> Item {
    if parent_inline {
        Item::Value(Value::InlineTable(InlineTable::new()))
    } else {
        implicit_table()
    }
}

fn implicit_table() -> Item {
    let mut t = Table::new();
    t.set_implicit(true);
    Item::Table(t)
}

/// `text` with an entry added for every scanned column the workspace does not list: the
/// suggested generator, the column's type, and a comment saying why. Returns the new text and
/// how many entries were added (and how many of those are sensitive).
pub fn write_suggestions(
    text: &str,
    ws: &Workspace,
    catalog: &Catalog,
    found: &[ColumnScan],
) -> Result<(String, usize, usize), String> {
    let mut doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
        e.to_string().lines().next().unwrap_or("").to_string()
    })?;
    let (mut added, mut sensitive) = (0, 0);
    let listed = listing(ws, found);
    let mut by_table: std::collections::HashMap<&str, Vec<&ColumnScan>> = Default::default();
    for f in found {
        if !listed.contains_key(&(f.table.clone(), f.column.clone())) {
            by_table.entry(f.table.as_str()).or_default().push(f);
        }
    }
    for t in configured_tables(catalog) {
        let name = t.name.to_string();
        let tc = ws.table_config(&name);
        if tc.is_some_and(|tc| tc.mode != TableMode::DeIdentify) {
            continue;
        }
        let entries = by_table.remove(name.as_str()).unwrap_or_default();
        if entries.is_empty() {
            continue;
        }
        let key = tc.map_or_else(|| name.clone(), |tc| tc.name.clone());
        let tables_item = doc.entry("tables").or_insert_with(implicit_table);
        let tables_inline = tables_item.is_inline_table();
        let tables = tables_item
            .as_table_like_mut()
            .ok_or("`tables` is not a table")?;
        let table_item = tables.entry(&key).or_insert_with(|| child(tables_inline));
        let table_inline = table_item.is_inline_table();
        let table = table_item
            .as_table_like_mut()
            .ok_or_else(|| format!("tables.\"{}\" is not a table", printable(&key)))?;
        let columns_item = table.entry("columns").or_insert_with(|| {
            if table_inline {
                return child(true);
            }
            let mut t = Table::new();
            if tc.is_none() {
                t.decor_mut().set_prefix(
                    "\n# scan: a table the workspace did not list; every column below was added by `mirage scan --write`\n",
                );
            }
            Item::Table(t)
        });
        // Inside an inline table (`columns = { … }`) a comment cannot end a line.
        let inline = columns_item.is_inline_table();
        let columns = columns_item
            .as_table_like_mut()
            .ok_or_else(|| format!("tables.\"{}\".columns is not a table", printable(&key)))?;
        for f in entries {
            let (generator, options, comment, follows) = entry_for(f, catalog);
            let mut entry = InlineTable::new();
            entry.insert("generator", generator.as_str().into());
            for (k, v) in &options {
                entry.insert(k, toml_value(v));
            }
            entry.insert("type", f.type_name.as_str().into());
            let mut value = Value::InlineTable(entry);
            // A comment ends a line: none inside an inline table (`columns = { … }`).
            if !inline {
                value.decor_mut().set_suffix(format!("  # {comment}"));
            }
            columns.insert(&f.column, Item::Value(value));
            added += 1;
            if f.finding.is_sensitive() && !follows {
                sensitive += 1;
            }
        }
    }
    Ok((doc.to_string(), added, sensitive))
}

/// A `toml` value as a `toml_edit` one.
fn toml_value(v: &toml::Value) -> Value {
    match v {
        toml::Value::String(s) => s.as_str().into(),
        toml::Value::Integer(i) => (*i).into(),
        toml::Value::Float(f) => (*f).into(),
        toml::Value::Boolean(b) => (*b).into(),
        toml::Value::Datetime(d) => d.to_string().into(),
        toml::Value::Array(a) => {
            let mut out = toml_edit::Array::new();
            for x in a {
                out.push(toml_value(x));
            }
            Value::Array(out)
        }
        toml::Value::Table(t) => {
            let mut out = InlineTable::new();
            for (k, x) in t {
                out.insert(k, toml_value(x));
            }
            Value::InlineTable(out)
        }
    }
}
