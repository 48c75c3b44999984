//! Amazon Redshift with Data Pipeline V2: the source UNLOADs each table to
//! `s3://bucket/<prefix>/<job>/input/<schema>/<table>/` (CSV, ZSTD or GZIP, an explicit NULL sentinel,
//! PARALLEL ON, MAXFILESIZE, MANIFEST VERBOSE) and streams the parts the manifest lists; the
//! transform runs in the worker as for PostgreSQL; the destination writes the transformed parts to
//! `…/output/…`, a COPY manifest listing exactly them (`mandatory`), COPYs into a staging table
//! and swaps it in, so a table appears only when complete.
//!
//! SQL goes through the simple query protocol (text results), the common ground of Redshift and
//! its emulator; values in statements are quoted literals.

mod staging;

pub use staging::Staging;

use crate::postgres::{PgEndpoint, describe};
use crate::{
    ChunkStream, ConnectorError, Destination, Format, PartStream, Result, SchemaOptions, Source,
    Staged,
};
use mirage_core::schema::{
    Catalog, Column, ForeignKey, MAX_CATEGORIES, QUANTILES, QualifiedName, Table, TableKind,
    ValueType, quote_ident, quote_literal,
};
use mirage_core::workspace::SchemaFilter;
use mirage_core::{ColumnStats, StatsKind};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio_postgres::{Client, SimpleQueryMessage};

/// What UNLOAD writes for NULL, so NULL and '' stay apart through CSV (a value equal to it would
/// read back as NULL).
pub const NULL_SENTINEL: &str = "__MIRAGE_NULL__";

/// The record format of Redshift parts.
pub fn format() -> Format {
    Format::Csv {
        delimiter: b',',
        null: NULL_SENTINEL.as_bytes().to_vec(),
    }
}

/// Rows of a statement, as text, through the simple protocol.
pub async fn rows(client: &Client, sql: &str, what: &str) -> Result<Vec<Vec<Option<String>>>> {
    let messages = client
        .simple_query(sql)
        .await
        .map_err(|e| ConnectorError::Database {
            what: what.to_string(),
            detail: describe(&e),
        })?;
    Ok(messages
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            _ => None,
        })
        .collect())
}

async fn exec(client: &Client, sql: &str, what: &str) -> Result<()> {
    client
        .batch_execute(sql)
        .await
        .map_err(|e| ConnectorError::Database {
            what: what.to_string(),
            detail: describe(&e),
        })
}

fn text(v: &Option<String>) -> String {
    v.clone().unwrap_or_default()
}

