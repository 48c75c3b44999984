//! Schema copy with `pg_dump --schema-only` split into pre-data (types, tables, functions,
//! views — before the rows) and post-data (indexes, constraints, triggers — after the rows).

use super::{HOLD_SCHEMA, PgEndpoint, column_list, db_error, hold_name};
use crate::{ConnectorError, Result, SchemaOptions, redact};
use mirage_core::schema::{Catalog, Table, quote_ident, quote_literal};
use std::path::PathBuf;
use std::process::Stdio;
use tokio_postgres::Client;

/// A captured schema: a `pg_dump` archive of the included schemas, its table of contents, the
/// schemas' owners and the sequences' values, all read under the job's snapshot.
pub struct PgSchema {
    _dir: Option<tempfile::TempDir>,
    archive: PathBuf,
    toc: Vec<String>,
    schemas: Vec<(String, String)>,
    sequences: Vec<(String, i64, bool)>,
    /// The objects the post-data creates, as the source names them, with their TOC lines.
    post_items: Vec<PostItem>,
    /// The materialized views populated in the source (schema, name): refreshed once the
    /// de-identified rows are in (a schema-only dump creates them empty).
    matviews: Vec<(String, String)>,
    /// The source's extensions (name, schema), but PL/pgSQL.
    extensions: Vec<(String, String)>,
}

/// An object the post-data creates (index, constraint, trigger, rule, policy).
#[derive(Debug, Clone)]
struct PostItem {
    kind: PostKind,
    schema: String,
    table: String,
    name: String,
    /// Its line of the archive's table of contents.
    toc: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum PostKind {
    Constraint,
    Index,
    Trigger,
    Rule,
    Policy,
}

impl PostKind {
    /// The kind of a TOC line's object: its catalog's OID (and the entry type, for pg_class).
    fn of_toc(catalog: u32, entry_type: &str) -> Option<PostKind> {
        match catalog {
            2606 => Some(PostKind::Constraint),
            1259 if entry_type == "INDEX" => Some(PostKind::Index),
            2620 => Some(PostKind::Trigger),
            2618 => Some(PostKind::Rule),
            3256 => Some(PostKind::Policy),
            _ => None,
        }
    }

    fn word(self) -> &'static str {
        match self {
            PostKind::Constraint => "constraint",
            PostKind::Index => "index",
            PostKind::Trigger => "trigger",
            PostKind::Rule => "rule",
            PostKind::Policy => "policy",
        }
    }

    /// (schema, table, name) of this kind's objects: those with the OIDs `$1`, or when `$1` is
    /// NULL every one in the schemas `$2`.
    fn query(self) -> &'static str {
        match self {
            PostKind::Constraint => {
                "SELECT o.oid, n.nspname::text, c.relname::text, o.conname::text FROM pg_constraint o \
                 JOIN pg_class c ON c.oid = o.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE ($1::oid[] IS NULL OR o.oid = ANY($1)) AND n.nspname = ANY($2)"
            }
            PostKind::Index => {
                "SELECT i.oid, n.nspname::text, c.relname::text, i.relname::text FROM pg_index x \
                 JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class c ON c.oid = x.indrelid \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE ($1::oid[] IS NULL OR i.oid = ANY($1)) AND n.nspname = ANY($2)"
            }
            PostKind::Trigger => {
                "SELECT o.oid, n.nspname::text, c.relname::text, o.tgname::text FROM pg_trigger o \
                 JOIN pg_class c ON c.oid = o.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE ($1::oid[] IS NULL OR o.oid = ANY($1)) AND n.nspname = ANY($2)"
            }
            PostKind::Rule => {
                "SELECT o.oid, n.nspname::text, c.relname::text, o.rulename::text FROM pg_rewrite o \
                 JOIN pg_class c ON c.oid = o.ev_class JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE ($1::oid[] IS NULL OR o.oid = ANY($1)) AND n.nspname = ANY($2)"
            }
            PostKind::Policy => {
                "SELECT o.oid, n.nspname::text, c.relname::text, o.polname::text FROM pg_policy o \
                 JOIN pg_class c ON c.oid = o.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE ($1::oid[] IS NULL OR o.oid = ANY($1)) AND n.nspname = ANY($2)"
            }
        }
    }

    const ALL: [PostKind; 5] = [
        PostKind::Constraint,
        PostKind::Index,
        PostKind::Trigger,
        PostKind::Rule,
        PostKind::Policy,
    ];
}

