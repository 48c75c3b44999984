//! What a Redshift warehouse holds besides its tables' rows: views (late-binding ones too),
//! materialized views, SQL UDFs, stored procedures, comments and privileges — read from the
//! source with the statements that recreate them, and recreated in the destination after the
//! tables load (materialized views then compute from the de-identified rows, never the
//! source's). What mirage cannot copy (external schemas, datashares, external functions) is
//! named, never silently left out.

use crate::Result;
use crate::sql::{TextRow, exec, rows};
use mirage_core::schema::{QualifiedName, quote_ident, quote_literal};
use tokio_postgres::Client;

/// What an object is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A SQL (or Python) UDF.
    Function,
    /// A view, late-binding or not.
    View,
    /// A materialized view.
    MaterializedView,
    /// A stored procedure.
    Procedure,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Function => "function",
            Kind::View => "view",
            Kind::MaterializedView => "materialized view",
            Kind::Procedure => "procedure",
        }
    }
}

/// One object and the statement that creates it.
#[derive(Debug, Clone)]
pub struct Object {
    /// What it is.
    pub kind: Kind,
    /// `schema.name`, or `schema.name(argument types)` for routines, for messages.
    pub name: String,
    /// The schema it is in.
    pub schema: String,
    /// The statement that creates it (replacing one of the same name where SQL allows).
    pub create: String,
    /// Its owner in the source.
    pub owner: String,
    /// `ALTER … <name>` up to `OWNER TO`.
    pub alter: String,
}

/// Everything besides the tables, of the schemas copied.
#[derive(Debug, Clone, Default)]
pub struct Objects {
    /// In the order they are tried: functions, views and materialized views (in the source's
    /// creation order), procedures. Those that fail are tried again once the others exist.
    pub objects: Vec<Object>,
    /// `COMMENT ON …` of tables, views and columns.
    pub comments: Vec<String>,
    /// `GRANT …` of schemas, tables, views and routines (applied with `preserve_ownership`).
    pub grants: Vec<String>,
    /// Objects whose definition could not be read (`SHOW VIEW` refused …), one line each.
    pub unreadable: Vec<String>,
}

/// The one value `sql` returns (`SHOW VIEW`, `SHOW PROCEDURE`), or why not.
async fn shown(c: &Client, sql: &str) -> std::result::Result<String, String> {
    match c.simple_query(sql).await {
        Ok(messages) => messages
            .into_iter()
            .find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                _ => None,
            })
            .ok_or_else(|| "no definition returned".to_string()),
        Err(e) => Err(crate::postgres::describe(&e)),
    }
}

/// A dollar-quote tag that does not occur in `body`.
fn dollar_tag(body: &str) -> String {
    let mut n = 0;
    loop {
        let tag = if n == 0 {
            "$mirage$".to_string()
        } else {
            format!("$mirage{n}$")
        };
        if !body.contains(&tag) {
            return tag;
        }
        n += 1;
    }
}

/// The grantee of a privilege as GRANT spells it.
fn grantee(r: &TextRow) -> Option<String> {
    let name = r.text("identity_name");
    match r.text("identity_type").as_str() {
        "user" => Some(quote_ident(&name)),
        "group" => Some(format!("GROUP {}", quote_ident(&name))),
        "role" => Some(format!("ROLE {}", quote_ident(&name))),
        "public" => Some("PUBLIC".into()),
        _ => None,
    }
}

/// Languages whose routines are recreated from their source text.
const COPIED_LANGUAGES: &[&str] = &["sql", "plpgsql", "plpythonu"];