/// `host:port/database` of an endpoint, to refuse copying a database onto itself.
fn identity(endpoint: &PgEndpoint) -> String {
    let d = endpoint.display();
    d.split_once('@')
        .map_or(d.clone(), |(_, rest)| rest.to_string())
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

async fn current_user(c: &Client) -> Result<String> {
    Ok(rows(c, "SELECT current_user", "reading the user")
        .await?
        .first()
        .map(|r| text(&r[0]))
        .unwrap_or_default())
}

async fn is_superuser(c: &Client) -> Result<bool> {
    Ok(rows(
        c,
        "SELECT usesuper FROM pg_user WHERE usename = current_user",
        "reading the user",
    )
    .await?
    .first()
    .is_some_and(|r| matches!(text(&r[0]).as_str(), "t" | "true")))
}

/// USAGE on every schema and SELECT on every table, with the GRANT that fixes what is missing.
/// (has_*_privilege are leader-node functions: they run in SELECTs of their own.)
async fn check_source_grants(c: &Client, schemas: &[String], tables: &[Table]) -> Result<()> {
    if is_superuser(c).await? {
        return Ok(());
    }
    let user = current_user(c).await?;
    let names: Vec<QualifiedName> = tables.iter().map(|t| t.name.clone()).collect();
    let missing = crate::grants::missing_reads(c, schemas, &names).await?;
    // A schema without tables needs no USAGE.
    if let Some(s) = missing
        .usage
        .iter()
        .find(|s| names.iter().any(|t| &t.schema == *s))
    {
        return Err(ConnectorError::Invalid(format!(
            "the source user {user} lacks USAGE on schema {s}; run GRANT USAGE ON SCHEMA {} TO {user}",
            quote_ident(s)
        )));
    }
    if let Some(t) = missing.select.first() {
        return Err(ConnectorError::Invalid(format!(
            "the source user {user} lacks SELECT on {t}; run GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {user}",
            quote_ident(&t.schema)
        )));
    }
    Ok(())
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
    /// Bytes UNLOAD wrote per table (compressed, as stored).
    unloaded: Arc<Mutex<HashMap<QualifiedName, u64>>>,
}

/// Schema copy for Redshift: the schemas, their owners, and each table's `SHOW TABLE` DDL.
pub struct RedshiftSchema {
    pub schemas: Vec<(String, String)>,
    /// (table, DDL, owner)
    pub tables: Vec<(QualifiedName, String, String)>,
}

impl RedshiftSource {
    pub async fn open(
        endpoint: PgEndpoint,
        staging: Option<Arc<Staging>>,
    ) -> Result<RedshiftSource> {
        let main = endpoint.connect().await?;
        Ok(RedshiftSource {
            endpoint,
            main,
            staging,
            unloaded: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    pub fn endpoint(&self) -> &PgEndpoint {
        &self.endpoint
    }

    pub fn identity(&self) -> String {
        identity(&self.endpoint)
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
}

impl Source for RedshiftSource {
    type Schema = RedshiftSchema;

    fn format(&self) -> Format {
        format()
    }

    async fn catalog(&self, filter: &SchemaFilter) -> Result<Catalog> {
        let c = &self.main;
        let schemas: Vec<String> = rows(
            c,
            "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' \
             AND nspname NOT IN ('information_schema', 'catalog_history', 'rs_meta') ORDER BY 1",
            "listing schemas",
        )
        .await?
        .iter()
        .map(|r| text(&r[0]))
        .filter(|s| filter.admits(s))
        .collect();
        let mut tables: Vec<Table> = Vec::new();
        for r in rows(
            c,
            "SELECT n.nspname, c.relname, pg_get_userbyid(c.relowner) FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' ORDER BY 1, 2",
            "listing tables",
        )
        .await?
        {
            let schema = text(&r[0]);
            if !schemas.contains(&schema) {
                continue;
            }
            tables.push(Table {
                name: QualifiedName::new(schema, text(&r[1])),
                kind: TableKind::Table,
                columns: Vec::new(),
                primary_key: Vec::new(),
                owner: text(&r[2]),
                row_estimate: Some(0),
                byte_estimate: None,
            });
        }
        check_source_grants(c, &schemas, &tables).await?;
        // Sizes (svv_table_info lists only tables with rows: the rest keep 0).
        let mut visible = 0;
        for r in rows(
            c,
            "SELECT \"schema\", \"table\", tbl_rows, size FROM pg_catalog.svv_table_info",
            "reading svv_table_info",
        )
        .await?
        {
            let name = QualifiedName::new(text(&r[0]), text(&r[1]));
            visible += 1;
            if let Some(t) = tables.iter_mut().find(|t| t.name == name) {
                t.row_estimate = text(&r[2]).parse::<f64>().ok().map(|n| n as u64);
                t.byte_estimate = text(&r[3]).parse::<u64>().ok().map(|mb| mb << 20);
            }
        }
        if visible == 0 && !is_superuser(c).await? {
            // Empty tables are absent from svv_table_info; a table with rows that is absent means
            // the user may not read it.
            let names: Vec<QualifiedName> = tables.iter().map(|t| t.name.clone()).collect();
            if let Some(t) = crate::grants::first_with_rows(c, &names).await? {
                return Err(ConnectorError::Invalid(format!(
                    "the source user cannot read pg_catalog.svv_table_info (it shows no rows, yet {t} has \
                     some); run GRANT SELECT ON pg_catalog.svv_table_info TO {}",
                    current_user(c).await?
                )));
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
            let name = QualifiedName::new(text(&r[0]), text(&r[1]));
            let Some(t) = tables.iter_mut().find(|t| t.name == name) else {
                continue;
            };
            let num = |v: &Option<String>| v.as_deref().and_then(|s| s.parse::<u32>().ok());
            let data_type = text(&r[3]);
            let value_type = value_type(&data_type, num(&r[4]), num(&r[5]), num(&r[6]));
            let type_name = match (&value_type, num(&r[4]), num(&r[5]), num(&r[6])) {
                (ValueType::Text { .. } | ValueType::Char { .. }, Some(n), _, _) => {
                    format!("{data_type}({n})")
                }
                (ValueType::Numeric { .. }, _, Some(p), Some(s)) => format!("{data_type}({p},{s})"),
                _ => data_type.clone(),
            };
            t.columns.push(Column {
                name: text(&r[2]),
                type_name,
                value_type,
                not_null: text(&r[7]) == "NO",
                generated: false,
                identity: text(&r[8]).contains("identity\"("),
            });
        }
        // Keys, from pg_get_constraintdef (what Redshift's own tooling reads).
        let mut foreign_keys = Vec::new();
        for r in rows(
            c,
            "SELECT n.nspname, c.relname, con.conname, con.contype, pg_get_constraintdef(con.oid) \
             FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE con.contype IN ('p', 'f') ORDER BY 3",
            "reading keys",
        )
        .await?
        {
            let name = QualifiedName::new(text(&r[0]), text(&r[1]));
            if !tables.iter().any(|t| t.name == name) {
                continue;
            }
            let def = text(&r[4]);
            if text(&r[3]) == "p" {
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
                        name: text(&r[2]),
                        table: name,
                        columns: cols,
                        referenced,
                        referenced_columns: refcols,
                    });
                }
            }
        }
        Ok(Catalog {
            schemas,
            tables,
            foreign_keys,
            byte_lengths: true,
        })
    }

    async fn schema(&self, catalog: &Catalog) -> Result<RedshiftSchema> {
        let owners: HashMap<String, String> = rows(
            &self.main,
            "SELECT nspname, pg_get_userbyid(nspowner) FROM pg_namespace",
            "reading schema owners",
        )
        .await?
        .iter()
        .map(|r| (text(&r[0]), text(&r[1])))
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
            .and_then(|r| r[0].clone())
            .ok_or_else(|| ConnectorError::Invalid(format!("{what} returned nothing")))?;
            tables.push((t.name.clone(), ddl, t.owner.clone()));
        }
        Ok(RedshiftSchema {
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
                        "SELECT {c}::varchar(65535), count(*) FROM {t} WHERE {c} IS NOT NULL \
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
                        .map(|r| (text(&r[0]), text(&r[1]).parse().unwrap_or(0)))
                        .collect(),
                    quantiles: Vec::new(),
                })
            }
            StatsKind::Quantiles => {
                // No arrays on Redshift: the first value and the last of each of QUANTILES tiles.
                let found = rows(
                    &self.main,
                    &format!(
                        "SELECT q, min(v)::varchar(65535), max(v)::varchar(65535) FROM \
                         (SELECT {c} AS v, ntile({QUANTILES}) OVER (ORDER BY {c}) AS q FROM {t} \
                          WHERE {c} IS NOT NULL) x GROUP BY q ORDER BY q"
                    ),
                    &what,
                )
                .await?;
                let mut quantiles: Vec<String> =
                    found.first().map(|r| text(&r[1])).into_iter().collect();
                quantiles.extend(found.iter().map(|r| text(&r[2])));
                Ok(ColumnStats {
                    categories: Vec::new(),
                    quantiles,
                })
            }
        }
    }

    async fn read(&self, table: &Table, columns: &[String]) -> Result<ChunkStream> {
        let (staging, client, prefix) = self.unload_target(table).await?;
        let sql = unload_sql(&staging, table, columns, &prefix);
        let what = format!("UNLOAD of {}", table.name);
        let unload = tokio::spawn(async move {
            let started = std::time::Instant::now();
            let r = exec(&client, &sql, &what).await;
            tracing::debug!(seconds = started.elapsed().as_secs_f64(), "{what} finished");
            r
        });
        let (unloaded, name) = (self.unloaded.clone(), table.name.clone());
        Ok(staging.stream_unload(unload, prefix, move |bytes| {
            if let Ok(mut u) = unloaded.lock() {
                u.insert(name, bytes);
            }
        }))
    }

    fn staged_bytes(&self, table: &QualifiedName) -> Option<u64> {
        self.unloaded
            .lock()
            .ok()
            .and_then(|u| u.get(table).copied())
    }

    async fn stage(&self, table: &Table, columns: &[String]) -> Result<Option<Staged>> {
        let (staging, client, prefix) = self.unload_target(table).await?;
        exec(
            &client,
            &unload_sql(&staging, table, columns, &prefix),
            &format!("UNLOAD of {}", table.name),
        )
        .await?;
        let parts = staging.manifest_parts(&format!("{prefix}manifest")).await?;
        let bytes = parts.iter().map(|p| p.1).sum();
        if let Ok(mut u) = self.unloaded.lock() {
            u.insert(table.name.clone(), bytes);
        }
        Ok(Some(Staged {
            keys: parts.iter().map(|p| p.0.clone()).collect(),
            prefix,
            rows: parts.iter().map(|p| p.2).sum(),
            bytes,
        }))
    }
}

