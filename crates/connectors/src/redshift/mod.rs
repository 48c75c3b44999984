//! Amazon Redshift with Data Pipeline V2: the source UNLOADs each table to
//! `s3://bucket/<prefix>/<job>/input/<schema>/<table>/` (CSV, ZSTD or GZIP, an explicit NULL sentinel,
//! PARALLEL ON, MAXFILESIZE, MANIFEST VERBOSE) and streams the parts the manifest lists; the
//! transform runs in the worker as for PostgreSQL; the destination writes the transformed parts to
//! `…/output/…`, a COPY manifest listing exactly them (`mandatory`), COPYs into a staging table
//! and swaps it in, so a table appears only when complete.
//!
//! SQL goes through the simple query protocol (text results), the common ground of Redshift and
//! its emulator; values in statements are quoted literals.

pub mod iam;
pub mod lambda;
pub mod objects;

pub use crate::staging::{NULL_SENTINEL, Staging, format};

use crate::check::{CheckContext, Checks, Dialect, SourceFacts, endpoint_identity};
use crate::postgres::{PgEndpoint, describe};
use crate::registry::{AnySource, Connector, Ends, Role, boxed_source, ends};
use crate::sql::{TextRow, exec, rows, whoami};
use crate::{
    ConnectorError, Destination, Extract, Format, LoadStats, PartStream, Result, SchemaOptions,
    Source,
};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use mirage_core::lambda as settings;
use mirage_core::schema::{
    Catalog, Column, ForeignKey, MAX_CATEGORIES, QUANTILES, QualifiedName, Table, TableKind,
    ValueType, quote_ident, quote_literal,
};
use mirage_core::workspace::{Process, SchemaFilter, StagingConfig, Workspace};
use mirage_core::{ColumnStats, StatsKind};
use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use tokio_postgres::Client;

/// The `redshift://` connector (Data Pipeline V2).
pub struct RedshiftConnector;

/// The `[staging]` block a Redshift job needs.
fn staging_config(ws: &Workspace) -> Result<&StagingConfig> {
    ws.staging.as_ref().ok_or_else(|| {
        ConnectorError::Workspace(ws.error(
            ws.source.line,
            "staging",
            "a Redshift job needs a [staging] block: bucket = \"…\", iam_role = \"arn:aws:iam::…:role/…\" \
             (see `mirage init` or the README)",
        ))
    })
}

/// A cluster and database as the server names them: the cluster's namespace (a GUID, the same
/// through its DNS name, a VPC endpoint or a tunnel) and the database. Two URLs naming one
/// database are one destination, and never a copy's source and destination at once.
pub(crate) async fn identity(client: &Client, endpoint: &PgEndpoint) -> Result<String> {
    match rows(
        client,
        "SELECT current_namespace AS ns, current_database() AS db",
        "identifying the cluster",
    )
    .await
    {
        Ok(r) if r.first().is_some_and(|r| !r.text("ns").is_empty()) => {
            let r = &r[0];
            Ok(format!(
                "namespace {} database {}",
                r.text("ns"),
                r.text("db")
            ))
        }
        // A cluster that cannot say: its endpoint as written.
        _ => Ok(endpoint_identity(endpoint)),
    }
}

fn endpoint(ws: &Workspace, role: Role) -> Result<PgEndpoint> {
    PgEndpoint::redshift(role.as_str(), role.connection(ws), ws.staging.as_ref())
}

/// Remove what dead jobs (killed before they cleaned up) left: their staging folders (raw
/// UNLOAD files included) and, for the Lambda process, their queues, mappings and bucket
/// notification entries. Returns one line per thing removed or that could not be.
async fn sweep_dead_jobs(
    config: &StagingConfig,
    staging: &Staging,
    source: Option<&PgEndpoint>,
) -> Vec<String> {
    let mut lines = Vec::new();
    let dead = match staging.dead_jobs().await {
        Ok(dead) => dead,
        Err(e) => {
            lines.push(format!("could not look for dead jobs: {e}"));
            Vec::new()
        }
    };
    // A killed worker's UNLOAD goes on in the cluster: stop it before its folder is deleted,
    // or its files would come back afterwards.
    if let Some(source) = source {
        for id in &dead {
            let target = staging.url(&format!("{}/{id}/", config.prefix));
            match stop_unloads_into(source, &target).await {
                Ok(0) => {}
                Ok(n) => lines.push(format!("stopped {n} UNLOAD(s) of dead job {id}")),
                Err(e) => lines.push(format!("could not stop dead job {id}'s UNLOADs: {e}")),
            }
        }
    }
    if config.process == Process::Lambda {
        match lambda::sweep(config, staging).await {
            Ok(removed) => lines.extend(removed.into_iter().map(|r| {
                if r.starts_with("probe") {
                    format!("removed {r}")
                } else {
                    format!("removed {r} of a dead job")
                }
            })),
            Err(e) => lines.push(format!("could not remove dead jobs' AWS resources: {e}")),
        }
    }
    match staging.remove_stale_probes().await {
        Ok(0) => {}
        Ok(n) => lines.push(format!(
            "removed {n} probe object(s) of killed `mirage check` runs"
        )),
        Err(e) => lines.push(format!("could not remove old check probes: {e}")),
    }
    if let Ok(stopped) = staging.stopped_jobs().await {
        for (id, pid, age) in stopped {
            lines.push(format!(
                "job {id} stopped ({age} s ago its process {pid} on this machine renewed its \
                 lease; it no longer runs): its files and AWS resources are removed once the \
                 lease is older than {} s — run `MIRAGE_DEAD_AFTER=0 mirage clean` to remove them now",
                crate::staging::dead_after_secs()
            ));
        }
    }
    match staging.free_dead_locks().await {
        Ok(freed) => lines.extend(
            freed
                .into_iter()
                .map(|id| format!("freed the destination lock of stopped job {id}")),
        ),
        Err(e) => lines.push(format!("could not look for stale destination locks: {e}")),
    }
    for id in dead {
        match staging.remove_job(&id).await {
            Ok(()) => lines.push(format!(
                "removed the staging files of dead job {id} ({})",
                staging.url(&format!("{}/{id}/", config.prefix))
            )),
            Err(e) => lines.push(format!("could not remove dead job {id}'s files: {e}")),
        }
    }
    lines
}

/// The statements running now whose text matches the LIKE `pattern`.
async fn running_into(client: &tokio_postgres::Client, pattern: &str) -> Result<Vec<i32>> {
    client
        .query(
            "SELECT pid FROM stv_recents WHERE status = 'Running' AND query LIKE $1 \
             AND pid <> pg_backend_pid()",
            &[&pattern],
        )
        .await
        .map(|rows| rows.iter().map(|r| r.get::<_, i32>(0)).collect())
        .map_err(|e| ConnectorError::Database {
            what: "looking for a dead job's UNLOADs in stv_recents".into(),
            detail: describe(&e),
        })
}

