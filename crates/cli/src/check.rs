//! `mirage check`: everything a run needs, item by item — connections, grants, the staging
//! bucket, the Lambda settings — each failure with the statement or policy that fixes it.

use crate::run::Kind;
use mirage_connectors::postgres::PgEndpoint;
use mirage_connectors::redshift::Staging;
use mirage_core::schema::{quote_ident, quote_literal};
use mirage_core::workspace::{ConnectionConfig, Process, Workspace};
use mirage_core::{QualifiedName, lambda};
use serde::Serialize;
use std::fmt::Write;
use tokio_postgres::Client;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    Warn,
}

/// One checked item.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub area: &'static str,
    pub check: String,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// What fixes a failure: SQL to run as an administrator, or an action.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// Every item checked.
#[derive(Debug, Default, Serialize)]
pub struct Checks {
    pub ok: bool,
    pub items: Vec<Item>,
}

impl Checks {
    fn add(
        &mut self,
        area: &'static str,
        check: String,
        status: Status,
        detail: Option<String>,
        fix: Option<String>,
    ) {
        self.items.push(Item {
            area,
            check,
            status,
            detail,
            fix,
        });
    }

    fn pass(&mut self, area: &'static str, check: impl Into<String>) {
        self.add(area, check.into(), Status::Pass, None, None);
    }

    fn fail(
        &mut self,
        area: &'static str,
        check: impl Into<String>,
        detail: Option<String>,
        fix: impl Into<String>,
    ) {
        self.add(area, check.into(), Status::Fail, detail, Some(fix.into()));
    }

    fn warn(&mut self, area: &'static str, check: impl Into<String>, detail: impl Into<String>) {
        self.add(area, check.into(), Status::Warn, Some(detail.into()), None);
    }

    /// ✓/✗/! lines, each failure followed by its fix.
    pub fn text(&self) -> String {
        let mut s = String::new();
        for i in &self.items {
            let mark = match i.status {
                Status::Pass => "✓",
                Status::Fail => "✗",
                Status::Warn => "!",
            };
            let _ = writeln!(s, "{:<12} {mark} {}", i.area, i.check);
            if let Some(d) = &i.detail {
                let _ = writeln!(s, "{:<14} {d}", "");
            }
            if let Some(f) = &i.fix {
                for (n, line) in f.lines().enumerate() {
                    let _ = writeln!(
                        s,
                        "{:<14} {} {line}",
                        "",
                        if n == 0 { "fix:" } else { "    " }
                    );
                }
            }
        }
        let failed = self
            .items
            .iter()
            .filter(|i| i.status == Status::Fail)
            .count();
        let _ = write!(
            s,
            "{}",
            if failed == 0 {
                "everything a run needs is in place".to_string()
            } else {
                format!("{failed} item(s) to fix before `mirage run`")
            }
        );
        s
    }
}

async fn rows(c: &Client, sql: &str) -> Result<Vec<Vec<Option<String>>>, String> {
    mirage_connectors::redshift::rows(c, sql, "checking")
        .await
        .map_err(|e| e.to_string())
}

async fn one(c: &Client, sql: &str) -> Result<String, String> {
    Ok(rows(c, sql)
        .await?
        .first()
        .and_then(|r| r.first().cloned().flatten())
        .unwrap_or_default())
}

fn truth(v: &str) -> bool {
    matches!(v, "t" | "true")
}

fn endpoint(kind: Kind, role: &'static str, conn: &ConnectionConfig) -> Result<PgEndpoint, String> {
    match kind {
        Kind::Redshift => PgEndpoint::redshift(role, conn).map_err(|e| e.to_string()),
        _ => PgEndpoint::new(role, conn).map_err(|e| e.to_string()),
    }
}

/// Who is connected: (user, superuser, database).
async fn whoami(c: &Client) -> Result<(String, bool, String), String> {
    let r = rows(
        c,
        "SELECT current_user, usesuper, current_database() FROM pg_user WHERE usename = current_user",
    )
    .await?;
    let r = r.first().cloned().unwrap_or_default();
    let get = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
    Ok((get(0), truth(&get(1)), get(2)))
}

const SCHEMAS: &str = "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' \
     AND nspname NOT IN ('information_schema', 'catalog_history', 'rs_meta', '_mirage_preserve') ORDER BY 1";