/// Read the objects of `schemas` from the source.
pub async fn read(c: &Client, schemas: &[String]) -> Result<Objects> {
    let included = |s: &str| schemas.iter().any(|x| x == s);
    let mut out = Objects::default();
    // Materialized views: svv_mv_info (pg_class may list them as plain views).
    let mvs = materialized_views(c).await?;
    let mut routines = Vec::new();
    for r in rows(
        c,
        "SELECT n.nspname AS schema_name, p.proname, p.prokind, \
         oidvectortypes(p.proargtypes) AS args, format_type(p.prorettype, NULL) AS returns, \
         p.proretset, l.lanname, p.provolatile, p.prosrc, pg_get_userbyid(p.proowner) AS owner, \
         p.prooid FROM pg_catalog.pg_proc_info p \
         JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace \
         JOIN pg_catalog.pg_language l ON l.oid = p.prolang ORDER BY p.prooid",
        "listing functions and procedures",
    )
    .await?
    {
        let schema = r.text("schema_name");
        if !included(&schema) || !COPIED_LANGUAGES.contains(&r.text("lanname").as_str()) {
            continue;
        }
        let name = format!(
            "{}({})",
            QualifiedName::new(schema.clone(), r.text("proname")).quoted(),
            r.text("args")
        );
        let label = format!("{schema}.{}({})", r.text("proname"), r.text("args"));
        if r.text("prokind") == "p" {
            let create = match shown(c, &format!("SHOW PROCEDURE {name}")).await {
                Ok(d) => d,
                Err(e) => {
                    out.unreadable
                        .push(format!("procedure {label} not copied: SHOW PROCEDURE: {e}"));
                    continue;
                }
            };
            routines.push(Object {
                kind: Kind::Procedure,
                name: label,
                schema,
                create,
                owner: r.text("owner"),
                alter: format!("ALTER PROCEDURE {name}"),
            });
        } else {
            let body = r.text("prosrc");
            let tag = dollar_tag(&body);
            let volatility = match r.text("provolatile").as_str() {
                "i" => "IMMUTABLE",
                "s" => "STABLE",
                _ => "VOLATILE",
            };
            let returns = if r.flag("proretset") {
                format!("SETOF {}", r.text("returns"))
            } else {
                r.text("returns")
            };
            out.objects.push(Object {
                kind: Kind::Function,
                name: label,
                schema,
                create: format!(
                    "CREATE OR REPLACE FUNCTION {name} RETURNS {returns} {volatility} AS {tag}{body}{tag} \
                     LANGUAGE {}",
                    r.text("lanname")
                ),
                owner: r.text("owner"),
                alter: format!("ALTER FUNCTION {name}"),
            });
        }
    }
    for r in rows(
        c,
        "SELECT n.nspname AS schema_name, c.relname, pg_get_userbyid(c.relowner) AS owner \
         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('v', 'm') ORDER BY c.oid",
        "listing views",
    )
    .await?
    {
        let schema = r.text("schema_name");
        if !included(&schema) {
            continue;
        }
        let name = QualifiedName::new(schema.clone(), r.text("relname"));
        let materialized = mvs.contains(&(schema.clone(), name.name.clone()));
        let create = match shown(c, &format!("SHOW VIEW {}", name.quoted())).await {
            Ok(d) => d,
            Err(e) => {
                out.unreadable
                    .push(format!("view {name} not copied: SHOW VIEW: {e}"));
                continue;
            }
        };
        out.objects.push(Object {
            kind: if materialized {
                Kind::MaterializedView
            } else {
                Kind::View
            },
            name: name.to_string(),
            schema,
            create,
            owner: r.text("owner"),
            alter: format!("ALTER TABLE {}", name.quoted()),
        });
    }
    out.objects.extend(routines);
    // Comments on tables, views and their columns.
    for r in rows(
        c,
        "SELECT n.nspname AS schema_name, c.relname, c.relkind, d.objsubid, a.attname, \
         d.description FROM pg_catalog.pg_description d \
         JOIN pg_catalog.pg_class c ON c.oid = d.objoid \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.objsubid \
         WHERE c.relkind IN ('r', 'v', 'm') ORDER BY c.oid, d.objsubid",
        "reading comments",
    )
    .await?
    {
        let schema = r.text("schema_name");
        if !included(&schema) || r.text("relname").starts_with("mv_tbl__") {
            continue;
        }
        let name = QualifiedName::new(schema.clone(), r.text("relname"));
        let text = quote_literal(&r.text("description"));
        let materialized = mvs.contains(&(schema, name.name.clone()));
        let statement = match r.number::<i32>("objsubid").unwrap_or(0) {
            0 => {
                let what = match r.text("relkind").as_str() {
                    "r" => "TABLE",
                    // Redshift comments on materialized views as on views.
                    "m" if materialized => "MATERIALIZED VIEW",
                    _ => "VIEW",
                };
                format!("COMMENT ON {what} {} IS {text}", name.quoted())
            }
            _ => format!(
                "COMMENT ON COLUMN {}.{} IS {text}",
                name.quoted(),
                quote_ident(&r.text("attname"))
            ),
        };
        out.comments.push(statement);
    }
    // Privileges, granted again with preserve_ownership.
    for r in rows(
        c,
        "SELECT namespace_name, privilege_type, identity_name, identity_type \
         FROM pg_catalog.svv_schema_privileges ORDER BY 1, 2, 3",
        "reading schema privileges",
    )
    .await?
    {
        let schema = r.text("namespace_name");
        if let (true, Some(to)) = (included(&schema), grantee(&r)) {
            out.grants.push(format!(
                "GRANT {} ON SCHEMA {} TO {to}",
                r.text("privilege_type"),
                quote_ident(&schema)
            ));
        }
    }
    for r in rows(
        c,
        "SELECT namespace_name, relation_name, privilege_type, identity_name, identity_type \
         FROM pg_catalog.svv_relation_privileges ORDER BY 1, 2, 3, 4",
        "reading table and view privileges",
    )
    .await?
    {
        let schema = r.text("namespace_name");
        if r.text("relation_name").starts_with("mv_tbl__") {
            continue;
        }
        if let (true, Some(to)) = (included(&schema), grantee(&r)) {
            out.grants.push(format!(
                "GRANT {} ON {} TO {to}",
                r.text("privilege_type"),
                QualifiedName::new(schema, r.text("relation_name")).quoted()
            ));
        }
    }
    for r in rows(
        c,
        "SELECT namespace_name, function_name, argument_types, privilege_type, identity_name, \
         identity_type FROM pg_catalog.svv_function_privileges ORDER BY 1, 2, 3, 4",
        "reading function and procedure privileges",
    )
    .await?
    {
        let schema = r.text("namespace_name");
        let routine = QualifiedName::new(schema.clone(), r.text("function_name"));
        let signature = format!("{}({})", routine.quoted(), r.text("argument_types"));
        let Some(object) = out.objects.iter().find(|o| {
            matches!(o.kind, Kind::Function | Kind::Procedure) && o.alter.ends_with(&signature)
        }) else {
            continue;
        };
        if let (true, Some(to)) = (included(&schema), grantee(&r)) {
            let word = if object.kind == Kind::Procedure {
                "PROCEDURE"
            } else {
                "FUNCTION"
            };
            out.grants.push(format!(
                "GRANT {} ON {word} {signature} TO {to}",
                r.text("privilege_type")
            ));
        }
    }
    Ok(out)
}