/// The destination: parts to S3, COPY into a staging table, swap.
pub struct RedshiftDestination {
    endpoint: PgEndpoint,
    staging: Arc<Staging>,
    /// Each table's DDL without foreign keys, and its owner (filled by create_schema).
    tables: Mutex<HashMap<QualifiedName, (String, String)>>,
    /// `ALTER TABLE … ADD FOREIGN KEY …`, run after the data.
    foreign_keys: Mutex<Vec<String>>,
    preserve_ownership: Mutex<bool>,
    /// Bytes written to `output/` per table (compressed, as stored).
    loaded: Mutex<HashMap<QualifiedName, u64>>,
}

impl RedshiftDestination {
    /// The `ALTER TABLE … ADD` statements of the foreign keys create_schema dropped.
    fn dropped_foreign_keys(&self) -> Vec<String> {
        self.foreign_keys
            .lock()
            .map(|f| f.clone())
            .unwrap_or_default()
    }

    pub fn new(endpoint: PgEndpoint, staging: Arc<Staging>) -> RedshiftDestination {
        RedshiftDestination {
            endpoint,
            staging,
            tables: Mutex::new(HashMap::new()),
            foreign_keys: Mutex::new(Vec::new()),
            preserve_ownership: Mutex::new(false),
            loaded: Mutex::new(HashMap::new()),
        }
    }