/// Check everything `ws` needs; never writes to the databases (the S3 probe object is removed).
pub async fn check(ws: &Workspace) -> Checks {
    let mut out = Checks::default();
    let (sk, dk) = (Kind::of(&ws.source.url), Kind::of(&ws.destination.url));
    let mut source_schemas = Vec::new();
    let mut source_identity = None;
    match sk {
        Ok(Kind::Files) | Err(_) => {}
        Ok(kind) => {
            if let Some((schemas, id)) = source(ws, kind, &mut out).await {
                source_schemas = schemas;
                source_identity = Some(id);
            }
        }
    }
    if let Err(e) = &sk {
        out.fail(
            "source",
            "source.url",
            Some(e.clone()),
            "fix source.url in the workspace",
        );
    }
    match dk {
        Ok(Kind::Files) | Err(_) => {}
        Ok(kind) => destination(ws, kind, &source_schemas, source_identity, &mut out).await,
    }
    if let Err(e) = &dk {
        out.fail(
            "destination",
            "destination.url",
            Some(e.clone()),
            "fix destination.url in the workspace",
        );
    }
    if matches!(sk, Ok(Kind::Redshift)) || matches!(dk, Ok(Kind::Redshift)) {
        staging(ws, &mut out).await;
    }
    out.ok = !out.items.iter().any(|i| i.status == Status::Fail);
    out
}

async fn source(ws: &Workspace, kind: Kind, out: &mut Checks) -> Option<(Vec<String>, String)> {
    const A: &str = "source";
    let ep = match endpoint(kind, "source", &ws.source) {
        Ok(e) => e,
        Err(e) => {
            out.fail(A, "source.url", Some(e), "fix source.url in the workspace");
            return None;
        }
    };
    let c = match ep.connect().await {
        Ok(c) => c,
        Err(e) => {
            out.fail(
                A,
                format!("connect to {}", ep.display()),
                Some(e.to_string()),
                format!(
                    "check source.url, and that ${} holds the password",
                    ws.source.password_env
                ),
            );
            return None;
        }
    };
    out.pass(A, format!("connect to {}", ep.display()));
    let identity = ep
        .display()
        .split_once('@')
        .map(|(_, r)| r.to_string())
        .unwrap_or_default();
    let (user, superuser, _) = match whoami(&c).await {
        Ok(w) => w,
        Err(e) => {
            out.fail(
                A,
                "read the connected user",
                Some(e),
                "check the source is PostgreSQL or Redshift",
            );
            return None;
        }
    };
    let u = quote_ident(&user);
    let schemas: Vec<String> = rows(&c, SCHEMAS)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter_map(|r| r[0].clone())
        .filter(|s| ws.schemas.admits(s))
        .collect();
    let tables: Vec<(String, String)> = rows(
        &c,
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r', 'p') ORDER BY 1, 2",
    )
    .await
    .unwrap_or_default()
    .into_iter()
    .map(|r| {
        (
            r[0].clone().unwrap_or_default(),
            r[1].clone().unwrap_or_default(),
        )
    })
    .filter(|(s, _)| schemas.contains(s))
    .collect();
    let names: Vec<QualifiedName> = tables
        .iter()
        .map(|(s, t)| QualifiedName::new(s.clone(), t.clone()))
        .collect();
    let missing = match mirage_connectors::grants::missing_reads(&c, &schemas, &names).await {
        Ok(m) => m,
        Err(e) => {
            out.fail(
                A,
                "read the source user's privileges",
                Some(e.to_string()),
                "check the source is PostgreSQL or Redshift",
            );
            return None;
        }
    };
    let mut readable = Vec::new();
    for s in &schemas {
        let q = quote_ident(s);
        if missing.usage.contains(s) {
            out.fail(
                A,
                format!("USAGE on schema {s}"),
                None,
                format!("GRANT USAGE ON SCHEMA {q} TO {u};"),
            );
            continue;
        }
        out.pass(A, format!("USAGE on schema {s}"));
        let in_schema: Vec<&QualifiedName> = names.iter().filter(|t| &t.schema == s).collect();
        let cannot: Vec<String> = in_schema
            .iter()
            .filter(|t| missing.select.contains(t))
            .map(|t| t.name.clone())
            .collect();
        readable.extend(
            in_schema
                .iter()
                .filter(|t| !missing.select.contains(t))
                .map(|t| (*t).clone()),
        );
        let n = in_schema.len();
        if cannot.is_empty() {
            out.pass(A, format!("SELECT on the {n} table(s) of schema {s}"));
        } else {
            out.fail(
                A,
                format!("SELECT on the {n} table(s) of schema {s}"),
                Some(format!("cannot read: {}", cannot.join(", "))),
                format!("GRANT SELECT ON ALL TABLES IN SCHEMA {q} TO {u};"),
            );
        }
    }
    if kind == Kind::Redshift {
        let visible = one(&c, "SELECT count(*) FROM pg_catalog.svv_table_info")
            .await
            .unwrap_or_default();
        let fix = format!("GRANT SELECT ON pg_catalog.svv_table_info TO {u};");
        if superuser || visible.parse::<u64>().unwrap_or(0) > 0 {
            out.pass(A, "SELECT on pg_catalog.svv_table_info");
        } else {
            // Empty tables are absent from it: a readable table with rows proves the grant missing.
            let has_rows = mirage_connectors::grants::first_with_rows(&c, &readable)
                .await
                .ok()
                .flatten()
                .is_some();
            if has_rows {
                out.fail(
                    A,
                    "SELECT on pg_catalog.svv_table_info",
                    Some("it shows no tables, yet some have rows".into()),
                    fix,
                );
            } else {
                out.warn(
                    A,
                    "SELECT on pg_catalog.svv_table_info",
                    format!("cannot tell: every table is empty; make sure of it with {fix}"),
                );
            }
        }
    }
    if superuser {
        out.warn(A, "the source user only reads", format!("{user} is a superuser; mirage needs only USAGE and SELECT (`mirage policy` prints such a user)"));
    } else {
        out.pass(A, "the source user only reads (not a superuser)");
    }
    Some((schemas, identity))
}