/// The post-data objects of a table of contents, named as the source (read under the job's
/// snapshot through `main`) names them.
async fn post_items(main: &Client, toc: &[String], schemas: &[String]) -> Result<Vec<PostItem>> {
    let mut wanted: Vec<(PostKind, u32, &String)> = Vec::new();
    for line in toc {
        let Some((_, rest)) = line.split_once(';') else {
            continue;
        };
        let words: Vec<&str> = rest.split_whitespace().collect();
        if let [catalog, oid, entry_type, ..] = words[..]
            && let (Ok(catalog), Ok(oid)) = (catalog.parse::<u32>(), oid.parse::<u32>())
            && let Some(kind) = PostKind::of_toc(catalog, entry_type)
        {
            wanted.push((kind, oid, line));
        }
    }
    let mut items = Vec::new();
    for kind in PostKind::ALL {
        let oids: Vec<u32> = wanted.iter().filter(|w| w.0 == kind).map(|w| w.1).collect();
        if oids.is_empty() {
            continue;
        }
        let rows = main
            .query(kind.query(), &[&Some(&oids), &schemas])
            .await
            .map_err(db_error("listing the source's indexes and constraints"))?;
        for r in rows {
            let oid: u32 = r.get(0);
            if let Some(w) = wanted.iter().find(|w| w.0 == kind && w.1 == oid) {
                items.push(PostItem {
                    kind,
                    schema: r.get(1),
                    table: r.get(2),
                    name: r.get(3),
                    toc: w.2.clone(),
                });
            }
        }
    }
    Ok(items)
}