/// Cancel the running statements that write under `target` (`s3://bucket/prefix/job/`), found
/// in `stv_recents` by the URL in their text (users see their own statements there: the
/// source user that ran the UNLOAD), and wait up to a minute until they have ended.
async fn stop_unloads_into(source: &PgEndpoint, target: &str) -> Result<usize> {
    let client = source.connect().await?;
    let pattern = format!(
        "%{}%",
        target
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    let pids = running_into(&client, &pattern).await?;
    for pid in &pids {
        exec(
            &client,
            &format!("SELECT pg_cancel_backend({pid})"),
            "cancelling a dead job's UNLOAD",
        )
        .await?;
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !pids.is_empty()
        && std::time::Instant::now() < deadline
        && !running_into(&client, &pattern).await?.is_empty()
    {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    Ok(pids.len())
}

/// The TONIC_LAMBDA_* settings, or every problem with them (each with its fix).
fn lambda_settings(
    config: &StagingConfig,
) -> std::result::Result<lambda::LambdaSettingsOf, Vec<String>> {
    lambda::settings_of(config)
}

/// The TONIC_LAMBDA_* settings of the SQS + Lambda process, each as an item; the settings
/// when they are valid.
fn lambda_checks(config: &StagingConfig, out: &mut Checks) -> Option<settings::LambdaSettings> {
    if config.process != Process::Lambda {
        return None;
    }
    match settings::settings(|k| std::env::var(k).ok(), config.encrypt_queue) {
        Ok((s, warnings)) => {
            out.pass("lambda", format!("{} = {}", settings::ROLE, s.role));
            out.pass("lambda", format!("{} = {} s", settings::TIMEOUT, s.timeout));
            out.pass(
                "lambda",
                format!("{} = {} MB", settings::MEMORY_SIZE, s.memory_size),
            );
            out.pass(
                "lambda",
                format!("{} = {} s", settings::VISIBILITY, s.visibility_timeout),
            );
            if let Some(k) = &s.kms_master_key {
                out.pass("lambda", format!("{} = {k}", settings::KMS_MASTER_KEY));
            }
            for w in warnings {
                out.warn("lambda", "settings", w);
            }
            Some(s)
        }
        Err(problems) => {
            for p in problems {
                let allowed = settings::VARIABLES
                    .iter()
                    .find(|(v, _)| *v == p.variable)
                    .map(|(_, a)| *a)
                    .unwrap_or("");
                out.fail(
                    "lambda",
                    p.variable.to_string(),
                    Some(p.message.clone()),
                    format!("export {}=… ({allowed})", p.variable),
                );
            }
            None
        }
    }
}

impl Connector for RedshiftConnector {
    fn name(&self) -> &'static str {
        "redshift"
    }

    fn accepts(&self, url: &str) -> bool {
        url.starts_with("redshift://")
    }

    fn example(&self) -> &'static str {
        "redshift://user@cluster.xxxx.region.redshift.amazonaws.com:5439/database"
    }

    fn source_checks<'a>(
        &'a self,
        ws: &'a Workspace,
        out: &'a mut Checks,
    ) -> BoxFuture<'a, SourceFacts> {
        crate::check::sql_source(ws, Dialect::Redshift, endpoint(ws, Role::Source), out).boxed()
    }

    fn destination_checks<'a>(
        &'a self,
        ws: &'a Workspace,
        ctx: &'a CheckContext,
        out: &'a mut Checks,
    ) -> BoxFuture<'a, ()> {
        async move {
            let ep = endpoint(ws, Role::Destination);
            crate::check::sql_destination(ws, Dialect::Redshift, ep, ctx, out).await;
            for t in &ctx.preserved {
                out.fail(
                    "destination",
                    format!("preserve-destination for {}", t.name),
                    Some("mode = \"preserve-destination\" is not available for Redshift destinations yet".into()),
                    "use mode \"truncate\" or \"de-identify\"",
                );
            }
        }
        .boxed()
    }

    fn job_checks<'a>(&'a self, ws: &'a Workspace, out: &'a mut Checks) -> BoxFuture<'a, ()> {
        async move {
            let Some(config) = &ws.staging else {
                out.fail(
                    "staging",
                    "[staging] block",
                    Some("Redshift jobs UNLOAD to and COPY from S3".into()),
                    "add [staging] with bucket and iam_role (see `mirage init` or the README)",
                );
                return;
            };
            crate::staging::checks(config, out).await;
            if let Some(settings) = lambda_checks(config, out) {
                lambda::checks(config, &settings, &ws.base_dir(), out).await;
            }
        }
        .boxed()
    }

    fn clean<'a>(&'a self, ws: &'a Workspace) -> BoxFuture<'a, Result<Vec<String>>> {
        async move {
            let config = staging_config(ws)?;
            let staging = Staging::new(config, "_mirage_clean")?;
            let source = endpoint(ws, Role::Source).ok();
            Ok(sweep_dead_jobs(config, &staging, source.as_ref()).await)
        }
        .boxed()
    }

    fn open_source<'a>(&'a self, ws: &'a Workspace) -> BoxFuture<'a, Result<Box<dyn AnySource>>> {
        async move {
            // Only the catalog is read: no staging is needed.
            Ok(boxed_source(
                RedshiftSource::open(endpoint(ws, Role::Source)?, None).await?,
            ))
        }
        .boxed()
    }

    fn open_job<'a>(&'a self, ws: &'a Workspace, job_id: &'a str) -> BoxFuture<'a, Result<Ends>> {
        async move {
            let config = staging_config(ws)?;
            let process = match config.process {
                Process::V2 => None,
                Process::Lambda => {
                    let settings = lambda_settings(config).map_err(ConnectorError::Preflight)?;
                    Some(LambdaPlan {
                        config: config.clone(),
                        settings,
                        job_id: job_id.to_string(),
                        base: ws.base_dir(),
                    })
                }
            };
            // Without AWS credentials nothing below can work: a setting to fix, said once.
            crate::aws::resolve()
                .await
                .map_err(ConnectorError::Invalid)?;
            let staging = Arc::new(Staging::new(config, job_id)?);
            let lease = staging.hold_lease().await?;
            let source_endpoint = endpoint(ws, Role::Source)?;
            for removed in sweep_dead_jobs(config, &staging, Some(&source_endpoint)).await {
                tracing::warn!("{removed}");
            }
            let source =
                RedshiftSource::open(endpoint(ws, Role::Source)?, Some(staging.clone())).await?;
            let mut dest = RedshiftDestination::new(endpoint(ws, Role::Destination)?, staging);
            dest.lambda = process;
            dest.lease = std::sync::Mutex::new(Some(lease));
            Ok(ends(source, dest))
        }
        .boxed()
    }
}

/// Redshift's `svv_columns.data_type` (+ length, precision, scale) → mirage's value type.
pub fn value_type(
    data_type: &str,
    length: Option<u32>,
    precision: Option<u32>,
    scale: Option<u32>,
) -> ValueType {
    match data_type {
        "smallint" => ValueType::SmallInt,
        "integer" => ValueType::Integer,
        "bigint" => ValueType::BigInt,
        "numeric" | "decimal" => ValueType::Numeric { precision, scale },
        "real" => ValueType::Real,
        "double precision" => ValueType::Double,
        "boolean" => ValueType::Boolean,
        "character varying" | "varchar" | "text" => ValueType::Text { max_chars: length },
        "character" | "char" | "bpchar" => ValueType::Char { len: length },
        "date" => ValueType::Date,
        "time without time zone" | "time" => ValueType::Time,
        "time with time zone" | "timetz" => ValueType::TimeTz,
        "timestamp without time zone" | "timestamp" => ValueType::Timestamp,
        "timestamp with time zone" | "timestamptz" => ValueType::TimestampTz,
        "super" => ValueType::Json,
        "binary varying" | "varbyte" => ValueType::Bytea,
        _ => ValueType::Other,
    }
}

/// `FOREIGN KEY (a, b) REFERENCES s.t(c, d)` → (columns, referenced table, referenced columns).
fn parse_foreign_key(def: &str) -> Option<(Vec<String>, String, Vec<String>)> {
    let list = |s: &str| -> Vec<String> {
        s.split(',')
            .map(|c| c.trim().trim_matches('"').to_string())
            .filter(|c| !c.is_empty())
            .collect()
    };
    let rest = def.trim().strip_prefix("FOREIGN KEY")?.trim_start();
    let rest = rest.strip_prefix('(')?;
    let (cols, rest) = rest.split_once(')')?;
    let rest = rest.trim_start().strip_prefix("REFERENCES")?.trim_start();
    let (table, rest) = rest.split_once('(')?;
    let (refcols, _) = rest.split_once(')')?;
    Some((list(cols), table.trim().replace('"', ""), list(refcols)))
}