/// What the source holds that a job does not copy, one line each: external schemas (and so
/// their external tables), datashares, and routines in languages that cannot be recreated from
/// their text (external Lambda functions, C).
pub async fn not_copied(c: &Client, schemas: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for r in rows(
        c,
        "SELECT schemaname, databasename FROM pg_catalog.svv_external_schemas ORDER BY 1",
        "listing external schemas",
    )
    .await?
    {
        out.push(format!(
            "external schema {} (catalog database {}): its tables are data outside the cluster; \
             create it in the destination with CREATE EXTERNAL SCHEMA if the copy needs it",
            r.text("schemaname"),
            r.text("databasename")
        ));
    }
    for r in rows(
        c,
        "SELECT share_name, share_type FROM pg_catalog.svv_datashares ORDER BY 1",
        "listing datashares",
    )
    .await?
    {
        out.push(format!(
            "datashare {} ({}): shares are between clusters, not copied with the data",
            r.text("share_name"),
            r.text("share_type").to_lowercase()
        ));
    }
    for r in rows(
        c,
        "SELECT n.nspname AS schema_name, p.proname, oidvectortypes(p.proargtypes) AS args, \
         l.lanname FROM pg_catalog.pg_proc_info p \
         JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace \
         JOIN pg_catalog.pg_language l ON l.oid = p.prolang ORDER BY 1, 2",
        "listing functions",
    )
    .await?
    {
        let schema = r.text("schema_name");
        let language = r.text("lanname");
        if schemas.contains(&schema) && !COPIED_LANGUAGES.contains(&language.as_str()) {
            out.push(format!(
                "function {schema}.{}({}) (LANGUAGE {language}): not recreated from its text; \
                 create it in the destination yourself",
                r.text("proname"),
                r.text("args")
            ));
        }
    }
    Ok(out)
}