async fn destination(
    ws: &Workspace,
    kind: Kind,
    source_schemas: &[String],
    source_identity: Option<String>,
    out: &mut Checks,
) {
    const A: &str = "destination";
    let ep = match endpoint(kind, "destination", &ws.destination) {
        Ok(e) => e,
        Err(e) => {
            out.fail(
                A,
                "destination.url",
                Some(e),
                "fix destination.url in the workspace",
            );
            return;
        }
    };
    let c = match ep.connect().await {
        Ok(c) => c,
        Err(e) => {
            let text = e.to_string();
            let db = ep
                .display()
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_string();
            if text.contains("3D000") {
                out.fail(
                    A,
                    format!("database {db} exists"),
                    Some(text),
                    format!("CREATE DATABASE {};", quote_ident(&db)),
                );
            } else {
                out.fail(
                    A,
                    format!("connect to {}", ep.display()),
                    Some(text),
                    format!(
                        "check destination.url, and that ${} holds the password",
                        ws.destination.password_env
                    ),
                );
            }
            return;
        }
    };
    out.pass(A, format!("connect to {}", ep.display()));
    let (user, superuser, db) = match whoami(&c).await {
        Ok(w) => w,
        Err(e) => {
            out.fail(
                A,
                "read the connected user",
                Some(e),
                "check the destination is PostgreSQL or Redshift",
            );
            return;
        }
    };
    out.pass(A, format!("database {db} exists"));
    let u = quote_ident(&user);
    if source_identity.as_deref() == ep.display().split_once('@').map(|(_, r)| r) {
        out.warn(
            A,
            "a database of its own",
            "the destination is the same database as the source: `mirage run` refuses to run",
        );
    }
    if ws.preserve_ownership {
        if superuser {
            out.pass(A, "superuser (preserve_ownership = true)");
        } else {
            let fix = if kind == Kind::Redshift {
                format!("ALTER USER {u} CREATEUSER;")
            } else {
                format!("ALTER ROLE {u} SUPERUSER;")
            };
            out.fail(
                A,
                "superuser (preserve_ownership = true)",
                Some(format!("{user} is not a superuser")),
                fix,
            );
        }
    }
    if superuser {
        out.pass(A, "every privilege (superuser)");
        return;
    }
    for p in ["CREATE", "TEMPORARY"] {
        let has = one(
            &c,
            &format!(
                "SELECT has_database_privilege({}, '{p}')",
                quote_literal(&db)
            ),
        )
        .await;
        if truth(&has.unwrap_or_default()) {
            out.pass(A, format!("{p} on database {db}"));
        } else {
            out.fail(
                A,
                format!("{p} on database {db}"),
                None,
                format!("GRANT {p} ON DATABASE {} TO {u};", quote_ident(&db)),
            );
        }
    }
    let existing = rows(
        &c,
        "SELECT nspname, pg_get_userbyid(nspowner) FROM pg_namespace",
    )
    .await
    .unwrap_or_default();
    let wanted: Vec<String> = if source_schemas.is_empty() {
        ws.schemas.include.clone()
    } else {
        source_schemas.to_vec()
    };
    let grants = if kind == Kind::Redshift {
        rows(&c, "SELECT namespace_name, privilege_type FROM svv_schema_privileges WHERE identity_name = current_user OR identity_type = 'public'").await.unwrap_or_default()
    } else {
        Vec::new()
    };
    for s in &wanted {
        let Some(owner) = existing
            .iter()
            .find(|r| r[0].as_deref() == Some(s))
            .and_then(|r| r[1].clone())
        else {
            continue;
        };
        let q = quote_ident(s);
        if kind == Kind::Postgres {
            let member = one(
                &c,
                &format!(
                    "SELECT pg_has_role(nspowner, 'USAGE') FROM pg_namespace WHERE nspname = {}",
                    quote_literal(s)
                ),
            )
            .await;
            if truth(&member.unwrap_or_default()) {
                out.pass(A, format!("owner of existing schema {s}"));
            } else {
                out.fail(
                    A,
                    format!("owner of existing schema {s}"),
                    Some(format!("owned by {owner}; mirage drops and recreates it")),
                    format!("ALTER SCHEMA {q} OWNER TO {u};"),
                );
            }
            continue;
        }
        if owner == user {
            out.pass(A, format!("owner of existing schema {s}"));
            continue;
        }
        let needs: &[&str] = if s == "public" {
            &["USAGE", "CREATE"]
        } else {
            &["USAGE", "CREATE", "DROP"]
        };
        let missing: Vec<&str> = needs
            .iter()
            .copied()
            .filter(|p| {
                !grants.iter().any(|g| {
                    g[0].as_deref() == Some(s)
                        && g[1].as_deref().is_some_and(|x| x.eq_ignore_ascii_case(p))
                })
            })
            .collect();
        let what = format!("{} on existing schema {s}", needs.join(", "));
        if missing.is_empty() {
            out.pass(A, what);
        } else {
            out.fail(
                A,
                what,
                Some(format!("owned by {owner}; missing {}", missing.join(", "))),
                format!("GRANT {} ON SCHEMA {q} TO {u};", missing.join(", ")),
            );
        }
    }
}