/// The UNLOAD of `columns` of a table into `prefix`.
fn unload_sql(staging: &Staging, table: &Table, columns: &[String], prefix: &str) -> String {
    let select = format!(
        "SELECT {} FROM {}",
        columns
            .iter()
            .map(|c| quote_ident(c))
            .collect::<Vec<_>>()
            .join(", "),
        table.name.quoted()
    );
    format!(
        "UNLOAD ({}) TO {} {} FORMAT AS CSV NULL AS {} {} PARALLEL ON MAXFILESIZE {} MB \
         MANIFEST VERBOSE{}",
        quote_literal(&select),
        quote_literal(&staging.url(prefix)),
        staging.authorization(),
        quote_literal(NULL_SENTINEL),
        staging.compression().keyword(),
        (staging.max_file_size() >> 20).max(5),
        staging.encryption()
    )
}

/// The source: UNLOAD, then the parts.
pub struct RedshiftSource {
    endpoint: PgEndpoint,
    main: Client,
    /// Where UNLOAD writes; `None` when only the catalog is read (`mirage init`).
    staging: Option<Arc<Staging>>,
}

/// Schema copy for Redshift: the schemas, their owners, and each table's `SHOW TABLE` DDL.
pub struct RedshiftSchema {
    /// (schema, owner)
    pub schemas: Vec<(String, String)>,
    /// (table, DDL, owner)
    pub tables: Vec<(QualifiedName, String, String)>,
    /// Views, routines, comments and privileges, recreated after the tables load.
    pub objects: objects::Objects,
}

/// A table's UNLOAD files, for a COPY that loads them as they are.
struct Unloaded {
    /// The data files' keys.
    keys: Vec<String>,
    /// Where they are (deleted once loaded).
    prefix: String,
    rows: u64,
    bytes: u64,
}

/// A row of `svv_columns`.
struct ColumnRow {
    table: QualifiedName,
    name: String,
    data_type: String,
    length: Option<u32>,
    precision: Option<u32>,
    scale: Option<u32>,
    nullable: bool,
    default: String,
}

impl ColumnRow {
    fn from(r: &TextRow) -> ColumnRow {
        ColumnRow {
            table: QualifiedName::new(r.text("table_schema"), r.text("table_name")),
            name: r.text("column_name"),
            data_type: r.text("data_type"),
            length: r.number("character_maximum_length"),
            precision: r.number("numeric_precision"),
            scale: r.number("numeric_scale"),
            nullable: r.text("is_nullable") != "NO",
            default: r.text("column_default"),
        }
    }
}

/// A primary or foreign key from `pg_constraint`.
struct ConstraintRow {
    table: QualifiedName,
    name: String,
    primary: bool,
    definition: String,
}

impl ConstraintRow {
    fn from(r: &TextRow) -> ConstraintRow {
        ConstraintRow {
            table: QualifiedName::new(r.text("schema_name"), r.text("table_name")),
            name: r.text("conname"),
            primary: r.text("contype") == "p",
            definition: r.text("definition"),
        }
    }
}

impl RedshiftSource {
    /// Connect; `staging` is where UNLOAD writes (`None` when only the catalog is read).
    pub async fn open(
        endpoint: PgEndpoint,
        staging: Option<Arc<Staging>>,
    ) -> Result<RedshiftSource> {
        let main = endpoint.connect().await?;
        Ok(RedshiftSource {
            endpoint,
            main,
            staging,
        })
    }

    /// Where it reads.
    pub fn endpoint(&self) -> &PgEndpoint {
        &self.endpoint
    }

    /// Where a table's UNLOAD goes, and a connection to run it on.
    async fn unload_target(&self, table: &Table) -> Result<(Arc<Staging>, Client, String)> {
        let staging = self
            .staging
            .clone()
            .ok_or_else(|| ConnectorError::Invalid("no [staging] for UNLOAD".into()))?;
        let client = self.endpoint.connect().await?;
        let prefix = staging.input_prefix(&table.name);
        Ok((staging, client, prefix))
    }

    /// Run an UNLOAD on its own connection, as a task the job's end can stop and wait for.
    fn spawn_unload(
        &self,
        staging: &Staging,
        client: Client,
        sql: String,
        what: String,
    ) -> tokio::task::JoinHandle<Result<()>> {
        let (tx, done) = tokio::sync::watch::channel(false);
        let token = client.cancel_token();
        let endpoint = self.endpoint.clone();
        staging.track(crate::staging::Writer {
            done,
            cancel: Box::new(move || Box::pin(async move { endpoint.cancel(token).await })),
        });
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let r = exec(&client, &sql, &what).await;
            tracing::debug!(seconds = started.elapsed().as_secs_f64(), "{what} finished");
            let _ = tx.send(true);
            r
        })
    }

    /// UNLOAD a table and list its files, for a destination that COPYs them as they are.
    async fn unload_files(&self, table: &Table, columns: &[String]) -> Result<Unloaded> {
        let (staging, client, prefix) = self.unload_target(table).await?;
        let sql = unload_sql(&staging, table, columns, &prefix);
        self.spawn_unload(&staging, client, sql, format!("UNLOAD of {}", table.name))
            .await
            .map_err(|e| ConnectorError::Invalid(format!("the UNLOAD task failed: {e}")))??;
        let parts = staging.manifest_parts(&format!("{prefix}manifest")).await?;
        Ok(Unloaded {
            keys: parts.iter().map(|p| p.0.clone()).collect(),
            prefix,
            rows: parts.iter().map(|p| p.2).sum(),
            bytes: parts.iter().map(|p| p.1).sum(),
        })
    }

    fn shares_staging(&self, staging: &Arc<Staging>) -> bool {
        self.staging
            .as_ref()
            .is_some_and(|s| Arc::ptr_eq(s, staging))
    }
}

impl Source for RedshiftSource {
    type Schema = RedshiftSchema;

    fn describe(&self) -> String {
        self.endpoint.display()
    }

    fn encrypted(&self) -> Option<bool> {
        self.endpoint.encrypted()
    }

    async fn identity(&self) -> Result<String> {
        identity(&self.main, &self.endpoint).await
    }

    fn format(&self) -> Format {
        format()
    }