    pub fn endpoint(&self) -> &PgEndpoint {
        &self.endpoint
    }

    pub fn identity(&self) -> String {
        identity(&self.endpoint)
    }

    /// Load a table from the COPY manifests `feed` hands over `rx` (it returns the records and
    /// bytes it staged): a staging table, each manifest COPYed as it comes, in one transaction
    /// that ends by swapping the staging table in.
    async fn load_manifests(
        &self,
        table: &Table,
        columns: &[String],
        feed: impl std::future::Future<Output = Result<(u64, u64)>>,
        rx: tokio::sync::mpsc::Receiver<String>,
    ) -> Result<u64> {
        let (ddl, owner) = self
            .tables
            .lock()
            .ok()
            .and_then(|t| t.get(&table.name).cloned())
            .ok_or_else(|| ConnectorError::Invalid(format!("no DDL for {}", table.name)))?;
        let client = self.endpoint.connect().await?;
        let stage = Self::staging_name(&table.name);
        let what = format!("loading {}", table.name);
        exec(
            &client,
            &format!(
                "DROP TABLE IF EXISTS {}; {}",
                stage.quoted(),
                rename_ddl(&ddl, &stage)?
            ),
            &format!("creating the staging table for {}", table.name),
        )
        .await?;
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
        let result = async {
            let started = std::time::Instant::now();
            exec(&client, "BEGIN", &what).await?;
            // Batches of files are COPYed while the next ones are made; all in one transaction
            // with the swap, so the table appears only complete.
            let writer = feed;
            let (client_ref, what_ref, column_list, stage_ref) = (&client, &what, &column_list, &stage);
            // The loader owns the receiver: when a COPY fails it returns, and the writer's next
            // batch finds nobody listening and stops.
            let loader = async move {
                let (client, what, stage) = (client_ref, what_ref, stage_ref);
                let mut rx = rx;
                while let Some(manifest) = rx.recv().await {
                    let copy = format!(
                        "COPY {} ({column_list}) FROM {} {} MANIFEST FORMAT AS CSV {} NULL AS {}{explicit_ids} \
                         COMPUPDATE OFF STATUPDATE OFF",
                        stage.quoted(),
                        quote_literal(&self.staging.url(&manifest)),
                        self.staging.authorization(),
                        self.staging.compression().keyword(),
                        quote_literal(NULL_SENTINEL),
                    );
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
                Ok(())
            };
            let (written, loaded) = futures_util::future::join(writer, loader).await;
            // A failed COPY explains a writer that stopped because of it.
            loaded?;
            let (rows, bytes) = written?;
            if let Ok(mut l) = self.loaded.lock() {
                l.insert(table.name.clone(), bytes);
            }
            tracing::debug!(table = %table.name, seconds = started.elapsed().as_secs_f64(), bytes, "written and copied");
            let mut swap = format!(
                "DROP TABLE IF EXISTS {t} CASCADE; ALTER TABLE {s} RENAME TO {n};",
                t = table.name.quoted(),
                s = stage.quoted(),
                n = quote_ident(&table.name.name)
            );
            let preserve = self.preserve_ownership.lock().map(|p| *p).unwrap_or(false);
            if preserve && !owner.is_empty() {
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
            Ok(rows)
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

    fn staging_name(table: &QualifiedName) -> QualifiedName {
        QualifiedName::new(table.schema.clone(), format!("{}_mirage_load", table.name))
    }

    /// The latest load error of this table's COPY, without row values.
    async fn load_error(&self, client: &Client, table: &QualifiedName) -> Option<String> {
        let prefix = self.staging.url(&self.staging.output_prefix(table));
        let found = rows(
            client,
            &format!(
                "SELECT trim(filename), line_number, trim(colname), err_code, trim(err_reason) \
                 FROM stl_load_errors WHERE trim(filename) LIKE {} ORDER BY starttime DESC LIMIT 1",
                quote_literal(&format!("{prefix}%"))
            ),
            "reading stl_load_errors",
        )
        .await
        .ok()?;
        let r = found.first()?;
        let file = text(&r[0]);
        let file = file.rsplit('/').next().unwrap_or(&file).to_string();
        Some(format!(
            "COPY rejected record {} of {file}, column {}: {} (stl_load_errors code {})",
            text(&r[1]),
            text(&r[2]),
            text(&r[4]),
            text(&r[3])
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
fn rename_ddl(ddl: &str, name: &QualifiedName) -> Result<String> {
    let open = ddl
        .find('(')
        .ok_or_else(|| ConnectorError::Invalid("SHOW TABLE returned no column list".into()))?;
    Ok(format!("CREATE TABLE {} {}", name.quoted(), &ddl[open..]))
}

impl Destination for RedshiftDestination {
    type Schema = RedshiftSchema;

    async fn preflight(&self, options: &SchemaOptions) -> Result<()> {
        let client = self.endpoint.connect().await?;
        let me = rows(
            &client,
            "SELECT usename, usesuper FROM pg_user WHERE usename = current_user",
            "reading the destination user",
        )
        .await?;
        let user = me.first().map(|r| text(&r[0])).unwrap_or_default();
        let superuser = me
            .first()
            .is_some_and(|r| text(&r[1]) == "t" || text(&r[1]) == "true");
        if options.preserve_ownership && !superuser {
            return Err(ConnectorError::Invalid(format!(
                "preserve_ownership needs a superuser destination user; {user} is not one \
                 (ALTER USER {user} CREATEUSER, or set preserve_ownership = false)"
            )));
        }
        if !options.preserved.is_empty() {
            return Err(ConnectorError::Invalid(
                "mode = \"preserve-destination\" is not available for Redshift destinations yet"
                    .into(),
            ));
        }
        if superuser {
            return Ok(());
        }
        let db = rows(&client, "SELECT current_database()", "reading the database").await?;
        let db = db.first().map(|r| text(&r[0])).unwrap_or_default();
        for privilege in ["CREATE", "TEMPORARY"] {
            let has = rows(
                &client,
                &format!(
                    "SELECT has_database_privilege({}, {})",
                    quote_literal(&db),
                    quote_literal(privilege)
                ),
                "checking database privileges",
            )
            .await?;
            if !has
                .first()
                .is_some_and(|r| text(&r[0]) == "t" || text(&r[0]) == "true")
            {
                return Err(ConnectorError::Invalid(format!(
                    "the destination user {user} lacks {privilege} on database {db}; run \
                     GRANT {privilege} ON DATABASE {} TO {user}",
                    quote_ident(&db)
                )));
            }
        }
        // In schemas that exist, tables are replaced: owner, or CREATE and DROP granted.
        let existing = rows(
            &client,
            "SELECT nspname, pg_get_userbyid(nspowner) FROM pg_namespace",
            "listing destination schemas",
        )
        .await?;
        let grants = rows(
            &client,
            "SELECT namespace_name, privilege_type FROM svv_schema_privileges \
             WHERE identity_name = current_user OR identity_type = 'public'",
            "reading schema privileges",
        )
        .await?;
        for s in &options.schemas {
            let Some(owner) = existing
                .iter()
                .find(|r| &text(&r[0]) == s)
                .map(|r| text(&r[1]))
            else {
                continue;
            };
            if owner == user {
                continue;
            }
            let needs: &[&str] = if s == "public" {
                &["USAGE", "CREATE"]
            } else {
                &["USAGE", "CREATE", "DROP"]
            };
            for needed in needs {
                let granted = grants
                    .iter()
                    .any(|g| &text(&g[0]) == s && text(&g[1]).eq_ignore_ascii_case(needed));
                if !granted {
                    return Err(ConnectorError::Invalid(format!(
                        "schema {s} exists in the destination, is owned by {owner}, and {user} lacks \
                         {needed} on it; run GRANT {needed} ON SCHEMA {} TO {user} (or make {user} its owner)",
                        quote_ident(s)
                    )));
                }
            }
        }
        Ok(())
    }

    async fn create_schema(&self, schema: &RedshiftSchema, options: &SchemaOptions) -> Result<()> {
        let client = self.endpoint.connect().await?;
        if let Ok(mut p) = self.preserve_ownership.lock() {
            *p = options.preserve_ownership;
        }
        // Schemas are created when missing; tables are swapped in one by one as they load, so
        // a table whose load fails keeps what it held before. A schema holding tables the user
        // cannot replace (owned by others) is dropped and recreated instead (DROP on it).
        let superuser = is_superuser(&client).await?;
        let user = current_user(&client).await?;
        let existing = rows(
            &client,
            "SELECT n.nspname, c.relname, pg_get_userbyid(c.relowner) FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r'",
            "listing destination tables",
        )
        .await?;
        let wanted: Vec<&QualifiedName> = schema.tables.iter().map(|t| &t.0).collect();
        for (s, owner) in &schema.schemas {
            let foreign = existing
                .iter()
                .any(|r| &text(&r[0]) == s && text(&r[2]) != user);
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
        // Foreign keys between the tables about to be replaced go first (finish_schema adds
        // them back): otherwise swapping two related tables at once locks each other's.
        for r in rows(
            &client,
            "SELECT n.nspname, c.relname, con.conname FROM pg_constraint con \
             JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE con.contype = 'f'",
            "listing destination foreign keys",
        )
        .await?
        {
            let name = QualifiedName::new(text(&r[0]), text(&r[1]));
            if schema.schemas.iter().any(|(s, _)| s == &name.schema) {
                exec(
                    &client,
                    &format!(
                        "ALTER TABLE {} DROP CONSTRAINT {}",
                        name.quoted(),
                        quote_ident(&text(&r[2]))
                    ),
                    &format!("dropping foreign keys of {name} until the load is done"),
                )
                .await?;
            }
        }
        // Tables the source no longer has, and staging tables a crashed run left, go.
        for r in rows(
            &client,
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind = 'r'",
            "listing destination tables",
        )
        .await?
        {
            let name = QualifiedName::new(text(&r[0]), text(&r[1]));
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
        let mut fks = Vec::new();
        for (name, ddl, owner) in &schema.tables {
            let (ddl, foreign) = split_foreign_keys(ddl);
            for fk in foreign {
                fks.push(format!("ALTER TABLE {} ADD {fk}", name.quoted()));
            }
            tables.insert(name.clone(), (ddl, owner.clone()));
        }
        if let Ok(mut t) = self.tables.lock() {
            *t = tables;
        }
        if let Ok(mut f) = self.foreign_keys.lock() {
            *f = fks;
        }
        Ok(())
    }

    async fn load(&self, table: &Table, columns: &[String], parts: PartStream) -> Result<u64> {
        let (tx, rx) = tokio::sync::mpsc::channel::<String>(1);
        let feed = self.staging.write_parts(&table.name, parts, tx);
        self.load_manifests(table, columns, feed, rx).await
    }

    fn accepts_staged(&self) -> bool {
        true
    }

    async fn load_staged(&self, table: &Table, columns: &[String], staged: &Staged) -> Result<u64> {
        // The UNLOAD's own files, COPYed as they are: nothing to transform.
        let (tx, rx) = tokio::sync::mpsc::channel::<String>(1);
        let feed = async move {
            let key = self
                .staging
                .copy_manifest(&table.name, &staged.keys)
                .await?;
            tx.send(key).await.map_err(|_| ConnectorError::Aborted)?;
            Ok((staged.rows, staged.bytes))
        };
        let loaded = self.load_manifests(table, columns, feed, rx).await;
        if let Err(e) = self.staging.delete_prefix(&staged.prefix).await {
            tracing::warn!(error = %e, "could not delete UNLOAD files");
        }
        loaded
    }

    async fn restore_preserved(&self, table: &Table) -> Result<u64> {
        Err(ConnectorError::Invalid(format!(
            "{}: preserve-destination is not available for Redshift destinations yet",
            table.name
        )))
    }

    async fn finish_schema(
        &self,
        _schema: &RedshiftSchema,
        _options: &SchemaOptions,
    ) -> Result<()> {
        let fks = self.dropped_foreign_keys();
        if fks.is_empty() {
            return Ok(());
        }
        let client = self.endpoint.connect().await?;
        for fk in fks {
            exec(&client, &fk, "adding foreign keys").await?;
        }
        Ok(())
    }

    /// The foreign keys dropped for the load go back one by one: Redshift does not enforce
    /// them, so tables that kept their old rows take them again as they are.
    async fn finish_after_failure(&self, _schema: &RedshiftSchema) -> Option<Vec<String>> {
        let fks = self.dropped_foreign_keys();
        if fks.is_empty() {
            return Some(Vec::new());
        }
        let client = match self.endpoint.connect().await {
            Ok(c) => c,
            Err(e) => return Some(vec![format!("foreign keys not restored: {e}")]),
        };
        let mut problems = Vec::new();
        for fk in fks {
            if let Err(e) = client.batch_execute(&fk).await {
                problems.push(format!(
                    "could not restore a foreign key ({}): {}; run the job again",
                    fk.split(" ADD ").next().unwrap_or_default(),
                    describe(&e)
                ));
            }
        }
        Some(problems)
    }

    fn staged_bytes(&self, table: &QualifiedName) -> Option<u64> {
        self.loaded.lock().ok().and_then(|l| l.get(table).copied())
    }
}

#[cfg(test)]
mod tests {
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