async fn staging(ws: &Workspace, out: &mut Checks) {
    const A: &str = "staging";
    let Some(config) = &ws.staging else {
        out.fail(
            A,
            "[staging] block",
            Some("Redshift jobs UNLOAD to and COPY from S3".into()),
            "add [staging] with bucket and iam_role (see `mirage init` or the README)",
        );
        return;
    };
    if config.bucket.starts_with(&config.resource_prefix) {
        out.pass(
            A,
            format!(
                "bucket name {} starts with the policy prefix {}",
                config.bucket, config.resource_prefix
            ),
        );
    } else {
        out.fail(
            A,
            format!("bucket name {} starts with the policy prefix {}", config.bucket, config.resource_prefix),
            Some("the policies from `mirage policy` grant access to buckets named <prefix>… only".into()),
            format!(
                "use a bucket named {}…, or set [staging] resource_prefix and print matching policies with `mirage policy --prefix <prefix>`",
                config.resource_prefix
            ),
        );
    }
    let probe_job = format!("_mirage_check/{}", std::process::id());
    let store = match Staging::new(config, &probe_job) {
        Ok(s) => s,
        Err(e) => {
            out.fail(
                A,
                format!("bucket {}", config.bucket),
                Some(e.to_string()),
                "fix [staging] in the workspace",
            );
            return;
        }
    };
    for (step, result) in store.probe().await {
        match result {
            Ok(()) => out.pass(A, step),
            Err(e) if e.contains("NoSuchBucket") || e.contains("does not exist") => {
                out.fail(
                    A,
                    step,
                    Some(e),
                    format!(
                        "create the bucket: aws s3 mb s3://{} --region {}",
                        config.bucket, config.region
                    ),
                );
                break;
            }
            Err(e) => {
                out.fail(
                    A,
                    step,
                    Some(e),
                    "give the worker the S3 statements of `mirage policy` (worker-v2-policy.json)",
                );
                break;
            }
        }
    }
    if config.process == Process::Lambda {
        match lambda::settings(|k| std::env::var(k).ok(), config.encrypt_queue) {
            Ok((s, warnings)) => {
                out.pass("lambda", format!("{} = {}", lambda::ROLE, s.role));
                out.pass("lambda", format!("{} = {} s", lambda::TIMEOUT, s.timeout));
                out.pass(
                    "lambda",
                    format!("{} = {} MB", lambda::MEMORY_SIZE, s.memory_size),
                );
                out.pass(
                    "lambda",
                    format!("{} = {} s", lambda::VISIBILITY, s.visibility_timeout),
                );
                if let Some(k) = &s.kms_master_key {
                    out.pass("lambda", format!("{} = {k}", lambda::KMS_MASTER_KEY));
                }
                for w in warnings {
                    out.warn("lambda", "settings", w);
                }
            }
            Err(problems) => {
                for p in problems {
                    let allowed = lambda::VARIABLES
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
            }
        }
    }
}