    /// The grants it needs are checked before ([`crate::check`]); this only reads.
    async fn catalog(&self, filter: &SchemaFilter) -> Result<Catalog> {
        let c = &self.main;
        // External schemas are in pg_namespace too, without tables of the cluster's.
        let external = objects::external_schemas(c).await?;
        let mvs = objects::materialized_views(c).await?;
        let schemas: Vec<String> = rows(
            c,
            "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' \
             AND nspname NOT IN ('information_schema', 'catalog_history', 'rs_meta') ORDER BY 1",
            "listing schemas",
        )
        .await?
        .iter()
        .map(|r| r.text("nspname"))
        .filter(|s| filter.admits(s) && !external.contains(s))
        .collect();
        let mut tables: Vec<Table> = Vec::new();
        for r in rows(
            c,
            "SELECT n.nspname AS schema_name, c.relname AS table_name, \
             pg_get_userbyid(c.relowner) AS owner FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' ORDER BY 1, 2",
            "listing tables",
        )
        .await?
        {
            let schema = r.text("schema_name");
            // mv_tbl__<name>__0: the rows of a materialized view, which is recreated instead.
            let table_name = r.text("table_name");
            let internal = mvs
                .iter()
                .any(|(s, mv)| s == &schema && table_name.starts_with(&format!("mv_tbl__{mv}__")));
            if !schemas.contains(&schema) || internal {
                continue;
            }
            tables.push(Table {
                name: QualifiedName::new(schema, r.text("table_name")),
                kind: TableKind::Table,
                columns: Vec::new(),
                primary_key: Vec::new(),
                owner: r.text("owner"),
                row_estimate: Some(0),
                byte_estimate: None,
            });
        }
        // Sizes (svv_table_info lists only tables with rows: the rest keep 0).
        for r in rows(
            c,
            "SELECT \"schema\", \"table\", tbl_rows, size FROM pg_catalog.svv_table_info",
            "reading svv_table_info",
        )
        .await?
        {
            let name = QualifiedName::new(r.text("schema"), r.text("table"));
            if let Some(t) = tables.iter_mut().find(|t| t.name == name) {
                t.row_estimate = r.number::<f64>("tbl_rows").map(|n| n as u64);
                t.byte_estimate = r.number::<u64>("size").map(|mb| mb << 20);
            }
        }
        for r in rows(
            c,
            "SELECT table_schema, table_name, column_name, data_type, character_maximum_length, \
             numeric_precision, numeric_scale, is_nullable, column_default FROM pg_catalog.svv_columns \
             ORDER BY table_schema, table_name, ordinal_position",
            "reading svv_columns",
        )
        .await?
        {
            let col = ColumnRow::from(&r);
            let Some(t) = tables.iter_mut().find(|t| t.name == col.table) else {
                continue;
            };
            let value_type = value_type(&col.data_type, col.length, col.precision, col.scale);
            let type_name = match (&value_type, col.length, col.precision, col.scale) {
                (ValueType::Text { .. } | ValueType::Char { .. }, Some(n), _, _) => {
                    format!("{}({n})", col.data_type)
                }
                (ValueType::Numeric { .. }, _, Some(p), Some(s)) => {
                    format!("{}({p},{s})", col.data_type)
                }
                _ => col.data_type.clone(),
            };
            t.columns.push(Column {
                name: col.name,
                type_name,
                value_type,
                not_null: !col.nullable,
                generated: false,
                identity: col.default.contains("identity\"("),
            });
        }
        // Keys, from pg_get_constraintdef (what Redshift's own tooling reads).
        let mut foreign_keys = Vec::new();
        for r in rows(
            c,
            "SELECT n.nspname AS schema_name, c.relname AS table_name, con.conname, con.contype, \
             pg_get_constraintdef(con.oid) AS definition \
             FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE con.contype IN ('p', 'f') ORDER BY 3",
            "reading keys",
        )
        .await?
        {
            let con = ConstraintRow::from(&r);
            let name = con.table.clone();
            if !tables.iter().any(|t| t.name == name) {
                continue;
            }
            let def = con.definition;
            if con.primary {
                let cols = def
                    .trim()
                    .strip_prefix("PRIMARY KEY (")
                    .and_then(|s| s.split_once(')'))
                    .map(|(c, _)| {
                        c.split(',')
                            .map(|x| x.trim().trim_matches('"').to_string())
                            .collect()
                    })
                    .unwrap_or_default();
                if let Some(t) = tables.iter_mut().find(|t| t.name == name) {
                    t.primary_key = cols;
                }
            } else if let Some((cols, referenced, refcols)) = parse_foreign_key(&def) {
                let referenced = match referenced.split_once('.') {
                    Some((s, t)) => QualifiedName::new(s, t),
                    None => {
                        let same = QualifiedName::new(name.schema.clone(), referenced.clone());
                        if tables.iter().any(|t| t.name == same) {
                            same
                        } else {
                            QualifiedName::new("public", referenced)
                        }
                    }
                };
                if tables.iter().any(|t| t.name == referenced) {
                    foreign_keys.push(ForeignKey {
                        name: con.name,
                        table: name,
                        columns: cols,
                        referenced,
                        referenced_columns: refcols,
                    });
                } else {
                    // Into a schema the workspace leaves out: found now, not after the load.
                    return Err(ConnectorError::Invalid(format!(
                        "schemas: foreign key {} of {name} references {referenced}, in a schema \
                         [schemas] leaves out, so the key could not be rebuilt; include that \
                         schema too (or leave out {}'s)",
                        con.name, name.schema
                    )));
                }
            }
        }
        let not_copied = objects::not_copied(c, &schemas).await?;
        Ok(Catalog {
            schemas,
            tables,
            foreign_keys,
            byte_lengths: true,
            not_copied,
        })
    }

    async fn schema(&self, catalog: &Catalog) -> Result<RedshiftSchema> {
        let owners: HashMap<String, String> = rows(
            &self.main,
            "SELECT nspname, pg_get_userbyid(nspowner) AS owner FROM pg_namespace",
            "reading schema owners",
        )
        .await?
        .iter()
        .map(|r| (r.text("nspname"), r.text("owner")))
        .collect();
        let mut tables = Vec::new();
        for t in &catalog.tables {
            let what = format!("SHOW TABLE {}", t.name);
            let ddl = rows(
                &self.main,
                &format!("SHOW TABLE {}", t.name.quoted()),
                &what,
            )
            .await?
            .first()
            .and_then(|r| r.first().map(str::to_string))
            .ok_or_else(|| ConnectorError::Invalid(format!("{what} returned nothing")))?;
            tables.push((t.name.clone(), ddl, t.owner.clone()));
        }
        let objects = objects::read(&self.main, &catalog.schemas).await?;
        Ok(RedshiftSchema {
            objects,
            schemas: catalog
                .schemas
                .iter()
                .map(|s| (s.clone(), owners.get(s).cloned().unwrap_or_default()))
                .collect(),
            tables,
        })
    }

    async fn column_stats(
        &self,
        table: &QualifiedName,
        column: &str,
        kind: StatsKind,
    ) -> Result<ColumnStats> {
        let what = format!("reading the values of {table}.{column}");
        let c = quote_ident(column);
        let t = table.quoted();
        match kind {
            StatsKind::Categories => {
                let found = rows(
                    &self.main,
                    &format!(
                        "SELECT {c}::varchar(65535) AS value, count(*) AS n FROM {t} WHERE {c} IS NOT NULL \
                         GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {}",
                        MAX_CATEGORIES + 1
                    ),
                    &what,
                )
                .await?;
                if found.len() > MAX_CATEGORIES {
                    return Err(crate::too_many_categories(table, column));
                }
                Ok(ColumnStats {
                    categories: found
                        .iter()
                        .map(|r| (r.text("value"), r.number("n").unwrap_or(0)))
                        .collect(),
                    quantiles: Vec::new(),
                })
            }
            StatsKind::Quantiles => {
                // No arrays on Redshift: the first value and the last of each of QUANTILES tiles.
                let found = rows(
                    &self.main,
                    &format!(
                        "SELECT q, min(v)::varchar(65535) AS low, max(v)::varchar(65535) AS high FROM \
                         (SELECT {c} AS v, ntile({QUANTILES}) OVER (ORDER BY {c}) AS q FROM {t} \
                          WHERE {c} IS NOT NULL) x GROUP BY q ORDER BY q"
                    ),
                    &what,
                )
                .await?;
                let mut quantiles: Vec<String> =
                    found.first().map(|r| r.text("low")).into_iter().collect();
                quantiles.extend(found.iter().map(|r| r.text("high")));
                Ok(ColumnStats {
                    categories: Vec::new(),
                    quantiles,
                })
            }
        }
    }

    async fn sample(
        &self,
        table: &Table,
        columns: &[String],
        limit: usize,
    ) -> Result<crate::sql::Sample> {
        // Redshift has no TABLESAMPLE: a bounded LIMIT reads a few blocks of each slice.
        // Character columns are read up to a bound; other types are short (SUPER and VARBYTE
        // excepted, which have no LEFT).
        let capped = |c: &str| {
            let text = table
                .columns
                .iter()
                .find(|x| quote_ident(&x.name) == c)
                .is_some_and(|x| {
                    matches!(
                        x.value_type,
                        mirage_core::ValueType::Text { .. } | mirage_core::ValueType::Char { .. }
                    )
                });
            if text {
                format!("LEFT({c}, {})", crate::sql::SAMPLE_VALUE_CHARS)
            } else {
                c.to_string()
            }
        };
        crate::sql::sample(&self.main, table, columns, limit, None, capped).await
    }

    async fn read(&self, table: &Table, columns: &[String]) -> Result<Extract> {
        let (staging, client, prefix) = self.unload_target(table).await?;
        let sql = unload_sql(&staging, table, columns, &prefix);
        let unload = self.spawn_unload(&staging, client, sql, format!("UNLOAD of {}", table.name));
        let stored = Arc::new(OnceLock::new());
        let set = stored.clone();
        let chunks = staging.stream_unload(unload, prefix, move |bytes| {
            let _ = set.set(bytes);
        });
        Ok(Extract {
            chunks,
            stored_bytes: stored,
        })
    }
}