/// The materialized views: (schema, name).
pub async fn materialized_views(c: &Client) -> Result<Vec<(String, String)>> {
    Ok(rows(
        c,
        "SELECT schema_name, name FROM pg_catalog.svv_mv_info",
        "listing materialized views",
    )
    .await?
    .iter()
    .map(|r| (r.text("schema_name"), r.text("name")))
    .collect())
}

/// External schemas, which look like schemas in `pg_namespace` but hold no tables of the
/// cluster.
pub async fn external_schemas(c: &Client) -> Result<Vec<String>> {
    Ok(rows(
        c,
        "SELECT schemaname FROM pg_catalog.svv_external_schemas",
        "listing external schemas",
    )
    .await?
    .iter()
    .map(|r| r.text("schemaname"))
    .collect())
}

/// Drop the destination's views and materialized views in `schemas`: they are recreated from
/// the source's after the load (and would hold the tables they read while those are replaced).
pub async fn drop_views(c: &Client, schemas: &[String]) -> Result<()> {
    let mvs = materialized_views(c).await?;
    for r in rows(
        c,
        "SELECT n.nspname AS schema_name, c.relname FROM pg_catalog.pg_class c \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('v', 'm')",
        "listing destination views",
    )
    .await?
    {
        let schema = r.text("schema_name");
        if !schemas.contains(&schema) {
            continue;
        }
        let name = QualifiedName::new(schema.clone(), r.text("relname"));
        let what = if mvs.contains(&(schema, name.name.clone())) {
            "MATERIALIZED VIEW"
        } else {
            "VIEW"
        };
        exec(
            c,
            &format!("DROP {what} IF EXISTS {} CASCADE", name.quoted()),
            &format!("dropping view {name} until the tables are loaded"),
        )
        .await?;
    }
    Ok(())
}

/// Create the objects in the destination (the tables loaded), then comments and, with
/// `preserve_ownership`, owners and grants. What fails is tried again once the rest exists (a
/// view over a view created later); what still fails is returned, one line each, and the job
/// goes on.
pub async fn create(c: &Client, objects: &Objects, preserve_ownership: bool) -> Vec<String> {
    let mut problems = objects.unreadable.clone();
    let mut pending: Vec<&Object> = objects.objects.iter().collect();
    let mut failed: Vec<(&Object, String)> = Vec::new();
    loop {
        let mut progress = false;
        failed.clear();
        for o in &pending {
            match c.batch_execute(&o.create).await {
                Ok(()) => {
                    progress = true;
                    if preserve_ownership && !o.owner.is_empty() {
                        let sql = format!("{} OWNER TO {}", o.alter, quote_ident(&o.owner));
                        if let Err(e) = c.batch_execute(&sql).await {
                            problems.push(format!(
                                "{} {}: owner {} not set: {}",
                                o.kind.word(),
                                o.name,
                                o.owner,
                                crate::postgres::describe(&e)
                            ));
                        }
                    }
                }
                Err(e) => failed.push((o, crate::postgres::describe(&e))),
            }
        }
        if failed.is_empty() || !progress {
            break;
        }
        pending = failed.iter().map(|(o, _)| *o).collect();
    }
    for (o, why) in &failed {
        problems.push(format!("{} {} not copied: {why}", o.kind.word(), o.name));
    }
    for sql in &objects.comments {
        if let Err(e) = c.batch_execute(sql).await {
            problems.push(format!(
                "comment not copied ({}): {}",
                sql.split(" IS ").next().unwrap_or_default(),
                crate::postgres::describe(&e)
            ));
        }
    }
    if preserve_ownership {
        // The grants of an object that is not there would only fail again.
        let missing: Vec<String> = failed
            .iter()
            .map(|(o, _)| {
                format!(
                    " {} TO ",
                    o.alter
                        .split_whitespace()
                        .skip(2)
                        .collect::<Vec<_>>()
                        .join(" ")
                )
            })
            .collect();
        for sql in &objects.grants {
            if missing.iter().any(|m| sql.contains(m.as_str())) {
                continue;
            }
            if let Err(e) = c.batch_execute(sql).await {
                problems.push(format!(
                    "privilege not copied ({sql}): {}",
                    crate::postgres::describe(&e)
                ));
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollar_tags_avoid_the_body() {
        assert_eq!(dollar_tag("select 1"), "$mirage$");
        assert_eq!(dollar_tag("a $mirage$ b"), "$mirage1$");
    }
}