async fn run_tool(tool: &'static str, mut cmd: tokio::process::Command) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .await
        .map_err(|e| ConnectorError::Tool {
            tool,
            detail: if e.kind() == std::io::ErrorKind::NotFound {
                format!(
                    "{tool} is not installed; install the PostgreSQL client tools of the server's \
                     major version (e.g. apt-get install postgresql-client-15)"
                )
            } else {
                e.to_string()
            },
        })?;
    if !out.status.success() {
        return Err(ConnectorError::Tool {
            tool,
            detail: redact(String::from_utf8_lossy(&out.stderr).trim()),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The client tools a job runs: `pg_dump` captures the source's schema, `pg_restore` lists it and
/// restores it into the destination.
const CLIENT_TOOLS: [&str; 2] = ["pg_dump", "pg_restore"];

/// Where `program` is found on PATH: what [`PgEndpoint::tool`]'s command runs.
fn on_path(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(program))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// The major version a tool reports (`pg_dump (PostgreSQL) 15.18 (Debian …)` → 15).
async fn tool_major(path: &std::path::Path) -> Option<u32> {
    let out = tokio::process::Command::new(path)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .await
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let version = text
        .split_whitespace()
        .find(|w| w.starts_with(|c: char| c.is_ascii_digit()))?;
    version
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// The source's check that the client tools a run needs are on PATH, of the server's major
/// version or newer (`pg_dump` refuses to dump a newer server).
pub(crate) async fn client_tools_check(client: &Client, out: &mut crate::check::Checks) {
    let server: Option<u32> = client
        .query_one("SELECT current_setting('server_version_num')", &[])
        .await
        .ok()
        .and_then(|r| r.get::<_, String>(0).parse::<u32>().ok())
        .map(|n| if n >= 100_000 { n / 10_000 } else { n / 100 });
    let (version, package) = match server {
        Some(v) => (v.to_string(), format!("postgresql-client-{v}")),
        None => (
            "of the server's major version".to_string(),
            "postgresql-client".to_string(),
        ),
    };
    let what = match server {
        Some(v) => format!("pg_dump and pg_restore {v} or newer on PATH"),
        None => "pg_dump and pg_restore on PATH".to_string(),
    };
    let mut problems = Vec::new();
    for tool in CLIENT_TOOLS {
        match on_path(tool) {
            None => problems.push(format!("{tool} is not on PATH")),
            Some(path) => {
                if let (Some(server), Some(have)) = (server, tool_major(&path).await)
                    && have < server
                {
                    problems.push(format!(
                        "{} is version {have}, older than the server ({server})",
                        path.display()
                    ));
                }
            }
        }
    }
    if problems.is_empty() {
        out.pass("source", what);
    } else {
        out.fail(
            "source",
            what,
            Some(format!(
                "{}; `mirage run` copies the schema with them",
                problems.join("; ")
            )),
            format!(
                "install the PostgreSQL client tools {version} or newer (e.g. apt-get install {package}, \
                 or brew install libpq) and put their folder on PATH"
            ),
        );
    }
}

/// Restore lists made so far (each gets a file of its own).
static LISTS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// A TOC entry that creates a schema: `6; 2615 2200 SCHEMA - name owner`.
fn is_schema_entry(line: &str) -> bool {
    line.split_once(';')
        .and_then(|(_, rest)| rest.split_whitespace().nth(2))
        == Some("SCHEMA")
}

/// The TOC entry that creates schema `public`: `6; 2615 2200 SCHEMA - public owner`.
fn is_public_schema_entry(line: &str) -> bool {
    line.split_once(';')
        .map(|(_, rest)| rest.split_whitespace().skip(2).take(3).collect::<Vec<_>>())
        .is_some_and(|w| w == ["SCHEMA", "-", "public"])
}

impl PgSchema {
    pub(crate) async fn capture(
        endpoint: &PgEndpoint,
        main: &Client,
        snapshot: &str,
        catalog: &Catalog,
    ) -> Result<PgSchema> {
        let schemas: Vec<(String, String)> = main
            .query(
                "SELECT nspname::text, pg_get_userbyid(nspowner)::text FROM pg_namespace \
                 WHERE nspname = ANY($1) ORDER BY 1",
                &[&catalog.schemas],
            )
            .await
            .map_err(db_error("reading schema owners"))?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let seq_names: Vec<String> = main
            .query(
                "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_class c \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relkind = 'S' AND n.nspname = ANY($1) \
                 AND CASE WHEN c.relkind = 'S' THEN has_sequence_privilege(c.oid, 'SELECT') END \
                 ORDER BY 1",
                &[&catalog.schemas],
            )
            .await
            .map_err(db_error("listing sequences"))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let mut sequences = Vec::new();
        for name in seq_names {
            let r = main
                .query_one(&format!("SELECT last_value, is_called FROM {name}"), &[])
                .await
                .map_err(db_error("reading a sequence"))?;
            sequences.push((name, r.get(0), r.get(1)));
        }
        if schemas.is_empty() {
            return Ok(PgSchema {
                _dir: None,
                archive: PathBuf::new(),
                toc: Vec::new(),
                schemas,
                sequences,
                post_items: Vec::new(),
                matviews: Vec::new(),
                extensions: Vec::new(),
            });
        }
        remove_stale_dump_folders();
        // Readable by this user only (the dump holds the source's schema); named after the
        // process, so a later run removes what a killed one left.
        let dir = tempfile::Builder::new()
            .prefix(&format!("mirage-schema-{}-", std::process::id()))
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .tempdir()
            .map_err(|e| ConnectorError::io("creating a folder for the schema dump", e))?;
        let archive = dir.path().join("schema.dump");
        let mut cmd = endpoint.tool("pg_dump");
        cmd.args(["--schema-only", "--format=custom", "--no-sync"])
            .arg(format!("--snapshot={snapshot}"))
            .arg("--file")
            .arg(&archive);
        for (s, _) in &schemas {
            cmd.arg("--schema").arg(quote_ident(s));
        }
        cmd.arg("--dbname").arg(endpoint.conninfo());
        run_tool("pg_dump", cmd).await?;
        let mut list = endpoint.tool("pg_restore");
        list.arg("--list").arg(&archive);
        let toc: Vec<String> = run_tool("pg_restore", list)
            .await?
            .lines()
            .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
            .map(str::to_string)
            .collect();
        let post_items = post_items(main, &toc, &catalog.schemas).await?;
        let matviews = main
            .query(
                "SELECT n.nspname::text, c.relname::text FROM pg_class c \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.relkind = 'm' AND c.relispopulated AND n.nspname = ANY($1) ORDER BY 1, 2",
                &[&catalog.schemas],
            )
            .await
            .map_err(db_error("listing materialized views"))?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let extensions = main
            .query(
                "SELECT e.extname::text, n.nspname::text FROM pg_extension e \
                 JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname <> 'plpgsql' ORDER BY 1",
                &[],
            )
            .await
            .map_err(db_error("listing extensions"))?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        Ok(PgSchema {
            _dir: Some(dir),
            archive,
            toc,
            schemas,
            sequences,
            post_items,
            matviews,
            extensions,
        })
    }

    /// Restore one section of the archive.
    /// The archive's restore list without the entry creating `public` (see `create`).
    async fn list_file(
        &self,
        section: &str,
        keep: impl Fn(&str) -> bool,
    ) -> Result<Option<PathBuf>> {
        if self.toc.is_empty() {
            return Ok(None);
        }
        let Some(dir) = &self._dir else {
            return Ok(None);
        };
        let list: Vec<&str> = self
            .toc
            .iter()
            .filter(|l| !is_public_schema_entry(l) && keep(l))
            .map(String::as_str)
            .collect();
        let n = LISTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let list_path = dir.path().join(format!("{section}-{n}.list"));
        tokio::fs::write(&list_path, list.join("\n") + "\n")
            .await
            .map_err(|e| ConnectorError::io("writing the restore list", e))?;
        Ok(Some(list_path))
    }

    /// Restore the post-data section: indexes and constraints build in parallel (the rows are
    /// already committed, so there is nothing to keep atomic), and one that fails does not stop
    /// the others — `finish` names each that did not build.
    async fn restore(
        &self,
        endpoint: &PgEndpoint,
        section: &str,
        options: &SchemaOptions,
    ) -> Result<()> {
        let Some(list_path) = self.list_file(section, |_| true).await? else {
            return Ok(());
        };
        let mut cmd = endpoint.tool("pg_restore");
        cmd.arg(format!("--section={section}"))
            .arg("--use-list")
            .arg(&list_path);
        let jobs = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .clamp(2, 8);
        cmd.arg(format!("--jobs={jobs}"));
        if !options.preserve_ownership {
            cmd.args(["--no-owner", "--no-privileges"]);
        }
        cmd.arg("--dbname")
            .arg(endpoint.conninfo())
            .arg(&self.archive);
        run_tool("pg_restore", cmd).await.map(|_| ())
    }

    /// A section of the archive as SQL (psql's meta-commands left out), to run in a
    /// transaction of the caller's.
    async fn script(
        &self,
        endpoint: &PgEndpoint,
        section: &str,
        options: &SchemaOptions,
        keep: impl Fn(&str) -> bool,
    ) -> Result<String> {
        let Some(list_path) = self.list_file(section, keep).await? else {
            return Ok(String::new());
        };
        let mut cmd = endpoint.tool("pg_restore");
        cmd.arg(format!("--section={section}"))
            .arg("--use-list")
            .arg(&list_path)
            .arg("--file")
            .arg("-");
        if !options.preserve_ownership {
            cmd.args(["--no-owner", "--no-privileges"]);
        }
        cmd.arg(&self.archive);
        Ok(run_tool("pg_restore", cmd)
            .await?
            .lines()
            .filter(|l| !l.starts_with('\\'))
            .map(|l| format!("{l}\n"))
            .collect())
    }

    /// Keep preserved tables' rows aside, drop and recreate the schemas, then restore pre-data.
    pub(crate) async fn create(
        &self,
        endpoint: &PgEndpoint,
        options: &SchemaOptions,
    ) -> Result<()> {
        let client = endpoint.connect().await?;
        let mut sql = String::from("BEGIN;\n");
        if !options.preserved.is_empty() {
            sql += &format!(
                "CREATE SCHEMA IF NOT EXISTS {};\n",
                quote_ident(HOLD_SCHEMA)
            );
        }
        for table in &options.preserved {
            if hold_exists(&client, table).await? {
                // A previous run stopped after keeping these rows aside: they are the ones to keep.
                continue;
            }
            let cols: Vec<String> = table
                .columns
                .iter()
                .filter(|c| !c.generated)
                .map(|c| format!("{}::text AS {}", quote_ident(&c.name), quote_ident(&c.name)))
                .collect();
            sql += &format!(
                "CREATE TABLE {}.{} AS SELECT {} FROM {};\n",
                quote_ident(HOLD_SCHEMA),
                quote_ident(&hold_name(table)),
                cols.join(", "),
                table.name.quoted()
            );
        }
        // pg_restore creates every schema as the source has it (owner, comment, privileges) —
        // except `public`, which pg_dump assumes exists: recreate it as initdb makes it, and the
        // archive's COMMENT/ACL entries for it apply any changes the source made.
        let public_owner: String = client
            .query_one(
                "SELECT CASE WHEN pg_has_role('pg_database_owner', 'USAGE') \
                 THEN 'pg_database_owner' ELSE current_user::text END",
                &[],
            )
            .await
            .map_err(db_error("checking the destination user"))?
            .get(0);
        for (schema, _) in &self.schemas {
            sql += &format!("DROP SCHEMA IF EXISTS {} CASCADE;\n", quote_ident(schema));
            if schema == "public" {
                sql += &format!(
                    "CREATE SCHEMA public AUTHORIZATION {};\n\
                     COMMENT ON SCHEMA public IS 'standard public schema';\n\
                     GRANT USAGE ON SCHEMA public TO PUBLIC;\n",
                    quote_ident(&public_owner)
                );
            }
        }
        // The pre-data runs in this transaction too: a failure (an extension the destination
        // server does not have, a missing role …) leaves the destination as it was. Schemas
        // first; then extensions — a dump of chosen schemas leaves them out, and dropping a
        // schema drops those it holds: each the source has is created where the source has it
        // —; then the rest.
        sql += &self
            .script(endpoint, "pre-data", options, is_schema_entry)
            .await?;
        for (name, schema) in &self.extensions {
            if schema != "pg_catalog" {
                sql += &format!("CREATE SCHEMA IF NOT EXISTS {};\n", quote_ident(schema));
            }
            sql += &format!(
                "CREATE EXTENSION IF NOT EXISTS {} WITH SCHEMA {};\n",
                quote_ident(name),
                quote_ident(schema)
            );
        }
        sql += &self
            .script(endpoint, "pre-data", options, |l| !is_schema_entry(l))
            .await?;
        // The script's settings (search_path …) are the session's: they end with it.
        sql += "\nCOMMIT;";
        client
            .batch_execute(&sql)
            .await
            .map_err(db_error("recreating the destination schemas"))
    }

    /// Post-data (indexes, constraints, triggers), then sequence values.
    pub(crate) async fn finish(
        &self,
        endpoint: &PgEndpoint,
        options: &SchemaOptions,
    ) -> Result<()> {
        let restored = self.restore(endpoint, "post-data", options).await;
        let client = endpoint.connect().await?;
        let mut not_built = self.not_built(endpoint, &client, options).await?;
        not_built.extend(self.refresh_matviews(&client).await);
        let mut sql = String::from("BEGIN;\n");
        for (name, value, called) in &self.sequences {
            sql += &format!(
                "SELECT setval({}, {value}, {called});\n",
                quote_literal(name)
            );
        }
        sql += "COMMIT;";
        client
            .batch_execute(&sql)
            .await
            .map_err(db_error("setting sequence values"))?;
        not_built.extend(self.sequences_past_keys(&client).await?);
        let left: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1",
                &[&HOLD_SCHEMA],
            )
            .await
            .map_err(db_error("checking preserved tables"))?
            .get(0);
        if left == 0 {
            client
                .batch_execute(&format!(
                    "DROP SCHEMA IF EXISTS {}",
                    quote_ident(HOLD_SCHEMA)
                ))
                .await
                .map_err(db_error("dropping the preserve schema"))?;
        }
        if !not_built.is_empty() {
            return Err(ConnectorError::PostData(not_built));
        }
        // Everything the source has is built: what pg_restore still reported concerns no
        // object of the list (or was retried above).
        restored.or_else(|e| match e {
            ConnectorError::Tool { .. } => {
                tracing::warn!(error = %e, "pg_restore reported errors, yet every object was built");
                Ok(())
            }
            e => Err(e),
        })
    }

    /// The post-data objects the destination lacks after the restore, each retried alone once
    /// (a parallel restore can fail on a lock) and, if it fails again, named with the server's
    /// reason (SQLSTATE and fixed wording, never a value).
    async fn not_built(
        &self,
        endpoint: &PgEndpoint,
        client: &Client,
        options: &SchemaOptions,
    ) -> Result<Vec<crate::PostDataItem>> {
        let schemas: Vec<String> = self.schemas.iter().map(|(s, _)| s.clone()).collect();
        let mut present = std::collections::HashSet::new();
        for kind in PostKind::ALL {
            let none: Option<Vec<u32>> = None;
            for r in client
                .query(kind.query(), &[&none, &schemas])
                .await
                .map_err(db_error(
                    "listing the destination's indexes and constraints",
                ))?
            {
                present.insert((
                    kind,
                    r.get::<_, String>(1),
                    r.get::<_, String>(2),
                    r.get::<_, String>(3),
                ));
            }
        }
        let mut out = Vec::new();
        for item in &self.post_items {
            let key = (
                item.kind,
                item.schema.clone(),
                item.table.clone(),
                item.name.clone(),
            );
            if present.contains(&key) {
                continue;
            }
            let reason = match self.retry(endpoint, client, item, options).await {
                Ok(()) => continue,
                Err(reason) => reason,
            };
            out.push(crate::PostDataItem {
                kind: item.kind.word(),
                table: mirage_core::QualifiedName::new(&item.schema, &item.table).to_string(),
                name: item.name.clone(),
                reason,
            });
        }
        Ok(out)
    }

    /// Refresh the materialized views the source has populated, from the destination's
    /// (de-identified) rows. A view over another is refreshed after it: views that cannot be
    /// refreshed yet (SQLSTATE 55000, a view they read is not populated) wait for the next pass.
    async fn refresh_matviews(&self, client: &Client) -> Vec<crate::PostDataItem> {
        let mut pending: Vec<&(String, String)> = self.matviews.iter().collect();
        let mut failed = Vec::new();
        while !pending.is_empty() {
            let mut waiting = Vec::new();
            let mut last = Vec::new();
            for mv in pending.iter().copied() {
                let sql = format!(
                    "REFRESH MATERIALIZED VIEW {}.{}",
                    quote_ident(&mv.0),
                    quote_ident(&mv.1)
                );
                match client.batch_execute(&sql).await {
                    Ok(()) => {}
                    Err(e)
                        if e.code()
                            == Some(
                                &tokio_postgres::error::SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE,
                            ) =>
                    {
                        waiting.push(mv);
                        last.push((mv, super::describe(&e)));
                    }
                    Err(e) => failed.push((mv, super::describe(&e))),
                }
            }
            if waiting.len() == pending.len() {
                failed.extend(last);
                break;
            }
            pending = waiting;
        }
        failed
            .into_iter()
            .map(|(mv, reason)| crate::PostDataItem {
                kind: "materialized view",
                table: mirage_core::QualifiedName::new(&mv.0, &mv.1).to_string(),
                name: mirage_core::QualifiedName::new(&mv.0, &mv.1).to_string(),
                reason,
            })
            .collect()
    }

    /// Sequences that feed an integer column (owned by it — serial, identity — or named in its
    /// default) move past the largest value the destination's column holds: keys remapped by
    /// a generator spread over the column's range, and the application's next insert must not
    /// collide. They never move back from the source's value.
    async fn sequences_past_keys(&self, client: &Client) -> Result<Vec<crate::PostDataItem>> {
        let schemas: Vec<String> = self.schemas.iter().map(|(s, _)| s.clone()).collect();
        let fed = client
            .query(
                "WITH fed AS ( \
                   SELECT d.objid AS seq, d.refobjid AS rel, d.refobjsubid AS att FROM pg_depend d \
                   WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass \
                     AND d.deptype IN ('a', 'i') AND d.refobjsubid > 0 \
                   UNION \
                   SELECT d.refobjid, ad.adrelid, ad.adnum FROM pg_attrdef ad \
                   JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid \
                     AND d.refclassid = 'pg_class'::regclass) \
                 SELECT DISTINCT quote_ident(sn.nspname) || '.' || quote_ident(s.relname), \
                   quote_ident(tn.nspname) || '.' || quote_ident(t.relname), quote_ident(a.attname), \
                   tn.nspname::text, t.relname::text, s.relname::text, ps.seqincrement < 0 \
                 FROM fed JOIN pg_class s ON s.oid = fed.seq AND s.relkind = 'S' \
                 JOIN pg_sequence ps ON ps.seqrelid = s.oid \
                 JOIN pg_namespace sn ON sn.oid = s.relnamespace \
                 JOIN pg_class t ON t.oid = fed.rel AND t.relkind IN ('r', 'p') \
                 JOIN pg_namespace tn ON tn.oid = t.relnamespace \
                 JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = fed.att \
                 WHERE tn.nspname = ANY($1) AND a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype)",
                &[&schemas],
            )
            .await
            .map_err(db_error("listing the sequences of key columns"))?;
        let mut failed = Vec::new();
        for r in fed {
            let (seq, table, column): (String, String, String) = (r.get(0), r.get(1), r.get(2));
            // A sequence counting down moves below the smallest value instead.
            let (agg, past) = if r.get::<_, bool>(6) {
                ("min", "<")
            } else {
                ("max", ">")
            };
            let sql = format!(
                "SELECT setval({lit}, x.m, true) FROM (SELECT {agg}({column})::bigint AS m FROM {table}) x, \
                 {seq} s WHERE x.m IS NOT NULL AND (x.m {past} s.last_value OR (x.m = s.last_value AND NOT s.is_called))",
                lit = quote_literal(&seq),
            );
            if let Err(e) = client.batch_execute(&sql).await {
                failed.push(crate::PostDataItem {
                    kind: "sequence",
                    table: mirage_core::QualifiedName::new(
                        r.get::<_, String>(3),
                        r.get::<_, String>(4),
                    )
                    .to_string(),
                    name: r.get(5),
                    reason: super::describe(&e),
                });
            }
        }
        Ok(failed)
    }

    /// Create one post-data object alone: its SQL from the archive, run on `client`.
    async fn retry(
        &self,
        endpoint: &PgEndpoint,
        client: &Client,
        item: &PostItem,
        options: &SchemaOptions,
    ) -> std::result::Result<(), String> {
        let Some(dir) = &self._dir else {
            return Err("the schema dump is gone".into());
        };
        let list = dir.path().join("retry.list");
        tokio::fs::write(&list, format!("{}\n", item.toc))
            .await
            .map_err(|e| format!("writing the restore list: {e}"))?;
        let mut cmd = endpoint.tool("pg_restore");
        cmd.arg("--use-list").arg(&list).arg("--file").arg("-");
        if !options.preserve_ownership {
            cmd.args(["--no-owner", "--no-privileges"]);
        }
        cmd.arg(&self.archive);
        // A script for psql: its meta-commands (`\restrict …`) are not SQL.
        let sql: String = run_tool("pg_restore", cmd)
            .await
            .map_err(|e| e.to_string())?
            .lines()
            .filter(|l| !l.starts_with('\\'))
            .map(|l| format!("{l}\n"))
            .collect();
        client
            .batch_execute(&sql)
            .await
            .map_err(|e| super::describe(&e))?;
        // The script's settings (search_path …) end with the session's next reset.
        let _ = client.batch_execute("RESET ALL").await;
        Ok(())
    }
}

async fn hold_exists(client: &Client, table: &Table) -> Result<bool> {
    Ok(client
        .query_opt(
            "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2",
            &[&HOLD_SCHEMA, &hold_name(table)],
        )
        .await
        .map_err(db_error("looking for preserved rows"))?
        .is_some())
}

/// The destination's columns of a table as (name, type), or None if it does not exist.
async fn destination_columns(
    client: &Client,
    table: &Table,
) -> Result<Option<Vec<(String, String)>>> {
    let rows = client
        .query(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a \
             JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped \
             ORDER BY a.attnum",
            &[&table.name.schema, &table.name.name],
        )
        .await
        .map_err(db_error("reading a destination table"))?;
    Ok((!rows.is_empty()).then(|| rows.iter().map(|r| (r.get(0), r.get(1))).collect()))
}

/// Preserved tables must exist in the destination (or be held from an interrupted run) with the
/// source's columns.
pub(crate) async fn preserved_checks(
    client: &Client,
    preserved: &[Table],
    out: &mut crate::check::Checks,
) {
    const A: &str = "destination";
    for table in preserved {
        let what = format!(
            "preserved table {} exists with the source's columns",
            table.name
        );
        match hold_exists(client, table).await {
            Ok(true) => {
                out.pass(A, what);
                continue;
            }
            Ok(false) => {}
            Err(e) => {
                out.fail(
                    A,
                    what,
                    Some(e.to_string()),
                    "check the destination is reachable",
                );
                continue;
            }
        }
        let found = match destination_columns(client, table).await {
            Ok(Some(f)) => f,
            Ok(None) => {
                out.fail(
                    A,
                    what,
                    Some(format!(
                        "table {} is preserve-destination but does not exist in the destination",
                        table.name
                    )),
                    "use mode \"truncate\" or \"de-identify\" for the first run",
                );
                continue;
            }
            Err(e) => {
                out.fail(
                    A,
                    what,
                    Some(e.to_string()),
                    "check the destination is reachable",
                );
                continue;
            }
        };
        let wanted: Vec<(String, String)> = table
            .columns
            .iter()
            .map(|c| (c.name.clone(), c.type_name.clone()))
            .collect();
        let list = |cols: &[(String, String)]| {
            column_list(
                &cols
                    .iter()
                    .map(|c| format!("{} {}", c.0, c.1))
                    .collect::<Vec<_>>(),
            )
        };
        if found == wanted {
            out.pass(A, what);
        } else {
            out.fail(
                A,
                what,
                Some(format!(
                    "table {} is preserve-destination but its destination columns ({}) differ from the source's ({})",
                    table.name,
                    list(&found),
                    list(&wanted)
                )),
                "make them match or use another mode",
            );
        }
    }
}

/// The INSERT that puts preserved rows back, casting the kept text to the destination's types.
pub(crate) async fn restore_sql(client: &Client, table: &Table) -> Result<String> {
    let cols = destination_columns(client, table).await?.ok_or_else(|| {
        ConnectorError::Invalid(format!("table {} was not recreated", table.name))
    })?;
    let keep: Vec<&(String, String)> = cols
        .iter()
        .filter(|(n, _)| table.column(n).is_some_and(|c| !c.generated))
        .collect();
    let names: Vec<String> = keep.iter().map(|(n, _)| quote_ident(n)).collect();
    let casts: Vec<String> = keep
        .iter()
        .map(|(n, t)| format!("{}::{t}", quote_ident(n)))
        .collect();
    Ok(format!(
        "INSERT INTO {} ({}) OVERRIDING SYSTEM VALUE SELECT {} FROM {}.{}",
        table.name.quoted(),
        names.join(", "),
        casts.join(", "),
        quote_ident(HOLD_SCHEMA),
        quote_ident(&hold_name(table))
    ))
}

/// Remove the schema dump folders of mirage processes that are gone (killed before they could).
fn remove_stale_dump_folders() {
    // Without /proc, whether a process runs is unknown: leave everything.
    if !std::path::Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("mirage-schema-")
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_public_schema_entry() {
        assert!(is_public_schema_entry(
            "6; 2615 2200 SCHEMA - public pg_database_owner"
        ));
        assert!(!is_public_schema_entry(
            "7; 2615 16385 SCHEMA - sales postgres"
        ));
        assert!(!is_public_schema_entry(
            "215; 1259 16386 TABLE public users app"
        ));
    }
}