/// The destination: parts to S3, COPY into a staging table, swap.
pub struct RedshiftDestination {
    endpoint: PgEndpoint,
    staging: Arc<Staging>,
    /// The SQS + Lambda process, when `[staging] process = "lambda"`.
    lambda: Option<LambdaPlan>,
    /// Its AWS resources, set up by the first table.
    lambda_job: tokio::sync::OnceCell<std::result::Result<Arc<lambda::LambdaJob>, String>>,
    /// A set-up that failed half-way, for teardown.
    lambda_partial: std::sync::Mutex<Option<Arc<lambda::LambdaJob>>>,
    /// The task renewing the job's lease.
    lease: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// The cluster and database it writes, as the server names them (see [`identity`]).
    identity: tokio::sync::OnceCell<String>,
}

/// What the SQS + Lambda process of a job needs.
struct LambdaPlan {
    config: StagingConfig,
    settings: mirage_core::lambda::LambdaSettings,
    job_id: String,
    base: std::path::PathBuf,
}

/// What `create_schema` hands the loads: each table's DDL and owner, and the foreign keys
/// dropped until the data is in.
pub struct RedshiftLoader {
    /// Each table's DDL without foreign keys, and its owner.
    tables: HashMap<QualifiedName, (String, String)>,
    /// `ALTER TABLE … ADD FOREIGN KEY …`, run after the data.
    foreign_keys: Vec<String>,
    /// The destination's foreign keys dropped for the load (and those a killed job dropped),
    /// as `ALTER TABLE … ADD CONSTRAINT …`: recorded in S3 before they were dropped, put back
    /// when the job does not complete.
    dropped: Vec<String>,
    preserve_ownership: bool,
}

impl RedshiftDestination {
    /// A destination at `endpoint` writing its COPY files to `staging`.
    pub fn new(endpoint: PgEndpoint, staging: Arc<Staging>) -> RedshiftDestination {
        RedshiftDestination {
            endpoint,
            staging,
            lambda: None,
            lambda_job: tokio::sync::OnceCell::new(),
            lambda_partial: std::sync::Mutex::new(None),
            lease: std::sync::Mutex::new(None),
            identity: tokio::sync::OnceCell::new(),
        }
    }

    /// The job's Lambda resources, set up once (with the job's files for the handler).
    async fn lambda_job(
        &self,
        plan: &LambdaPlan,
        key: &mirage_transform::spec::ConsistencyKey,
    ) -> Result<Arc<lambda::LambdaJob>> {
        let job = self
            .lambda_job
            .get_or_init(|| async {
                if let Err(e) = lambda::write_job_files(&self.staging, key).await {
                    return Err(e.to_string());
                }
                match lambda::LambdaJob::setup(
                    &plan.config,
                    plan.settings.clone(),
                    &self.staging,
                    &plan.job_id,
                    &plan.base,
                )
                .await
                {
                    Ok(job) => Ok(job),
                    Err((partial, e)) => {
                        if let Ok(mut p) = self.lambda_partial.lock() {
                            *p = Some(partial);
                        }
                        Err(format!("setting up the SQS + Lambda process: {e}"))
                    }
                }
            })
            .await;
        job.clone().map_err(ConnectorError::Invalid)
    }

    /// Where it writes.
    pub fn endpoint(&self) -> &PgEndpoint {
        &self.endpoint
    }

    /// Load a table from the COPY manifests `feed` hands over `rx` (it returns the records and
    /// bytes it staged): a staging table, each manifest COPYed as it comes, in one transaction
    /// that ends by swapping the staging table in.
    async fn load_manifests(
        &self,
        loader: &RedshiftLoader,
        table: &Table,
        columns: &[String],
        feed: impl std::future::Future<Output = Result<(u64, u64)>>,
        rx: tokio::sync::mpsc::Receiver<String>,
    ) -> Result<LoadStats> {
        let (ddl, owner) = loader
            .tables
            .get(&table.name)
            .cloned()
            .ok_or_else(|| ConnectorError::Invalid(format!("no DDL for {}", table.name)))?;
        let client = self.endpoint.connect().await?;
        let stage = Self::staging_name(&table.name);
        let what = format!("loading {}", table.name);
        let create_stage = format!(
            "DROP TABLE IF EXISTS {}; {}",
            stage.quoted(),
            rename_ddl(&ddl, &stage)?
        );
        let explicit_ids = if table.columns.iter().any(|c| c.identity) {
            " EXPLICIT_IDS"
        } else {
            ""
        };
        let column_list = columns
            .iter()
            .map(|c| quote_ident(c))
            .collect::<Vec<_>>()
            .join(", ");
        let copy_sql = |stage: &QualifiedName, manifest: &str| {
            format!(
                "COPY {} ({column_list}) FROM {} {} MANIFEST FORMAT AS CSV {} NULL AS {}{explicit_ids} \
                 COMPUPDATE OFF STATUPDATE OFF",
                stage.quoted(),
                quote_literal(&self.staging.url(manifest)),
                self.staging.authorization(),
                self.staging.compression().keyword(),
                quote_literal(NULL_SENTINEL),
            )
        };
        let copy_sql = &copy_sql;
        let result = async {
            let started = std::time::Instant::now();
            // The loading table is made in the transaction too: a job stopped in any way
            // (Ctrl-C, kill -9, a lost connection) leaves none behind.
            exec(&client, "BEGIN", &what).await?;
            exec(
                &client,
                &create_stage,
                &format!("creating the staging table for {}", table.name),
            )
            .await?;
            // Batches of files are COPYed while the next ones are made; all in one transaction
            // with the swap, so the table appears only complete.
            let writer = feed;
            let (client_ref, what_ref, stage_ref) = (&client, &what, &stage);
            // The loader owns the receiver: when a COPY fails it returns, and the writer's next
            // batch finds nobody listening and stops.
            let copier = async move {
                let (client, what, stage) = (client_ref, what_ref, stage_ref);
                let mut rx = rx;
                let mut manifests = Vec::new();
                while let Some(manifest) = rx.recv().await {
                    let copy = copy_sql(stage, &manifest);
                    manifests.push(manifest);
                    if let Err(e) = client.batch_execute(&copy).await {
                        // stl_load_errors can be read once the failed transaction is over.
                        let _ = client.batch_execute("ROLLBACK").await;
                        let detail = match self.load_error(client, &table.name).await {
                            Some(d) => d,
                            None => describe(&e),
                        };
                        return Err(ConnectorError::Database {
                            what: what.clone(),
                            detail,
                        });
                    }
                }
                Ok(manifests)
            };
            let (written, loaded) = futures_util::future::join(writer, copier).await;
            // A failed COPY explains a writer that stopped because of it.
            let manifests = loaded?;
            let (rows, bytes) = written?;
            // COPY with EXPLICIT_IDS does not move an identity column's counter: a row inserted
            // later without an id would get one the copy already holds. When the loaded ids
            // reach the declared seed, the loading table is made again with seeds past them
            // and the same files are COPYed into it.
            if let Some(reseeded) = self.reseeded_ddl(&client, table, &stage, &ddl).await? {
                exec(
                    &client,
                    &format!(
                        "DROP TABLE {}; {}",
                        stage.quoted(),
                        rename_ddl(&reseeded, &stage)?
                    ),
                    &format!("recreating the staging table of {} with new identity seeds", table.name),
                )
                .await?;
                for manifest in &manifests {
                    exec(&client, &copy_sql(&stage, manifest), &what).await?;
                }
            }
            tracing::debug!(table = %table.name, seconds = started.elapsed().as_secs_f64(), bytes, "written and copied");
            let mut swap = format!(
                "DROP TABLE IF EXISTS {t} CASCADE; ALTER TABLE {s} RENAME TO {n};",
                t = table.name.quoted(),
                s = stage.quoted(),
                n = quote_ident(&table.name.name)
            );
            if loader.preserve_ownership && !owner.is_empty() {
                swap += &format!(
                    " ALTER TABLE {} OWNER TO {};",
                    table.name.quoted(),
                    quote_ident(&owner)
                );
            }
            swap += " COMMIT;";
            if let Err(e) = client.batch_execute(&swap).await {
                return Err(ConnectorError::Database {
                    what: format!("swapping in {}", table.name),
                    detail: describe(&e),
                });
            }
            Ok(LoadStats {
                rows,
                stored_bytes: Some(bytes),
                extract_stored_bytes: None,
                remote: None,
            })
        }
        .await;
        if result.is_err() {
            let _ = client.batch_execute("ROLLBACK").await;
        }
        if result.is_err() {
            let _ = client
                .batch_execute(&format!("DROP TABLE IF EXISTS {}", stage.quoted()))
                .await;
        }
        self.staging.forget_output(&table.name).await;
        result
    }

    /// The DDL with identity seeds past the values `stage` holds, when a loaded value reached
    /// a declared seed (`None`: the seeds are ahead of the data already).
    async fn reseeded_ddl(
        &self,
        client: &Client,
        table: &Table,
        stage: &QualifiedName,
        ddl: &str,
    ) -> Result<Option<String>> {
        let mut out = ddl.to_string();
        let mut changed = false;
        for col in table.columns.iter().filter(|c| c.identity) {
            let Some((seed, step)) = identity_seed(&out, &col.name) else {
                continue;
            };
            let c = quote_ident(&col.name);
            let found = rows(
                client,
                &format!(
                    "SELECT max({c}) AS hi, min({c}) AS lo FROM {}",
                    stage.quoted()
                ),
                &format!("reading the loaded ids of {}.{}", table.name, col.name),
            )
            .await?;
            let row = found.first();
            let hi = row.and_then(|r| r.number::<i64>("hi"));
            let lo = row.and_then(|r| r.number::<i64>("lo"));
            let next = match (step > 0, hi, lo) {
                (true, Some(hi), _) if hi >= seed => hi.checked_add(step),
                (false, _, Some(lo)) if lo <= seed => lo.checked_add(step),
                _ => continue,
            };
            // No room left in the type: the seed stays (as Redshift would run out too).
            let Some(next) = next else { continue };
            if let Some(new) = with_identity_seed(&out, &col.name, next) {
                out = new;
                changed = true;
            }
        }
        Ok(changed.then_some(out))
    }

    /// The destination's identity, asked of the server once.
    async fn server_identity(&self) -> Result<String> {
        self.identity
            .get_or_try_init(|| async {
                let client = self.endpoint.connect().await?;
                identity(&client, &self.endpoint).await
            })
            .await
            .cloned()
    }

    /// Where the foreign keys a job dropped are recorded until put back.
    async fn dropped_key(&self) -> Result<String> {
        Ok(self
            .staging
            .destination_key(&self.server_identity().await?, "dropped-foreign-keys.json"))
    }

    /// The foreign keys recorded as dropped (by this job or a killed one).
    async fn dropped_foreign_keys(&self) -> Result<Vec<String>> {
        let key = self.dropped_key().await?;
        match self.staging.get(&key).await? {
            None => Ok(Vec::new()),
            Some(b) => serde_json::from_slice(&b).map_err(|e| {
                ConnectorError::Invalid(format!(
                    "{}: not a list of statements ({e}); delete it once its foreign keys are back",
                    self.staging.url(&key)
                ))
            }),
        }
    }

    /// Record `statements` as the dropped foreign keys (none: the record goes).
    async fn record_dropped(&self, statements: &[String]) -> Result<()> {
        let key = self.dropped_key().await?;
        if statements.is_empty() {
            return self.staging.delete(&key).await;
        }
        let body = serde_json::to_vec_pretty(statements).unwrap_or_default();
        self.staging.put(&key, body.into()).await
    }

    fn staging_name(table: &QualifiedName) -> QualifiedName {
        QualifiedName::new(table.schema.clone(), format!("{}_mirage_load", table.name))
    }

    /// The latest load error of this table's COPY, without row values.
    async fn load_error(&self, client: &Client, table: &QualifiedName) -> Option<String> {
        let prefix = self.staging.url(&self.staging.output_prefix(table));
        let found = rows(
            client,
            &format!(
                "SELECT trim(filename) AS filename, line_number, trim(colname) AS colname, err_code, \
                 trim(err_reason) AS err_reason \
                 FROM stl_load_errors WHERE trim(filename) LIKE {} ORDER BY starttime DESC LIMIT 1",
                quote_literal(&format!("{prefix}%"))
            ),
            "reading stl_load_errors",
        )
        .await
        .ok()?;
        let r = found.first()?;
        let file = r.text("filename");
        let file = file.rsplit('/').next().unwrap_or(&file).to_string();
        Some(format!(
            "COPY rejected record {} of {file}, column {}: {} (stl_load_errors code {})",
            r.text("line_number"),
            r.text("colname"),
            r.text("err_reason"),
            r.text("err_code")
        ))
    }
}

/// Split `SHOW TABLE` DDL into the table without its foreign keys, and the foreign keys.
fn split_foreign_keys(ddl: &str) -> (String, Vec<String>) {
    let mut kept = Vec::new();
    let mut fks = Vec::new();
    for line in ddl.lines() {
        let t = line.trim().trim_end_matches(',');
        if t.starts_with("FOREIGN KEY")
            || (t.starts_with("CONSTRAINT") && t.contains("FOREIGN KEY"))
        {
            fks.push(t.to_string());
        } else {
            kept.push(line.to_string());
        }
    }
    // A column line may now end with a comma before the closing parenthesis.
    let mut out = kept.join("\n");
    while let Some(i) = out.find(",\n)") {
        out.replace_range(i..i + 1, "");
    }
    (out, fks)
}

/// `CREATE TABLE x.y (` → `CREATE TABLE <name> (`.
/// The line of `column` in SHOW TABLE's DDL, and where on it `identity(` begins.
fn identity_clause(ddl: &str, column: &str) -> Option<(usize, usize)> {
    let mut offset = 0;
    for line in ddl.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let first = if let Some(rest) = trimmed.strip_prefix('"') {
            let mut name = String::new();
            let mut chars = rest.chars().peekable();
            while let Some(ch) = chars.next() {
                if ch == '"' {
                    if chars.peek() == Some(&'"') {
                        chars.next();
                        name.push('"');
                    } else {
                        break;
                    }
                } else {
                    name.push(ch);
                }
            }
            name
        } else {
            trimmed
                .split(|c: char| c.is_whitespace())
                .next()
                .unwrap_or_default()
                .to_string()
        };
        if first == column {
            let at = line.to_ascii_lowercase().find("identity(")?;
            return Some((offset, offset + at + "identity(".len()));
        }
        offset += line.len();
    }
    None
}

/// `(seed, step)` of `column`'s `IDENTITY(seed, step)` in SHOW TABLE's DDL.
fn identity_seed(ddl: &str, column: &str) -> Option<(i64, i64)> {
    let (_, open) = identity_clause(ddl, column)?;
    let inner = &ddl[open..open + ddl[open..].find(')')?];
    let (seed, step) = inner.split_once(',')?;
    Some((seed.trim().parse().ok()?, step.trim().parse().ok()?))
}

/// The DDL with `column`'s identity seed set to `seed`.
fn with_identity_seed(ddl: &str, column: &str, seed: i64) -> Option<String> {
    let (_, open) = identity_clause(ddl, column)?;
    let comma = open + ddl[open..].find(',')?;
    Some(format!("{}{seed}{}", &ddl[..open], &ddl[comma..]))
}

fn rename_ddl(ddl: &str, name: &QualifiedName) -> Result<String> {
    let open = column_list_start(ddl)
        .ok_or_else(|| ConnectorError::Invalid("SHOW TABLE returned no column list".into()))?;
    Ok(format!("CREATE TABLE {} {}", name.quoted(), &ddl[open..]))
}

/// Where the column list of `CREATE TABLE <name> (…` starts: after the table's name, whose
/// quoted parts may hold `(`, `.` or `"` (`sales."paren(1)"`).
fn column_list_start(ddl: &str) -> Option<usize> {
    let b = ddl.as_bytes();
    let upper = ddl.to_ascii_uppercase();
    let mut i = upper.find("TABLE")? + "TABLE".len();
    loop {
        while b.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        if b.get(i) == Some(&b'"') {
            i += 1;
            loop {
                match b.get(i)? {
                    b'"' if b.get(i + 1) == Some(&b'"') => i += 2,
                    b'"' => {
                        i += 1;
                        break;
                    }
                    _ => i += 1,
                }
            }
        } else {
            while b
                .get(i)
                .is_some_and(|c| !c.is_ascii_whitespace() && *c != b'.' && *c != b'(')
            {
                i += 1;
            }
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            continue;
        }
        break;
    }
    ddl[i..].find('(').map(|p| p + i)
}

impl Destination for RedshiftDestination {
    type Schema = RedshiftSchema;
    type Loader = RedshiftLoader;

    fn describe(&self) -> String {
        self.endpoint.display()
    }

    fn encrypted(&self) -> Option<bool> {
        self.endpoint.encrypted()
    }

    async fn identity(&self) -> Result<String> {
        self.server_identity().await
    }

    async fn create_schema(
        &self,
        schema: &RedshiftSchema,
        options: &SchemaOptions,
    ) -> Result<RedshiftLoader> {
        let client = self.endpoint.connect().await?;
        // Schemas are created when missing; tables are swapped in one by one as they load, so
        // a table whose load fails keeps what it held before. A schema holding tables the user
        // cannot replace (owned by others) is dropped and recreated instead (DROP on it).
        let (user, superuser) = whoami(&client).await?;
        let existing = rows(
            &client,
            "SELECT n.nspname AS schema_name, c.relname AS table_name, \
             pg_get_userbyid(c.relowner) AS owner FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r'",
            "listing destination tables",
        )
        .await?;
        let schema_owners: HashMap<String, String> = rows(
            &client,
            "SELECT nspname, pg_get_userbyid(nspowner) AS owner FROM pg_namespace",
            "listing destination schemas",
        )
        .await?
        .iter()
        .map(|r| (r.text("nspname"), r.text("owner")))
        .collect();
        let wanted: Vec<&QualifiedName> = schema.tables.iter().map(|t| &t.0).collect();
        for (s, owner) in &schema.schemas {
            // A schema that is someone else's (or holds their tables) is dropped and made
            // again as the job's user's: DROP on it is the one grant that needs.
            let foreign = schema_owners.get(s).is_some_and(|o| o != &user)
                || existing
                    .iter()
                    .any(|r| r.get("schema_name") == Some(s) && r.text("owner") != user);
            let mut sql = if foreign && !superuser && s != "public" {
                format!(
                    "DROP SCHEMA IF EXISTS {q} CASCADE; CREATE SCHEMA {q}",
                    q = quote_ident(s)
                )
            } else {
                format!("CREATE SCHEMA IF NOT EXISTS {}", quote_ident(s))
            };
            if options.preserve_ownership && !owner.is_empty() && s != "public" {
                sql += &format!(
                    "; ALTER SCHEMA {} OWNER TO {}",
                    quote_ident(s),
                    quote_ident(owner)
                );
            }
            exec(&client, &sql, &format!("creating schema {s}")).await?;
        }
        // Views go until the tables they read are loaded (they are the source's again then).
        let names: Vec<String> = schema.schemas.iter().map(|(s, _)| s.clone()).collect();
        objects::drop_views(&client, &names).await?;
        // Foreign keys between the tables about to be replaced go first (finish_schema adds
        // them back): otherwise swapping two related tables at once locks each other's. They
        // are recorded in S3 before they are dropped, with those a killed job dropped and did
        // not put back, so that a job that does not complete (failed, Ctrl-C, or killed: then
        // the next job) restores them.
        let mut dropping = Vec::new();
        for r in rows(
            &client,
            "SELECT n.nspname AS schema_name, c.relname AS table_name, con.conname, \
             pg_get_constraintdef(con.oid) AS definition FROM pg_constraint con \
             JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE con.contype = 'f'",
            "listing destination foreign keys",
        )
        .await?
        {
            let name = QualifiedName::new(r.text("schema_name"), r.text("table_name"));
            if schema.schemas.iter().any(|(s, _)| s == &name.schema) {
                let con = quote_ident(&r.text("conname"));
                dropping.push((
                    format!("ALTER TABLE {} DROP CONSTRAINT {con}", name.quoted()),
                    format!(
                        "ALTER TABLE {} ADD CONSTRAINT {con} {}",
                        name.quoted(),
                        r.text("definition")
                    ),
                    name,
                ));
            }
        }
        let mut dropped = self.dropped_foreign_keys().await?;
        for (_, add, _) in &dropping {
            if !dropped.contains(add) {
                dropped.push(add.clone());
            }
        }
        self.record_dropped(&dropped).await?;
        for (drop, _, name) in &dropping {
            exec(
                &client,
                drop,
                &format!("dropping foreign keys of {name} until the load is done"),
            )
            .await?;
        }
        // Tables the source no longer has, and staging tables a crashed run left, go.
        for r in rows(
            &client,
            "SELECT n.nspname AS schema_name, c.relname AS table_name FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r'",
            "listing destination tables",
        )
        .await?
        {
            let name = QualifiedName::new(r.text("schema_name"), r.text("table_name"));
            if !schema.schemas.iter().any(|(s, _)| s == &name.schema) || wanted.contains(&&name) {
                continue;
            }
            exec(
                &client,
                &format!("DROP TABLE IF EXISTS {} CASCADE", name.quoted()),
                &format!("dropping {name}, which the source does not have"),
            )
            .await?;
        }
        let mut tables = HashMap::new();
        let mut foreign_keys = Vec::new();
        for (name, ddl, owner) in &schema.tables {
            let (ddl, foreign) = split_foreign_keys(ddl);
            for fk in foreign {
                foreign_keys.push(format!("ALTER TABLE {} ADD {fk}", name.quoted()));
            }
            tables.insert(name.clone(), (ddl, owner.clone()));
        }
        Ok(RedshiftLoader {
            tables,
            foreign_keys,
            dropped,
            preserve_ownership: options.preserve_ownership,
        })
    }

    async fn load(
        &self,
        loader: &RedshiftLoader,
        table: &Table,
        columns: &[String],
        parts: PartStream,
    ) -> Result<LoadStats> {
        let (tx, rx) = tokio::sync::mpsc::channel::<String>(1);
        let feed = self.staging.write_parts(&table.name, parts, tx);
        self.load_manifests(loader, table, columns, feed, rx).await
    }

    /// A Redshift source sharing this job's staging: UNLOAD, then COPY the UNLOAD's own files
    /// as they are, without the worker reading them.
    async fn load_direct(
        &self,
        loader: &RedshiftLoader,
        source: &(dyn Any + Send + Sync),
        table: &Table,
        columns: &[String],
    ) -> Option<Result<LoadStats>> {
        let source = source.downcast_ref::<RedshiftSource>()?;
        if !source.shares_staging(&self.staging) {
            return None;
        }
        let unloaded = match source.unload_files(table, columns).await {
            Ok(u) => u,
            Err(e) => return Some(Err(e)),
        };
        let (tx, rx) = tokio::sync::mpsc::channel::<String>(1);
        let unloaded = &unloaded;
        let feed = async move {
            let key = self
                .staging
                .copy_manifest(&table.name, &unloaded.keys)
                .await?;
            tx.send(key).await.map_err(|_| ConnectorError::Aborted)?;
            Ok((unloaded.rows, unloaded.bytes))
        };
        let loaded = self.load_manifests(loader, table, columns, feed, rx).await;
        if let Err(e) = self.staging.delete_prefix(&unloaded.prefix).await {
            tracing::warn!(error = %e, "could not delete UNLOAD files");
        }
        Some(loaded.map(|l| LoadStats {
            rows: l.rows,
            stored_bytes: Some(unloaded.bytes),
            extract_stored_bytes: Some(unloaded.bytes),
            remote: None,
        }))
    }

    async fn load_remote(
        &self,
        loader: &RedshiftLoader,
        source: &(dyn Any + Send + Sync),
        table: &Table,
        columns: &[String],
        spec: &mirage_transform::spec::TableSpec,
        key: &mirage_transform::spec::ConsistencyKey,
        progress: &(dyn Fn(u64, u64) + Send + Sync),
    ) -> Option<Result<LoadStats>> {
        let plan = self.lambda.as_ref()?;
        let Some(source) = source.downcast_ref::<RedshiftSource>() else {
            return Some(Err(ConnectorError::Invalid(
                "the SQS + Lambda process needs a Redshift source".into(),
            )));
        };
        let job = match self.lambda_job(plan, key).await {
            Ok(j) => j,
            Err(e) => return Some(Err(e)),
        };
        Some(
            self.load_through_lambda(&job, loader, source, table, columns, spec, progress)
                .await,
        )
    }

    async fn restore_preserved(&self, _: &RedshiftLoader, table: &Table) -> Result<u64> {
        Err(ConnectorError::Invalid(format!(
            "{}: preserve-destination is not available for Redshift destinations yet",
            table.name
        )))
    }

    async fn finish_schema(
        &self,
        loader: &RedshiftLoader,
        schema: &RedshiftSchema,
        _options: &SchemaOptions,
    ) -> Result<Vec<String>> {
        let client = self.endpoint.connect().await?;
        for fk in &loader.foreign_keys {
            exec(&client, fk, "adding foreign keys").await?;
        }
        // The source's keys are in: the record of the dropped ones is done with.
        self.record_dropped(&[]).await?;
        // Views, materialized views (computed from the loaded rows), routines, comments and
        // privileges: one that fails is named, the job goes on.
        Ok(objects::create(&client, &schema.objects, loader.preserve_ownership).await)
    }

    /// The foreign keys dropped for the load (and by a killed job before) go back one by one:
    /// Redshift does not enforce them, so tables that kept their old rows take them again as
    /// they are. Those that cannot stay recorded for the next job.
    async fn finish_after_failure(
        &self,
        loader: &RedshiftLoader,
        schema: &RedshiftSchema,
    ) -> Option<Vec<String>> {
        let client = match self.endpoint.connect().await {
            Ok(c) => c,
            Err(e) => {
                return Some(vec![format!(
                    "foreign keys and views not restored: {e}; the next run restores them"
                )]);
            }
        };
        let mut problems = Vec::new();
        let mut left = Vec::new();
        for fk in &loader.dropped {
            match client.batch_execute(fk).await {
                Ok(()) => {}
                Err(e) => match e.as_db_error().map(|d| d.code().code()) {
                    // Back already (the source's), or its table is gone: nothing to restore.
                    Some("42710") | Some("42P01") | Some("42P07") => {}
                    _ => {
                        problems.push(format!(
                            "could not restore a foreign key ({}): {}; the next run restores it",
                            fk.split(" ADD ").next().unwrap_or_default(),
                            describe(&e)
                        ));
                        left.push(fk.clone());
                    }
                },
            }
        }
        if let Err(e) = self.record_dropped(&left).await {
            problems.push(format!(
                "could not update the record of dropped foreign keys: {e}"
            ));
        }
        // The views dropped for the load come back over the tables as they are now.
        problems.extend(objects::create(&client, &schema.objects, loader.preserve_ownership).await);
        Some(problems)
    }

    /// An object in the staging bucket, `<prefix>/_destinations/<endpoint>.lock`, created only
    /// if absent and naming the job; a lock whose job is dead (lease gone or stale, or its
    /// process gone from this machine) is taken over. Freed by [`Destination::end_job`].
    async fn lock(&self, tag: &crate::JobTag) -> Result<crate::DestinationLock> {
        match self
            .staging
            .take_destination(&self.server_identity().await?, tag)
            .await?
        {
            None => Ok(Box::new(())),
            Some(holder) => Err(ConnectorError::InUse {
                destination: self.describe(),
                holder: mirage_core::display::printable(&holder).into_owned(),
            }),
        }
    }

    async fn end_job(&self) -> Result<()> {
        let mut problems = Vec::new();
        // The lock was taken only once the destination had said who it is.
        if let Some(id) = self.identity.get()
            && let Err(e) = self.staging.free_destination(id).await
        {
            problems.push(e.to_string());
        }
        if let Some(lease) = self.lease.lock().ok().and_then(|mut l| l.take()) {
            lease.abort();
        }
        let job = self
            .lambda_job
            .get()
            .and_then(|j| j.as_ref().ok().cloned())
            .or_else(|| self.lambda_partial.lock().ok().and_then(|mut p| p.take()));
        if let Some(job) = job {
            problems.extend(job.teardown().await);
        }
        if let Err(e) = self.staging.cleanup().await {
            problems.push(e.to_string());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConnectorError::Invalid(format!(
                "left behind: {}",
                problems.join("; ")
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn identity_seeds_in_show_table() {
        use super::{identity_seed, with_identity_seed};
        let ddl = "CREATE TABLE s.t (\n    id bigint identity(1,1) encode az64,\n    \"Odd \"\"id\" integer generated by default as identity(10, -5) encode az64,\n    identity_note varchar(10) encode lzo\n)";
        assert_eq!(identity_seed(ddl, "id"), Some((1, 1)));
        assert_eq!(identity_seed(ddl, "Odd \"id"), Some((10, -5)));
        assert_eq!(identity_seed(ddl, "identity_note"), None);
        let new = with_identity_seed(ddl, "id", 301).unwrap();
        assert!(
            new.contains("id bigint identity(301,1) encode az64"),
            "{new}"
        );
        let new = with_identity_seed(&new, "Odd \"id", -7).unwrap();
        assert!(new.contains("identity(-7, -5)"), "{new}");
        assert_eq!(identity_seed(&new, "id"), Some((301, 1)));
    }

    #[test]
    fn column_list_after_quoted_names() {
        use super::column_list_start;
        let ddl = "CREATE TABLE sales.\"paren(1)\" (\n    id integer\n)";
        assert_eq!(&ddl[column_list_start(ddl).unwrap()..][..6], "(\n    ");
        let ddl = "CREATE TABLE \"a.\"\"b(\".\"c (d\" (x int)";
        assert_eq!(&ddl[column_list_start(ddl).unwrap()..], "(x int)");
        let ddl = "CREATE TABLE s.t(x int)";
        assert_eq!(&ddl[column_list_start(ddl).unwrap()..], "(x int)");
        assert_eq!(column_list_start("CREATE TABLE \"open"), None);
    }

    use super::*;

    #[test]
    fn foreign_keys_are_parsed_and_split_out() {
        assert_eq!(
            parse_foreign_key(
                "FOREIGN KEY (customer_id, region) REFERENCES sales.customer(id, region)"
            ),
            Some((
                vec!["customer_id".into(), "region".into()],
                "sales.customer".into(),
                vec!["id".into(), "region".into()]
            ))
        );
        let ddl = "CREATE TABLE s.o (\n    id integer encode az64,\n    c integer encode az64,\n    PRIMARY KEY (id),\n    FOREIGN KEY (c) REFERENCES s.c(id)\n) DISTSTYLE AUTO;";
        let (kept, fks) = split_foreign_keys(ddl);
        assert_eq!(fks, ["FOREIGN KEY (c) REFERENCES s.c(id)"]);
        assert!(kept.contains("PRIMARY KEY (id)\n)"), "{kept}");
        assert_eq!(
            rename_ddl(&kept, &QualifiedName::new("s", "o_mirage_load"))
                .unwrap()
                .lines()
                .next(),
            Some("CREATE TABLE \"s\".\"o_mirage_load\" (")
        );
    }
}
